"""The county's figures on a large county: the daily roll-up against the ledger, side by side.

    .venv/bin/python bench/stats.py [--scale 17] [--cases 280000] [--runs 15] [--direct-runs 3] [--keep-db]

Needs DATABASE_URL (eval "$(bash scripts/dev.sh db-env)"). Makes (or, with --keep-db,
reuses) the database wuzhang_bench_stats_s{scale}: the demo county at `--scale`, then a
year of synthetic cases (2025, the county's days) written in bulk with SQL, as the owner.
Generating them through the use cases would take hours, so the rows are made directly,
but as the workflow makes them: report, assign (with body.tier), accept, start_mediation,
resolve or fail, escalate (by a person, or by the worker at a missed deadline, with its
`deadline_missed` step and `case_lateness` row), returns, extensions, return visits with a
score, close; a few cases still open. The ledger's hashes and signatures are placeholders:
the figures never read them (`wuzhang ledger verify` would refuse this database).

Then, as the service connects (wuzhang_app): builds the roll-up (timed), adds a day of new
cases and times the worker's incremental refresh, and times each dashboard view through
grid.stats.service for the whole county over the year, `--runs` times via the roll-up and
`--direct-runs` times computed directly from the cases and the ledger (the same service
with the roll-up switched off), and prints p50/p95 side by side. It also checks that both
paths give the same answers. Nothing asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import _common as c  # first: it puts the project root on sys.path
import numpy as np

from geo import demo
from grid import people_time, service
from grid.db import Conn, fetch_value
from grid.leadership import departments
from grid.stats import rollup
from grid.stats import service as stats
from grid.stats.definitions import Filters, Period, within_hours_bound

YEAR = 2025
ZONE = "Asia/Shanghai"
TIERS = "ARRAY['chief', 'village_house', 'township_hall', 'county_center']"
VIEWS = ("summary", "tiers", "monthly", "townships", "categories", "nodes")

# --- the synthetic year ----------------------------------------------------------------

# Each case follows one path; its share, and its steps: (action, state after, tier of
# its assign (0 entry tier, 1 the next one up, "chief"), when, who (NULL: the system)).
# Times: r (reported), a (hours to accept), m (hours to mediate), all per case.
A, B, C_, D, E = "accepted", "escalated", "failed", "returned", "open"
PATHS: dict[str, tuple[float, list[tuple[Any, ...]]]] = {
    # Settled where it was first sent (some after an extension, some visited).
    A: (0.72, [("accept", "accepted", None, "{r} + {a}"), ("start_mediation", "mediating", None, "{r} + {a}"),
               ("extend", "mediating", None, "{r} + {a} + interval '1 hour'", "{x} < 0.1"),
               ("resolve", "resolved", None, "{r} + {a} + {m}"),
               ("return_visit", "return_visit", None, "{r} + {a} + {m} + interval '3 days'", "{v} < 0.6"),
               ("close", "closed", None, "{r} + {a} + {m} + interval '4 days'")]),
    # Not accepted in time: the worker records the missed deadline and escalates.
    B: (0.10, [("deadline_missed", "assigned", None, "{r} + interval '24 hours'", None, "system"),
               ("escalate", "escalated", None, "{r} + interval '24 hours'", None, "system"),
               ("assign", "assigned", 1, "{r} + interval '24 hours'", None, "system"),
               ("accept", "accepted", None, "{r} + interval '24 hours' + {a}"),
               ("start_mediation", "mediating", None, "{r} + interval '24 hours' + {a}"),
               ("resolve", "resolved", None, "{r} + interval '24 hours' + {a} + {m}"),
               ("return_visit", "return_visit", None, "{r} + interval '24 hours' + {a} + {m} + interval '3 days'", "{v} < 0.6"),
               ("close", "closed", None, "{r} + interval '24 hours' + {a} + {m} + interval '4 days'")]),
    # Mediation failed: a person escalates, the next tier settles (or fails too).
    C_: (0.08, [("accept", "accepted", None, "{r} + {a}"), ("start_mediation", "mediating", None, "{r} + {a}"),
                ("fail", "failed", None, "{r} + {a} + {m}"), ("escalate", "escalated", None, "{r} + {a} + {m} + interval '1 hour'"),
                ("assign", "assigned", 1, "{r} + {a} + {m} + interval '1 hour'", None, "system"),
                ("accept", "accepted", None, "{r} + 2 * {a} + {m}"), ("start_mediation", "mediating", None, "{r} + 2 * {a} + {m}"),
                ("resolve", "resolved", None, "{r} + 2 * {a} + 3 * {m}", "{v} >= 0.1"),
                ("fail", "failed", None, "{r} + 2 * {a} + 3 * {m}", "{v} < 0.1"),
                ("close", "closed", None, "{r} + 2 * {a} + 3 * {m} + interval '4 days'", "{v} >= 0.1")]),
    # Returned (退回) to the chiefs below, who settle it.
    D: (0.04, [("return", "returned", None, "{r} + {a} / 4"),
               ("assign", "assigned", "chief", "{r} + {a} / 4", None, "system"),
               ("accept", "accepted", None, "{r} + {a}"), ("start_mediation", "mediating", None, "{r} + {a}"),
               ("resolve", "resolved", None, "{r} + {a} + {m}"), ("close", "closed", None, "{r} + {a} + {m} + interval '4 days'")]),
    # Still being mediated.
    E: (0.06, [("accept", "accepted", None, "{r} + {a}"), ("start_mediation", "mediating", None, "{r} + {a}")]),
}  # fmt: skip


def _plan_sql(n_cases: int, first_id: int) -> str:
    """One row per case: its place, time, category, source, entry tier, path and randoms."""
    acc, bounds = 0.0, []
    for name, (share, _) in PATHS.items():
        acc += share
        bounds.append(f"WHEN y.u < {acc:.4f} THEN '{name}'")
    return f"""
