"""All SQL of the figures. Functions take the connection first; only the roll-up's
(at the end) write.

One place computes what every figure aggregates (`_BASE`): per case (`facts`), from
`case_file` and its ledger, and per assignment of a case to a tier (`stints`). Each
view adds its own final SELECT. Parameters (`params`): the caller's subtrees (`roots`),
the period's bounds (`start`, `end`, timestamptz at the county's midnights), the
filters, the exclusions and the tier sets of docs/statistics.md.

A ledger event's tier is the tier of the latest `assign` before it that names one (every
assignment is an `assign` event whose body carries `tier`); an assignment starts a stint.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from grid.cases.workflow import OPEN
from grid.db import Conn, Row, execute, fetch_all, fetch_one, fetch_value
from grid.levels import level_info
from grid.stats.definitions import (
    HOURS_FLOOR,
    HOURS_GROWTH,
    SETTLED_BELOW_COUNTY,
    SETTLED_IN_TOWNSHIP,
    SETTLED_IN_VILLAGE,
    Exclusions,
    Filters,
    Period,
)


def params(*, roots: Sequence[str], filters: Filters, exclusions: Exclusions, zone: str) -> dict[str, Any]:
    start, end = filters.period.bounds()
    return {
        "roots": list(roots), "start": start, "end": end, "zone": zone,
        "first_day": filters.period.start, "last_day": filters.period.end, **_whole_months(filters.period),
        "tier": filters.tier, "category": filters.category, "source": filters.source,
        "excluded_categories": list(exclusions.categories), "exclude_open_failures": exclusions.open_failures,
        "open_states": sorted(s.value for s in OPEN),
        "village_tiers": list(SETTLED_IN_VILLAGE), "township_tiers": list(SETTLED_IN_TOWNSHIP),
        "below_county_tiers": list(SETTLED_BELOW_COUNTY), **_HOURS_PARAMS,
        "whole_counties": bool(roots) and all("." not in r for r in roots),  # read the county's histograms
    }  # fmt: skip


def _whole_months(period: Period) -> dict[str, Any]:
    """The months the period covers whole: [first_whole_month, after_whole_months), by
    their first days (an empty range when it covers none); the days it cuts from other
    months as two ranges of time, [start, cut_before) and [cut_after, end), so an index
    on a report time reads only them; and `open_month`, the first month that does not
    end by the period's end."""
    first = period.start if period.start.day == 1 else _next_month(period.start)
    after = period.end + timedelta(days=1)
    after = after if after.day == 1 else after.replace(day=1)
    start, end = period.bounds()
    zone = start.tzinfo
    lo, hi = (datetime.combine(d, time(0), tzinfo=zone) for d in (first, max(first, after)))
    return {"first_whole_month": first, "after_whole_months": max(first, after), "cut_before": min(lo, end),
            "cut_after": max(hi, start), "open_month": after, "open_month_at": datetime.combine(after, time(0), tzinfo=zone)}  # fmt: skip


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def _case_filters(filters: Filters) -> str:
    """The filters on the case row itself: its category and where it came from."""
    return (" AND c.category = %(category)s" if filters.category is not None else "") + (
        " AND c.source = %(source)s" if filters.source is not None else ""
    )


# The columns of a case's facts, in the order of `stats_case`.
FACT_COLUMNS = ("id", "category", "source", "state", "open", "reported_at", "satisfaction", "late_count", "place",
                "located", "township_path", "entry_tier", "escalations", "escalations_by_deadline", "returns",
                "reopens", "extensions", "visited_at", "outcome", "outcome_at", "outcome_tier")  # fmt: skip
_FACTS = ", ".join(f"f.{c}" for c in FACT_COLUMNS)
# A stint carries its case's report time and filter columns, so the cohort needs no join.
STINT_COLUMNS = ("case_id", "stint", "tier", "assigned_at", "accepted_at", "resolved_at", "failed", "escalated",
                 "returned", "reported_at", "place", "entry_tier", "category", "source")  # fmt: skip
_STINTS = ", ".join(f"st.{c}" for c in STINT_COLUMNS)


def _base(filters: Filters) -> str:
    """The direct path: the facts and stints of the cases in scope and filters, computed
    from the cases and the ledger."""
    return "\nWITH " + _base_ctes(filters)


def _base_ctes(filters: Filters | None, *, only: str = "", facts: str = "facts", stints: str = "stints") -> str:
    """The per-case facts and the stints of the cases in scope and filters (`filters` None:
    every case, for the roll-up; `only`: a further condition on `case_file c`). A case's
    place is its located node (its handling node when it was reported outside the
    county); its township is the place's ancestor at depth 1."""
    if filters is None:
        where, tier = f"true{only}", ""
    else:
        where = f"COALESCE(ln.path, hn.path) <@ %(roots)s::ltree[]{_case_filters(filters)}{only}"
        tier = " WHERE a.entry_tier = %(tier)s" if filters.tier is not None else ""
    return f"""scoped AS (
  SELECT c.id, c.category, c.source, c.state, c.reported_at, c.satisfaction, c.late_count,
         COALESCE(ln.path, hn.path) AS place, ln.path IS NOT NULL AS located
    FROM case_file c JOIN node hn ON hn.id = c.handling_node_id LEFT JOIN node ln ON ln.id = c.located_node_id
   WHERE {where}
), ev AS (
  SELECT e.case_id, e.seq, e.action, e.actor_person_id, e.created_at, e.body,
         count(*) FILTER (WHERE e.action = 'assign' AND e.body ? 'tier')
           OVER (PARTITION BY e.case_id ORDER BY e.seq) AS stint
    FROM case_event e JOIN scoped s ON s.id = e.case_id
), evt AS (
  SELECT ev.*, first_value(ev.body->>'tier') OVER (PARTITION BY ev.case_id, ev.stint ORDER BY ev.seq) AS tier
    FROM ev
), per_case AS (
  SELECT case_id,
         (array_agg(tier ORDER BY seq) FILTER (WHERE action = 'assign'))[1] AS entry_tier,
         count(*) FILTER (WHERE action = 'escalate') AS escalations,
         count(*) FILTER (WHERE action = 'escalate' AND actor_person_id IS NULL) AS escalations_by_deadline,
         count(*) FILTER (WHERE action = 'return') AS returns,
         count(*) FILTER (WHERE action = 'reopen') AS reopens,
         count(*) FILTER (WHERE action = 'extend') AS extensions,
         max(created_at) FILTER (WHERE action = 'return_visit') AS visited_at
    FROM evt GROUP BY case_id
), outcome AS (
  -- The latest mediation outcome; a reopen after it takes it back until the next one.
  SELECT DISTINCT ON (case_id) case_id, action, created_at, tier
    FROM evt WHERE action IN ('resolve', 'fail', 'reopen')
   ORDER BY case_id, seq DESC
), {facts} AS (
  SELECT s.id, s.category, s.source, s.state, s.state = ANY (%(open_states)s::text[]) AS open, s.reported_at,
         s.satisfaction, s.late_count, s.place, s.located, subpath(s.place, 0, LEAST(2, nlevel(s.place))) AS township_path,
         a.entry_tier, a.escalations, a.escalations_by_deadline, a.returns, a.reopens, a.extensions, a.visited_at,
         CASE WHEN o.action <> 'reopen' THEN o.action END AS outcome,
         CASE WHEN o.action <> 'reopen' THEN o.created_at END AS outcome_at,
         CASE WHEN o.action <> 'reopen' THEN o.tier END AS outcome_tier
    FROM scoped s JOIN per_case a ON a.case_id = s.id LEFT JOIN outcome o ON o.case_id = s.id{tier}
), {stints} AS (
  SELECT v.case_id, v.stint, min(v.tier) AS tier,
         min(v.created_at) FILTER (WHERE v.action = 'assign') AS assigned_at,
         min(v.created_at) FILTER (WHERE v.action = 'accept') AS accepted_at,
         min(v.created_at) FILTER (WHERE v.action = 'resolve') AS resolved_at,
         bool_or(v.action = 'fail') AS failed, bool_or(v.action = 'escalate') AS escalated,
         bool_or(v.action = 'return') AS returned,
         f.reported_at, f.place, f.entry_tier, f.category, f.source
    FROM evt v JOIN {facts} f ON f.id = v.case_id
   WHERE v.stint > 0 GROUP BY v.case_id, v.stint, f.reported_at, f.place, f.entry_tier, f.category, f.source
)"""


