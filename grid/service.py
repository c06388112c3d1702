"""Use cases of the grid. Keyword-only, the connection first; a use case that writes
several statements runs them in one transaction (a savepoint inside a caller's)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

import psycopg
from shapely import to_wkb

from geo.crs import CRS, to_wgs84
from grid import people_time
from grid.db import Conn, ReadAudit, Row
from grid.exceptions import HierarchyError, InvalidInput, NodeNotFound, OutsideJurisdiction, PostConflict
from grid.levels import LEVELS_WITHOUT_GEOMETRY, child_chain, child_error, level_name
from grid.locate import Location, build_location, raise_other_county
from grid.repository import nodes as node_sql
from grid.repository import roster as roster_sql

FLOOR_MIN, FLOOR_MAX = -10, 300


@dataclass(frozen=True)
class Located:
    lon: float  # WGS-84, after conversion
    lat: float
    location: Location


async def locate(
    *, conn: Conn, lon: float, lat: float, crs: CRS, floor: int | None, counties: Sequence[str], county_name: str,
    phone_scope: Sequence[int] = (), audit: ReadAudit | None = None,
) -> Located:  # fmt: skip
    """The deepest node covering a point reported in `crs`, with its chain of chiefs, in one
    of `counties` (the caller's own first; a city account's others after it).

    Chiefs' phones are shown on the nodes under `phone_scope` (node ids) only; with
    `audit`, the same statement records every phone shown.
    """
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidInput(
            f"({lon}, {lat}) 不是有效的经纬度：经度应在 -180 到 180 之间，纬度在 -90 到 90 之间", lon=lon, lat=lat
        )
    if floor is not None and not FLOOR_MIN <= floor <= FLOOR_MAX:
        raise InvalidInput(f"楼层 {floor} 不对：应在 {FLOOR_MIN} 到 {FLOOR_MAX} 之间", floor=floor)
    w_lon, w_lat = to_wgs84(lon, lat, crs)
    rows = await node_sql.locate_rows(conn, lon=w_lon, lat=w_lat, floor=floor, county=counties[0],
                                      scope_ids=phone_scope, audit=audit)  # fmt: skip
    location = build_location(rows, floor=floor)
    if location is None:
        # Rare: outside the caller's county. In a county they may read (a city account's), or another?
        other = await node_sql.county_at(conn, lon=w_lon, lat=w_lat)
        if other is not None and other["county_code"] not in counties:
            raise_other_county(other, lon=lon, lat=lat, county_name=county_name)
        if other is not None:
            rows = await node_sql.locate_rows(conn, lon=w_lon, lat=w_lat, floor=floor, county=other["county_code"],
                                              scope_ids=phone_scope, audit=audit)  # fmt: skip
            location = build_location(rows, floor=floor)
    if location is None:
        hint = "" if crs is not CRS.wgs84 else (
            "如果手机用的是高德或腾讯地图，请用 crs=gcj02；百度地图请用 crs=bd09。"
        )  # fmt: skip
        raise OutsideJurisdiction(
            f"位置 ({lon:.6f}, {lat:.6f}, {crs}) 不在{county_name}范围内：没有网格覆盖这个点。请核对手机定位。" + hint,
            lon=lon, lat=lat, crs=str(crs), wgs84={"lon": w_lon, "lat": w_lat},
        )  # fmt: skip
    return Located(lon=w_lon, lat=w_lat, location=location)


# `counties`: a caller's (Principal.counties); a node of another county is not found, as
# one that does not exist. None: every county (the CLI and the loaders).
async def get_node(*, conn: Conn, code: str, counties: Sequence[str] | None = None) -> Row:
    node = await node_sql.get_node(conn, code=code, counties=counties)
    if node is None:
        raise NodeNotFound(f"没有编码为“{code}”的网格节点，请核对编码", code=code)
    return node


async def node_brief(*, conn: Conn, code: str, counties: Sequence[str] | None = None) -> Row:
    """id, code, name, level, chain, path and county of a node (no geometry)."""
    node = await node_sql.node_brief(conn, code=code, counties=counties)
    if node is None:
        raise NodeNotFound(f"没有编码为“{code}”的网格节点，请核对编码", code=code)
    return node


async def children(*, conn: Conn, code: str, counties: Sequence[str] | None = None) -> tuple[Row, list[Row]]:
    node = await node_brief(conn=conn, code=code, counties=counties)
    return node, await node_sql.children(conn, code=code, counties=counties)


async def posts(
    *, conn: Conn, code: str, phone_scope: Sequence[int] = (), audit: ReadAudit | None = None,
    counties: Sequence[str] | None = None,
) -> tuple[Row, list[Row]]:  # fmt: skip
    """A node's posts, current and past. Phones only under `phone_scope`, audited with `audit`."""
    node = await node_brief(conn=conn, code=code, counties=counties)
    return node, await node_sql.node_posts(conn, node_id=node["id"], scope_ids=phone_scope, audit=audit)


