"""Boundary import: the staging table, its checks, and the upsert from it.

A file (or a stored subtree, for `grid check`) is staged in the temporary table
`import_node`, and every check is one set-based statement over it: pairs are found
with && on a GiST index, never by looping over pairs in Python. Distances and areas
are in metres (geography), computed only for the few rows a cheap test flags.
The staging table lives until the transaction ends: run all of this inside one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from grid.db import Conn, Row, execute, fetch_all

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


async def stage_create(conn: Conn) -> None:
    # The planner's cost estimates for geometry functions trip JIT compilation, which
    # doubled the time of the checks; this transaction does without it.
    await execute(conn, "SET LOCAL jit = off")
    for statement in _STAGING_DDL.split(";"):
        if statement.strip():
            await execute(conn, statement)


async def stage_copy(conn: Conn, *, rows: Iterable[tuple[Any, ...]]) -> None:
    """(row, code, name, level, chain, parent_code, floor_from, floor_to, wkb) tuples, by COPY."""
    async with (
        conn.cursor() as cur,
        cur.copy(
            "COPY import_node (row, code, name, level, declared_chain, parent_code, floor_from, floor_to, wkb)"
            " FROM STDIN"
        ) as copy,
    ):
        for r in rows:
            await copy.write_row(r)


async def stage_from_stored(conn: Conn, *, code: str | None) -> int:
    """Stage the live nodes under `code` (all of them when None) for `grid check`."""
    where = "n.retired_at IS NULL" + (
        "" if code is None else " AND n.path <@ (SELECT path FROM node WHERE code = %(code)s)"
    )
    return await execute(
        conn,
        f"""
INSERT INTO import_node (row, code, name, level, declared_chain, parent_code, floor_from, floor_to, geom)
SELECT row_number() OVER (ORDER BY n.depth, n.code), n.code, n.name, n.level, n.chain, p.code,
       n.floor_from, n.floor_to, n.geom
  FROM node n LEFT JOIN node p ON p.id = n.parent_id
 WHERE {where}
""",
        {"code": code},
    )


async def stage_prepare(conn: Conn) -> None:
    """Geometry from WKB (floors have none of their own), chain, depth; then index."""
    await execute(
        conn,
        f"""
UPDATE import_node SET
  geom = CASE WHEN level = 'floor' THEN NULL
              WHEN wkb IS NOT NULL THEN ST_Force2D(ST_SetSRID(ST_GeomFromWKB(wkb), 4326))
              ELSE geom END,
  wkb = NULL,
  chain = {_EFFECTIVE_CHAIN_SQL},
  depth = {_LEVEL_DEPTH_SQL}
""",
    )
    await execute(conn, "CREATE INDEX ON import_node (code)")
    await execute(conn, "CREATE INDEX ON import_node (parent_code)")
    await execute(conn, "ANALYZE import_node")


async def check_fields(conn: Conn, *, level_codes: Sequence[str]) -> list[Row]:
    """Rows without code or level, unknown levels, duplicate codes, wrong floor ranges, non-polygons."""
    return await fetch_all(
        conn,
        """
SELECT 'missing_field' AS check, row, code, NULL::int[] AS rows,
       CASE WHEN code IS NULL THEN 'code' ELSE 'level' END AS what
  FROM import_node WHERE code IS NULL OR level IS NULL
UNION ALL
SELECT 'unknown_level', row, code, NULL, level FROM import_node WHERE level <> ALL (%(levels)s)
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
 WHERE level <> 'floor' AND level = ANY (%(levels)s)
   AND (geom IS NULL OR ST_IsEmpty(geom) OR GeometryType(geom) NOT IN ('POLYGON', 'MULTIPOLYGON'))
ORDER BY 2
""",
        {"levels": list(level_codes)},
    )


async def check_validity(conn: Conn) -> list[Row]:
    """Invalid polygons, with ST_IsValidReason and where."""
    await execute(
        conn,
        """
UPDATE import_node SET valid = ST_IsValid(geom)
 WHERE GeometryType(geom) IN ('POLYGON', 'MULTIPOLYGON') AND NOT ST_IsEmpty(geom)
""",
    )
    return await fetch_all(
        conn,
        """
SELECT row, code, ST_IsValidReason(geom) AS reason,
       ST_X((ST_IsValidDetail(geom)).location) AS lon, ST_Y((ST_IsValidDetail(geom)).location) AS lat,
       ST_NPoints(geom) AS points_before
  FROM import_node WHERE NOT valid
 ORDER BY row