def _measures(lo: str, hi: str) -> str:
    """Every count of docs/statistics.md over `facts f`, each dated by its own time:
    received and the process counts by the report, outcomes by the outcome, satisfaction
    by the return visit; the period is [lo, hi)."""
    rep = f"f.reported_at >= {lo} AND f.reported_at < {hi}"
    out = f"f.outcome_at >= {lo} AND f.outcome_at < {hi}"
    vis = f"f.visited_at >= {lo} AND f.visited_at < {hi}"
    counted = ("NOT (f.category = ANY (%(excluded_categories)s::text[]))"
               " AND NOT (%(exclude_open_failures)s AND f.outcome = 'fail' AND f.open)")  # fmt: skip
    settled = f"{out} AND f.outcome = 'resolve'"
    return f"""
  count(*) FILTER (WHERE {rep}) AS received,
  count(*) FILTER (WHERE {out} AND {counted}) AS concluded,
  count(*) FILTER (WHERE {out} AND {counted} AND f.outcome = 'resolve') AS succeeded,
  count(*) FILTER (WHERE {out} AND NOT ({counted})) AS excluded,
  count(*) FILTER (WHERE {settled}) AS settled,
  count(*) FILTER (WHERE {settled} AND f.outcome_tier = ANY (%(village_tiers)s::text[])) AS settled_in_village,
  count(*) FILTER (WHERE {settled} AND f.outcome_tier = ANY (%(township_tiers)s::text[])) AS settled_in_township,
  count(*) FILTER (WHERE {settled} AND f.outcome_tier = ANY (%(below_county_tiers)s::text[]))
    AS settled_below_county,
  count(*) FILTER (WHERE {rep} AND f.escalations > 0) AS escalated_cases,
  coalesce(sum(f.escalations) FILTER (WHERE {rep}), 0)::int AS escalations,
  coalesce(sum(f.escalations_by_deadline) FILTER (WHERE {rep}), 0)::int AS escalations_by_deadline,
  count(*) FILTER (WHERE {rep} AND f.returns > 0) AS returned_cases,
  coalesce(sum(f.returns) FILTER (WHERE {rep}), 0)::int AS returns,
  count(*) FILTER (WHERE {rep} AND f.reopens > 0) AS reopened_cases,
  coalesce(sum(f.reopens) FILTER (WHERE {rep}), 0)::int AS reopens,
  coalesce(sum(f.extensions) FILTER (WHERE {rep}), 0)::int AS extensions,
  count(*) FILTER (WHERE {rep} AND f.late_count > 0) AS late_cases,
  coalesce(sum(f.late_count) FILTER (WHERE {rep}), 0)::int AS missed_deadlines,
  count(*) FILTER (WHERE {vis}) AS visited,
  count(f.satisfaction) FILTER (WHERE {vis}) AS satisfaction_scored,
  coalesce(sum(f.satisfaction) FILTER (WHERE {vis}), 0)::int AS satisfaction_sum,
  count(*) FILTER (WHERE {vis} AND f.satisfaction >= 4) AS satisfied"""


_PERIOD = "%(start)s", "%(end)s"
_TOUCHES = ("(f.reported_at >= %(start)s AND f.reported_at < %(end)s OR f.outcome_at >= %(start)s"
            " AND f.outcome_at < %(end)s OR f.visited_at >= %(start)s AND f.visited_at < %(end)s)")  # fmt: skip
_HOURS = "date_part('epoch', {0}) / 3600"  # a float: extract's numeric is slow to divide and sort


# --- where the facts come from: the ledger directly, or the roll-up ---------------------
#
# `mode` of every view: "direct" computes the facts from the cases and the ledger (`_base`);
# "cases" reads the roll-up's copy of them (stats_case, stats_stint, stats_late); "days"
# also takes the counts from the daily rows (stats_day), which only answers a scope of
# whole townships or the county. In both roll-up modes the cases with a ledger event
# after the roll-up's watermark (`pending`) are computed directly, so the answers are
# those of the direct path, however far behind the worker is.
MODES = ("direct", "cases", "days")

# The additive counts of a daily row, in the order of `stats_day`.
DAY_COUNTS = ("received", "escalated_cases", "escalations", "escalations_by_deadline", "returned_cases", "returns",
              "reopened_cases", "reopens", "extensions", "late_cases", "missed_deadlines", "outcomes", "resolved",
              "failed_open", "resolved_in_village", "resolved_in_township", "resolved_below_county", "visited",
              "satisfaction_scored", "satisfaction_sum", "satisfied")  # fmt: skip
DAY_KEY = ("day", "township_path", "entry_tier", "category", "source")


def _fact_filters(filters: Filters, a: str = "f") -> str:
    """The filters on a copied case (stats_case) or a daily row."""
    out = f" AND {a}.category = %(category)s" if filters.category is not None else ""
    out += f" AND {a}.source = %(source)s" if filters.source is not None else ""
    return out + (f" AND {a}.entry_tier = %(tier)s" if filters.tier is not None else "")


def _rolled_ctes(filters: Filters, *, inline: bool = False) -> str:
    """`facts` and `stints` from the roll-up's copy, with the pending cases computed afresh;
    `inline`: `stints` is not materialized, so that each of its readers' report-time ranges
    reaches the index (a reader of every stint in scope had better share one scan)."""
    stints = "stints AS NOT MATERIALIZED" if inline else "stints AS"
    return f"""pending AS (
  SELECT DISTINCT e.case_id AS id FROM case_event e WHERE e.id > %(safe_event_id)s
), {_base_ctes(filters, only=" AND c.id IN (SELECT id FROM pending)", facts="fresh", stints="fresh_stints")},
stale AS (
  SELECT {_FACTS} FROM stats_case f
   WHERE f.id IN (SELECT id FROM pending) AND f.place <@ %(roots)s::ltree[]{_fact_filters(filters)}
), facts AS (
  SELECT {_FACTS} FROM stats_case f
   WHERE f.place <@ %(roots)s::ltree[]{_fact_filters(filters)} AND f.id NOT IN (SELECT id FROM pending)
  UNION ALL SELECT {_FACTS} FROM fresh f
), {stints} (
  SELECT {_STINTS} FROM stats_stint st
   WHERE st.place <@ %(roots)s::ltree[]{_fact_filters(filters, "st")} AND st.case_id NOT IN (SELECT id FROM pending)
  UNION ALL SELECT {_STINTS} FROM fresh_stints st
)"""


