"""Vector tiles (MVT) and GeoJSON straight from PostGIS: all the map's SQL, in one place.

Conventions (ARCHITECTURE.md, "Tile SQL"; shared/notes/performance.md):
- rows are filtered by `geom_3857 && ST_TileEnvelope(z, x, y)` (GiST), then cut by
  `ST_AsMVTGeom(geom_3857, envelope, 4096, 64, true)` in a CTE, then `ST_AsMVT`;
- levels are gated by zoom, only the columns the map draws are selected;
- every value is bound. The only SQL spliced in is the caller's scope clause, which
  is a constant of `grid.cases.scope_clause` with its own bound parameters.

Case counts (grid tiles) and case points (case tiles) are always restricted by that
scope clause, so no tile tells a caller about a case they could not open.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

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


# Open and overdue cases per node, counted from the located node's path (ids joined by
# '.'), so a village counts every case inside it, its groups and households included.
# Only cases inside the extent of the nodes drawn are looked at: a case located under a
# node lies in that node's polygon, so nothing that counts is left out.
GRID_TILE_SQL = """
WITH env AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e),
shown AS (
  SELECT n.id, n.code, n.name, n.level, n.geom_3857
    FROM node n CROSS JOIN env
   WHERE n.geom_3857 && env.e
     AND n.level = ANY(CAST(:levels AS text[]))
     AND n.retired_at IS NULL
),
reach AS (SELECT ST_SetSRID(ST_Extent(geom_3857)::geometry, 3857) AS box FROM shown),
scoped AS (
  SELECT ln.path, {overdue} AS late
    FROM case_file c CROSS JOIN reach
    JOIN node hn ON hn.id = c.handling_node_id
    JOIN node ln ON ln.id = c.located_node_id
   WHERE c.geom_3857 && reach.box AND {open} AND {scope}
),
counts AS (
  SELECT a.id::bigint AS node_id, count(*) AS open_cases, count(*) FILTER (WHERE s.late) AS overdue_cases
    FROM scoped s, unnest(string_to_array(s.path::text, '.')) AS a(id)
   GROUP BY 1
),
tile AS (
  SELECT s.code, s.name, s.level,
         COALESCE(k.open_cases, 0)::int AS open_cases,
         COALESCE(k.overdue_cases, 0)::int AS overdue_cases,
         ST_AsMVTGeom(s.geom_3857, env.e, :extent, :buffer, true) AS geom
    FROM shown s CROSS JOIN env
    LEFT JOIN counts k ON k.node_id = s.id
),
-- One label point per node, in the one tile that holds it: a polygon cut across four
-- tiles would otherwise be labelled four times.
labels AS (
  SELECT s.code, s.name, s.level, ST_AsMVTGeom(l.p, env.e, :extent, 0, false) AS geom
    FROM shown s CROSS JOIN env
    CROSS JOIN LATERAL (SELECT ST_PointOnSurface(s.geom_3857) AS p) l
   WHERE ST_Intersects(l.p, env.e)
)
SELECT COALESCE((SELECT ST_AsMVT(tile, 'grid', :extent, 'geom') FROM tile WHERE geom IS NOT NULL), ''::bytea)
    || COALESCE((SELECT ST_AsMVT(labels, 'grid_labels', :extent, 'geom') FROM labels WHERE geom IS NOT NULL),
                ''::bytea)
