"""All SQL of the grid package. Functions take the session first; none commits."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

NODE_COLUMNS = """n.id, n.code, n.name, n.level, n.chain, n.depth, n.floor_from, n.floor_to,
                  n.retired_at, p.code AS parent_code"""

# Deepest covering node first; ties on shared edges go to the lowest code.
# Pieces are small (<= 255 vertices), so the county outline never costs a full test.
_LOCATE_SQL = text(
    """
WITH hit AS (
  SELECT node_id FROM node_piece
   WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
   ORDER BY depth DESC, code
   LIMIT 1
), deepest AS (
  SELECT n.id, n.path FROM node n JOIN hit ON n.id = hit.node_id
), members AS (
  SELECT a.id, false AS is_floor
    FROM deepest d JOIN node a ON a.id = ANY (string_to_array(ltree2text(d.path), '.')::bigint[])
  UNION ALL
  SELECT f.id, true
    FROM deepest d JOIN node f ON f.parent_id = d.id
   WHERE :with_floors AND f.level = 'floor' AND f.retired_at IS NULL
)
SELECT n.id, n.code, n.name, n.level, n.chain, n.depth, n.floor_from, n.floor_to, m.is_floor,
       po.role, po.person_id, pe.name AS person_name, pe.phone
  FROM members m
  JOIN node n ON n.id = m.id
  LEFT JOIN post po ON po.node_id = n.id AND po.ended_at IS NULL
  LEFT JOIN person pe ON pe.id = po.person_id
 ORDER BY n.depth DESC, n.code, po.role, po.started_at
"""
)


def locate_rows(session: Session, *, lon: float, lat: float, with_floors: bool) -> Sequence[RowMapping]:
    """The chain above the deepest node covering the point, with current posts.

    Rows come deepest first; floors of the deepest node are included on request.
    No rows means no node covers the point.
    """
    return session.execute(_LOCATE_SQL, {"lon": lon, "lat": lat, "with_floors": with_floors}).mappings().all()


def get_node(session: Session, *, code: str) -> RowMapping | None:
    # A floor has no footprint of its own: it shows its unit's.
    return (
        session.execute(
            text(
                f"""
SELECT {NODE_COLUMNS}, ST_AsGeoJSON(COALESCE(n.geom, p.geom), 15) AS geometry,
       (SELECT array_agg(a.code ORDER BY a.depth) FROM node a
         WHERE a.id = ANY (string_to_array(ltree2text(n.path), '.')::bigint[])) AS path_codes
  FROM node n LEFT JOIN node p ON p.id = n.parent_id
 WHERE n.code = :code
"""
            ),
            {"code": code},
        )
        .mappings()
        .first()
    )


def node_id_by_code(session: Session, *, code: str) -> int | None:
    return session.execute(text("SELECT id FROM node WHERE code = :code"), {"code": code}).scalar()


def children(session: Session, *, code: str) -> Sequence[RowMapping]:
    return (
        session.execute(
            text(
                f"""
SELECT {NODE_COLUMNS} FROM node n JOIN node p ON p.id = n.parent_id
 WHERE p.code = :code AND n.retired_at IS NULL
 ORDER BY n.code
"""
            ),
            {"code": code},
        )
        .mappings()
        .all()
    )


def list_nodes(
    session: Session,
    *,
    level: str | None,
    parent_code: str | None,
    bbox: tuple[float, float, float, float] | None,
    after_code: str | None,
    limit: int,
) -> Sequence[RowMapping]:
    """A page of nodes in code order (keyset pagination on the unique code)."""
    where = ["n.retired_at IS NULL"]
    params: dict[str, Any] = {"limit": limit}
    if level:
        where.append("n.level = :level")
        params["level"] = level
    if parent_code:
        where.append("p.code = :parent_code")
        params["parent_code"] = parent_code
    if bbox:
        where.append("COALESCE(n.geom, p.geom) && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)")
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    if after_code:
        where.append("n.code > :after_code")
        params["after_code"] = after_code
    sql = f"""
SELECT {NODE_COLUMNS} FROM node n LEFT JOIN node p ON p.id = n.parent_id
 WHERE {' AND '.join(where)}
 ORDER BY n.code
 LIMIT :limit