def _ctes(filters: Filters, mode: str, *, inline: bool = False) -> str:
    if mode == "direct":
        return _base(filters)
    out = "\nWITH " + _rolled_ctes(filters, inline=inline)
    return out + (f", {_days(filters)}" if mode == "days" else "")


def _cohort(a: str = "f") -> str:
    return f"{a}.reported_at >= %(start)s AND {a}.reported_at < %(end)s"


def _late(filters: Filters, mode: str, *, done: bool = True) -> str:
    """The missed deadlines of the cases received in the period (a CTE `late`): the tier,
    when each was due and (`done`) when its step was done (NULL: not yet)."""

    def direct(facts: str) -> str:
        if not done:
            return f"SELECT l.case_id, l.tier, l.due_at FROM case_lateness l JOIN {facts} f ON f.id = l.case_id"
        return f"""SELECT l.case_id, l.tier, l.due_at, d.done_at
    FROM case_lateness l JOIN {facts} f ON f.id = l.case_id
    LEFT JOIN LATERAL (SELECT min(e.created_at) AS done_at FROM case_event e
                        WHERE e.case_id = l.case_id AND e.action = l.step AND e.created_at >= l.due_at) d ON true"""

    if mode == "direct":
        return f"late AS (\n  {direct('facts')} WHERE {_cohort()}\n)"
    return f"""late AS (
  SELECT l.case_id, l.tier, l.due_at{", l.done_at" if done else ""} FROM stats_late l
   WHERE {_cohort("l")} AND l.place <@ %(roots)s::ltree[]{_fact_filters(filters, "l")}
     AND l.case_id NOT IN (SELECT id FROM pending)
  UNION ALL {direct("fresh")} WHERE {_cohort()}
)"""


def _day_rows(rel: str, sign: str) -> str:
    """What each case of `rel` (rows of facts) adds to the daily rows, times `sign`: to the
    day of its report, received and the process counts; to the day of its outcome, the
    outcome; to the day of its latest return visit, the visit."""

    def part(at: str, counts: dict[str, str], where: str) -> str:
        cols = ", ".join(
            f"{sign} * COALESCE(({counts[c]})::int, 0) AS {c}" if c in counts else f"0 AS {c}" for c in DAY_COUNTS
        )
        return (f"SELECT (f.{at} AT TIME ZONE %(zone)s)::date AS day, f.township_path,"
                f" COALESCE(f.entry_tier, '') AS entry_tier, f.category, f.source, {cols} FROM {rel} f{where}")  # fmt: skip

    resolved = "f.outcome = 'resolve'"
    reported = {
        "received": "1",
        "escalated_cases": "f.escalations > 0",
        "escalations": "f.escalations",
        "escalations_by_deadline": "f.escalations_by_deadline",
        "returned_cases": "f.returns > 0",
        "returns": "f.returns",
        "reopened_cases": "f.reopens > 0",
        "reopens": "f.reopens",
        "extensions": "f.extensions",
        "late_cases": "f.late_count > 0",
        "missed_deadlines": "f.late_count",
    }
    concluded = {
        "outcomes": "1",
        "resolved": resolved,
        "failed_open": "f.outcome = 'fail' AND f.open",
        "resolved_in_village": f"{resolved} AND f.outcome_tier = ANY (%(village_tiers)s::text[])",
        "resolved_in_township": f"{resolved} AND f.outcome_tier = ANY (%(township_tiers)s::text[])",
        "resolved_below_county": f"{resolved} AND f.outcome_tier = ANY (%(below_county_tiers)s::text[])",
    }
    visited = {"visited": "1", "satisfaction_scored": "f.satisfaction IS NOT NULL",
               "satisfaction_sum": "COALESCE(f.satisfaction, 0)", "satisfied": "f.satisfaction >= 4"}  # fmt: skip
    return "\n  UNION ALL ".join((part("reported_at", reported, ""),
                                  part("outcome_at", concluded, " WHERE f.outcome_at IS NOT NULL"),
                                  part("visited_at", visited, " WHERE f.visited_at IS NOT NULL")))  # fmt: skip


def _days(filters: Filters) -> str:
    """The rows of counts of the period (a CTE `days`): a row per month and key for the
    months it covers whole, the daily rows of the days it cuts from the others, less what
    the pending cases added when they were last rolled up, plus what they add now."""
    cols = ", ".join((*DAY_KEY, *DAY_COUNTS))
    whole = "f.day >= %(first_whole_month)s AND f.day < %(after_whole_months)s"
    keep = f"f.township_path <@ %(roots)s::ltree[]{_fact_filters(filters)}"
    return f"""days AS (
  SELECT f.month AS day, {cols.removeprefix("day, ")} FROM stats_month f
   WHERE f.month >= %(first_whole_month)s AND f.month < %(after_whole_months)s AND {keep}
  UNION ALL SELECT {cols} FROM stats_day f
   WHERE f.day BETWEEN %(first_day)s AND %(last_day)s AND NOT ({whole}) AND {keep}
  UNION ALL SELECT * FROM ({_day_rows("stale", "-1")}) x WHERE x.day BETWEEN %(first_day)s AND %(last_day)s
  UNION ALL SELECT * FROM ({_day_rows("fresh", "1")}) x WHERE x.day BETWEEN %(first_day)s AND %(last_day)s
)"""


def _day_measures() -> str:
    """`_measures`, from daily rows `d` instead of cases."""
    counted = ("CASE WHEN d.category = ANY (%(excluded_categories)s::text[]) THEN 0 ELSE d.outcomes"
               " - CASE WHEN %(exclude_open_failures)s THEN d.failed_open ELSE 0 END END")  # fmt: skip
    same = {"settled": "resolved", "settled_in_village": "resolved_in_village",
            "settled_in_township": "resolved_in_township", "settled_below_county": "resolved_below_county",
            **{c: c for c in ("escalated_cases", "escalations", "escalations_by_deadline", "returned_cases",
                              "returns", "reopened_cases", "reopens", "extensions", "late_cases", "missed_deadlines",
                              "visited", "satisfaction_scored", "satisfaction_sum", "satisfied")}}  # fmt: skip
    out = [
        "COALESCE(sum(d.received), 0)::int AS received",
        f"COALESCE(sum({counted}), 0)::int AS concluded",
        "COALESCE(sum(CASE WHEN d.category = ANY (%(excluded_categories)s::text[]) THEN 0 ELSE d.resolved END),"
        " 0)::int AS succeeded",
        f"COALESCE(sum(d.outcomes - ({counted})), 0)::int AS excluded",
    ]
    out += [f"COALESCE(sum(d.{col}), 0)::int AS {name}" for name, col in same.items()]
    return ",\n  ".join(out)


_HOURS_PARAMS = {"hours_floor": HOURS_FLOOR, "hours_growth": HOURS_GROWTH}