async def list_nodes(
    *,
    conn: Conn,
    level: str | None,
    parent_code: str | None,
    bbox: tuple[float, float, float, float] | None,
    cursor: str | None,
    limit: int,
    counties: Sequence[str] | None = None,
) -> tuple[list[Row], str | None]:
    """A page of nodes and the cursor of the next page (None on the last)."""
    if parent_code is not None:
        await node_brief(conn=conn, code=parent_code, counties=counties)
    rows = await node_sql.list_nodes(
        conn, level=level, parent_code=parent_code, bbox=bbox, after_code=cursor, limit=limit + 1, counties=counties
    )
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1]["code"]
    return rows, None


class NodeLike(Protocol):
    """A node to write (a generated demo node, or one made in code); read-only is enough."""

    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def level(self) -> str: ...
    @property
    def chain(self) -> str | None: ...
    @property
    def parent_code(self) -> str | None: ...
    @property
    def geom(self) -> Any: ...
    @property
    def floor_from(self) -> int | None: ...
    @property
    def floor_to(self) -> int | None: ...


async def create_node(*, conn: Conn, county_code: str, node: NodeLike) -> int:
    """Add one node under its parent, refusing what would break the levels or chains."""
    parent = await node_sql.node_brief(conn, code=node.parent_code) if node.parent_code else None
    if node.parent_code and parent is None:
        raise NodeNotFound(f"{node.code} 的上级“{node.parent_code}”不存在，请先导入上级", code=node.parent_code)
    chain = child_chain(parent_chain=parent["chain"] if parent else None, child_level=node.level, declared=node.chain)
    problem = child_error(
        parent_level=parent["level"] if parent else None,
        parent_chain=parent["chain"] if parent else None,
        child_level=node.level,
        child_chain=chain,
    )
    problem = problem or _shape_error(node)
    if problem:
        raise HierarchyError(f"{node.code}：{problem}", code=node.code, parent_code=node.parent_code)
    try:
        async with conn.transaction():
            return await node_sql.insert_node(conn, row=_node_row(county_code, node, chain))
    except psycopg.IntegrityError as exc:
        raise HierarchyError(f"{node.code}：{_constraint_message(exc)}", code=node.code) from None


def _shape_error(node: NodeLike) -> str | None:
    """Floors have a storey range and no polygon; every other level has a polygon."""
    if node.level in LEVELS_WITHOUT_GEOMETRY:
        if node.geom is not None:
            return "楼层没有自己的边界（多边形），它用所在单元的轮廓；请去掉边界"
        if node.floor_from is None or node.floor_to is None or node.floor_from > node.floor_to:
            return "楼层须填写起止层（floor_from 不大于 floor_to）"
        return None
    if node.geom is None or node.geom.is_empty:
        return f"{level_name(node.level)}须有边界（多边形）"
    if node.floor_from is not None or node.floor_to is not None:
        return f"只有楼层有起止层，{level_name(node.level)}不填 floor_from/floor_to"
    return None


def _node_row(county_code: str, node: NodeLike, chain: str | None) -> dict[str, Any]:
    return {
        "county_code": county_code,
        "code": node.code,
        "name": node.name,
        "level": node.level,
        "chain": chain,
        "parent_code": node.parent_code,
        "wkb": to_wkb(node.geom) if node.geom is not None else None,
        "floor_from": node.floor_from,
        "floor_to": node.floor_to,
    }


