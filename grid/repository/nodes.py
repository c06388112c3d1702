"""Reading nodes: locate, one node, its children and posts, pages, subtrees; the loader's inserts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from grid.db import Conn, ReadAudit, Row, execute_many, fetch_all, fetch_one, fetch_read, fetch_value

NODE_COLUMNS = """n.id, n.code, n.name, n.level, n.chain, n.depth, n.floor_from, n.floor_to,
                  n.retired_at, p.code AS parent_code"""

# Ids of a node and its ancestors, from the materialised path ('1.12.305').
_LINEAGE_IDS = "string_to_array(ltree2text({path}), '.')::bigint[]"

# The deepest node covering the point (ties on shared edges: the lowest code), its
# ancestors, and with a floor number the floor of that node whose storey range holds it
# (overlaps: the lowest code). Pieces are small (<= 255 vertices), so the county
# outline never costs a full point-in-polygon test. A chief's phone is shown only on
# nodes inside the caller's scope (`scope_ids`: the nodes whose subtrees they may read
# personal data in), and each phone shown is an audit item.
#
# The parameters enter once, through the MATERIALIZED `q`, which the planner cannot see
# into: a plan made for one point is then as good as a plan for any point, so after five
# runs PostgreSQL keeps one generic plan per connection instead of planning every call
# (custom plans spent 1.1 ms planning for 0.5 ms of work).
#
# Only the caller's county answers (`county`): counties never overlap, so a point in
# another county of the deployment finds nothing, as a point outside every county does.
# Each table also names `%(county)s` itself: Citus routes to one shard only when every
# county table's filter is a constant (tests/integration/test_citus_routing.py).
LOCATE_SQL = f"""
WITH q AS MATERIALIZED (
  SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS point, %(floor)s::int AS floor,
         %(scope_ids)s::bigint[] AS scope_ids, %(county)s::text AS county
), hit AS (
  SELECT p.node_id FROM node_piece p, q
   WHERE p.county_code = %(county)s AND ST_Covers(p.geom, q.point)
   ORDER BY p.depth DESC, p.code
   LIMIT 1
), deepest AS (
  SELECT n.id, n.path FROM node n JOIN hit ON n.id = hit.node_id WHERE n.county_code = %(county)s
), floor_choice AS (
  SELECT f.id FROM deepest d JOIN node f ON f.parent_id = d.id CROSS JOIN q
   WHERE f.county_code = %(county)s AND f.level = 'floor' AND f.retired_at IS NULL
     AND f.floor_from <= q.floor AND q.floor <= f.floor_to
   ORDER BY f.code
   LIMIT 1
), members AS (
  SELECT a.id, false AS is_floor
    FROM deepest d JOIN node a ON a.id = ANY ({_LINEAGE_IDS.format(path="d.path")}) AND a.county_code = %(county)s
  UNION ALL
  SELECT id, true FROM floor_choice
), located AS (
  SELECT n.code FROM node n
   WHERE n.county_code = %(county)s AND n.id = COALESCE((SELECT id FROM floor_choice), (SELECT id FROM deepest))
)
SELECT n.id, n.code, n.name, n.level, n.chain, n.depth, n.floor_from, n.floor_to, m.is_floor,
       po.role, po.person_id, pe.name AS person_name, s.visible,
       CASE WHEN s.visible THEN pe.phone END AS phone,
       CASE WHEN q.floor IS NOT NULL AND n.id = (SELECT id FROM deepest) THEN
         (SELECT array_agg(f.floor_from || '-' || f.floor_to ORDER BY f.floor_from, f.code)
            FROM node f WHERE f.parent_id = n.id AND f.county_code = %(county)s AND f.level = 'floor' AND f.retired_at IS NULL)
       END AS floor_ranges,
       'node:' || (SELECT code FROM located) AS audit_target,
       CASE WHEN s.visible AND pe.phone IS NOT NULL
            THEN jsonb_build_object('node', n.code, 'person_id', po.person_id) END AS audit_item
  FROM members m
  CROSS JOIN q
  JOIN node n ON n.id = m.id AND n.county_code = %(county)s
  CROSS JOIN LATERAL (SELECT {_LINEAGE_IDS.format(path="n.path")} && q.scope_ids AS visible) s
  LEFT JOIN post po ON po.node_id = n.id AND po.county_code = %(county)s AND po.ended_at IS NULL
  LEFT JOIN person pe ON pe.id = po.person_id AND pe.county_code = %(county)s
 ORDER BY n.depth DESC, n.code, po.role, po.started_at