def _hour_rows(rel: str, sign: str, where: str = "true") -> str:
    """What each stint of `rel` (rows of stints) adds to the histograms of hours (stats_hours),
    times `sign`: a row per measure it has, in its bucket (definitions.hours_bucket)."""
    bucket = ("CASE WHEN h.hours < %(hours_floor)s THEN 0"
              " ELSE 1 + floor(ln(h.hours / %(hours_floor)s) / ln(%(hours_growth)s))::int END")  # fmt: skip
    return f"""SELECT date_trunc('month', st.reported_at AT TIME ZONE %(zone)s)::date AS month,
         subpath(st.place, 0, LEAST(2, nlevel(st.place))) AS township_path, COALESCE(st.tier, '') AS tier,
         h.measure, {bucket} AS bucket, {sign} AS n
    FROM {rel} st CROSS JOIN LATERAL (VALUES
         ('accept', date_part('epoch', st.accepted_at - st.assigned_at) / 3600),
         ('resolve', date_part('epoch', st.resolved_at - st.accepted_at) / 3600)) h (measure, hours)
   WHERE h.hours IS NOT NULL AND {where}"""


def _uses_hours(filters: Filters, mode: str) -> bool:
    """The histograms answer the medians, stats_tier_month the funnel and stats_grid_month
    the nodes, in "days" mode without filters (they are kept per township or grid and
    tier only, so they stay small)."""
    return mode == "days" and filters.tier is None and filters.category is None and filters.source is None


_WHOLE = ("st.reported_at >= (%(first_whole_month)s::timestamp AT TIME ZONE %(zone)s)"
          " AND st.reported_at < (%(after_whole_months)s::timestamp AT TIME ZONE %(zone)s)")  # fmt: skip
# The period's days outside its whole months (`_whole_months`), as two ranges an index reads.
_CUT = ("({0}.reported_at >= %(start)s AND {0}.reported_at < %(cut_before)s"
        " OR {0}.reported_at >= %(cut_after)s AND {0}.reported_at < %(end)s)")  # fmt: skip


def _hours() -> str:
    """The histogram rows of the stints received in the period (CTE `hours`): the months it
    covers whole from stats_hours, less what the pending cases' copied stints added there,
    plus what they add now; the days it cuts from the stints themselves."""
    stale = f"st.case_id IN (SELECT id FROM pending) AND st.place <@ %(roots)s::ltree[] AND {_WHOLE}"
    return f"""hours AS (
  SELECT h.tier, h.measure, h.bucket, h.n FROM stats_hours h
   WHERE h.month >= %(first_whole_month)s AND h.month < %(after_whole_months)s
     AND h.township_path <@ %(roots)s::ltree[] AND NOT %(whole_counties)s
  UNION ALL SELECT h.tier, h.measure, h.bucket, h.n FROM stats_county_hours h
   WHERE h.month >= %(first_whole_month)s AND h.month < %(after_whole_months)s
     AND h.county_path = ANY (%(roots)s::ltree[]) AND %(whole_counties)s
  UNION ALL SELECT tier, measure, bucket, n FROM ({_hour_rows("stats_stint", "-1", stale)}) x
  UNION ALL SELECT tier, measure, bucket, n FROM ({_hour_rows("fresh_stints", "1", _WHOLE)}) x
  UNION ALL SELECT tier, measure, bucket, n FROM ({_hour_rows("stints", "1", _CUT.format("st"))}) x
), hist AS (
  SELECT tier, measure, bucket, sum(n) AS n FROM hours GROUP BY tier, measure, bucket HAVING sum(n) <> 0
)"""


# The funnel's counts of a tier (stats_tier_month), each additive over cases.
TIER_COUNTS = ("cases", "assignments", "accepted", "settled", "failed", "escalated", "returned", "missed_deadlines",
               "late_cases")  # fmt: skip
_MONTH = "date_trunc('month', {0}.reported_at AT TIME ZONE %(zone)s)::date"
_TOWNSHIP = "subpath({0}.place, 0, LEAST(2, nlevel({0}.place)))"


def _tier_rows(stints: str, late: str, sign: str, where: str = "true") -> str:
    """What each case adds to the funnel's counts (stats_tier_month), times `sign`: per
    tier, one case, its stints there and what became of them (from `stints`), and its
    missed deadlines there (from `late`: rows with case_id, tier, reported_at, place).
    `where` is on `a`, either relation's row."""
    per_stint = ", ".join(f"{sign} * {e} AS {c}" for c, e in (
        ("assignments", "count(*)"), ("accepted", "count(a.accepted_at)"), ("settled", "count(a.resolved_at)"),
        ("failed", "count(*) FILTER (WHERE a.failed)"), ("escalated", "count(*) FILTER (WHERE a.escalated)"),
        ("returned", "count(*) FILTER (WHERE a.returned)")))  # fmt: skip
    key = f"{_MONTH.format('a')} AS month, {_TOWNSHIP.format('a')} AS township_path"
    return f"""SELECT {key}, COALESCE(a.tier, '') AS tier, {sign} AS cases, {per_stint}, 0 AS missed_deadlines,
       0 AS late_cases
    FROM {stints} a WHERE {where} GROUP BY a.case_id, 1, 2, 3
  UNION ALL SELECT {key}, a.tier, 0, 0, 0, 0, 0, 0, 0, {sign} * count(*), {sign}
    FROM {late} a WHERE {where} GROUP BY a.case_id, 1, 2, 3"""


def _tier_counts() -> str:
    """The funnel's counts per tier of the cases received in the period (CTE `tier_counts`),
    as `_hours` reads the histograms: the whole months from stats_tier_month, less what
    the pending cases added there, plus what they add now; the days it cuts from the
    stints and missed deadlines themselves (`stints`, `late_all`)."""
    whole = _WHOLE.replace("st.", "a.")
    stale = f"a.case_id IN (SELECT id FROM pending) AND a.place <@ %(roots)s::ltree[] AND {whole}"
    cols = ", ".join(TIER_COUNTS)
    return f"""fresh_late AS (
  SELECT l.case_id, l.tier, f.reported_at, f.place FROM case_lateness l JOIN fresh f ON f.id = l.case_id
), late_all AS (
  SELECT l.case_id, l.tier, l.reported_at, l.place FROM stats_late l
   WHERE l.place <@ %(roots)s::ltree[] AND l.case_id NOT IN (SELECT id FROM pending)
  UNION ALL SELECT * FROM fresh_late
), tier_rows AS (
  SELECT t.tier, {cols} FROM stats_tier_month t
   WHERE t.month >= %(first_whole_month)s AND t.month < %(after_whole_months)s
     AND t.township_path <@ %(roots)s::ltree[]
  UNION ALL SELECT tier, {cols} FROM ({_tier_rows("stats_stint", "stats_late", "-1", stale)}) x
  UNION ALL SELECT tier, {cols} FROM ({_tier_rows("fresh_stints", "fresh_late", "1", whole)}) x
  UNION ALL SELECT tier, {cols} FROM ({_tier_rows("stints", "late_all", "1", _CUT.format("a"))}) x
), tier_counts AS (
  SELECT tier, {", ".join(f"sum({c})::int AS {c}" for c in TIER_COUNTS)} FROM tier_rows
   GROUP BY tier HAVING sum(assignments) <> 0
)"""


