"""Vector tiles for the dispatcher's map: the grid and the cases, cut by PostGIS.

Both need a login (the page sends its bearer token with MapLibre's `transformRequest`).
Grid boundaries are open to every logged-in user, but the case counts on them, like the
case points, cover only cases the caller may read (grid.cases.scope_clause).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from app import policy
from app.db import get_session
from app.routers.cases import actor_of
from geo import tiles
from grid import cases
from grid.exceptions import InvalidInput

router = APIRouter(prefix="/tiles", tags=["tiles"])
MVT = "application/vnd.mapbox-vector-tile"


def _check(z: int, x: int, y: int) -> None:
    if not tiles.tile_in_range(z, x, y):
        raise InvalidInput(f"no tile {z}/{x}/{y}: z must be 0..{tiles.MAX_ZOOM}, x and y 0..2^z-1", z=z, x=x, y=y)


def _reply(request: Request, body: bytes, tag: str, cache_control: str) -> Response:
    headers = {"ETag": tag, "Cache-Control": cache_control, "Vary": "Authorization"}
    if tag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=MVT, headers=headers)


@router.get("/grid/{z}/{x}/{y}.mvt", responses={200: {"content": {MVT: {}}}})
def grid_tile(
    z: int, x: int, y: int, request: Request, caller: policy.LoggedIn,
    session: Annotated[Session, Depends(get_session)],
) -> Response:  # fmt: skip
    """Grid polygons, levels by zoom (township ≤ z10; area, community, subarea, village
    z11–13; grid and group z14; unit and household ≥ z15), layer `grid`, with `code`,
    `name`, `level`, `open_cases` and `overdue_cases`; layer `grid_labels`: one point per
    node (`code`, `name`, `level`), in the tile that holds it."""
    _check(z, x, y)
    actor = actor_of(caller)
    cache: tiles.TileCache = request.app.state.tile_cache
    now = datetime.now(timezone.utc)
    # Counts depend on who asks (scope paths, and cases they reported or received), so
    # the person is in the key. The minute too: overdue counts change with the clock.
    key = (z, x, y, tiles.versions(session), actor.person_id, tuple(sorted(actor.read_paths)),
           int(now.timestamp() // 60))  # fmt: skip
    found = cache.get(key)
    if found is None:
        scope, params = cases.scope_clause(actor)
        body = tiles.grid_tile(session, z=z, x=x, y=y, scope=scope, scope_params=params, open_sql=cases.OPEN_SQL,
                               overdue_sql=cases.OVERDUE_SQL, now=now)  # fmt: skip
        found = (body, tiles.etag(body))
        cache.put(key, *found)
    # Revalidate every time: the ETag makes an unchanged tile a body-less 304.
    return _reply(request, found[0], found[1], "private, no-cache")


@router.get("/cases/{z}/{x}/{y}.mvt", responses={200: {"content": {MVT: {}}}})
def case_tile(
    z: int, x: int, y: int, request: Request, caller: policy.LoggedIn,
    session: Annotated[Session, Depends(get_session)],
) -> Response:  # fmt: skip
    """Open cases in the caller's scope, layer `cases`: `id`, `category`, `severity`,
    `state`, `overdue`, `count` (1). Below z13 clustered: `count`, worst `severity`,
    `overdue` if any is, and `id` only for a cluster of one. Never cached by the server."""
    _check(z, x, y)
    scope, params = cases.scope_clause(actor_of(caller))
    body = tiles.case_tile(session, z=z, x=x, y=y, scope=scope, scope_params=params, open_sql=cases.OPEN_SQL,
                           overdue_sql=cases.OVERDUE_SQL, now=datetime.now(timezone.utc))  # fmt: skip
    return _reply(request, body, tiles.etag(body), "private, no-cache")
