"""The figures' use cases: one per view, each for a caller's subtrees and the filters.

Every view answers plain dicts: counts as ints, rates as `Ratio` (numerator and
denominator beside the value), hours as floats, every `*_name` from grid/glossary.py.
`table(view, result)` (grid/stats/tables.py) turns any of them into the rows of an export.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from grid import people_time
from grid.cases.enums import Tier
from grid.db import Conn, Row
from grid.exceptions import InvalidInput, NodeNotFound
from grid.glossary import SOURCE_NAMES, tier_name
from grid.levels import LEVEL_CODES, level_name
from grid.stats import repository as repo
from grid.stats import rollup
from grid.stats.definitions import SILENT_DAYS, Exclusions, Filters, Ratio, hours, narrow
from grid.stats.exceptions import NoDataScope

# Counts of `repository._measures`, in the order the tables show them.
COUNTS = ("received", "concluded", "succeeded", "excluded", "settled", "settled_in_village", "settled_in_township",
          "settled_below_county", "escalated_cases", "escalations", "escalations_by_deadline", "returned_cases",
          "returns", "reopened_cases", "reopens", "extensions", "late_cases", "missed_deadlines", "visited",
          "satisfaction_scored", "satisfied")  # fmt: skip


@dataclass(frozen=True)
class Asked:
    """Who asks (the node paths of their data scope) and what they ask for."""

    scope_paths: tuple[str, ...]
    filters: Filters
    township: str | None = None  # a township's code: only its figures
    exclusions: Exclusions = field(default_factory=Exclusions)


async def _params(conn: Conn, asked: Asked) -> dict[str, Any]:
    """The SQL parameters, after checking the filters; a township outside the caller's
    scope is 'not found', exactly as one that does not exist."""
    if not asked.scope_paths:
        raise NoDataScope("没有可查看的数据范围：统计只对有辖区的账号开放（五长、调解员、调度员、领导）")
    f = asked.filters
    if f.source is not None and f.source not in SOURCE_NAMES:
        names = "、".join(f"{name}（{code}）" for code, name in SOURCE_NAMES.items())
        raise InvalidInput(f"不认识的来源“{f.source}”；可选：{names}", source=f.source)
    if f.tier is not None and f.tier not in {t.value for t in Tier}:
        names = "、".join(f"{tier_name(t)}（{t.value}）" for t in Tier)
        raise InvalidInput(f"不认识的层级“{f.tier}”；可选：{names}", tier=f.tier)
    if f.category is not None and not await repo.category_exists(conn, code=f.category):
        raise InvalidInput(f"不认识的类别“{f.category}”，请用 GET /api/v1/categories 中的编码", category=f.category)
    within = None
    if asked.township is not None:
        node = await repo.node_by_code(conn, code=asked.township)
        if node is not None and node["level"] != "township":
            raise InvalidInput(f"“{asked.township}”是{level_name(node['level'])}，township 参数应填镇（街道）的编码",
                               township=asked.township)  # fmt: skip
        roots = narrow(asked.scope_paths, node["path"]) if node is not None else ()
        if not roots:
            raise NodeNotFound(f"你的辖区内没有编码为“{asked.township}”的镇（街道）", code=asked.township)
        within = node["path"] if node is not None else None
    roots = narrow(asked.scope_paths, within)
    return repo.params(roots=roots, filters=f, exclusions=asked.exclusions, zone=people_time.zone_name())


def measures(row: Mapping[str, Any]) -> dict[str, Any]:
    """The counts of a row, and the rates made of them."""
    out: dict[str, Any] = {k: int(row[k]) for k in COUNTS}
    out["escalations_by_person"] = out["escalations"] - out["escalations_by_deadline"]
    out["success_rate"] = Ratio(out["succeeded"], out["concluded"])
    for where in ("settled_in_village", "settled_in_township", "settled_below_county"):
        out[f"{where}_rate"] = Ratio(out[where], out["settled"])
    out["satisfaction_rate"] = Ratio(out["satisfied"], out["satisfaction_scored"])
    scored = out["satisfaction_scored"]
    out["satisfaction_mean"] = round(int(row["satisfaction_sum"]) / scored, 2) if scored else None
    return out


def _period(asked: Asked) -> dict[str, Any]:
    return {"period_start": asked.filters.period.start, "period_end": asked.filters.period.end}


async def _source(conn: Conn, p: dict[str, Any]) -> rollup.Source:
    """The roll-up where it answers (grid/stats/rollup.py), else the ledger directly; the
    answers are the same either way."""
    src = await rollup.source(conn, roots=p["roots"])
    p["safe_event_id"] = src.safe_event_id
    return src


async def summary(*, conn: Conn, asked: Asked, now: datetime) -> dict[str, Any]:
    p = await _params(conn, asked)
    src = await _source(conn, p)
    row = await repo.summary(conn, filters=asked.filters, p=p, now=now, mode=src.mode)
    return {**_period(asked), "generated_at": now, **src.answer(now), **measures(row), "still_late": int(row["still_late"]),
            **{k: hours(row[k]) for k in ("late_hours_median", "late_hours_max", "accept_hours_median",
                                           "resolve_hours_median")}}  # fmt: skip


async def tiers(*, conn: Conn, asked: Asked, now: datetime) -> dict[str, Any]:
    p = await _params(conn, asked)
    src = await _source(conn, p)
    found = {r["tier"]: r for r in await repo.tiers(conn, filters=asked.filters, p=p, mode=src.mode)}
    rows = []
    for t in Tier:  # every tier, bottom up, even one no case reached
        r: Row = found.get(t.value) or {}
        rows.append({"tier": t.value, "tier_name": tier_name(t.value),
                     **{k: int(r.get(k) or 0) for k in ("cases", "assignments", "accepted", "settled", "failed",
                                                         "escalated", "returned", "missed_deadlines", "late_cases")},
                     "accept_hours_median": hours(r.get("accept_hours_median")),
                     "resolve_hours_median": hours(r.get("resolve_hours_median"))})  # fmt: skip
    return {**_period(asked), "generated_at": now, **src.answer(now), "items": rows}


async def monthly(*, conn: Conn, asked: Asked, now: datetime) -> dict[str, Any]:
    p = await _params(conn, asked)
    src = await _source(conn, p)
    rows = await repo.monthly(conn, filters=asked.filters, p=p, mode=src.mode)
    return {
        **_period(asked),
        "generated_at": now,
        **src.answer(now),
        "items": [{"month": r["month"], **measures(r)} for r in rows],
    }


async def townships(*, conn: Conn, asked: Asked, now: datetime) -> dict[str, Any]:
    p = await _params(conn, asked)
    src = await _source(conn, p)
    rows = await repo.townships(conn, filters=asked.filters, p=p, mode=src.mode)
    return {**_period(asked), "generated_at": now, **src.answer(now),
            "items": [{"code": r["code"], "name": r["name"], **measures(r)} for r in rows]}  # fmt: skip


async def categories(*, conn: Conn, asked: Asked, now: datetime) -> dict[str, Any]:
    p = await _params(conn, asked)
    src = await _source(conn, p)
    rows = await repo.categories(conn, filters=asked.filters, p=p, mode=src.mode)
    return {**_period(asked), "generated_at": now, **src.answer(now),
            "items": [{"code": r["code"], "name": r["name"], **measures(r)} for r in rows]}  # fmt: skip


async def nodes(
    *, conn: Conn, asked: Asked, now: datetime, level: str, silent_days: int = SILENT_DAYS
) -> dict[str, Any]:
    if level not in LEVEL_CODES or level in ("county", "floor"):
        choices = "、".join(f"{level_name(lv)}（{lv}）" for lv in LEVEL_CODES if lv not in ("county", "floor"))
        raise InvalidInput(f"不认识或不能统计的层级“{level}”；可选：{choices}", level=level)
    p = await _params(conn, asked)
    src = await _source(conn, p)
    rows = await repo.nodes(conn, filters=asked.filters, p=p, level=level, silent_days=silent_days, mode=src.mode)
    return {**_period(asked), "generated_at": now, **src.answer(now), "level": level, "level_name": level_name(level),
            "silent_days": silent_days, "silent_count": sum(1 for r in rows if r["silent"]), "items": rows}  # fmt: skip


# The leadership figures' view (grid/stats/leadership.py) checks what is asked the same way.
params = _params

VIEWS = {"summary": summary, "tiers": tiers, "monthly": monthly, "townships": townships, "categories": categories}


def scope_paths(paths: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p for p in paths if p))