"""

# Single cases: points just outside the tile are kept within the buffer, so a marker on
# a tile edge is drawn whole.
CASE_TILE_SQL = """
WITH env AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e),
tile AS (
  SELECT c.id, c.category, c.severity::int AS severity, c.state, {overdue} AS overdue, 1 AS count,
         ST_AsMVTGeom(c.geom_3857, env.e, :extent, :buffer, true) AS geom
    FROM case_file c CROSS JOIN env
    JOIN node hn ON hn.id = c.handling_node_id
    LEFT JOIN node ln ON ln.id = c.located_node_id
   WHERE c.geom_3857 && ST_Expand(env.e, (ST_XMax(env.e) - ST_XMin(env.e)) * :buffer / :extent)
     AND {open} AND {scope}
)
SELECT ST_AsMVT(tile, 'cases', :extent, 'geom') FROM tile WHERE geom IS NOT NULL
"""

# Clusters: cases snapped to a global grid (so a cluster is the same in every tile),
# drawn at their mean position, with the worst severity and whether any is overdue.
CASE_CLUSTER_TILE_SQL = """
WITH env AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e),
picked AS (
  SELECT c.id, c.severity, c.geom_3857, {overdue} AS late,
         ST_SnapToGrid(c.geom_3857, (ST_XMax(env.e) - ST_XMin(env.e)) / :cells) AS cell
    FROM case_file c CROSS JOIN env
    JOIN node hn ON hn.id = c.handling_node_id
    LEFT JOIN node ln ON ln.id = c.located_node_id
   WHERE c.geom_3857 && env.e AND {open} AND {scope}
),
tile AS (
  SELECT count(*)::int AS count, max(p.severity)::int AS severity, bool_or(p.late) AS overdue,
         CASE WHEN count(*) = 1 THEN min(p.id) END AS id,
         ST_AsMVTGeom(ST_Centroid(ST_Collect(p.geom_3857)), env.e, :extent, :buffer, true) AS geom
    FROM picked p CROSS JOIN env
   GROUP BY p.cell, env.e
)
SELECT ST_AsMVT(tile, 'cases', :extent, 'geom') FROM tile WHERE geom IS NOT NULL
"""

VERSIONS_SQL = "SELECT (SELECT last_value FROM tile_grid_version), (SELECT last_value FROM tile_case_version)"

NODES_GEOJSON_SQL = """
SELECT n.code, n.name, n.level, n.chain, p.code AS parent_code, ST_AsGeoJSON(n.geom, 6) AS geometry
  FROM node n LEFT JOIN node p ON p.id = n.parent_id
 WHERE n.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)
   AND n.retired_at IS NULL
   AND (CAST(:level AS text) IS NULL OR n.level = :level)
 ORDER BY n.depth, n.code
 LIMIT :limit
"""


def _case_sql(template: str, scope: str, open_sql: str, overdue_sql: str) -> str:
    return template.format(scope=scope, open=open_sql, overdue=overdue_sql)


def grid_tile(
    session: Session, *, z: int, x: int, y: int, scope: str, scope_params: dict[str, Any], open_sql: str,
    overdue_sql: str, now: datetime,
) -> bytes:  # fmt: skip
    sql = _case_sql(GRID_TILE_SQL, scope, open_sql, overdue_sql)
    params = {**scope_params, "z": z, "x": x, "y": y, "extent": EXTENT, "buffer": BUFFER,
              "levels": list(levels_for_zoom(z)), "now": now}  # fmt: skip
    return bytes(session.execute(text(sql), params).scalar() or b"")


def case_tile(
    session: Session, *, z: int, x: int, y: int, scope: str, scope_params: dict[str, Any], open_sql: str,
    overdue_sql: str, now: datetime,
) -> bytes:  # fmt: skip
    clustered = z < CLUSTER_BELOW_ZOOM
    sql = _case_sql(CASE_CLUSTER_TILE_SQL if clustered else CASE_TILE_SQL, scope, open_sql, overdue_sql)
    params = {**scope_params, "z": z, "x": x, "y": y, "extent": EXTENT, "buffer": BUFFER, "now": now}
    if clustered:
        params["cells"] = CLUSTER_CELLS_PER_TILE
    return bytes(session.execute(text(sql), params).scalar() or b"")


def versions(session: Session) -> tuple[int, int]:
    """(grid version, case version): bumped by triggers on every write to node or case_file."""
    grid_v, case_v = session.execute(text(VERSIONS_SQL)).one()
    return int(grid_v), int(case_v)


def nodes_geojson(
    session: Session, *, bbox: tuple[float, float, float, float], level: str | None, limit: int
) -> list[dict[str, Any]]:
    rows = session.execute(
        text(NODES_GEOJSON_SQL),
        {"x0": bbox[0], "y0": bbox[1], "x1": bbox[2], "y1": bbox[3], "level": level, "limit": limit},
    ).mappings()
    return [dict(r) for r in rows]


def etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class TileCache:
    """A small in-process LRU for grid tiles, entries also expiring after `ttl_s`.

    Keys carry the grid and case versions, so an import or a case change makes old
    entries unreachable. The TTL bounds the rest: overdue counts change with the clock,
    and a version read during another transaction's uncommitted write could otherwise
    pin a stale tile.
    """

    def __init__(self, max_entries: int = 2048, ttl_s: float = 60.0) -> None:
        self.max_entries, self.ttl_s = max_entries, ttl_s
        self._data: OrderedDict[Hashable, tuple[float, bytes, str]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> tuple[bytes, str] | None:
        with self._lock:
            found = self._data.get(key)
            if found is None or time.monotonic() - found[0] > self.ttl_s:
                self._data.pop(key, None)
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return found[1], found[2]

    def put(self, key: Hashable, body: bytes, tag: str) -> None:
        if self.max_entries <= 0:
            return
        with self._lock:
            self._data[key] = (time.monotonic(), body, tag)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