def _constraint_message(exc: psycopg.Error) -> str:
    name = exc.diag.constraint_name or ""
    known = {
        "uq_node_code": "这个编码的网格节点已经存在",
        "ck_node_geom_unless_floor": "除楼层外，每一级都须有边界（多边形）；楼层用所在单元的轮廓",
        "ck_node_floor_range": "楼层须填写起止层（floor_from 不大于 floor_to）；其他层级不填",
        "uq_post_current_chief": "这个节点已有在任的负责人；请办理交接，而不是再添一个",
        "uq_post_current_person": "这个人已在这个节点任职",
    }
    return known.get(name) or (exc.diag.message_primary or str(exc)).strip()


async def hand_over(
    *, conn: Conn, county_code: str, node_code: str, name: str, phone: str | None, role: str = "chief",
    at: datetime | None = None,
) -> int:  # fmt: skip
    """A new person takes a post. The old chief's post ends; it is never overwritten."""
    at = at or datetime.now(UTC)
    node = await node_brief(conn=conn, code=node_code)
    try:
        # One transaction: the old chief's post never ends unless the new one starts.
        async with conn.transaction():
            person_id = await roster_sql.upsert_person(conn, county_code=county_code, name=name, phone=phone)
            if role == "chief":
                current = await roster_sql.current_post(conn, node_id=node["id"], role="chief")
                if current is not None:
                    if current["person_id"] == person_id:
                        return int(current["id"])
                    if current["started_at"] > at:
                        raise PostConflict(
                            f"{node_code} 现任负责人的任职时间晚于 {people_time.local(at):%Y-%m-%d %H:%M}，交接时间不能早于它",
                            code=node_code,
                        )
                    await roster_sql.end_post(conn, post_id=current["id"], at=at)
            return await roster_sql.start_post(
                conn, county_code=county_code, node_id=node["id"], person_id=person_id, role=role, at=at
            )
    except psycopg.IntegrityError as exc:
        raise PostConflict(f"{node_code}：{_constraint_message(exc)}", code=node_code) from None


async def load_county(*, conn: Conn, county_code: str, nodes: Iterable[NodeLike], posts: Iterable[Any]) -> int:
    """Bulk-load a whole generated county (parents before children) and its roster.

    The demo and benchmark loader: it trusts its input, which the generator's own
    tests check; real boundary files go through the validating import instead.
    """
    rows = [_node_row(county_code, node, node.chain) for node in nodes]
    for start in range(0, len(rows), 5000):
        await node_sql.insert_nodes(conn, rows=rows[start : start + 5000])
    post_rows = [
        {"node_code": p.node_code, "role": p.role, "name": p.name, "phone": p.phone,
         "started_at": p.started_at, "ended_at": p.ended_at}
        for p in posts
    ]  # fmt: skip
    for start in range(0, len(post_rows), 5000):
        await roster_sql.insert_people_and_posts(conn, county_code=county_code, posts=post_rows[start : start + 5000])
    return len(rows)


EXPORT_FIELDS = ("code", "name", "level", "chain", "parent_code", "floor_from", "floor_to")


async def export_geojson(*, conn: Conn, code: str, out: IO[str]) -> int:
    """Stream the live subtree under `code` as a GeoJSON FeatureCollection; returns the count.

    Coordinates carry 15 decimals, enough for a lossless round trip of doubles.
    A floor carries its unit's footprint (it has none of its own).
    """
    await node_brief(conn=conn, code=code)
    count = 0
    out.write('{"type": "FeatureCollection", "features": [\n')
    async for row in node_sql.subtree_features(conn, code=code):
        feature = {"type": "Feature", "id": row["code"], "properties": {k: row[k] for k in EXPORT_FIELDS},
                   "geometry": json.loads(row["geometry"]) if row["geometry"] else None}  # fmt: skip
        out.write(("" if count == 0 else ",\n") + json.dumps(feature, ensure_ascii=False))
        count += 1
    out.write("\n]}\n")
    return count


async def export_gpkg(*, conn: Conn, code: str, path: str | Path) -> int:
    """Write the live subtree under `code` to a GeoPackage (WKB: exact doubles)."""
    from geo.exporter import write_gpkg

    await node_brief(conn=conn, code=code)
    rows = [row async for row in node_sql.subtree_wkb(conn, code=code)]
    return write_gpkg(rows, path)