CREATE TABLE bench_plan AS
WITH cats AS (SELECT array_agg(code ORDER BY code) AS c FROM category),
y AS (
  SELECT g, make_timestamptz({YEAR}, 1, 1, 0, 0, 0, '{ZONE}') + random() * interval '365 days' AS r,
         (0.5 + random() * 20) * interval '1 hour' AS a, (1 + random() * 60) * interval '1 hour' AS m,
         random() AS x, random() AS v, random() AS w, random() AS s, random() AS t, random() AS u, random() AS lk
    FROM generate_series(1, {n_cases}) g
), z AS (
  SELECT y.*, cats.c[1 + floor(y.w * array_length(cats.c, 1))::int] AS category,
         CASE WHEN y.s < 0.7 THEN 'grid' WHEN y.s < 0.8 THEN 'visit' WHEN y.s < 0.9 THEN 'hotline'
              WHEN y.s < 0.97 THEN 'online' ELSE 'handed_down' END AS source,
         CASE WHEN y.t < 0.5 THEN 1 WHEN y.t < 0.8 THEN 2 WHEN y.t < 0.95 THEN 3 ELSE 4 END AS t0,
         CASE {" ".join(bounds)} ELSE '{E}' END AS path
    FROM y, cats
)
SELECT {first_id} + z.g AS id, l.node_id, l.lon, l.lat, z.r, z.a, z.m, z.x, z.v, z.category, z.source, z.t0,
       CASE WHEN z.t0 = 4 AND z.path IN ('{B}', '{C_}') THEN '{A}' ELSE z.path END AS path
  FROM z JOIN bench_leaf l ON l.k = 1 + floor(z.lk * (SELECT count(*) FROM bench_leaf))::int
