"""Levels and chains of the five-chief grid (docs/domain.md, "The grid and its two chains").

County → township → one of two five-chief chains, fixed at `area` level:

    urban: area → community → grid  → unit  → floor
    rural: area → subarea   → village → group → household

Pure data and functions; `migrations/` mirrors `child_level_allowed` in a trigger,
and a test checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Chain(StrEnum):
    urban = "urban"
    rural = "rural"


@dataclass(frozen=True)
class Level:
    code: str
    depth: int
    name_zh: str  # the area, e.g. 社区
    chief_zh: str  # its responsible person, e.g. 社区长
    chain: Chain | None  # None for county and township, which sit above both chains


COUNTY = Level("county", 0, "县", "县长", None)
TOWNSHIP = Level("township", 1, "镇/街道", "镇长", None)

URBAN_CHAIN: tuple[Level, ...] = (
    Level("area", 2, "片区", "片长", Chain.urban),
    Level("community", 3, "社区", "社区长", Chain.urban),
    Level("grid", 4, "网格", "网格长", Chain.urban),
    Level("unit", 5, "单元", "单元长", Chain.urban),
    Level("floor", 6, "楼层", "楼层长", Chain.urban),
)
RURAL_CHAIN: tuple[Level, ...] = (
    Level("area", 2, "片区", "片长", Chain.rural),
    Level("subarea", 3, "分片", "分片长", Chain.rural),
    Level("village", 4, "村", "村长", Chain.rural),
    Level("group", 5, "组", "组长", Chain.rural),
    Level("household", 6, "中心户", "中心户长", Chain.rural),
)

CHAIN_NAMES = {"urban": "城区", "rural": "农村"}

LEVEL_CODES: tuple[str, ...] = (
    "county", "township", "area",
    "community", "grid", "unit", "floor",
    "subarea", "village", "group", "household",
)  # fmt: skip
LEAF_LEVELS = frozenset({"floor", "household"})
# A floor has no footprint of its own: it is a range of storeys of its unit.
LEVELS_WITHOUT_GEOMETRY = frozenset({"floor"})


def _chain_levels(chain: Chain) -> tuple[Level, ...]:
    return URBAN_CHAIN if chain is Chain.urban else RURAL_CHAIN


def level_info(level: str, chain: Chain | str | None = None) -> Level:
    """The Level for a code; `chain` picks between the two `area`s (same names)."""
    if level == "county":
        return COUNTY
    if level == "township":
        return TOWNSHIP
    chains = [Chain(chain)] if chain else [Chain.urban, Chain.rural]
    for c in chains:
        for lv in _chain_levels(c):
            if lv.code == level:
                return lv
    raise ValueError(f"unknown level {level!r}" + (f" in the {chain} chain" if chain else ""))


def level_name(level: str) -> str:
    """The Chinese name of a level code (片区 for either chain's area); the code itself if unknown."""
    try:
        return level_info(level).name_zh
    except ValueError:
        return level


def chain_of_level(level: str) -> Chain | None:
    """The chain a level belongs to, or None for county, township and area (both)."""
    if level in ("county", "township", "area"):
        return None
    return Chain.urban if any(lv.code == level for lv in URBAN_CHAIN) else Chain.rural


def allowed_child_levels(level: str, chain: Chain | str | None) -> tuple[str, ...]:
    """Levels a child of (level, chain) may have, in the county's own order."""
    if level == "county":
        return ("township",)
    if level == "township":
        return ("area",)
    if chain is None:
        return ()
    levels = _chain_levels(Chain(chain))
    codes = [lv.code for lv in levels]
    i = codes.index(level) if level in codes else -1
    return (codes[i + 1],) if 0 <= i < len(codes) - 1 else ()


def child_error(
    *, parent_level: str | None, parent_chain: str | None, child_level: str, child_chain: str | None
) -> str | None:
    """Why a child may not sit under a parent, or None when it may.

    The chain of a node is fixed at `area` level and inherited below it.
    """
    if child_level not in LEVEL_CODES:
        return f"不认识的层级“{child_level}”；可选：{'、'.join(LEVEL_CODES)}"
    child, chain = level_name(child_level), CHAIN_NAMES.get(str(child_chain), str(child_chain))
    if child_level in ("county", "township") and child_chain is not None:
        return f"{child}在城区和农村两条链之上，不填链（chain）"
    if parent_level is None:
        return None if child_level == "county" else f"{child}须有上级；只有县没有上级"
    if child_level == "county":
        return "县不能有上级"
    if child_level == "area" and child_chain not in (Chain.urban, Chain.rural):
        return "片区须写明所属的链（chain）：urban（城区）或 rural（农村）"
    own_chain = chain_of_level(child_level)
    if own_chain is not None and child_chain not in (None, own_chain):
        return f"{child}属于{CHAIN_NAMES[own_chain]}链，不属于{chain}链"
    allowed = allowed_child_levels(parent_level, parent_chain)
    parent = level_name(parent_level)
    if child_level not in allowed:
        where = f"{CHAIN_NAMES.get(parent_chain, parent_chain)}{parent}" if parent_chain else parent
        if not allowed:
            return f"{where}下面不能再有下级"
        return f"{child}（{child_level}）不能放在{where}（{parent_level}）下面；只能放{'或'.join(f'{level_name(a)}（{a}）' for a in allowed)}"
    if parent_chain is not None and (child_chain or own_chain) != parent_chain:
        name = CHAIN_NAMES.get(parent_chain, parent_chain)
        return f"{name}{parent}下面的{child}也须属于{name}链"
    return None


def child_chain(*, parent_chain: str | None, child_level: str, declared: str | None) -> str | None:
    """The chain a new node gets: declared at area level, inherited below it."""
    if child_level in ("county", "township"):
        return None
    if child_level == "area":
        return declared
    return parent_chain or declared or chain_of_level(child_level)