""",
    )


async def make_valid(conn: Conn, *, rows: Sequence[int]) -> list[Row]:
    """Repair the given staged rows with ST_MakeValid (polygonal part only); what came of each."""
    return await fetch_all(
        conn,
        """
WITH fixed AS (
  UPDATE import_node
     SET geom = ST_Multi(ST_CollectionExtract(ST_MakeValid(geom), 3)), valid = true
   WHERE row = ANY (%(rows)s)
  RETURNING row, geom
)
SELECT row, ST_Area(geom::geography) AS area_m2, ST_NPoints(geom) AS points_after,
       ST_NumGeometries(geom) AS parts_after, ST_IsEmpty(geom) AS empty_after
  FROM fixed ORDER BY row
""",
        {"rows": list(rows)},
    )


async def stage_points(conn: Conn, *, rows: Sequence[int]) -> dict[int, tuple[float, float]]:
    """A point for each staged row with a geometry: the centre of its bounding box
    (safe on any geometry, valid or not)."""
    result = await fetch_all(
        conn,
        """
SELECT row, ST_X(c) AS lon, ST_Y(c) AS lat
  FROM (SELECT row, ST_Centroid(ST_Envelope(geom)) AS c FROM import_node
         WHERE row = ANY (%(rows)s) AND geom IS NOT NULL AND NOT ST_IsEmpty(geom)) x
""",
        {"rows": list(rows)},
    )
    return {r["row"]: (r["lon"], r["lat"]) for r in result}


async def stage_mark_usable(conn: Conn) -> None:
    await execute(
        conn,
        """
UPDATE import_node s SET usable = true
 WHERE s.code IS NOT NULL AND s.geom IS NOT NULL AND NOT ST_IsEmpty(s.geom)
   AND GeometryType(s.geom) IN ('POLYGON', 'MULTIPOLYGON') AND s.valid
   AND s.code <> ALL (ARRAY(SELECT code FROM import_node WHERE code IS NOT NULL GROUP BY code HAVING count(*) > 1))
""",
    )
    await execute(conn, "CREATE INDEX ON import_node USING gist (geom) WHERE usable")
    await execute(conn, "ANALYZE import_node")


async def check_hierarchy(conn: Conn) -> list[Row]:
    """Unknown parents, and children whose level or chain does not fit their parent.

    A parent is looked up in the file first, then among the live stored nodes.
    """
    return await fetch_all(
        conn,
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
""",
    )


async def check_outside_parent(conn: Conn, *, tolerance_m: float) -> list[Row]:
    """Children not covered by their parent, with how far they stick out (m) and where.

    ST_Covers is the cheap filter; only the children it rejects are measured: the
    farthest vertex of the part outside the parent, in metres.
    """
    return await fetch_all(
        conn,
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
  FROM far WHERE dist_m > %(tol)s ORDER BY row
""",
        {"tol": tolerance_m},
    )


_THICKNESS_SQL = """(SELECT ST_Distance(m.center::geography, m.nearest::geography) * 2
                      FROM ST_MaximumInscribedCircle({g}) m)"""


async def check_sibling_overlap(conn: Conn, *, tolerance_m: float) -> list[Row]:
    """Pairs of siblings whose interiors overlap by more than the tolerance.

    Siblings are the file's nodes with the same parent, and the stored live children
    of that parent that the file does not mention. An overlap counts when its
    thickness (the diameter of the largest circle inside it) exceeds the tolerance,
    so that digitising noise along a shared edge does not.
    """
    return await fetch_all(
        conn,
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
  FROM measured WHERE thickness_m > %(tol)s
 ORDER BY code_a, code_b
""",
        {"tol": tolerance_m},
    )


async def check_gaps(conn: Conn, *, tolerance_m: float, also: Sequence[str] = ()) -> list[Row]:
    """Parents in the file whose children in the file leave part of them uncovered.

    The sum of child areas is the cheap filter (with the parents in `also`, whose
    children overlap, so an overlap cannot hide a gap of the same area); the union is
    built only for parents it flags, and a gap counts when it is thicker than the tolerance.
    """
    return await fetch_all(
        conn,
        f"""
WITH sums AS (
  SELECT parent_code, sum(ST_Area(geom)) AS child_area FROM import_node WHERE usable GROUP BY parent_code
), candidates AS MATERIALIZED (  -- materialised: else the planner builds every parent's union first
  SELECT p.row, p.code, p.geom FROM import_node p JOIN sums s ON s.parent_code = p.code
   WHERE p.usable AND (s.child_area < ST_Area(p.geom) * (1 - 1e-9) OR p.code = ANY (%(also)s))
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
  FROM measured WHERE thickness_m > %(tol)s ORDER BY row
""",
        {"tol": tolerance_m, "also": list(also)},
    )