def _hours_medians(by_tier: bool) -> str:
    """The median of each measure (per tier if `by_tier`) from `hist` (CTE `medians`): the
    middle of the buckets of the two middle stints (one when their number is odd)."""
    grp = "tier" if by_tier else "''"
    rep = ("CASE WHEN {0} = 0 THEN %(hours_floor)s / 2"
           " ELSE %(hours_floor)s * power(%(hours_growth)s, {0} - 0.5) END")  # fmt: skip
    return f"""cum AS (
  SELECT {grp} AS grp, measure, bucket,
         sum(n) OVER (PARTITION BY {grp}, measure ORDER BY bucket) AS upto,
         sum(n) OVER (PARTITION BY {grp}, measure) AS total
    FROM (SELECT {grp} AS tier, measure, bucket, sum(n) AS n FROM hist GROUP BY 1, 2, 3) x
), mid AS (
  SELECT grp, measure, min(bucket) FILTER (WHERE upto >= floor((total + 1) / 2)) AS lo,
         min(bucket) FILTER (WHERE upto >= floor(total / 2) + 1) AS hi
    FROM cum GROUP BY grp, measure
), medians AS (
  SELECT grp, measure, ({rep.format("lo")} + {rep.format("hi")}) / 2 AS median FROM mid
)"""


# --- the views -------------------------------------------------------------------------


async def summary(conn: Conn, *, filters: Filters, p: dict[str, Any], now: datetime, mode: str = "direct") -> Row:
    """The measures over the period, the lateness in hours and the speeds over all tiers."""
    late_hours = _HOURS.format("COALESCE(done_at, %(now)s) - due_at")
    counts = (f"(SELECT {_day_measures()} FROM days d) m" if mode == "days"
              else f"(SELECT {_measures(*_PERIOD)} FROM facts f WHERE {_TOUCHES}) m")  # fmt: skip
    accept = f"""(SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {_HOURS.format("st.accepted_at - st.assigned_at")})
     FROM stints st WHERE {_cohort("st")})"""
    resolve = f"""(SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {_HOURS.format("st.resolved_at - st.accepted_at")})
     FROM stints st WHERE {_cohort("st")})"""
    more = ""
    if _uses_hours(filters, mode):
        more = f", {_hours()}, {_hours_medians(by_tier=False)}"
        accept, resolve = ("(SELECT median FROM medians WHERE measure = 'accept')",
                           "(SELECT median FROM medians WHERE measure = 'resolve')")  # fmt: skip
    sql = f"""{_ctes(filters, mode)}, {_late(filters, mode)}{more}
SELECT m.*, lt.late_hours_median, lt.late_hours_max, lt.still_late,
  {accept} AS accept_hours_median,
  {resolve} AS resolve_hours_median
  FROM {counts},
  (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY h) AS late_hours_median, max(h) AS late_hours_max,
          count(*) FILTER (WHERE done_at IS NULL) AS still_late
     FROM (SELECT {late_hours} AS h, done_at FROM late) x) lt  -- one pass over the missed deadlines
"""
    row = await fetch_one(conn, sql, {**p, "now": now})
    assert row is not None  # an aggregate without GROUP BY always answers one row
    return row


async def tiers(conn: Conn, *, filters: Filters, p: dict[str, Any], mode: str = "direct") -> list[Row]:
    """The funnel: per tier, over the cases received in the period, how many reached it,
    accepted, settled, failed, went up or were returned there, their missed deadlines, and
    the median hours to accept and from accept to resolve."""
    if _uses_hours(filters, mode):  # the roll-up's counts per month and tier, and its histograms
        sql = f"""{_ctes(filters, "cases", inline=True)}, {_tier_counts()}, {_hours()}, {_hours_medians(by_tier=True)}
SELECT c.*, ma.median AS accept_hours_median, mr.median AS resolve_hours_median
  FROM tier_counts c LEFT JOIN medians ma ON ma.grp = c.tier AND ma.measure = 'accept'
  LEFT JOIN medians mr ON mr.grp = c.tier AND mr.measure = 'resolve'
"""
        return await fetch_all(conn, sql, p)
    accept = f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {_HOURS.format('c.accepted_at - c.assigned_at')})"
    resolve = f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {_HOURS.format('c.resolved_at - c.accepted_at')})"
    sql = f"""{_ctes(filters, "cases" if mode == "days" else mode)}, cohort AS (
  SELECT st.* FROM stints st WHERE {_cohort("st")}
), {_late(filters, mode, done=False)}, missed AS (
  SELECT tier, count(*) AS missed_deadlines, count(DISTINCT case_id) AS late_cases FROM late GROUP BY tier
)
SELECT c.tier, count(DISTINCT c.case_id) AS cases, count(*) AS assignments,
       count(c.accepted_at) AS accepted, count(c.resolved_at) AS settled,
       count(*) FILTER (WHERE c.failed) AS failed, count(*) FILTER (WHERE c.escalated) AS escalated,
       count(*) FILTER (WHERE c.returned) AS returned,
       COALESCE(max(m.missed_deadlines), 0)::int AS missed_deadlines, COALESCE(max(m.late_cases), 0)::int AS late_cases,
       {accept} AS accept_hours_median, {resolve} AS resolve_hours_median
  FROM cohort c LEFT JOIN missed m ON m.tier = c.tier
 GROUP BY c.tier
"""
    return await fetch_all(conn, sql, p)


async def monthly(conn: Conn, *, filters: Filters, p: dict[str, Any], mode: str = "direct") -> list[Row]:
    """The measures per county month of the period (months cut to the period's days)."""
    if mode == "days":
        sql = f"""{_ctes(filters, mode)}, months AS (
  SELECT to_char(d, 'YYYY-MM') AS month
    FROM generate_series(date_trunc('month', %(first_day)s::timestamp), %(last_day)s::timestamp,
                         interval '1 month') d
)
SELECT m.month, {_day_measures()}
  FROM months m LEFT JOIN days d ON to_char(d.day, 'YYYY-MM') = m.month
 GROUP BY m.month ORDER BY m.month
"""
        return await fetch_all(conn, sql, p)
    sql = f"""{_ctes(filters, mode)}, months AS (
  SELECT to_char(d, 'YYYY-MM') AS month,
         GREATEST(d AT TIME ZONE %(zone)s, %(start)s) AS lo,
         LEAST((d + interval '1 month') AT TIME ZONE %(zone)s, %(end)s) AS hi
    FROM generate_series(date_trunc('month', %(first_day)s::timestamp), %(last_day)s::timestamp,
                         interval '1 month') d
)
SELECT m.month, {_measures("m.lo", "m.hi")}
  FROM months m LEFT JOIN facts f ON {_TOUCHES}
 GROUP BY m.month ORDER BY m.month
"""
    return await fetch_all(conn, sql, p)


_TOWNSHIPS = ("t.level = 'township' AND t.retired_at IS NULL"
              " AND (t.path <@ %(roots)s::ltree[] OR %(roots)s::ltree[] <@ t.path)")  # fmt: skip


async def townships(conn: Conn, *, filters: Filters, p: dict[str, Any], mode: str = "direct") -> list[Row]:
    """The measures per township of the cases' places (the league table): every live
    township the caller's subtrees reach, with zeros where nothing happened."""
    if mode == "days":
        sql = f"""{_ctes(filters, mode)}
SELECT t.code, t.name, t.level, {_day_measures()}
  FROM node t LEFT JOIN days d ON d.township_path = t.path
 WHERE {_TOWNSHIPS}
 GROUP BY t.code, t.name, t.level ORDER BY t.code
"""
        return await fetch_all(conn, sql, p)
    sql = f"""{_ctes(filters, mode)}
SELECT t.code, t.name, t.level, {_measures(*_PERIOD)}
  FROM node t LEFT JOIN facts f ON f.township_path = t.path AND {_TOUCHES}
 WHERE {_TOWNSHIPS}
 GROUP BY t.code, t.name, t.level ORDER BY t.code
"""
    return await fetch_all(conn, sql, p)