"""


def locate_params(
    *, lon: float, lat: float, floor: int | None, scope_ids: Sequence[int], county: str
) -> dict[str, Any]:
    return {"lon": lon, "lat": lat, "floor": floor, "scope_ids": list(scope_ids), "county": county}


async def locate_rows(
    conn: Conn, *, lon: float, lat: float, floor: int | None, county: str, scope_ids: Sequence[int] = (),
    audit: ReadAudit | None = None,
) -> list[Row]:  # fmt: skip
    """The chain above the deepest node covering the point, with current posts.

    Rows come deepest first; the floor chosen by `floor` is a row with `is_floor`.
    No rows means no node covers the point.
    """
    params = locate_params(lon=lon, lat=lat, floor=floor, scope_ids=scope_ids, county=county)
    return await fetch_read(conn, LOCATE_SQL, params, audit)


async def county_at(conn: Conn, *, lon: float, lat: float) -> Row | None:
    """The county (code, name of its root) whose outline covers the point, any county of
    the deployment: to tell a point in a neighbouring county from one outside them all."""
    return await fetch_one(
        conn,
        """
SELECT n.county_code, r.name FROM node_piece p JOIN node n ON n.id = p.node_id
  JOIN node r ON r.county_code = n.county_code AND r.parent_id IS NULL
 WHERE ST_Covers(p.geom, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326))
 ORDER BY p.depth LIMIT 1
""",
        {"lon": lon, "lat": lat},
    )


def _in_counties(counties: Sequence[str] | None, alias: str = "n") -> str:
    """The county filter of a node read: a caller reads its counties' nodes only (None: every
    county, for the CLI and the loaders)."""
    return "" if counties is None else f" AND {alias}.county_code = ANY (%(counties)s::text[])"


async def get_node(conn: Conn, *, code: str, counties: Sequence[str] | None = None) -> Row | None:
    # A floor has no footprint of its own: it shows its unit's.
    return await fetch_one(
        conn,
        f"""
SELECT {NODE_COLUMNS}, n.path::text AS path, ST_AsGeoJSON(COALESCE(n.geom, p.geom), 15) AS geometry,
       (SELECT array_agg(a.code ORDER BY a.depth) FROM node a
         WHERE a.id = ANY ({_LINEAGE_IDS.format(path="n.path")})) AS path_codes
  FROM node n LEFT JOIN node p ON p.id = n.parent_id
 WHERE n.code = %(code)s{_in_counties(counties)}
""",
        {"code": code, "counties": None if counties is None else list(counties)},
    )


async def node_brief(conn: Conn, *, code: str, counties: Sequence[str] | None = None) -> Row | None:
    """id, code, name, level, chain and path of a node: enough to check and link to it."""
    return await fetch_one(
        conn,
        "SELECT n.id, n.code, n.name, n.level, n.chain, n.path::text AS path, n.county_code FROM node n"
        f" WHERE n.code = %(code)s{_in_counties(counties)}",
        {"code": code, "counties": None if counties is None else list(counties)},
    )


async def node_id_by_code(conn: Conn, *, code: str) -> int | None:
    value = await fetch_value(conn, "SELECT id FROM node WHERE code = %(code)s", {"code": code})
    return None if value is None else int(value)


async def children(conn: Conn, *, code: str, counties: Sequence[str] | None = None) -> list[Row]:
    return await fetch_all(
        conn,
        f"""
SELECT {NODE_COLUMNS} FROM node n JOIN node p ON p.id = n.parent_id AND p.county_code = n.county_code
 WHERE p.code = %(code)s AND n.retired_at IS NULL{_in_counties(counties)}
 ORDER BY n.code