"""
    return session.execute(text(sql), params).mappings().all()


def node_posts(session: Session, *, node_id: int) -> Sequence[RowMapping]:
    return (
        session.execute(
            text(
                """
SELECT po.id, po.role, po.person_id, pe.name, pe.phone, po.started_at, po.ended_at
  FROM post po JOIN person pe ON pe.id = po.person_id
 WHERE po.node_id = :node_id
 ORDER BY po.ended_at IS NOT NULL, po.ended_at DESC, po.role, po.started_at
"""
            ),
            {"node_id": node_id},
        )
        .mappings()
        .all()
    )


def county_loaded(session: Session, *, code: str) -> bool:
    return session.execute(text("SELECT 1 FROM node WHERE code = :code"), {"code": code}).first() is not None


_INSERT_NODE = """
INSERT INTO node (county_code, code, name, level, chain, parent_id, geom, floor_from, floor_to)
VALUES (:county_code, :code, :name, :level, :chain,
        (SELECT id FROM node WHERE code = :parent_code),
        ST_Multi(ST_GeomFromWKB(:wkb, 4326)), :floor_from, :floor_to)
"""


def insert_node(session: Session, *, row: dict[str, Any]) -> int:
    """One node; `row` has code, name, level, chain, parent_code, county_code, wkb, floor_from, floor_to."""
    return session.execute(text(_INSERT_NODE + " RETURNING id"), row).scalar_one()


def insert_nodes(session: Session, *, rows: Iterable[dict[str, Any]]) -> None:
    """Many nodes at once, parents before children (psycopg pipelines executemany)."""
    batch = list(rows)
    if batch:
        session.execute(text(_INSERT_NODE), batch)


def upsert_person(session: Session, *, county_code: str, name: str, phone: str | None) -> int:
    """A person is known by phone number; a new name for the same phone updates it."""
    if phone is None:
        return session.execute(
            text("INSERT INTO person (county_code, name) VALUES (:cc, :name) RETURNING id"),
            {"cc": county_code, "name": name},
        ).scalar_one()
    return session.execute(
        text(
            """
INSERT INTO person (county_code, name, phone) VALUES (:cc, :name, :phone)
ON CONFLICT (phone) DO UPDATE SET name = EXCLUDED.name
RETURNING id
"""
        ),
        {"cc": county_code, "name": name, "phone": phone},
    ).scalar_one()


def insert_people_and_posts(
    session: Session, *, county_code: str, posts: Iterable[dict[str, Any]], upsert_people: bool = False
) -> None:
    """Bulk load of a roster: rows with node_code, role, name, phone, started_at, ended_at.

    With `upsert_people`, a phone already known keeps its person (its name updated),
    as `upsert_person` does; each phone must then appear once in `posts`.
    """
    rows = list(posts)
    if not rows:
        return
    on_conflict = " ON CONFLICT (phone) DO UPDATE SET name = EXCLUDED.name" if upsert_people else ""
    session.execute(
        text("INSERT INTO person (county_code, name, phone) VALUES (:county_code, :name, :phone)" + on_conflict),
        [{"county_code": county_code, "name": r["name"], "phone": r["phone"]} for r in rows],
    )
    session.execute(
        text(
            """
INSERT INTO post (county_code, node_id, person_id, role, started_at, ended_at)
SELECT :county_code, n.id, pe.id, :role, :started_at, :ended_at
  FROM node n, person pe WHERE n.code = :node_code AND pe.phone = :phone
"""
        ),
        [{**r, "county_code": county_code} for r in rows],
    )


def current_post(session: Session, *, node_id: int, role: str, person_id: int | None = None) -> RowMapping | None:
    sql = "SELECT id, person_id, started_at FROM post WHERE node_id = :node_id AND role = :role AND ended_at IS NULL"
    params: dict[str, Any] = {"node_id": node_id, "role": role}
    if person_id is not None:
        sql += " AND person_id = :person_id"
        params["person_id"] = person_id
    return session.execute(text(sql + " ORDER BY started_at LIMIT 1"), params).mappings().first()


def end_post(session: Session, *, post_id: int, at: datetime) -> None:
    session.execute(text("UPDATE post SET ended_at = :at WHERE id = :id"), {"id": post_id, "at": at})


def start_post(
    session: Session, *, county_code: str, node_id: int, person_id: int, role: str, at: datetime
) -> int:
    return session.execute(
        text(
            """