async def categories(conn: Conn, *, filters: Filters, p: dict[str, Any], mode: str = "direct") -> list[Row]:
    if mode == "days":
        # A category is listed when a case of it touches the period, as on the direct path.
        sql = f"""{_ctes(filters, mode)}
SELECT k.code, k.name_zh AS name, {_day_measures()}
  FROM days d JOIN category k ON k.code = d.category
 GROUP BY k.code, k.name_zh, k.sort HAVING sum(d.received) + sum(d.outcomes) + sum(d.visited) > 0
 ORDER BY k.sort, k.code
"""
        return await fetch_all(conn, sql, p)
    sql = f"""{_ctes(filters, mode)}
SELECT k.code, k.name_zh AS name, {_measures(*_PERIOD)}
  FROM facts f JOIN category k ON k.code = f.category
 WHERE {_TOUCHES}
 GROUP BY k.code, k.name_zh, k.sort ORDER BY k.sort, k.code
"""
    return await fetch_all(conn, sql, p)


async def nodes(
    conn: Conn, *, filters: Filters, p: dict[str, Any], level: str, silent_days: int, mode: str = "direct"
) -> list[Row]:
    """Per live node of `level` in the caller's subtrees: the reports located in it during
    the period, its latest report before the period's end, and whether it is silent (no
    report in the `silent_days` before the period's end)."""
    on = "h.at = l.path"
    lvl = """lvl AS (
  SELECT n.id, n.code, n.name, n.path, n.depth FROM node n
   WHERE n.level = %(level)s AND n.retired_at IS NULL AND n.path <@ %(roots)s::ltree[]
)"""
    if mode == "direct":
        category = _case_filters(filters)
        tier = (" AND (SELECT e.body->>'tier' FROM case_event e WHERE e.case_id = c.id AND e.action = 'assign'"
                " ORDER BY e.seq LIMIT 1) = %(tier)s") if filters.tier is not None else ""  # fmt: skip
        head = f"""
WITH {lvl}, hits AS (
  SELECT subpath(ln.path, 0, (SELECT min(depth) FROM lvl) + 1) AS at,
         count(*) FILTER (WHERE c.reported_at >= %(start)s) AS reports,
         max(c.reported_at) AS last_report_at
    FROM case_file c JOIN node ln ON ln.id = c.located_node_id
   WHERE ln.path <@ %(roots)s::ltree[] AND nlevel(ln.path) > (SELECT min(depth) FROM lvl)
     AND c.reported_at < %(end)s{category}{tier}
   GROUP BY 1
)"""
    elif _uses_hours(filters, mode) and level_info(level).depth <= GRID_DEPTH:
        # Whole months' reports and every month's latest before the end's from stats_grid_month;
        # the cut days from the copied cases; the pending cases never copied, afresh.
        d = "(SELECT min(depth) FROM lvl)"
        head = f"""{_ctes(filters, "cases")}, {lvl}, reports AS (
  SELECT subpath(g.grid_path, 0, {d} + 1)::text AS at, g.last_report_at AS at_time,
         CASE WHEN g.month >= %(first_whole_month)s AND g.month < %(after_whole_months)s THEN g.reports ELSE 0 END AS n
    FROM stats_grid_month g
   WHERE g.month < %(open_month)s AND g.grid_path <@ %(roots)s::ltree[] AND nlevel(g.grid_path) > {d}
  UNION ALL SELECT subpath(f.place, 0, {d} + 1)::text, f.reported_at, ({_CUT.format("f")})::int FROM stats_case f
   WHERE ({_CUT.format("f")} OR f.reported_at >= %(open_month_at)s AND f.reported_at < %(end)s)
     AND f.located AND f.place <@ %(roots)s::ltree[] AND nlevel(f.place) > {d}
  UNION ALL SELECT subpath(f.place, 0, {d} + 1)::text, f.reported_at, (f.reported_at >= %(start)s)::int FROM fresh f
   WHERE f.located AND nlevel(f.place) > {d} AND f.reported_at < %(end)s
     AND NOT EXISTS (SELECT 1 FROM stats_case s WHERE s.id = f.id)
), hits AS (  -- only the level's nodes; as text, which hashes (an ltree sorts, slowly)
  SELECT r.at, sum(r.n) AS reports, max(r.at_time) AS last_report_at
    FROM reports r WHERE r.at IN (SELECT path::text FROM lvl) GROUP BY r.at
)"""
        on = "h.at = l.path::text"
    else:
        head = f"""{_ctes(filters, "cases")}, {lvl}, hits AS (
  SELECT subpath(f.place, 0, (SELECT min(depth) FROM lvl) + 1) AS at,
         count(*) FILTER (WHERE f.reported_at >= %(start)s) AS reports,
         max(f.reported_at) AS last_report_at
    FROM facts f
   WHERE f.located AND nlevel(f.place) > (SELECT min(depth) FROM lvl) AND f.reported_at < %(end)s
   GROUP BY 1
)"""
    sql = f"""{head}
SELECT l.code, l.name, t.code AS township_code, t.name AS township_name,
       COALESCE(h.reports, 0)::int AS reports, h.last_report_at,
       (h.last_report_at IS NULL OR h.last_report_at < %(end)s - make_interval(days => %(silent_days)s)) AS silent
  FROM lvl l LEFT JOIN hits h ON {on} LEFT JOIN node t ON t.path = subpath(l.path, 0, LEAST(2, nlevel(l.path)))
 ORDER BY l.code
"""
    return await fetch_all(conn, sql, {**p, "level": level, "silent_days": silent_days})


async def node_by_code(conn: Conn, *, code: str) -> Row | None:
    return await fetch_one(
        conn, "SELECT code, name, level, path::text AS path FROM node WHERE code = %(c)s", {"c": code}
    )


async def category_exists(conn: Conn, *, code: str) -> bool:
    return await fetch_one(conn, "SELECT 1 FROM category WHERE code = %(c)s", {"c": code}) is not None


# --- the roll-up: kept by the worker (grid/stats/rollup.py) ------------------------------


def rollup_params(*, zone: str) -> dict[str, Any]:
    return {"zone": zone, "open_states": sorted(s.value for s in OPEN), "village_tiers": list(SETTLED_IN_VILLAGE),
            "township_tiers": list(SETTLED_IN_TOWNSHIP), "below_county_tiers": list(SETTLED_BELOW_COUNTY),
            **_HOURS_PARAMS}  # fmt: skip


async def rollup_state(conn: Conn, *, lock: bool = False) -> Row:
    """The refresh's one row; `lock`: and hold it, so refreshes take turns."""
    sql = "SELECT * FROM stats_rollup WHERE id = 1" + (" FOR UPDATE" if lock else "")
    row = await fetch_one(conn, sql)
    assert row is not None  # migration 0123 inserted it
    return row


async def newest_event_id(conn: Conn, *, before: datetime | None = None) -> int:
    """The newest ledger event's id (`before`: of those signed before that time), 0 if none."""
    if before is None:
        return int(await fetch_value(conn, "SELECT COALESCE(max(id), 0) FROM case_event"))
    sql = "SELECT COALESCE(max(id), 0) FROM case_event WHERE created_at < %(t)s"
    return int(await fetch_value(conn, sql, {"t": before}))