""",
        {"code": code, "counties": None if counties is None else list(counties)},
    )


async def list_nodes(
    conn: Conn,
    *,
    level: str | None,
    parent_code: str | None,
    bbox: tuple[float, float, float, float] | None,
    after_code: str | None,
    limit: int,
    counties: Sequence[str] | None = None,
) -> list[Row]:
    """A page of nodes in code order (keyset pagination on the unique code)."""
    where = ["n.retired_at IS NULL"]
    params: dict[str, Any] = {"limit": limit}
    if counties is not None:
        where.append("n.county_code = ANY (%(counties)s::text[])")
        params["counties"] = list(counties)
    if level:
        where.append("n.level = %(level)s")
        params["level"] = level
    if parent_code:
        where.append("p.code = %(parent_code)s")
        params["parent_code"] = parent_code
    if bbox:
        where.append("COALESCE(n.geom, p.geom) && ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326)")
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    if after_code:
        where.append("n.code > %(after_code)s")
        params["after_code"] = after_code
    sql = f"""
SELECT {NODE_COLUMNS} FROM node n LEFT JOIN node p ON p.id = n.parent_id
 WHERE {" AND ".join(where)}
 ORDER BY n.code
 LIMIT %(limit)s
"""
    return await fetch_all(conn, sql, params)


# Current posts first, then past ones, newest first. Phones only where the caller's
# scope covers the node; each phone shown is an audit item.
NODE_POSTS_SQL = f"""
SELECT po.id, po.role, po.person_id, pe.name, po.started_at, po.ended_at,
       CASE WHEN s.visible THEN pe.phone END AS phone,
       'node:' || n.code AS audit_target,
       CASE WHEN s.visible AND pe.phone IS NOT NULL
            THEN jsonb_build_object('node', n.code, 'person_id', po.person_id) END AS audit_item
  FROM node n
  CROSS JOIN LATERAL (SELECT {_LINEAGE_IDS.format(path="n.path")} && %(scope_ids)s::bigint[] AS visible) s
  JOIN post po ON po.node_id = n.id
  JOIN person pe ON pe.id = po.person_id
 WHERE n.id = %(node_id)s
 ORDER BY po.ended_at IS NOT NULL, po.ended_at DESC, po.role, po.started_at
"""


async def node_posts(
    conn: Conn, *, node_id: int, scope_ids: Sequence[int] = (), audit: ReadAudit | None = None
) -> list[Row]:
    rows = await fetch_read(conn, NODE_POSTS_SQL, {"node_id": node_id, "scope_ids": list(scope_ids)}, audit)
    # An audited read comes back through a CTE, which keeps no order: sort again.
    rows.sort(key=lambda r: (r["ended_at"] is not None, -(r["ended_at"].timestamp() if r["ended_at"] else 0),
                             r["role"], r["started_at"]))  # fmt: skip
    return rows


async def county_loaded(conn: Conn, *, code: str) -> bool:
    return await fetch_one(conn, "SELECT 1 FROM node WHERE code = %(code)s", {"code": code}) is not None


_CHAIN_OF_NODE_SQL = f"""
SELECT n.id, n.code, n.name, n.level, n.chain, n.depth, n.floor_from, n.floor_to, false AS is_floor,
       po.role, po.person_id, pe.name AS person_name, pe.phone
  FROM node d
  JOIN node n ON n.id = ANY ({_LINEAGE_IDS.format(path="d.path")})
  LEFT JOIN post po ON po.node_id = n.id AND po.ended_at IS NULL
  LEFT JOIN person pe ON pe.id = po.person_id
 WHERE d.id = %(node_id)s
 ORDER BY n.depth DESC, n.code, po.role, po.started_at
"""


async def chain_of_node(conn: Conn, *, node_id: int) -> list[Row]:
    """Rows shaped like `locate_rows`, for a known node: itself and its ancestors."""
    return await fetch_all(conn, _CHAIN_OF_NODE_SQL, {"node_id": node_id})


async def deepest_current_post_node(conn: Conn, *, person_id: int) -> int | None:
    """The deepest node the person currently holds a post on (their own place in the grid)."""
    return await fetch_value(
        conn,
        """
SELECT n.id FROM post po JOIN node n ON n.id = po.node_id
 WHERE po.person_id = %(pid)s AND po.ended_at IS NULL AND n.retired_at IS NULL
 ORDER BY n.depth DESC, n.code LIMIT 1