INSERT INTO post (county_code, node_id, person_id, role, started_at)
VALUES (:cc, :node_id, :person_id, :role, :at) RETURNING id
"""
        ),
        {"cc": county_code, "node_id": node_id, "person_id": person_id, "role": role, "at": at},
    ).scalar_one()


# How a subtree's geometry leaves the database: GeoJSON text at full precision for
# GeoJSON files, WKB (exact doubles) for binary formats. A floor shows its unit's footprint.
_SUBTREE_GEOMETRY = {
    "geometry": "ST_AsGeoJSON(COALESCE(n.geom, p.geom), 15)",
    "wkb": "ST_AsBinary(COALESCE(n.geom, p.geom))",
}


def _subtree(session: Session, *, code: str, geometry_as: str) -> Iterable[RowMapping]:
    """Every live node under `code` (itself included), parents first."""
    return (
        session.execute(
            text(
                f"""
SELECT {NODE_COLUMNS}, {_SUBTREE_GEOMETRY[geometry_as]} AS {geometry_as}
  FROM node root
  JOIN node n ON n.path <@ root.path
  LEFT JOIN node p ON p.id = n.parent_id
 WHERE root.code = :code AND n.retired_at IS NULL
 ORDER BY n.depth, n.code
"""
            ),
            {"code": code},
        )
        .mappings()
        .yield_per(2000)
    )


def subtree_features(session: Session, *, code: str) -> Iterable[RowMapping]:
    """The subtree with each geometry as GeoJSON text (column `geometry`)."""
    return _subtree(session, code=code, geometry_as="geometry")


def subtree_wkb(session: Session, *, code: str) -> Iterable[RowMapping]:
    """The subtree with each geometry as WKB (column `wkb`), for binary formats."""
    return _subtree(session, code=code, geometry_as="wkb")


_CHAIN_OF_NODE_SQL = text(
    """
WITH members AS (
  SELECT a.id, false AS is_floor
    FROM node d JOIN node a ON a.id = ANY (string_to_array(ltree2text(d.path), '.')::bigint[])
   WHERE d.id = :node_id
)
SELECT n.id, n.code, n.name, n.level, n.chain, n.depth, n.floor_from, n.floor_to, m.is_floor,
       po.role, po.person_id, pe.name AS person_name, pe.phone
  FROM members m
  JOIN node n ON n.id = m.id
  LEFT JOIN post po ON po.node_id = n.id AND po.ended_at IS NULL
  LEFT JOIN person pe ON pe.id = po.person_id
 ORDER BY n.depth DESC, n.code, po.role, po.started_at
"""
)


def chain_of_node(session: Session, *, node_id: int) -> Sequence[RowMapping]:
    """The same rows as `locate_rows`, for a known node: itself and its ancestors."""
    return session.execute(_CHAIN_OF_NODE_SQL, {"node_id": node_id}).mappings().all()


def deepest_current_post_node(session: Session, *, person_id: int) -> int | None:
    """The deepest node the person currently holds a post on (their own place in the grid)."""
    return session.execute(
        text(
            """
SELECT n.id FROM post po JOIN node n ON n.id = po.node_id
 WHERE po.person_id = :pid AND po.ended_at IS NULL AND n.retired_at IS NULL
 ORDER BY n.depth DESC, n.code LIMIT 1
