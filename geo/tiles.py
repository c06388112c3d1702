"""Vector tiles (MVT) and GeoJSON straight from PostGIS: all the map's SQL, in one place.

Conventions of the tile SQL:
- rows are filtered by `geom_3857 && ST_TileEnvelope(z, x, y)` (GiST), then cut by
  `ST_AsMVTGeom(geom_3857, envelope, 4096, 64, true)` in a CTE, then `ST_AsMVT`;
- levels are gated by zoom, only the columns the map draws are selected;
- every value is bound.

Cases come from `grid.cases.repository.readable_cases_sql`: the cases the reader may
see, with its one scope, open and lateness rules. So case counts (grid tiles) and case
points (case tiles) never tell a caller about a case they could not open.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from grid.cases.repository import readable_cases_sql
from grid.db import Conn, fetch_value

EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 22
# Below this zoom case points are clustered on a snapping grid.
CLUSTER_BELOW_ZOOM = 13
# Cluster cell: this fraction of a tile's width (16 cells across a tile).
CLUSTER_CELLS_PER_TILE = 16


def levels_for_zoom(z: int) -> tuple[str, ...]:
    """Which grid levels a tile at zoom `z` draws: coarse levels far out, households close in."""
    if z <= 10:
        return ("township",)
    if z <= 13:
        return ("area", "community", "subarea", "village")
    if z == 14:
        return ("grid", "group")
    return ("unit", "household")


def tile_in_range(z: int, x: int, y: int) -> bool:
    return 0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z


# A tile is the caller's if it touches one of their counties' outlines (`reader_counties`);
# any other tile is answered 404, as a case or node of another county is.
_MINE = """EXISTS (SELECT 1 FROM node r, env WHERE r.parent_id IS NULL AND r.geom_3857 && env.e
                 AND r.county_code = ANY (%(reader_counties)s::text[]))"""

# Open and overdue cases per node, counted from the located node's path (ids joined by
# '.'), so a village counts every case inside it, its groups and households included.
# Only cases inside the extent of the nodes drawn are looked at: a case located under a
# node lies in that node's polygon, so nothing that counts is left out.
GRID_TILE_SQL = """
WITH env AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS e),
shown AS (
  SELECT n.id, n.code, n.name, n.level, n.geom_3857
    FROM node n CROSS JOIN env
   WHERE n.geom_3857 && env.e
     AND n.level = ANY(%(levels)s::text[])
     AND n.retired_at IS NULL AND n.county_code = ANY (%(reader_counties)s::text[])
),
reach AS (SELECT ST_SetSRID(ST_Extent(geom_3857)::geometry, 3857) AS box FROM shown),
scoped AS (
  SELECT c.located_path, c.late
    FROM ({cases}) c CROSS JOIN reach
   WHERE c.geom_3857 && reach.box AND c.located_path IS NOT NULL
),
counts AS (
  SELECT a.id::bigint AS node_id, count(*) AS open_cases, count(*) FILTER (WHERE s.late) AS overdue_cases
    FROM scoped s, unnest(string_to_array(s.located_path::text, '.')) AS a(id)
   GROUP BY 1
),
tile AS (
  SELECT s.code, s.name, s.level,
         COALESCE(k.open_cases, 0)::int AS open_cases,
         COALESCE(k.overdue_cases, 0)::int AS overdue_cases,
         ST_AsMVTGeom(s.geom_3857, env.e, %(extent)s, %(buffer)s, true) AS geom
    FROM shown s CROSS JOIN env
    LEFT JOIN counts k ON k.node_id = s.id
),
-- One label point per node, in the one tile that holds it: a polygon cut across four
-- tiles would otherwise be labelled four times.
labels AS (
  SELECT s.code, s.name, s.level, ST_AsMVTGeom(l.p, env.e, %(extent)s, 0, false) AS geom
    FROM shown s CROSS JOIN env
    CROSS JOIN LATERAL (SELECT ST_PointOnSurface(s.geom_3857) AS p) l
   WHERE ST_Intersects(l.p, env.e)
)
SELECT CASE WHEN {mine} THEN
  COALESCE((SELECT ST_AsMVT(tile, 'grid', %(extent)s, 'geom') FROM tile WHERE geom IS NOT NULL), ''::bytea)
    || COALESCE((SELECT ST_AsMVT(labels, 'grid_labels', %(extent)s, 'geom') FROM labels WHERE geom IS NOT NULL),
                ''::bytea)
  END FROM env
"""

# Single cases: points just outside the tile are kept within the buffer, so a marker on
# a tile edge is drawn whole.
CASE_TILE_SQL = """
WITH env AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS e),
tile AS (
  SELECT c.id, c.category, c.severity::int AS severity, c.state, c.late AS overdue, 1 AS count,
         ST_AsMVTGeom(c.geom_3857, env.e, %(extent)s, %(buffer)s, true) AS geom
    FROM ({cases}) c CROSS JOIN env
   WHERE c.geom_3857 && ST_Expand(env.e, (ST_XMax(env.e) - ST_XMin(env.e)) * %(buffer)s / %(extent)s)
)
SELECT CASE WHEN {mine} THEN
  COALESCE((SELECT ST_AsMVT(tile, 'cases', %(extent)s, 'geom') FROM tile WHERE geom IS NOT NULL), ''::bytea) END
  FROM env