async def touched_cases(conn: Conn, *, after_event_id: int) -> list[int]:
    rows = await fetch_all(conn, "SELECT DISTINCT case_id FROM case_event WHERE id > %(a)s", {"a": after_event_id})
    return [r["case_id"] for r in rows]


_DAY_COLUMNS = ", ".join((*DAY_KEY, *DAY_COUNTS))


async def _add_days(conn: Conn, *, rel: str, sign: str, p: dict[str, Any]) -> None:
    """Add what the cases of `rel` add to the daily and monthly rows, times `sign`."""
    sums = ", ".join(f"sum({c})" for c in DAY_COUNTS)
    for table, day in (("stats_day", "day"), ("stats_month", "date_trunc('month', day)::date")):
        keys = ", ".join(DAY_KEY).replace("day", day, 1)
        conflict = ", ".join(DAY_KEY).replace("day", "month" if table == "stats_month" else "day", 1)
        adds = ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in DAY_COUNTS)
        sql = f"""INSERT INTO {table} ({conflict}, {", ".join(DAY_COUNTS)})
SELECT {keys}, {sums} FROM ({_day_rows(rel, sign)}) x GROUP BY {keys}
ON CONFLICT ({conflict}) DO UPDATE SET {adds}"""
        await execute(conn, sql, p)


async def _add_hours(conn: Conn, *, rel: str, sign: str, p: dict[str, Any]) -> None:
    """Add what the stints of `rel` add to the histograms of hours, times `sign`."""
    for table, where in (("stats_hours", "township_path"), ("stats_county_hours", "county_path")):
        keys = f"month, {where}, tier, measure, bucket"
        rows = _hour_rows(rel, sign).replace("AS township_path", f"AS {where}", 1)
        if table == "stats_county_hours":
            rows = rows.replace("LEAST(2, nlevel(st.place))", "1", 1)
        await execute(conn, f"""INSERT INTO {table} ({keys}, n)
SELECT {keys}, sum(n) FROM ({rows}) x GROUP BY {keys}
ON CONFLICT ({keys}) DO UPDATE SET n = {table}.n + EXCLUDED.n""", p)  # fmt: skip


async def _add_tiers(conn: Conn, *, stints: str, late: str, sign: str, p: dict[str, Any]) -> None:
    """Add what the cases of `stints` and `late` add to the funnel's counts, times `sign`."""
    keys, cols = "month, township_path, tier", ", ".join(TIER_COUNTS)
    adds = ", ".join(f"{c} = stats_tier_month.{c} + EXCLUDED.{c}" for c in TIER_COUNTS)
    await execute(conn, f"""INSERT INTO stats_tier_month ({keys}, {cols})
SELECT {keys}, {", ".join(f"sum({c})" for c in TIER_COUNTS)} FROM ({_tier_rows(stints, late, sign)}) x GROUP BY {keys}
ON CONFLICT ({keys}) DO UPDATE SET {adds}""", p)  # fmt: skip


# A case's located place cut at this depth (a grid or village) keys stats_grid_month.
GRID_DEPTH = 4


async def _add_grids(conn: Conn, *, cases: str, p: dict[str, Any]) -> None:
    """Add the located reports of `cases` (rows of stats_case) to stats_grid_month. A case
    adds once, when first copied: its place and report time never change."""
    grid = f"subpath(f.place, 0, LEAST({GRID_DEPTH + 1}, nlevel(f.place)))"
    await execute(conn, f"""INSERT INTO stats_grid_month (month, grid_path, reports, last_report_at)
SELECT {_MONTH.format("f")}, {grid}, count(*), max(f.reported_at) FROM {cases} f WHERE f.located GROUP BY 1, 2
ON CONFLICT (month, grid_path) DO UPDATE SET reports = stats_grid_month.reports + EXCLUDED.reports,
  last_report_at = GREATEST(stats_grid_month.last_report_at, EXCLUDED.last_report_at)""", p)  # fmt: skip


async def rollup_cases(conn: Conn, *, ids: Sequence[int] | None, p: dict[str, Any]) -> int:
    """Copy the facts, stints and missed deadlines of the cases `ids` afresh from the ledger
    and move their daily counts (None: every case, the daily rows rebuilt). Idempotent:
    a case copied twice leaves the same rows. The caller holds the refresh's lock."""
    mine = {**p, "ids": list(ids or ())}
    if ids is None:
        for table in ("stats_grid_month", "stats_tier_month", "stats_county_hours", "stats_hours", "stats_month", "stats_day",
                      "stats_late", "stats_stint", "stats_case"):  # fmt: skip
            await execute(conn, f"DELETE FROM {table}")
        only, late_where = "", ""
    else:
        await _add_days(conn, rel="(SELECT * FROM stats_case WHERE id = ANY (%(ids)s))", sign="-1", p=mine)
        await _add_hours(conn, rel="(SELECT * FROM stats_stint WHERE case_id = ANY (%(ids)s))", sign="-1", p=mine)
        await _add_tiers(conn, stints="(SELECT * FROM stats_stint WHERE case_id = ANY (%(ids)s))",
                         late="(SELECT * FROM stats_late WHERE case_id = ANY (%(ids)s))", sign="-1", p=mine)  # fmt: skip
        mine["new_ids"] = await fetch_value(conn, "SELECT COALESCE(array_agg(x), '{}') FROM unnest(%(ids)s::bigint[]) x"
                                                  " WHERE NOT EXISTS (SELECT 1 FROM stats_case f WHERE f.id = x)", mine)  # fmt: skip
        for table, key in (("stats_case", "id"), ("stats_stint", "case_id"), ("stats_late", "case_id")):
            await execute(conn, f"DELETE FROM {table} WHERE {key} = ANY (%(ids)s)", mine)
        only, late_where = " AND c.id = ANY (%(ids)s)", " WHERE l.case_id = ANY (%(ids)s)"
    sql = f"""WITH {_base_ctes(None, only=only)},
copied AS (INSERT INTO stats_case ({", ".join(FACT_COLUMNS)}) SELECT {_FACTS} FROM facts f RETURNING 1),
copied_stints AS (INSERT INTO stats_stint ({", ".join(STINT_COLUMNS)}) SELECT {_STINTS} FROM stints st RETURNING 1)
SELECT (SELECT count(*) FROM copied) AS cases, (SELECT count(*) FROM copied_stints) AS stints"""
    row = await fetch_one(conn, sql, mine)
    await execute(conn, f"""INSERT INTO stats_late (case_id, deadline_no, step, tier, due_at, done_at, reported_at,
                        place, entry_tier, category, source)
SELECT l.case_id, l.deadline_no, l.step, l.tier, l.due_at,
       (SELECT min(e.created_at) FROM case_event e
         WHERE e.case_id = l.case_id AND e.action = l.step AND e.created_at >= l.due_at),
       f.reported_at, f.place, f.entry_tier, f.category, f.source
  FROM case_lateness l JOIN stats_case f ON f.id = l.case_id{late_where}""", mine)  # fmt: skip
    if ids is None:
        sums = ", ".join(f"sum({c})" for c in DAY_COUNTS)
        keys = ", ".join(DAY_KEY)
        await execute(conn, f"INSERT INTO stats_day ({_DAY_COLUMNS}) SELECT {keys}, {sums}"
                            f" FROM ({_day_rows('stats_case', '1')}) x GROUP BY {keys}", mine)  # fmt: skip
        months = keys.replace("day", "date_trunc('month', day)::date", 1)
        await execute(conn, f"INSERT INTO stats_month ({_DAY_COLUMNS.replace('day', 'month', 1)})"
                            f" SELECT {months}, {sums} FROM stats_day GROUP BY {months}")  # fmt: skip
        await _add_hours(conn, rel="stats_stint", sign="1", p=mine)
        await _add_tiers(conn, stints="stats_stint", late="stats_late", sign="1", p=mine)
        await _add_grids(conn, cases="stats_case", p=mine)
    else:
        await _add_days(conn, rel="(SELECT * FROM stats_case WHERE id = ANY (%(ids)s))", sign="1", p=mine)
        await _add_hours(conn, rel="(SELECT * FROM stats_stint WHERE case_id = ANY (%(ids)s))", sign="1", p=mine)
        await _add_tiers(conn, stints="(SELECT * FROM stats_stint WHERE case_id = ANY (%(ids)s))",
                         late="(SELECT * FROM stats_late WHERE case_id = ANY (%(ids)s))", sign="1", p=mine)  # fmt: skip
        await _add_grids(conn, cases="(SELECT * FROM stats_case WHERE id = ANY (%(new_ids)s))", p=mine)
        await execute(conn, "DELETE FROM stats_hours WHERE n = 0")
        await execute(conn, "DELETE FROM stats_county_hours WHERE n = 0")
        await execute(conn, "DELETE FROM stats_tier_month WHERE cases = 0 AND late_cases = 0")
        for table in ("stats_day", "stats_month"):
            await execute(conn, f"DELETE FROM {table} WHERE received = 0 AND outcomes = 0 AND visited = 0")
    assert row is not None
    return int(row["cases"])