"""
        ),
        {"pid": person_id},
    ).scalar()


# --- Boundary import and checks ---------------------------------------------------
# A file (or a stored subtree, for `grid check`) is staged in the temporary table
# `import_node`, and every check is one set-based statement over it: pairs are found
# with && on a GiST index, never by looping over pairs in Python. Distances and areas
# are in metres (geography), computed only for the few rows a cheap test flags.

_LEVEL_DEPTH_SQL = """CASE level WHEN 'county' THEN 0 WHEN 'township' THEN 1 WHEN 'area' THEN 2
  WHEN 'community' THEN 3 WHEN 'subarea' THEN 3 WHEN 'grid' THEN 4 WHEN 'village' THEN 4
  WHEN 'unit' THEN 5 WHEN 'group' THEN 5 WHEN 'floor' THEN 6 WHEN 'household' THEN 6 END"""
# The chain a node gets: declared at area level, fixed by the level below it.
_EFFECTIVE_CHAIN_SQL = """CASE WHEN level IN ('county', 'township', 'area') THEN declared_chain
  WHEN level IN ('community', 'grid', 'unit', 'floor') THEN COALESCE(declared_chain, 'urban')
  WHEN level IN ('subarea', 'village', 'group', 'household') THEN COALESCE(declared_chain, 'rural') END"""

_STAGING_DDL = """
DROP TABLE IF EXISTS pg_temp.import_node;
CREATE TEMP TABLE import_node (
  row integer NOT NULL,
  code text, name text, level text, declared_chain text, chain text, parent_code text,
  floor_from integer, floor_to integer,
  wkb bytea, geom geometry,
  depth integer,
  valid boolean,  -- ST_IsValid, computed once
  usable boolean NOT NULL DEFAULT false  -- a valid polygon under a unique code: fit for spatial checks
) ON COMMIT DROP
"""


def stage_create(session: Session) -> None:
    # The planner's cost estimates for geometry functions trip JIT compilation, which
    # doubled the time of the checks; this transaction does without it.
    session.execute(text("SET LOCAL jit = off"))
    for statement in _STAGING_DDL.split(";"):
        if statement.strip():
            session.execute(text(statement))


def stage_copy(session: Session, *, rows: Iterable[tuple[Any, ...]]) -> None:
    """(row, code, name, level, chain, parent_code, floor_from, floor_to, wkb) tuples, by COPY."""
    raw = session.connection().connection.dbapi_connection
    with raw.cursor() as cur:
        with cur.copy(
            "COPY import_node (row, code, name, level, declared_chain, parent_code, floor_from, floor_to, wkb)"
            " FROM STDIN"
        ) as copy:
            for r in rows:
                copy.write_row(r)


def stage_from_stored(session: Session, *, code: str | None) -> int:
    """Stage the live nodes under `code` (all of them when None) for `grid check`."""
    where = "n.retired_at IS NULL" + ("" if code is None else " AND n.path <@ (SELECT path FROM node WHERE code = :code)")
    return session.execute(
        text(
            f"""
INSERT INTO import_node (row, code, name, level, declared_chain, parent_code, floor_from, floor_to, geom)
SELECT row_number() OVER (ORDER BY n.depth, n.code), n.code, n.name, n.level, n.chain, p.code,
       n.floor_from, n.floor_to, n.geom
  FROM node n LEFT JOIN node p ON p.id = n.parent_id
 WHERE {where}
"""
        ),
        {"code": code},
    ).rowcount


def stage_prepare(session: Session) -> None:
    """Geometry from WKB (floors have none of their own), chain, depth; then index."""
    session.execute(
        text(
            f"""
UPDATE import_node SET
  geom = CASE WHEN level = 'floor' THEN NULL
              WHEN wkb IS NOT NULL THEN ST_Force2D(ST_SetSRID(ST_GeomFromWKB(wkb), 4326))
              ELSE geom END,
  wkb = NULL,
  chain = {_EFFECTIVE_CHAIN_SQL},
  depth = {_LEVEL_DEPTH_SQL}
"""
        )
    )
    session.execute(text("CREATE INDEX ON import_node (code)"))
    session.execute(text("CREATE INDEX ON import_node (parent_code)"))
    session.execute(text("ANALYZE import_node"))


def check_fields(session: Session, *, level_codes: Sequence[str]) -> Sequence[RowMapping]:
    """Rows without code or level, unknown levels, duplicate codes, wrong floor ranges, non-polygons."""
    return (
        session.execute(
            text(
                """
SELECT 'missing_field' AS check, row, code, NULL::int[] AS rows,
       CASE WHEN code IS NULL THEN 'code' ELSE 'level' END AS what
  FROM import_node WHERE code IS NULL OR level IS NULL
UNION ALL
SELECT 'unknown_level', row, code, NULL, level FROM import_node WHERE level <> ALL (:levels)
UNION ALL
SELECT 'code_too_long', row, code, NULL, length(code)::text FROM import_node WHERE length(code) > 64
UNION ALL
SELECT 'duplicate_code', min(row), code, array_agg(row ORDER BY row), NULL
  FROM import_node WHERE code IS NOT NULL GROUP BY code HAVING count(*) > 1
