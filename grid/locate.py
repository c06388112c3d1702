"""Pure part of locating a point: choosing the floor and shaping the chain.

The SQL (grid.repository.nodes.locate_rows) finds the deepest node covering the point,
its ancestors with their current posts, and the floor asked for; what is decided here
is a function of those rows, so it is unit-tested without a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from grid.exceptions import OutsideJurisdiction
from grid.levels import Chain, level_info, level_name


@dataclass(frozen=True)
class Holder:
    person_id: int
    name: str
    phone: str | None
    role: Literal["chief", "deputy"]


@dataclass
class Link:
    """One node of the chain, with whoever holds its posts now."""

    id: int
    code: str
    name: str
    level: str
    chain: Chain | None
    depth: int
    floor_from: int | None = None
    floor_to: int | None = None
    chiefs: list[Holder] = field(default_factory=list)

    @property
    def level_name(self) -> str:
        return level_info(self.level, self.chain).name_zh


@dataclass
class Location:
    node: Link
    chain: list[Link]  # deepest first, county last
    warnings: list[str] = field(default_factory=list)


def group_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[list[Link], Link | None, list[str]]:
    """Split locate rows into (ancestors deepest first, the chosen floor, the storey
    ranges of the deepest node's floors when a floor was asked for)."""
    links: dict[int, Link] = {}
    floor_id: int | None = None
    ranges: list[str] = []
    for r in rows:
        link = links.get(r["id"])
        if link is None:
            link = links[r["id"]] = Link(
                id=r["id"], code=r["code"], name=r["name"], level=r["level"],
                chain=Chain(r["chain"]) if r["chain"] else None,
                depth=r["depth"], floor_from=r["floor_from"], floor_to=r["floor_to"],
            )  # fmt: skip
            if r["is_floor"]:
                floor_id = r["id"]
            ranges = ranges or list(r.get("floor_ranges") or [])
        if r["person_id"] is not None:
            link.chiefs.append(Holder(r["person_id"], r["person_name"], r["phone"], r["role"]))
    for link in links.values():  # the current chief first, then deputies
        link.chiefs.sort(key=lambda h: h.role != "chief")
    ancestors = sorted((lk for i, lk in links.items() if i != floor_id), key=lambda lk: -lk.depth)
    return ancestors, links.get(floor_id) if floor_id is not None else None, ranges


def build_location(rows: Iterable[Mapping[str, Any]], *, floor: int | None) -> Location | None:
    """The located node and its chain, or None when no node covers the point.

    The database picks the floor (the one whose storey range holds `floor`; the lowest
    code wins an overlap); here a floor in no range falls back to its unit, with a warning.
    """
    ancestors, chosen, ranges = group_rows(rows)
    if not ancestors:
        return None
    deepest = ancestors[0]
    warnings: list[str] = []
    if floor is not None:
        if chosen is not None:
            return Location(node=chosen, chain=[chosen, *ancestors], warnings=warnings)
        if ranges:
            warnings.append(
                f"{floor} 层不在{deepest.name}的任何楼层范围内（{'、'.join(ranges)}）；"
                f"上报交给{level_info(deepest.level).chief_zh}"
            )
        else:
            warnings.append(f"{deepest.name}（{level_name(deepest.level)}）没有分楼层，楼层号未使用")
    return Location(node=deepest, chain=ancestors, warnings=warnings)


def raise_other_county(other: Mapping[str, Any], *, lon: float, lat: float, county_name: str) -> None:
    """A point in another county of the deployment: refused, naming both counties."""
    raise OutsideJurisdiction(
        f"位置 ({lon:.6f}, {lat:.6f}) 在{other['name']}，不在{county_name}：只能查询和上报本县网格内的事件。请核对手机定位。",
        lon=lon, lat=lat, county_code=other["county_code"],
    )  # fmt: skip
