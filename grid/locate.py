"""Pure part of locating a point: choosing the floor and shaping the chain.

The SQL (grid.repository.locate_rows) finds the deepest node covering the point and
returns its ancestors with their current posts; everything decided here is a
function of those rows, so it is unit-tested without a database.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from grid.levels import level_info


@dataclass(frozen=True)
class Holder:
    person_id: int
    name: str
    phone: str | None
    role: str  # chief | deputy


@dataclass
class Link:
    """One node of the chain, with whoever holds its posts now."""

    id: int
    code: str
    name: str
    level: str
    chain: str | None
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


def group_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[list[Link], list[Link]]:
    """Split locate rows into (ancestors deepest first, floors of the deepest node)."""
    links: dict[int, Link] = {}
    floors: set[int] = set()
    for r in rows:
        link = links.get(r["id"])
        if link is None:
            link = links[r["id"]] = Link(
                id=r["id"], code=r["code"], name=r["name"], level=r["level"], chain=r["chain"],
                depth=r["depth"], floor_from=r["floor_from"], floor_to=r["floor_to"],
            )  # fmt: skip
            if r["is_floor"]:
                floors.add(r["id"])
        if r["person_id"] is not None:
            link.chiefs.append(Holder(r["person_id"], r["person_name"], r["phone"], r["role"]))
    ancestors = sorted((lk for i, lk in links.items() if i not in floors), key=lambda lk: -lk.depth)
    floor_links = sorted((links[i] for i in floors), key=lambda lk: (lk.floor_from or 0, lk.code))
    return ancestors, floor_links


def choose_floor(floors: list[Link], floor: int) -> Link | None:
    """The floor node whose storey range holds `floor`; the lowest code wins an overlap."""
    matching = [f for f in floors if f.floor_from is not None and f.floor_to is not None
                and f.floor_from <= floor <= f.floor_to]  # fmt: skip
    return min(matching, key=lambda f: f.code) if matching else None


def build_location(rows: Iterable[Mapping[str, Any]], *, floor: int | None) -> Location | None:
    """The located node and its chain, or None when no node covers the point."""
    ancestors, floors = group_rows(rows)
    if not ancestors:
        return None
    deepest = ancestors[0]
    warnings: list[str] = []
    if floor is not None:
        chosen = choose_floor(floors, floor)
        if chosen is not None:
            return Location(node=chosen, chain=[chosen, *ancestors], warnings=warnings)
        if floors:
            ranges = ", ".join(f"{f.floor_from}-{f.floor_to}" for f in floors)
            warnings.append(
                f"floor {floor} is in none of the floor ranges of {deepest.name} ({ranges}); "
                f"the report goes to the {deepest.level} chief"
            )
        else:
            warnings.append(f"{deepest.name} ({deepest.level}) has no floors; the floor number was not used")
    return Location(node=deepest, chain=ancestors, warnings=warnings)