UNION ALL
SELECT 'floor_range', row, code, NULL,
       CASE WHEN level = 'floor' THEN 'floor' ELSE 'other' END
  FROM import_node
 WHERE (level = 'floor' AND (floor_from IS NULL OR floor_to IS NULL OR floor_from > floor_to))
    OR (level <> 'floor' AND (floor_from IS NOT NULL OR floor_to IS NOT NULL))
UNION ALL
SELECT 'geometry_type', row, code, NULL, COALESCE(GeometryType(geom), 'nothing')
  FROM import_node
 WHERE level <> 'floor' AND level = ANY (:levels)
   AND (geom IS NULL OR ST_IsEmpty(geom) OR GeometryType(geom) NOT IN ('POLYGON', 'MULTIPOLYGON'))
ORDER BY 2
"""
            ),
            {"levels": list(level_codes)},
        )
        .mappings()
        .all()
    )


def check_validity(session: Session) -> Sequence[RowMapping]:
    """Invalid polygons, with ST_IsValidReason and where."""
    session.execute(
        text(
            """
UPDATE import_node SET valid = ST_IsValid(geom)
 WHERE GeometryType(geom) IN ('POLYGON', 'MULTIPOLYGON') AND NOT ST_IsEmpty(geom)
"""
        )
    )
    return (
        session.execute(
            text(
                """
SELECT row, code, ST_IsValidReason(geom) AS reason,
       ST_X((ST_IsValidDetail(geom)).location) AS lon, ST_Y((ST_IsValidDetail(geom)).location) AS lat,
       ST_NPoints(geom) AS points_before
  FROM import_node WHERE NOT valid
 ORDER BY row
"""
            )
        )
        .mappings()
        .all()
    )


def make_valid(session: Session, *, rows: Sequence[int]) -> Sequence[RowMapping]:
    """Repair the given staged rows with ST_MakeValid (polygonal part only); what came of each."""
    return (
        session.execute(
            text(
                """
WITH fixed AS (
  UPDATE import_node
     SET geom = ST_Multi(ST_CollectionExtract(ST_MakeValid(geom), 3)), valid = true
   WHERE row = ANY (:rows)
  RETURNING row, geom
)
SELECT row, ST_Area(geom::geography) AS area_m2, ST_NPoints(geom) AS points_after,
       ST_NumGeometries(geom) AS parts_after, ST_IsEmpty(geom) AS empty_after
  FROM fixed ORDER BY row
"""
            ),
            {"rows": list(rows)},
        )
        .mappings()
        .all()
    )


def stage_points(session: Session, *, rows: Sequence[int]) -> dict[int, tuple[float, float]]:
    """A point for each staged row with a geometry: the centre of its bounding box
    (safe on any geometry, valid or not)."""
    result = session.execute(
        text(
            """
SELECT row, ST_X(c) AS lon, ST_Y(c) AS lat
  FROM (SELECT row, ST_Centroid(ST_Envelope(geom)) AS c FROM import_node
         WHERE row = ANY (:rows) AND geom IS NOT NULL AND NOT ST_IsEmpty(geom)) x
"""
        ),
        {"rows": list(rows)},
    )
    return {r.row: (r.lon, r.lat) for r in result}


def stage_mark_usable(session: Session) -> None:
    session.execute(
        text(
            """
UPDATE import_node s SET usable = true
 WHERE s.code IS NOT NULL AND s.geom IS NOT NULL AND NOT ST_IsEmpty(s.geom)
   AND GeometryType(s.geom) IN ('POLYGON', 'MULTIPOLYGON') AND s.valid
   AND s.code <> ALL (ARRAY(SELECT code FROM import_node WHERE code IS NOT NULL GROUP BY code HAVING count(*) > 1))
"""
        )
    )
    session.execute(text("CREATE INDEX ON import_node USING gist (geom) WHERE usable"))
    session.execute(text("ANALYZE import_node"))


def check_hierarchy(session: Session) -> Sequence[RowMapping]:
    """Unknown parents, and children whose level or chain does not fit their parent.

    A parent is looked up in the file first, then among the live stored nodes.
    """
    return (
        session.execute(
            text(
                """