async def save_rollup_state(conn: Conn, **values: Any) -> None:
    sets = ", ".join(f"{k} = %({k})s" for k in values)
    await execute(conn, f"UPDATE stats_rollup SET {sets} WHERE id = 1", values)


async def pending_cases(conn: Conn, *, after_event_id: int) -> int:
    sql = "SELECT count(DISTINCT case_id) FROM case_event WHERE id > %(a)s"
    return int(await fetch_value(conn, sql, {"a": after_event_id}))


# --- the leadership figures (grid/stats/leadership.py; issue 12's records) ------------------
# Visits per duty leader, backlog batches and referrals are counted by the SQL behind their
# own endpoints (grid/leadership/repository.py), narrowed by `roots`; the rest is here.
# A case's place is as in `_base`: its located node, else its handling node.

_CASE_PLACE = "case_file c JOIN node hn ON hn.id = c.handling_node_id LEFT JOIN node ln ON ln.id = c.located_node_id"
_IN_ROOTS = "COALESCE(ln.path, hn.path) <@ %(roots)s::ltree[]"


async def hard_cases(conn: Conn, *, p: dict[str, Any], outcomes: Sequence[str]) -> Row:
    """包案 progress over the hard cases reported in the period, as they stand now: owned or
    not, ended by each hard outcome, closed otherwise, ended lawfully, or still open; and
    how many of the five duties each has ticked (`duties_<n>`, n = 0..5)."""
    by_outcome = "".join(f",\n  count(*) FILTER (WHERE c.state = 'closed' AND c.hard_outcome = '{o}') AS {o}"
                         for o in outcomes)  # fmt: skip
    by_duties = "".join(f",\n  count(*) FILTER (WHERE d.n = {n}) AS duties_{n}" for n in range(6))
    sql = f"""
SELECT count(*) AS hard, count(*) FILTER (WHERE c.owner_leader_person_id IS NOT NULL) AS owned,
  count(*) FILTER (WHERE c.state NOT IN ('closed', 'terminated')) AS open,
  count(*) FILTER (WHERE c.state = 'closed' AND c.hard_outcome IS NULL) AS closed_otherwise,
  count(*) FILTER (WHERE c.state = 'terminated') AS terminated{by_outcome}{by_duties}
  FROM {_CASE_PLACE}
  CROSS JOIN LATERAL (SELECT count(*) AS n FROM case_duty k WHERE k.case_id = c.id) d
 WHERE {_IN_ROOTS} AND c.hard AND c.reported_at >= %(start)s AND c.reported_at < %(end)s
"""
    row = await fetch_one(conn, sql, p)
    assert row is not None  # an aggregate without GROUP BY always answers one row
    return row


async def reflows(conn: Conn, *, p: dict[str, Any]) -> Row:
    """倒流 recorded in the period, on backlog cases in the caller's subtrees, by kind."""
    row = await fetch_one(conn, f"""
SELECT count(*) AS reflows, count(*) FILTER (WHERE r.kind = 'reopen') AS reopen,
       count(*) FILTER (WHERE r.kind = 'linked') AS linked
  FROM case_reflow r JOIN {_CASE_PLACE} ON c.id = r.case_id
 WHERE {_IN_ROOTS} AND r.created_at >= %(start)s AND r.created_at < %(end)s
""", p)  # fmt: skip
    assert row is not None
    return row


async def tasks(conn: Conn, *, p: dict[str, Any], today: Any) -> Row:
    """The supervised tasks due on a day of the period, whose place (the owning township,
    else the meeting's node) lies in the caller's subtrees: done in time or late by the
    county's calendar (grid.leadership.meetings.on_time), open, or overdue on `today`."""
    done_day = "(t.done_at AT TIME ZONE %(zone)s)::date"
    row = await fetch_one(conn, f"""
SELECT count(*) AS due, count(t.done_at) AS done,
       count(*) FILTER (WHERE {done_day} <= t.due_on) AS on_time,
       count(*) FILTER (WHERE {done_day} > t.due_on) AS late,
       count(*) FILTER (WHERE t.done_at IS NULL AND t.due_on >= %(today)s) AS open,
       count(*) FILTER (WHERE t.done_at IS NULL AND t.due_on < %(today)s) AS overdue
  FROM meeting_task t JOIN meeting m ON m.id = t.meeting_id JOIN node mn ON mn.id = m.node_id
  LEFT JOIN node tn ON tn.id = t.owner_node_id
 WHERE COALESCE(tn.path, mn.path) <@ %(roots)s::ltree[] AND t.due_on BETWEEN %(first_day)s AND %(last_day)s
""", {**p, "today": today})  # fmt: skip
    assert row is not None
    return row


async def lawful_closures(conn: Conn, *, p: dict[str, Any]) -> list[Row]:
    """依法终结 in the period (a terminated case's `closed_at` is its `terminate` step), per channel."""
    return await fetch_all(conn, f"""
SELECT c.closure_channel AS channel, count(*) AS closed
  FROM {_CASE_PLACE}
 WHERE {_IN_ROOTS} AND c.state = 'terminated' AND c.closed_at >= %(start)s AND c.closed_at < %(end)s
 GROUP BY c.closure_channel
""", p)  # fmt: skip


async def county_code_of(conn: Conn, *, path: str) -> str:
    """The code of the county a node path lies in (the root of its tree)."""
    row = await fetch_one(conn, "SELECT code FROM node WHERE path = subpath(%(p)s::ltree, 0, 1)", {"p": path})
    assert row is not None  # every path starts at its county
    return str(row["code"])