async def missing_from_stage(conn: Conn) -> list[Row]:
    """Live stored nodes under the file's roots (nodes whose parent is not in the file)
    that the file does not mention: a re-import of a subtree has dropped them."""
    return await fetch_all(
        conn,
        """
WITH roots AS (
  SELECT n.path FROM import_node s JOIN node n ON n.code = s.code
   WHERE NOT EXISTS (SELECT 1 FROM import_node p WHERE p.code = s.parent_code)
)
SELECT DISTINCT n.id, n.code, n.level, ST_X(ST_PointOnSurface(n.geom)) AS lon, ST_Y(ST_PointOnSurface(n.geom)) AS lat
  FROM roots r JOIN node n ON n.path <@ r.path
 WHERE n.retired_at IS NULL AND NOT EXISTS (SELECT 1 FROM import_node s WHERE s.code = n.code)
 ORDER BY n.code
""",
    )


async def check_county(conn: Conn, *, county_code: str) -> list[Row]:
    """Staged rows that touch another county: a stored node of that code, or the parent
    named, is another county's. (A new county's own rows touch none: the CLI adds counties
    so, docs/counties.md.)"""
    return await fetch_all(
        conn,
        """
SELECT s.row, s.code, COALESCE(n.county_code, p.county_code) AS other
  FROM import_node s
  LEFT JOIN node n ON n.code = s.code AND n.county_code <> %(cc)s
  LEFT JOIN node p ON p.code = s.parent_code AND p.county_code <> %(cc)s
 WHERE n.id IS NOT NULL OR p.id IS NOT NULL
 ORDER BY s.row
""",
        {"cc": county_code},
    )


async def upsert_from_stage(conn: Conn, *, county_code: str) -> tuple[int, int]:
    """Insert new codes and update changed ones, parents first; (inserted, updated).

    A row is updated only when something differs (geometry compared byte for byte),
    so re-importing the same file touches nothing. A re-imported node is live again.
    """
    inserted = updated = 0
    for depth in range(7):
        rows = await fetch_all(
            conn,
            """
INSERT INTO node AS n (county_code, code, name, level, chain, parent_id, geom, floor_from, floor_to)
SELECT CASE WHEN s.level = 'county' THEN s.code ELSE COALESCE(p.county_code, %(cc)s) END,
       s.code, COALESCE(s.name, s.code), s.level, s.chain, p.id, ST_Multi(s.geom), s.floor_from, s.floor_to
  FROM import_node s LEFT JOIN node p ON p.code = s.parent_code
 WHERE s.depth = %(depth)s
 ORDER BY s.code
ON CONFLICT (code, county_code) DO UPDATE SET
  name = EXCLUDED.name, level = EXCLUDED.level, chain = EXCLUDED.chain, parent_id = EXCLUDED.parent_id,
  geom = EXCLUDED.geom, floor_from = EXCLUDED.floor_from, floor_to = EXCLUDED.floor_to,
  retired_at = NULL, updated_at = now()
 WHERE (n.name, n.level, n.chain, n.parent_id, n.floor_from, n.floor_to, ST_AsBinary(n.geom), n.retired_at IS NULL)
       IS DISTINCT FROM
       (EXCLUDED.name, EXCLUDED.level, EXCLUDED.chain, EXCLUDED.parent_id, EXCLUDED.floor_from,
        EXCLUDED.floor_to, ST_AsBinary(EXCLUDED.geom), true)
RETURNING (xmax = 0) AS inserted
""",
            {"depth": depth, "cc": county_code},
        )
        inserted += sum(1 for r in rows if r["inserted"])
        updated += sum(1 for r in rows if not r["inserted"])
    return inserted, updated


async def retire_nodes(conn: Conn, *, ids: Sequence[int]) -> int:
    """Retire, never delete: posts and cases keep pointing at the node."""
    return await execute(
        conn,
        "UPDATE node SET retired_at = now(), updated_at = now() WHERE id = ANY (%(ids)s) AND retired_at IS NULL",
        {"ids": list(ids)},
    )