"""

# Clusters: cases snapped to a global grid (so a cluster is the same in every tile),
# drawn at their mean position, with the worst severity and whether any is overdue.
CASE_CLUSTER_TILE_SQL = """
WITH env AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS e),
picked AS (
  SELECT c.id, c.severity, c.geom_3857, c.late,
         ST_SnapToGrid(c.geom_3857, (ST_XMax(env.e) - ST_XMin(env.e)) / %(cells)s) AS cell
    FROM ({cases}) c CROSS JOIN env
   WHERE c.geom_3857 && env.e
),
tile AS (
  SELECT count(*)::int AS count, max(p.severity)::int AS severity, bool_or(p.late) AS overdue,
         CASE WHEN count(*) = 1 THEN min(p.id) END AS id,
         ST_AsMVTGeom(ST_Centroid(ST_Collect(p.geom_3857)), env.e, %(extent)s, %(buffer)s, true) AS geom
    FROM picked p CROSS JOIN env
   GROUP BY p.cell, env.e
)
SELECT CASE WHEN {mine} THEN
  COALESCE((SELECT ST_AsMVT(tile, 'cases', %(extent)s, 'geom') FROM tile WHERE geom IS NOT NULL), ''::bytea) END
  FROM env
"""

# A FeatureCollection written by the database itself: no row becomes a Python dict.
NODES_GEOJSON_SQL = """
WITH picked AS (
  SELECT n.code, n.name, n.level, n.chain, p.code AS parent_code, n.depth, n.geom
    FROM node n LEFT JOIN node p ON p.id = n.parent_id
   WHERE n.geom && ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326)
     AND n.retired_at IS NULL AND n.county_code = ANY (%(counties)s::text[])
     {level}
   ORDER BY n.depth, n.code
   LIMIT %(limit)s + 1
), shown AS (
  SELECT * FROM picked ORDER BY depth, code LIMIT %(limit)s
)
SELECT json_build_object(
  'type', 'FeatureCollection',
  'features', COALESCE((SELECT json_agg(json_build_object(
      'type', 'Feature', 'id', code, 'geometry', ST_AsGeoJSON(geom, 6)::json,
      'properties', json_build_object('code', code, 'name', name, 'level', level, 'chain', chain,
                                      'parent_code', parent_code)) ORDER BY depth, code) FROM shown), '[]'),
  'truncated', (SELECT count(*) FROM picked) > %(limit)s
)::text AS body
"""


# The map shows open cases only.
_GRID_TILE = GRID_TILE_SQL.format(cases=readable_cases_sql(open_only=True), mine=_MINE)
_CASE_TILE = CASE_TILE_SQL.format(cases=readable_cases_sql(open_only=True), mine=_MINE)
_CASE_CLUSTER_TILE = CASE_CLUSTER_TILE_SQL.format(cases=readable_cases_sql(open_only=True), mine=_MINE)


def _body(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def grid_tile_query(*, z: int, x: int, y: int, reader: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The grid tile's statement and parameters (tests/integration/test_citus_routing.py explains it)."""
    params = {**reader, "z": z, "x": x, "y": y, "extent": EXTENT, "buffer": BUFFER, "levels": list(levels_for_zoom(z))}
    return _GRID_TILE, params


async def grid_tile(conn: Conn, *, z: int, x: int, y: int, reader: dict[str, Any]) -> bytes | None:
    """Grid polygons and labels at z/x/y, with open and overdue case counts for the reader
    (`grid.cases.repository.reader_params`); None if the tile touches none of their counties."""
    sql, params = grid_tile_query(z=z, x=x, y=y, reader=reader)
    return _body(await fetch_value(conn, sql, params))


def case_tile_query(*, z: int, x: int, y: int, reader: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The case tile's statement and parameters (tests/integration/test_citus_routing.py explains it)."""
    clustered = z < CLUSTER_BELOW_ZOOM
    sql = _CASE_CLUSTER_TILE if clustered else _CASE_TILE
    params = {**reader, "z": z, "x": x, "y": y, "extent": EXTENT, "buffer": BUFFER}
    if clustered:
        params["cells"] = CLUSTER_CELLS_PER_TILE
    return sql, params


async def case_tile(conn: Conn, *, z: int, x: int, y: int, reader: dict[str, Any]) -> bytes | None:
    """The reader's open cases at z/x/y, clustered below CLUSTER_BELOW_ZOOM; None as grid_tile."""
    sql, params = case_tile_query(z=z, x=x, y=y, reader=reader)
    return _body(await fetch_value(conn, sql, params))


async def nodes_geojson(
    conn: Conn, *, bbox: tuple[float, float, float, float], level: str | None, limit: int, counties: Sequence[str]
) -> str:
    """Nodes of `counties` in the box as a GeoJSON FeatureCollection (text), coarse levels first."""
    params = {"x0": bbox[0], "y0": bbox[1], "x1": bbox[2], "y1": bbox[3], "level": level, "limit": limit,
              "counties": list(counties)}  # fmt: skip
    sql = NODES_GEOJSON_SQL.format(level="" if level is None else "AND n.level = %(level)s")
    return str(await fetch_value(conn, sql, params))


def etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
