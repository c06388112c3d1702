"""The figures' daily roll-up (grid/stats/rollup.py): it answers exactly as the ledger does,
an incremental refresh leaves what a rebuild leaves, two refreshes at once count nothing
twice, and the answers say how fresh the roll-up is."""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import date, timedelta

import pytest

from app.settings import libpq_url
from grid.cases.exceptions import IllegalAction
from grid.db import connect, fetch_all, fetch_value
from grid.stats import rollup
from grid.stats import service as stats
from grid.stats.definitions import Exclusions, Filters, Period, within_hours_bound
from tests.conftest import app_url
from tests.integration.test_stats import CHOICES, T0, YEAR, County, path_of

VIEWS = ("summary", "tiers", "monthly", "townships", "categories", "nodes")
FRESHNESS = ("fresh_as_of", "rolled_up_at", "pending_cases")
ROLLUP_TABLES = {"stats_case": "id", "stats_stint": "case_id, stint", "stats_late": "case_id, deadline_no, step",
                 "stats_day": "day, township_path, entry_tier, category, source",
                 "stats_month": "month, township_path, entry_tier, category, source",
                 "stats_hours": "month, township_path, tier, measure, bucket",
                 "stats_tier_month": "month, township_path, tier", "stats_grid_month": "month, grid_path",
                 "stats_county_hours": "month, county_path, tier, measure, bucket"}  # fmt: skip


@pytest.fixture
async def county(db, loaded_county, demo_nodes):
    return County(db, loaded_county, demo_nodes, await path_of(db, demo_nodes.county))


async def walk(county, rng, ids, *, steps, clock):
    """A random walk of workflow steps and deadline sweeps over the cases `ids`."""
    for _ in range(steps):
        clock += timedelta(hours=rng.choice((1, 5, 30, 80)))
        action = rng.choice(CHOICES)
        if action == "sweep":
            await county.sweep(clock)
            continue
        fields = {"note": "说明", "agreement_text": "协议", "satisfaction": rng.randint(1, 5)}
        with contextlib.suppress(IllegalAction):  # not possible in this state: the walk goes on
            await county.step(rng.choice(ids), action, clock, **fields)
    return clock


async def report_some(county, rng, n, *, first):
    """`n` reports from households across the county (so several townships), in 2030."""
    picks = rng.sample(range(len(county.households)), n)
    return [await county.report(i, severity=rng.choice((1, 2, 3)), category=rng.choice(("neighbours", "homestead")),
                                at=first + timedelta(hours=rng.randint(0, 24 * 60))) for i in picks]  # fmt: skip


async def answers(db, scope, *, direct, filters=None, exclusions=Exclusions(), township=None):
    """Every view for one caller; `direct`: as if the roll-up had never been built."""
    asked = stats.Asked(scope_paths=(scope,), filters=filters or Filters(period=YEAR), township=township,
                        exclusions=exclusions)  # fmt: skip
    now = T0 + timedelta(days=400)
    out = {}
    async with db.transaction(force_rollback=True):
        if direct:
            await db.execute("UPDATE stats_rollup SET safe_event_id = NULL")
        for view in VIEWS:
            kw = {"level": "village"} if view == "nodes" else {}
            got = await getattr(stats, view)(conn=db, asked=asked, now=now, **kw)
            out[view] = {k: v for k, v in got.items() if k not in FRESHNESS}
    return out


HISTOGRAM_MEDIANS = ("accept_hours_median", "resolve_hours_median")


def same_answers(rolled, direct):
    """Every count identical; the medians read from the histograms (stats_hours) within
    their bound of the exact ones (docs/statistics.md)."""

    def split(x):
        if isinstance(x, dict):
            counts = {k: split(v)[0] for k, v in x.items() if k not in HISTOGRAM_MEDIANS}
            medians = [(k, x[k]) for k in HISTOGRAM_MEDIANS if k in x] + [m for v in x.values() for m in split(v)[1]]
            return counts, medians
        if isinstance(x, list):
            parts = [split(v) for v in x]
            return [c for c, _ in parts], [m for _, ms in parts for m in ms]
        return x, []

    (rc, rm), (dc, dm) = split(rolled), split(direct)
    assert rc == dc
    assert [k for k, _ in rm] == [k for k, _ in dm]
    for (k, got), (_, exact) in zip(rm, dm, strict=True):
        assert within_hours_bound(got, exact), (k, got, exact)


async def refresh(db, at, **kw):
    return await rollup.refresh(conn=db, now=at, settle=timedelta(0), **kw)


async def snapshot(db):
    return {t: await fetch_all(db, f"SELECT * FROM {t} ORDER BY {key}") for t, key in ROLLUP_TABLES.items()}