WITH in_file AS (
  SELECT DISTINCT ON (code) code, level, chain FROM import_node WHERE code IS NOT NULL ORDER BY code, row
), resolved AS (
  SELECT s.row, s.code, s.level, s.declared_chain, s.chain, s.parent_code,
         COALESCE(pf.level, pn.level) AS parent_level, COALESCE(pf.chain, pn.chain) AS parent_chain,
         (pf.code IS NOT NULL OR pn.code IS NOT NULL) AS parent_found
    FROM import_node s
    LEFT JOIN in_file pf ON pf.code = s.parent_code
    LEFT JOIN node pn ON pn.code = s.parent_code AND pn.retired_at IS NULL
   WHERE s.code IS NOT NULL AND s.level IS NOT NULL
)
SELECT 'unknown_parent' AS check, row, code, level, declared_chain, parent_code, NULL AS parent_level,
       NULL AS parent_chain
  FROM resolved WHERE parent_code IS NOT NULL AND NOT parent_found
UNION ALL
SELECT 'hierarchy', row, code, level, declared_chain, parent_code, parent_level, parent_chain
  FROM resolved
 WHERE (parent_code IS NULL OR parent_found)
   AND NOT COALESCE(node_level_allowed(parent_level, parent_chain, level, chain), false)
 ORDER BY 2
"""
            )
        )
        .mappings()
        .all()
    )


def check_outside_parent(session: Session, *, tolerance_m: float) -> Sequence[RowMapping]:
    """Children not covered by their parent, with how far they stick out (m) and where.

    ST_Covers is the cheap filter; only the children it rejects are measured: the
    farthest vertex of the part outside the parent, in metres.
    """
    return (
        session.execute(
            text(
                """
WITH pairs AS (
  SELECT c.row, c.code, c.parent_code, c.geom AS child, COALESCE(ps.geom, pn.geom) AS parent
    FROM import_node c
    LEFT JOIN import_node ps ON ps.code = c.parent_code AND ps.usable
    LEFT JOIN node pn ON pn.code = c.parent_code AND ps.code IS NULL AND pn.retired_at IS NULL
   WHERE c.usable AND c.parent_code IS NOT NULL
), outside AS (
  SELECT row, code, parent_code, parent, ST_Difference(child, parent) AS part
    FROM pairs
   WHERE parent IS NOT NULL AND NOT ST_Covers(parent, child)
), far AS (
  SELECT o.row, o.code, o.parent_code, ST_Area(o.part::geography) AS area_m2, v.geom AS vertex,
         ST_Distance(v.geom::geography, ST_ClosestPoint(o.parent, v.geom)::geography) AS dist_m
    FROM outside o, LATERAL (SELECT d.geom FROM ST_DumpPoints(o.part) d
                              ORDER BY ST_Distance(d.geom, o.parent) DESC LIMIT 1) v
   WHERE NOT ST_IsEmpty(o.part)
)
SELECT row, code, parent_code, area_m2, dist_m, ST_X(vertex) AS lon, ST_Y(vertex) AS lat
  FROM far WHERE dist_m > :tol ORDER BY row
"""
            ),
            {"tol": tolerance_m},
        )
        .mappings()
        .all()
    )


_THICKNESS_SQL = """(SELECT ST_Distance(m.center::geography, m.nearest::geography) * 2
                      FROM ST_MaximumInscribedCircle({g}) m)"""


def check_sibling_overlap(session: Session, *, tolerance_m: float) -> Sequence[RowMapping]:
    """Pairs of siblings whose interiors overlap by more than the tolerance.

    Siblings are the file's nodes with the same parent, and the stored live children
    of that parent that the file does not mention. An overlap counts when its
    thickness (the diameter of the largest circle inside it) exceeds the tolerance,
    so that digitising noise along a shared edge does not.
    """
    return (
        session.execute(
            text(
                f"""