"""


def _step_sql(path: str, seq: int, step: tuple[Any, ...], reporter: int) -> str:
    action, state, tier, at, *rest = step
    when = rest[0] if rest and rest[0] else "true"
    actor = "NULL::bigint" if len(rest) > 1 and rest[1] == "system" else f"{reporter}::bigint"
    body = "'{}'::jsonb"
    if tier is not None:
        t = "'chief'" if tier == "chief" else f"({TIERS})[LEAST(p.t0 + {tier}, 4)]"
        body = f"jsonb_build_object('tier', {t})"
    if action == "return_visit":
        body = "jsonb_build_object('satisfaction', 1 + floor(p.v * 8)::int % 5)"
    if action == "deadline_missed":
        body = f"jsonb_build_object('deadline_no', 1, 'step', 'accept', 'tier', ({TIERS})[p.t0])"
    names = {"r": "p.r", "a": "p.a", "m": "p.m", "x": "p.x", "v": "p.v"}
    return (
        f"SELECT p.id, '{action}', '{state}', {actor}, {at.format(**names)}, {body}, {when.format(**names)},"
        f" {seq} FROM bench_plan p WHERE p.path = '{path}'"
    )


def _events_sql(reporter: int) -> str:
    """Every step of every case, numbered per case in order (`seq`; steps a case skips left out)."""
    parts = [f"SELECT p.id, 'report', 'reported', {reporter}::bigint, p.r, '{{}}'::jsonb, true, 1 FROM bench_plan p",
             f"SELECT p.id, 'assign', 'assigned', NULL::bigint, p.r, jsonb_build_object('tier', ({TIERS})[p.t0]),"
             " true, 2 FROM bench_plan p"]  # fmt: skip
    for path, (_, path_steps) in PATHS.items():
        parts += [_step_sql(path, 10 + i, s, reporter) for i, s in enumerate(path_steps)]
    steps = "\n  UNION ALL ".join(parts)
    return f"""
INSERT INTO case_event (case_id, seq, actor_person_id, action, from_state, to_state, body, prev_hash, hash,
                        signature, created_at, seal)
SELECT id, row_number() OVER (PARTITION BY id ORDER BY o), actor, action, NULL, state, body,
       repeat('0', 64), repeat('0', 64), 'bench', at, 1
  FROM ({steps}) s (id, action, state, actor, at, body, keep, o)
 WHERE keep
"""


async def fill(url: str, n_cases: int, scale: int) -> None:
    county = demo.generate(scale=scale)
    async with await c.connect(url) as conn:
        async with conn.transaction():
            await service.load_county(conn=conn, county_code=demo.COUNTY_CODE, nodes=county.nodes, posts=county.posts)
            await departments.ensure_standard(conn=conn, county_code=demo.COUNTY_CODE)
        await add_cases(conn, n_cases)
        await conn.execute("VACUUM ANALYZE")


async def add_cases(conn: Conn, n_cases: int) -> None:
    """`n_cases` synthetic cases of the year, with their ledger and lateness (see PATHS)."""
    await conn.execute("SELECT setseed(0.610827)")
    await conn.execute("""CREATE TABLE IF NOT EXISTS bench_leaf AS
SELECT row_number() OVER (ORDER BY n.id) AS k, n.id AS node_id, ST_X(pt) AS lon, ST_Y(pt) AS lat
  FROM node n CROSS JOIN LATERAL ST_PointOnSurface(n.geom) pt WHERE n.level IN ('household', 'unit')""")
    first = int(await fetch_value(conn, "SELECT COALESCE(max(id), 0) FROM case_file"))
    await conn.execute("DROP TABLE IF EXISTS bench_plan")
    await conn.execute(_plan_sql(n_cases, first))
    reporter = await fetch_value(conn, "SELECT min(person_id) FROM post WHERE role = 'chief'")
    rule = await fetch_value(conn, "SELECT version FROM routing_rule_set WHERE active")
    async with conn.transaction():
        await conn.execute(f"""
INSERT INTO case_file (id, county_code, reporter_person_id, idempotency_key, request_hash, category, severity,
                       description, crs, lon_reported, lat_reported, geom, located_node_id, tier, handling_node_id,
                       state, rule_version, reported_at, source, late_count, first_late_at, outcome, satisfaction,
                       closed_at, updated_at)
