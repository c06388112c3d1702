"""Keeping the figures' roll-up: the worker's refresh and the read path's choice.

The roll-up (migration 0123) is a copy of each case's facts, stints and missed deadlines,
as the figures' one query computes them, plus their additive counts per county day,
township, entry tier, category and source, the funnel's per month, township and tier, the
located reports per month and grid, and histograms of hours (0124, 0125). A refresh copies afresh only the cases with a
ledger event after the watermark (`safe_event_id`), and moves their daily counts: the old
copy's out, the new one's in. It holds the row lock of `stats_rollup`, so two workers take
turns, and a case copied twice leaves the same rows: nothing is counted twice.

The watermark trails the newest event by `settle`: an event's id is taken when it is
written, but it is seen only when its transaction commits, so a smaller id can appear
after a larger one. An id becomes safe once every transaction that began before it was
seen has had `settle` to commit. Cases with newer events are pending: the read path
computes them directly (grid/stats/repository.py, `_rolled_ctes`), so the answers are
always those of the direct path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from grid import people_time
from grid.db import Conn
from grid.stats import repository as repo

# Longer than any transaction that writes the ledger (a case's step takes milliseconds).
SETTLE = timedelta(seconds=60)


@dataclass(frozen=True)
class Refreshed:
    rebuilt: bool
    cases: int  # cases copied afresh
    safe_event_id: int


async def refresh(*, conn: Conn, now: datetime, rebuild: bool = False, settle: timedelta = SETTLE) -> Refreshed:
    """Bring the roll-up up to date: every case touched since the watermark, or all of them
    when it was never built, was built in another time zone, or `rebuild`."""
    zone = people_time.zone_name()
    p = repo.rollup_params(zone=zone)
    async with conn.transaction():
        state = await repo.rollup_state(conn, lock=True)
        newest = await repo.newest_event_id(conn)
        if rebuild or state["safe_event_id"] is None or state["zone"] != zone:
            cases = await repo.rollup_cases(conn, ids=None, p=p)
            safe = newest if not settle else await repo.newest_event_id(conn, before=now - settle)
            await repo.save_rollup_state(conn, zone=zone, safe_event_id=safe, seen_event_id=newest, seen_at=now,
                                         refreshed_at=now, built_at=now)  # fmt: skip
            return Refreshed(rebuilt=True, cases=cases, safe_event_id=safe)
        ids = await repo.touched_cases(conn, after_event_id=state["safe_event_id"])
        cases = await repo.rollup_cases(conn, ids=ids, p=p) if ids else 0
        safe, seen, seen_at = state["safe_event_id"], state["seen_event_id"], state["seen_at"]
        if not settle:
            safe, seen, seen_at = newest, newest, now
        elif seen_at is None or now - seen_at >= settle:  # what was newest then has had time to commit
            safe, seen, seen_at = max(safe, seen or 0), newest, now
        await repo.save_rollup_state(conn, safe_event_id=safe, seen_event_id=seen, seen_at=seen_at, refreshed_at=now)
        return Refreshed(rebuilt=False, cases=cases, safe_event_id=safe)


@dataclass(frozen=True)
class Source:
    """Where a view's figures come from (repository.MODES) and how fresh the roll-up is."""

    mode: str
    rolled_up_at: datetime | None = None  # the roll-up's last refresh
    pending_cases: int | None = None  # cases with events after its watermark, counted directly
    safe_event_id: int | None = None

    def answer(self, now: datetime) -> dict[str, Any]:
        """What every view says of its freshness: its figures are as of the read (`now`),
        the pending cases being counted directly; and how far the roll-up had got."""
        return {"fresh_as_of": now, "rolled_up_at": self.rolled_up_at, "pending_cases": self.pending_cases}


async def source(conn: Conn, *, roots: Sequence[str]) -> Source:
    """The roll-up when it was built in the county's zone; its daily rows when the scope is
    whole townships or the county (their key is the township); direct otherwise."""
    state = await repo.rollup_state(conn)
    if state["safe_event_id"] is None or state["zone"] != people_time.zone_name():
        return Source("direct")
    whole_townships = all(r.count(".") <= 1 for r in roots)  # a township is at depth 1
    pending = await repo.pending_cases(conn, after_event_id=state["safe_event_id"])
    return Source("days" if whole_townships else "cases", state["refreshed_at"], pending, state["safe_event_id"])