""",
        {"pid": person_id},
    )


async def first_leaf_lineage(conn: Conn, *, level: str, county_code: str) -> list[Row]:
    """The county's first live node of a level (by code) and its ancestors, deepest first,
    each with its current chief's name and phone (the demo accounts are made from these)."""
    return await fetch_all(
        conn,
        """
WITH leaf AS (SELECT path FROM node WHERE county_code = %(cc)s AND level = %(level)s AND retired_at IS NULL
               ORDER BY code LIMIT 1)
SELECT n.code, n.name, n.level, n.chain, pe.phone, pe.name AS person_name
  FROM leaf JOIN node n ON n.path @> leaf.path
  LEFT JOIN post po ON po.node_id = n.id AND po.role = 'chief' AND po.ended_at IS NULL
  LEFT JOIN person pe ON pe.id = po.person_id
 ORDER BY n.depth DESC
""",
        {"level": level, "cc": county_code},
    )


async def live_node_codes(conn: Conn, *, codes: Sequence[str], county_code: str) -> set[str]:
    """Which of `codes` name live (not retired) nodes of the county."""
    if not codes:
        return set()
    rows = await fetch_all(
        conn,
        "SELECT code FROM node WHERE county_code = %(cc)s AND code = ANY (%(codes)s) AND retired_at IS NULL",
        {"codes": list(codes), "cc": county_code},
    )
    return {r["code"] for r in rows}


# How a subtree's geometry leaves the database: GeoJSON text at full precision for
# GeoJSON files, WKB (exact doubles) for binary formats. A floor shows its unit's footprint.
_SUBTREE_GEOMETRY = {
    "geometry": "ST_AsGeoJSON(COALESCE(n.geom, p.geom), 15)",
    "wkb": "ST_AsBinary(COALESCE(n.geom, p.geom))",
}


async def _subtree(conn: Conn, *, code: str, geometry_as: str) -> AsyncIterator[Row]:
    """Every live node under `code` (itself included), parents first, streamed."""
    query = f"""
SELECT {NODE_COLUMNS}, {_SUBTREE_GEOMETRY[geometry_as]} AS {geometry_as}
  FROM node root
  JOIN node n ON n.path <@ root.path
  LEFT JOIN node p ON p.id = n.parent_id
 WHERE root.code = %(code)s AND n.retired_at IS NULL
 ORDER BY n.depth, n.code
"""
    async with conn.cursor() as cur:
        async for row in cur.stream(query, {"code": code}):
            yield row


def subtree_features(conn: Conn, *, code: str) -> AsyncIterator[Row]:
    """The subtree with each geometry as GeoJSON text (column `geometry`)."""
    return _subtree(conn, code=code, geometry_as="geometry")


def subtree_wkb(conn: Conn, *, code: str) -> AsyncIterator[Row]:
    """The subtree with each geometry as WKB (column `wkb`), for binary formats."""
    return _subtree(conn, code=code, geometry_as="wkb")


# --- the loader's inserts --------------------------------------------------------

# INSERT ... SELECT, not VALUES: Citus takes no subquery in VALUES (docs/scale.md).
_INSERT_NODE = """
INSERT INTO node (county_code, code, name, level, chain, parent_id, geom, floor_from, floor_to)
SELECT %(county_code)s::varchar, %(code)s, %(name)s, %(level)s, %(chain)s,
       (SELECT id FROM node WHERE code = %(parent_code)s AND county_code = %(county_code)s::varchar),
       ST_Multi(ST_GeomFromWKB(%(wkb)s, 4326)), %(floor_from)s, %(floor_to)s
"""


async def insert_node(conn: Conn, *, row: dict[str, Any]) -> int:
    """One node; `row` has code, name, level, chain, parent_code, county_code, wkb, floor_from, floor_to."""
    return int(await fetch_value(conn, _INSERT_NODE + " RETURNING id", row))


async def insert_nodes(conn: Conn, *, rows: Iterable[dict[str, Any]]) -> None:
    """Many nodes at once, parents before children (one pipelined round trip)."""
    batch = list(rows)
    if batch:
        await execute_many(conn, _INSERT_NODE, batch)