SELECT p.id, '{demo.COUNTY_CODE}', {reporter}, gen_random_uuid(), md5(p.id::text), p.category, p.t0, '基准测试',
       'wgs84', p.lon, p.lat, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326), p.node_id,
       ({TIERS})[CASE WHEN p.path IN ('{B}', '{C_}') THEN p.t0 + 1 WHEN p.path = '{D}' THEN 1 ELSE p.t0 END],
       p.node_id,
       CASE WHEN p.path = '{E}' THEN 'mediating' WHEN p.path = '{C_}' AND p.v < 0.1 THEN 'failed' ELSE 'closed' END,
       {rule}, p.r, p.source, (p.path = '{B}')::int, CASE WHEN p.path = '{B}' THEN p.r + interval '24 hours' END,
       NULL, CASE WHEN p.path IN ('{A}', '{B}') AND p.v < 0.6 THEN 1 + floor(p.v * 8)::int % 5 END, NULL, p.r
  FROM bench_plan p""")  # fmt: skip
        await conn.execute(_events_sql(reporter))
        await conn.execute(f"""
INSERT INTO case_lateness (case_id, deadline_no, step, tier, due_at, noticed_at)
SELECT p.id, 1, 'accept', ({TIERS})[p.t0], p.r + interval '24 hours', p.r + interval '24 hours'
  FROM bench_plan p WHERE p.path = '{B}'""")  # fmt: skip
        await conn.execute("SELECT setval(pg_get_serial_sequence('case_file', 'id'), (SELECT max(id) FROM case_file))")


# --- timing ----------------------------------------------------------------------------


async def call(conn: Conn, view: str, asked: stats.Asked, now: datetime) -> dict[str, Any]:
    kw = {"level": "grid"} if view == "nodes" else {}
    out: dict[str, Any] = await getattr(stats, view)(conn=conn, asked=asked, now=now, **kw)
    return out


async def times(fn: Callable[[], Awaitable[Any]], runs: int) -> np.ndarray:
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        await fn()
        ms.append((time.perf_counter_ns() - t0) / 1e6)
    return np.asarray(ms)


async def measure(url: str, app_url: str, *, runs: int, direct_runs: int, new_cases: int) -> None:
    people_time.use_zone(ZONE)
    now = datetime(YEAR + 1, 1, 15, tzinfo=UTC)
    async with await c.connect(app_url) as conn:
        n_cases = await fetch_value(conn, "SELECT count(*) FROM case_file")
        n_events = await fetch_value(conn, "SELECT count(*) FROM case_event")
        print(f"  {n_cases:,} cases, {n_events:,} ledger events")
        t0 = time.perf_counter()
        built = await rollup.refresh(conn=conn, now=now, rebuild=True, settle=timedelta(0))
        print(f"  roll-up built from the ledger: {built.cases:,} cases in {time.perf_counter() - t0:.1f} s")
        days = await fetch_value(conn, "SELECT count(*) FROM stats_day")
        hist = await fetch_value(conn, "SELECT count(*) FROM stats_hours")
        print(f"  stats_day: {days:,} rows, stats_hours: {hist:,} rows")
        small = {t: await fetch_value(conn, f"SELECT count(*) FROM {t}")
                 for t in ("stats_county_hours", "stats_tier_month", "stats_grid_month")}  # fmt: skip
        print("  " + ", ".join(f"{t}: {n:,} rows" for t, n in small.items()))
    async with await c.connect(url) as owner:  # a day's new cases, as the ledger would get them
        await add_cases(owner, new_cases)
    async with await c.connect(app_url) as conn:
        county_path = await fetch_value(conn, "SELECT path::text FROM node WHERE level = 'county'")
        asked = stats.Asked(
            scope_paths=(county_path,), filters=Filters(period=Period(date(YEAR, 1, 1), date(YEAR, 12, 31)))
        )
        pending = (await call(conn, "summary", asked, now))["pending_cases"]
        t0 = time.perf_counter()
        done = await rollup.refresh(conn=conn, now=now, settle=timedelta(0))
        print(f"  incremental refresh: {done.cases:,} cases touched ({pending:,} pending before it)"
              f" in {(time.perf_counter() - t0) * 1000:.0f} ms")  # fmt: skip
        await conn.execute(
            "ANALYZE stats_case, stats_stint, stats_late, stats_day, stats_month, stats_hours,"
            " stats_county_hours, stats_tier_month, stats_grid_month"
        )
        rolled_source = rollup.source

        async def direct_source(conn: Conn, *, roots: Any) -> rollup.Source:
            return rollup.Source("direct")

        print(f"\n  {'view':<11} {'roll-up p50':>12} {'p95':>8} {'direct p50':>11} {'p95':>8} {'ratio':>7}  same")
        for view in VIEWS:
            await call(conn, view, asked, now)  # warm the cache and the plan
            fast = await times(functools.partial(call, conn, view, asked, now), runs)
            via_rollup = await call(conn, view, asked, now)
            rollup.source = direct_source
            try:
                slow = await times(functools.partial(call, conn, view, asked, now), direct_runs)
                direct = await call(conn, view, asked, now)
            finally:
                rollup.source = rolled_source
            same = _same(via_rollup, direct)
            f50, f95, s50, s95 = (np.percentile(a, q) for a in (fast, slow) for q in (50, 95))
            print(f"  {view:<11} {f50:>12.1f} {f95:>8.1f} {s50:>11.1f} {s95:>8.1f} {s50 / f50:>6.0f}x  {same}")
        print(f"\n  ms per call through grid.stats.service, whole county, {YEAR}; roll-up runs {runs},"
              f" direct runs {direct_runs}")  # fmt: skip


def _strip(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in ("fresh_as_of", "rolled_up_at", "pending_cases")}


MEDIANS = ("accept_hours_median", "resolve_hours_median")  # read from the histograms: within their bound


def _same(rolled: Any, direct: Any) -> bool:
    """The counts identical, the histogram medians within their bound of the exact ones."""
    if isinstance(rolled, dict) and isinstance(direct, dict):
        rolled, direct = _strip(rolled), _strip(direct)
        if rolled.keys() != direct.keys():
            return False
        return all(within_hours_bound(rolled[k], direct[k]) if k in MEDIANS else _same(rolled[k], direct[k])
                   for k in rolled)  # fmt: skip
    if isinstance(rolled, list) and isinstance(direct, list):
        return len(rolled) == len(direct) and all(_same(r, d) for r, d in zip(rolled, direct, strict=True))
    return bool(rolled == direct)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=17)
    ap.add_argument("--cases", type=int, default=280_000)
    ap.add_argument("--new-cases", type=int, default=700, help="a day's cases added before the incremental refresh")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--direct-runs", type=int, default=3)
    ap.add_argument("--keep-db", action="store_true", help="keep the database, and reuse it next time")
    args = ap.parse_args()

    name = f"wuzhang_bench_stats_s{args.scale}"
    t0 = time.perf_counter()
    if not (args.keep_db and c.database_exists(name)):
        c.drop_database(name)
        url = c.create_database(name)
        c.migrate(url)
        asyncio.run(fill(url, args.cases, args.scale))
        print(f"scale {args.scale}: county and {args.cases:,} cases generated in {time.perf_counter() - t0:.0f} s")
    else:
        url = c.database_url(name)
        c.migrate(url)
        print(f"reusing {name}")
    try:
        asyncio.run(measure(url, c.app_database_url(name), runs=args.runs, direct_runs=args.direct_runs,
                            new_cases=args.new_cases))  # fmt: skip
    finally:
        if not args.keep_db:
            c.drop_database(name)


if __name__ == "__main__":
    main()
