"""The grid: locate a point, read nodes, their children and posts."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app import schemas
from app.accounts import service as accounts
from app.deps import CallerDep, SessionDep, SettingsDep
from geo import tiles
from geo.crs import CRS
from grid import service
from grid.exceptions import InvalidInput
from grid.levels import LEVEL_CODES, level_info

router = APIRouter(prefix="/api/v1/grid", tags=["grid"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ErrorOut, "description": "not logged in"},
    404: {"model": schemas.ErrorOut, "description": "no such node"},
    422: {"model": schemas.ErrorOut, "description": "bad parameters, or a point outside the county"},
    503: {"model": schemas.ErrorOut, "description": "the database is unreachable; see Retry-After"},
}

Level = Annotated[str | None, Query(description="one of: " + ", ".join(LEVEL_CODES), pattern="^[a-z]+$")]


def _summary(row: Mapping[str, Any]) -> schemas.NodeSummary:
    return schemas.NodeSummary(
        code=row["code"], name=row["name"], level=row["level"],
        level_name=level_info(row["level"], row["chain"]).name_zh, chain=row["chain"],
        parent_code=row["parent_code"], floor_from=row["floor_from"], floor_to=row["floor_to"],
    )  # fmt: skip


def _ref(row: Mapping[str, Any]) -> schemas.NodeRef:
    return schemas.NodeRef(code=row["code"], name=row["name"], level=row["level"])


@router.get("/locate", responses=ERRORS)
async def locate(
    caller: CallerDep,
    conn: SessionDep,
    settings: SettingsDep,
    lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False, description="longitude in `crs`")],
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False, description="latitude in `crs`")],
    crs: Annotated[CRS, Query(description="wgs84 (GPS), gcj02 (AMap, Tencent) or bd09 (Baidu)")] = CRS.wgs84,
    floor: Annotated[int | None, Query(ge=service.FLOOR_MIN, le=service.FLOOR_MAX, description="storey")] = None,
) -> schemas.LocateOut:
    """The deepest node covering the point, and its chain of chiefs up to the county.

    With `floor`, in a unit that has floor nodes, the floor node is the deepest.
    Chiefs' phone numbers are shown inside the caller's scope only (elsewhere null),
    and every number shown is audited, by the same statement that reads it.
    """
    found = await service.locate(
        conn=conn, lon=lon, lat=lat, crs=crs, floor=floor, counties=caller.counties, county_name=caller.county_name,
        phone_scope=caller.scope_ids, audit=accounts.audited_read(caller, action="read.chief_phone", key="phones"),
    )  # fmt: skip
    loc = found.location
    return schemas.LocateOut(
        point=schemas.PointOut(lon=found.lon, lat=found.lat),
        node=schemas.NodeRef(code=loc.node.code, name=loc.node.name, level=loc.node.level),
        chain=[
            schemas.ChainLink(
                code=lk.code, name=lk.name, level=lk.level, level_name=lk.level_name, chain=lk.chain,
                floor_from=lk.floor_from, floor_to=lk.floor_to,
                chiefs=[schemas.Holder(person_id=h.person_id, name=h.name, phone=h.phone, role=h.role)
                        for h in lk.chiefs],
            )
            for lk in loc.chain
        ],
        warnings=loc.warnings,
    )  # fmt: skip


def parse_bbox(bbox: str | None) -> tuple[float, float, float, float] | None:
    """`min_lon,min_lat,max_lon,max_lat` (WGS-84) from a query string; every bbox parameter uses it."""
    if bbox is None:
        return None
    parts = bbox.split(",")
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        raise InvalidInput(
            f"bbox“{bbox}”应为四个数字：最小经度,最小纬度,最大经度,最大纬度（WGS-84），如 110.1,37.7,110.3,37.9",
            bbox=bbox,
        ) from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise InvalidInput(
            f"bbox“{bbox}”的范围不对：经度在 -180 到 180 之间且最小经度不大于最大经度，"
            "纬度在 -90 到 90 之间且最小纬度不大于最大纬度",
            bbox=bbox,
        )
    return x0, y0, x1, y1


def _check_level(level: str | None) -> None:
    if level is not None and level not in LEVEL_CODES:
        raise InvalidInput(f"不认识的层级“{level}”；可选：{'、'.join(LEVEL_CODES)}", level=level)


@router.get("/nodes", responses=ERRORS)
async def list_nodes(
    caller: CallerDep,
    conn: SessionDep,
    level: Level = None,
    parent: Annotated[str | None, Query(description="code of the parent node")] = None,
    bbox: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat in WGS-84")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> schemas.NodePage:
    """Nodes by level, parent and bounding box, a page at a time in code order."""
    _check_level(level)
    rows, next_cursor = await service.list_nodes(
        conn=conn,
        level=level,
        parent_code=parent,
        bbox=parse_bbox(bbox),
        cursor=cursor,
        limit=limit,
        counties=caller.counties,
    )
    return schemas.NodePage(items=[_summary(r) for r in rows], next_cursor=next_cursor)


@router.get("/nodes.geojson", responses=ERRORS, response_class=Response)
async def nodes_geojson(
    caller: CallerDep,
    conn: SessionDep,
    settings: SettingsDep,
    bbox: Annotated[str, Query(description="min_lon,min_lat,max_lon,max_lat in WGS-84")],
    level: Level = None,
    limit: Annotated[int, Query(ge=1, description="at most WUZHANG_PAGE_SIZE_MAX")] = 500,
) -> Response:
    """Nodes in a box as a GeoJSON FeatureCollection (WGS-84), for small views and downloads.

    Boundaries and names are open to every logged-in user. At most `limit` features,
    coarse levels first; `truncated` says more were left out (narrow the box or the level).
    The database writes the JSON itself.
    """
    _check_level(level)
    box = parse_bbox(bbox)
    assert box is not None
    body = await tiles.nodes_geojson(conn, bbox=box, level=level, limit=min(limit, settings.page_size_max),
                                     counties=caller.counties)  # fmt: skip
    return Response(body, media_type="application/geo+json")


@router.get("/nodes/{code}", responses=ERRORS)
async def get_node(code: str, caller: CallerDep, conn: SessionDep) -> schemas.NodeFeature:
    """One node as a GeoJSON Feature, with the codes of its ancestors."""
    row = await service.get_node(conn=conn, code=code, counties=caller.counties)
    props = schemas.NodeProperties(**_summary(row).model_dump(), path=list(row["path_codes"] or []))
    geometry = json.loads(row["geometry"]) if row["geometry"] else None
    return schemas.NodeFeature(id=row["code"], geometry=geometry, properties=props)


@router.get("/nodes/{code}/children", responses=ERRORS)
async def node_children(code: str, caller: CallerDep, conn: SessionDep) -> schemas.NodeChildren:
    node, rows = await service.children(conn=conn, code=code, counties=caller.counties)
    return schemas.NodeChildren(node=_ref(node), items=[_summary(r) for r in rows])


@router.get("/nodes/{code}/posts", responses=ERRORS)
async def node_posts(code: str, caller: CallerDep, conn: SessionDep) -> schemas.NodePosts:
    """Who holds the node's posts now, and who held them before (handovers keep history).

    Phone numbers are shown inside the caller's scope only (elsewhere null), and audited.
    """
    node, rows = await service.posts(
        conn=conn, code=code, phone_scope=caller.scope_ids, counties=caller.counties,
        audit=accounts.audited_read(caller, action="read.chief_phone", key="phones"),
    )  # fmt: skip
    items = [schemas.PostOut(id=r["id"], role=r["role"], person_id=r["person_id"], name=r["name"], phone=r["phone"],
                             started_at=r["started_at"], ended_at=r["ended_at"]) for r in rows]  # fmt: skip
    return schemas.NodePosts(
        node=_ref(node),
        current=[p for p in items if p.ended_at is None],
        past=[p for p in items if p.ended_at is not None],
    )