WITH sib AS (
  SELECT row, code, parent_code, geom FROM import_node WHERE usable AND parent_code IS NOT NULL
  UNION ALL
  SELECT NULL, n.code, p.code, n.geom
    FROM node p JOIN node n ON n.parent_id = p.id
   WHERE p.code IN (SELECT parent_code FROM import_node WHERE usable)
     AND n.retired_at IS NULL AND n.geom IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM import_node s WHERE s.code = n.code)
), pairs AS (
  SELECT a.row AS row_a, a.code AS code_a, b.row AS row_b, b.code AS code_b, a.parent_code,
         ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS part
    FROM sib a JOIN sib b
      ON a.parent_code = b.parent_code AND a.code < b.code AND a.geom && b.geom
   WHERE (a.row IS NOT NULL OR b.row IS NOT NULL) AND ST_Relate(a.geom, b.geom, '2********')
), measured AS (
  SELECT *, ST_Area(part::geography) AS area_m2, {_THICKNESS_SQL.format(g="part")} AS thickness_m,
         ST_PointOnSurface(part) AS spot
    FROM pairs WHERE NOT ST_IsEmpty(part)
)
SELECT row_a, code_a, row_b, code_b, parent_code, area_m2, thickness_m, ST_X(spot) AS lon, ST_Y(spot) AS lat
  FROM measured WHERE thickness_m > :tol
 ORDER BY code_a, code_b
"""
            ),
            {"tol": tolerance_m},
        )
        .mappings()
        .all()
    )


def check_gaps(session: Session, *, tolerance_m: float, also: Sequence[str] = ()) -> Sequence[RowMapping]:
    """Parents in the file whose children in the file leave part of them uncovered.

    The sum of child areas is the cheap filter (with the parents in `also`, whose
    children overlap, so an overlap cannot hide a gap of the same area); the union is
    built only for parents it flags, and a gap counts when it is thicker than the tolerance.
    """
    return (
        session.execute(
            text(
                f"""
WITH sums AS (
  SELECT parent_code, sum(ST_Area(geom)) AS child_area FROM import_node WHERE usable GROUP BY parent_code
), candidates AS MATERIALIZED (  -- materialised: else the planner builds every parent's union first
  SELECT p.row, p.code, p.geom FROM import_node p JOIN sums s ON s.parent_code = p.code
   WHERE p.usable AND (s.child_area < ST_Area(p.geom) * (1 - 1e-9) OR p.code = ANY (:also))
), unions AS (
  SELECT parent_code, ST_Union(geom) AS children FROM import_node
   WHERE usable AND parent_code IN (SELECT code FROM candidates) GROUP BY parent_code
), flagged AS MATERIALIZED (
  SELECT k.row, k.code, k.geom, ST_CollectionExtract(ST_Difference(k.geom, u.children), 3) AS gap
    FROM candidates k JOIN unions u ON u.parent_code = k.code
), measured AS (
  SELECT row, code, ST_Area(gap::geography) / NULLIF(ST_Area(geom::geography), 0) AS share,
         ST_Area(gap::geography) AS area_m2, {_THICKNESS_SQL.format(g="gap")} AS thickness_m,
         (SELECT m.center FROM ST_MaximumInscribedCircle(gap) m) AS spot
    FROM flagged WHERE NOT ST_IsEmpty(gap)
)
SELECT row, code, share, area_m2, thickness_m, ST_X(spot) AS lon, ST_Y(spot) AS lat
  FROM measured WHERE thickness_m > :tol ORDER BY row
"""
            ),
            {"tol": tolerance_m, "also": list(also)},
        )
        .mappings()
        .all()
    )


def missing_from_stage(session: Session) -> Sequence[RowMapping]:
    """Live stored nodes under the file's roots (nodes whose parent is not in the file)
    that the file does not mention: a re-import of a subtree has dropped them."""
    return (
        session.execute(
            text(
                """
WITH roots AS (
  SELECT n.path FROM import_node s JOIN node n ON n.code = s.code
   WHERE NOT EXISTS (SELECT 1 FROM import_node p WHERE p.code = s.parent_code)
)
SELECT DISTINCT n.id, n.code, n.level, ST_X(ST_PointOnSurface(n.geom)) AS lon, ST_Y(ST_PointOnSurface(n.geom)) AS lat
  FROM roots r JOIN node n ON n.path <@ r.path
 WHERE n.retired_at IS NULL AND NOT EXISTS (SELECT 1 FROM import_node s WHERE s.code = n.code)
 ORDER BY n.code