@pytest.mark.parametrize("seed", [1, 2])
async def test_the_roll_up_answers_as_the_ledger_does_on_random_workflows(county, db, demo_nodes, seed):
    rng = random.Random(seed)
    ids = await report_some(county, rng, 8, first=T0)
    clock = await walk(county, rng, ids, steps=30, clock=T0 + timedelta(days=61))
    built = await refresh(db, clock)
    assert built.rebuilt and built.cases >= len(ids)
    # More steps after the refresh, and new cases: pending, counted directly.
    ids += await report_some(county, rng, 3, first=clock)
    await walk(county, rng, ids, steps=30, clock=clock + timedelta(days=61))
    township = await path_of(db, demo_nodes.township)
    village = await path_of(db, demo_nodes.village)
    asks = [
        {"scope": county.path},  # the county: the daily rows
        {"scope": county.path, "township": demo_nodes.township},
        {"scope": township, "filters": Filters(period=Period(date(2030, 2, 1), date(2030, 8, 31)), tier="chief")},
        {"scope": county.path, "filters": Filters(period=Period(date(2030, 3, 12), date(2030, 6, 20)))},  # cut months
        {"scope": village},  # finer than a township: the copied cases
        {"scope": county.path, "filters": Filters(period=YEAR, category="homestead"),
         "exclusions": Exclusions(categories=("neighbours",), open_failures=True)},
    ]  # fmt: skip
    for ask in asks:
        same_answers(await answers(db, **ask, direct=False), await answers(db, **ask, direct=True))
    whole = await answers(db, county.path, direct=False)
    assert whole["summary"]["received"] == len(ids), "the walk's cases are all counted"
    assert whole["summary"]["concluded"] + whole["summary"]["escalations"] > 0, "the walk did something"


async def test_an_incremental_refresh_leaves_what_a_rebuild_leaves(county, db):
    rng = random.Random(7)
    ids = await report_some(county, rng, 6, first=T0)
    clock = await walk(county, rng, ids, steps=25, clock=T0 + timedelta(days=61))
    await refresh(db, clock)
    ids += await report_some(county, rng, 2, first=clock)
    clock = await walk(county, rng, ids, steps=25, clock=clock + timedelta(days=61))
    done = await refresh(db, clock)
    assert not done.rebuilt and 0 < done.cases <= len(ids)
    incremental = await snapshot(db)
    assert incremental["stats_day"], "the walk left daily rows"
    rebuilt = await refresh(db, clock, rebuild=True)
    assert rebuilt.rebuilt and await snapshot(db) == incremental


async def test_the_answers_say_how_fresh_the_roll_up_is(county, db):
    asked = stats.Asked(scope_paths=(county.path,), filters=Filters(period=YEAR))
    now = T0 + timedelta(days=100)
    before = await stats.summary(conn=db, asked=asked, now=now)
    assert (before["fresh_as_of"], before["rolled_up_at"], before["pending_cases"]) == (now, None, None)
    built_at = T0 + timedelta(days=2)
    await refresh(db, built_at)
    cid = await county.report(600)
    after = await stats.summary(conn=db, asked=asked, now=now)
    assert (after["rolled_up_at"], after["pending_cases"]) == (built_at, 1)
    assert after["received"] == before["received"] + 1, "a pending case is counted all the same"
    await refresh(db, built_at + timedelta(hours=1))
    caught_up = await stats.tiers(conn=db, asked=asked, now=now)
    assert (caught_up["rolled_up_at"], caught_up["pending_cases"]) == (built_at + timedelta(hours=1), 0)
    assert await fetch_value(db, "SELECT count(*) FROM stats_case WHERE id = %(c)s", {"c": cid}) == 1


async def test_the_watermark_waits_for_transactions_that_may_still_commit(county, db):
    settle = timedelta(seconds=60)
    at = T0 + timedelta(days=3)
    await rollup.refresh(conn=db, now=at, settle=settle)  # built: events signed a minute before are safe
    await county.report(601, at=at)
    newest = await fetch_value(db, "SELECT max(id) FROM case_event")
    first = await rollup.refresh(conn=db, now=at + timedelta(seconds=10), settle=settle)
    assert first.cases == 1 and first.safe_event_id < newest, "seen, not yet safe"
    later = await rollup.refresh(conn=db, now=at + timedelta(seconds=80), settle=settle)
    assert later.safe_event_id < newest, "what was newest at the build is safe now; the report is still settling"
    last = await rollup.refresh(conn=db, now=at + timedelta(seconds=200), settle=settle)
    assert last.safe_event_id == newest


async def test_two_refreshes_at_once_count_nothing_twice(fresh_database, loaded_county, demo_nodes):
    url = libpq_url(app_url(fresh_database))
    one, two = await connect(url), await connect(url, application_name="rollup-two")
    try:
        county = County(one, loaded_county, demo_nodes, await path_of(one, demo_nodes.county))
        rng = random.Random(3)
        ids = await report_some(county, rng, 5, first=T0)
        clock = await walk(county, rng, ids, steps=20, clock=T0 + timedelta(days=61))
        await refresh(one, clock)
        await walk(county, rng, ids, steps=20, clock=clock + timedelta(days=61))
        async with one.transaction():  # the first refresh holds the lock until this commits
            await refresh(one, clock)
            second = asyncio.create_task(refresh(two, clock))
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rollup-two' AND wait_event_type = 'Lock'"
            while not await fetch_value(one, waiting):  # noqa: ASYNC110  (the database says when it waits)
                await asyncio.sleep(0.05)
        await second
        both = await snapshot(one)
        await refresh(one, clock, rebuild=True)
        assert await snapshot(one) == both
    finally:
        await one.close()
        await two.close()
