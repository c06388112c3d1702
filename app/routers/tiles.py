"""Vector tiles for the dispatcher's map: the grid and the cases, cut by PostGIS.

Both need a login (the page sends its bearer token with MapLibre's `transformRequest`).
Grid boundaries are open to every logged-in user, but the case counts on them, like the
case points, cover only cases the caller may read.

Tiles are kept per process (app.tile_cache) under the grid and case versions, which
every write bumps and NOTIFY brings: a cached tile, or a 304 for a matching ETag, is
answered without a database round trip.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from app.deps import CallerDep
from app.routers.cases import actor_of
from app.tile_cache import TileCache, TileVersions
from geo import tiles
from grid.cases.repository import reader_params
from grid.exceptions import InvalidInput, TileNotFound

router = APIRouter(prefix="/tiles", tags=["tiles"])
MVT = "application/vnd.mapbox-vector-tile"
TileQuery = Callable[..., Awaitable[bytes | None]]


def _check(z: int, x: int, y: int) -> None:
    if not tiles.tile_in_range(z, x, y):
        raise InvalidInput(
            f"没有瓦片 {z}/{x}/{y}：z 应在 0 到 {tiles.MAX_ZOOM} 之间，x 和 y 应在 0 到 2^z-1 之间", z=z, x=x, y=y
        )


async def _tile(request: Request, caller: Any, layer: str, build: TileQuery, z: int, x: int, y: int) -> Response:
    _check(z, x, y)
    actor = actor_of(caller)
    cache: TileCache = request.app.state.tile_cache
    versions: TileVersions = request.app.state.tile_versions
    now = datetime.now(UTC)
    # Counts depend on who asks (scope paths, and cases they reported or received), so the
    # person is in the key; the minute too, since lateness changes with the clock. The
    # versions are read before the query: a tile is never stored under a newer one.
    key = (layer, z, x, y, versions.grid, versions.case, actor.person_id, actor.read_paths, actor.department_ids,
           actor.supervises, actor.counties, int(now.timestamp() // 60))  # fmt: skip
    found = cache.get(key) if versions.live else None
    if found is None:
        reader = reader_params(now=now, **actor.scope)
        async with request.app.state.db.connection() as conn:  # only a miss takes a connection
            body = await build(conn, z=z, x=x, y=y, reader=reader)
        if body is None:
            raise TileNotFound(f"没有瓦片 {z}/{x}/{y}：它不在你所在县的范围内", z=z, x=x, y=y)
        found = (body, tiles.etag(body))
        if versions.live:
            cache.put(key, *found)
    body, tag = found
    # Revalidate every time: the ETag makes an unchanged tile a body-less 304.
    headers = {"ETag": tag, "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    if tag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=MVT, headers=headers)


@router.get("/grid/{z}/{x}/{y}.mvt", responses={200: {"content": {MVT: {}}}}, response_class=Response)
async def grid_tile(z: int, x: int, y: int, request: Request, caller: CallerDep) -> Response:
    """Grid polygons, levels by zoom (township ≤ z10; area, community, subarea, village
    z11–13; grid and group z14; unit and household ≥ z15), layer `grid`, with `code`,
    `name`, `level`, `open_cases` and `overdue_cases`; layer `grid_labels`: one point per
    node (`code`, `name`, `level`), in the tile that holds it."""
    return await _tile(request, caller, "grid", tiles.grid_tile, z, x, y)


@router.get("/cases/{z}/{x}/{y}.mvt", responses={200: {"content": {MVT: {}}}}, response_class=Response)
async def case_tile(z: int, x: int, y: int, request: Request, caller: CallerDep) -> Response:
    """Open cases in the caller's scope, layer `cases`: `id`, `category`, `severity`,
    `state`, `overdue`, `count` (1). Below z13 clustered: `count`, worst `severity`,
    `overdue` if any is, and `id` only for a cluster of one."""
    return await _tile(request, caller, "cases", tiles.case_tile, z, x, y)