"""
            )
        )
        .mappings()
        .all()
    )


def upsert_from_stage(session: Session, *, county_code: str) -> tuple[int, int]:
    """Insert new codes and update changed ones, parents first; (inserted, updated).

    A row is updated only when something differs (geometry compared byte for byte),
    so re-importing the same file touches nothing. A re-imported node is live again.
    """
    inserted = updated = 0
    for depth in range(7):
        rows = session.execute(
            text(
                """
INSERT INTO node AS n (county_code, code, name, level, chain, parent_id, geom, floor_from, floor_to)
SELECT CASE WHEN s.level = 'county' THEN s.code ELSE COALESCE(p.county_code, :cc) END,
       s.code, COALESCE(s.name, s.code), s.level, s.chain, p.id, ST_Multi(s.geom), s.floor_from, s.floor_to
  FROM import_node s LEFT JOIN node p ON p.code = s.parent_code
 WHERE s.depth = :depth
 ORDER BY s.code
ON CONFLICT (code) DO UPDATE SET
  name = EXCLUDED.name, level = EXCLUDED.level, chain = EXCLUDED.chain, parent_id = EXCLUDED.parent_id,
  geom = EXCLUDED.geom, floor_from = EXCLUDED.floor_from, floor_to = EXCLUDED.floor_to,
  retired_at = NULL, updated_at = now()
 WHERE (n.name, n.level, n.chain, n.parent_id, n.floor_from, n.floor_to, ST_AsBinary(n.geom), n.retired_at IS NULL)
       IS DISTINCT FROM
       (EXCLUDED.name, EXCLUDED.level, EXCLUDED.chain, EXCLUDED.parent_id, EXCLUDED.floor_from,
        EXCLUDED.floor_to, ST_AsBinary(EXCLUDED.geom), true)
RETURNING (xmax = 0) AS inserted
"""
            ),
            {"depth": depth, "cc": county_code},
        ).scalars().all()
        inserted += sum(1 for r in rows if r)
        updated += sum(1 for r in rows if not r)
    return inserted, updated


def retire_nodes(session: Session, *, ids: Sequence[int]) -> int:
    """Retire, never delete: posts and cases keep pointing at the node."""
    return session.execute(
        text("UPDATE node SET retired_at = now(), updated_at = now() WHERE id = ANY (:ids) AND retired_at IS NULL"),
        {"ids": list(ids)},
    ).rowcount


def live_node_codes(session: Session, *, codes: Sequence[str]) -> set[str]:
    """Which of `codes` name live (not retired) nodes."""
    if not codes:
        return set()
    rows = session.execute(
        text("SELECT code FROM node WHERE code = ANY (:codes) AND retired_at IS NULL"), {"codes": list(codes)}
    )
    return set(rows.scalars())


def person_by_phone(session: Session, *, phone: str) -> int | None:
    return session.execute(text("SELECT id FROM person WHERE phone = :phone"), {"phone": phone}).scalar()


def current_posts_by_code(session: Session, *, codes: Sequence[str]) -> Sequence[RowMapping]:
    """Current posts on the nodes with these codes: node_code, role, phone."""
    return (
        session.execute(
            text(
                """
SELECT n.code AS node_code, po.role, pe.phone
  FROM node n JOIN post po ON po.node_id = n.id AND po.ended_at IS NULL JOIN person pe ON pe.id = po.person_id
 WHERE n.code = ANY (:codes)
"""
            ),
            {"codes": list(codes)},
        )
        .mappings()
        .all()
    )


def subtree_current_posts(session: Session, *, code: str) -> Sequence[RowMapping]:
    """Current posts on the live nodes under `code`: node_code, role, name, phone, started_at."""
    return (
        session.execute(
            text(
                """
SELECT n.code AS node_code, po.role, pe.name, pe.phone, po.started_at
  FROM node root
  JOIN node n ON n.path <@ root.path AND n.retired_at IS NULL
  JOIN post po ON po.node_id = n.id AND po.ended_at IS NULL
  JOIN person pe ON pe.id = po.person_id
 WHERE root.code = :code
 ORDER BY n.depth, n.code, po.role, po.started_at
"""
            ),
            {"code": code},
        )
        .mappings()
        .all()
    )
