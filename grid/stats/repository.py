"""All SQL of the figures. Functions take the connection first; none writes.

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
from datetime import datetime
from typing import Any

from grid.cases.workflow import OPEN
from grid.db import Conn, Row, fetch_all, fetch_one
from grid.stats.definitions import (
    SETTLED_BELOW_COUNTY,
    SETTLED_IN_TOWNSHIP,
    SETTLED_IN_VILLAGE,
    Exclusions,
    Filters,
)


def params(*, roots: Sequence[str], filters: Filters, exclusions: Exclusions, zone: str) -> dict[str, Any]:
    start, end = filters.period.bounds()
    return {
        "roots": list(roots), "start": start, "end": end, "zone": zone,
        "first_day": filters.period.start, "last_day": filters.period.end,
        "tier": filters.tier, "category": filters.category, "source": filters.source,
        "excluded_categories": list(exclusions.categories), "exclude_open_failures": exclusions.open_failures,
        "open_states": sorted(s.value for s in OPEN),
        "village_tiers": list(SETTLED_IN_VILLAGE), "township_tiers": list(SETTLED_IN_TOWNSHIP),
        "below_county_tiers": list(SETTLED_BELOW_COUNTY),
    }  # fmt: skip


def _case_filters(filters: Filters) -> str:
    """The filters on the case row itself: its category and where it came from."""
    return (" AND c.category = %(category)s" if filters.category is not None else "") + (
        " AND c.source = %(source)s" if filters.source is not None else ""
    )


def _base(filters: Filters) -> str:
    """The per-case facts and the stints of the cases in scope and filters. A case's place
    is its located node (its handling node when it was reported outside the county); its
    township is the place's ancestor at depth 1."""
    category = _case_filters(filters)
    tier = " WHERE a.entry_tier = %(tier)s" if filters.tier is not None else ""
    return f"""
WITH scoped AS (
  SELECT c.id, c.category, c.state, c.reported_at, c.satisfaction, c.late_count,
         COALESCE(ln.path, hn.path) AS place
    FROM case_file c JOIN node hn ON hn.id = c.handling_node_id LEFT JOIN node ln ON ln.id = c.located_node_id
   WHERE COALESCE(ln.path, hn.path) <@ %(roots)s::ltree[]{category}
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
), facts AS (
  SELECT s.id, s.category, s.state, s.state = ANY (%(open_states)s::text[]) AS open, s.reported_at,
         s.satisfaction, s.late_count, s.place, subpath(s.place, 0, LEAST(2, nlevel(s.place))) AS township_path,
         a.entry_tier, a.escalations, a.escalations_by_deadline, a.returns, a.reopens, a.extensions, a.visited_at,
         CASE WHEN o.action <> 'reopen' THEN o.action END AS outcome,
         CASE WHEN o.action <> 'reopen' THEN o.created_at END AS outcome_at,
         CASE WHEN o.action <> 'reopen' THEN o.tier END AS outcome_tier
    FROM scoped s JOIN per_case a ON a.case_id = s.id LEFT JOIN outcome o ON o.case_id = s.id{tier}
), stints AS (
  SELECT v.case_id, v.stint, min(v.tier) AS tier,
         min(v.created_at) FILTER (WHERE v.action = 'assign') AS assigned_at,
         min(v.created_at) FILTER (WHERE v.action = 'accept') AS accepted_at,
         min(v.created_at) FILTER (WHERE v.action = 'resolve') AS resolved_at,
         bool_or(v.action = 'fail') AS failed, bool_or(v.action = 'escalate') AS escalated,
         bool_or(v.action = 'return') AS returned
    FROM evt v JOIN facts f ON f.id = v.case_id
   WHERE v.stint > 0 GROUP BY v.case_id, v.stint
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
_HOURS = "extract(epoch FROM {0}) / 3600"


async def summary(conn: Conn, *, filters: Filters, p: dict[str, Any], now: datetime) -> Row:
    """The measures over the period, the lateness in hours and the speeds over all tiers."""
    sql = f"""{_base(filters)}, late AS (
  SELECT l.case_id, l.due_at, d.done_at
    FROM case_lateness l JOIN facts f ON f.id = l.case_id
    LEFT JOIN LATERAL (SELECT min(e.created_at) AS done_at FROM case_event e
                        WHERE e.case_id = l.case_id AND e.action = l.step AND e.created_at >= l.due_at) d ON true
   WHERE f.reported_at >= %(start)s AND f.reported_at < %(end)s
)
SELECT {_measures(*_PERIOD)},
  (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {_HOURS.format("COALESCE(done_at, %(now)s) - due_at")})
     FROM late) AS late_hours_median,
  (SELECT max({_HOURS.format("COALESCE(done_at, %(now)s) - due_at")}) FROM late) AS late_hours_max,
  (SELECT count(*) FROM late WHERE done_at IS NULL) AS still_late,
  (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {_HOURS.format("st.accepted_at - st.assigned_at")})
     FROM stints st JOIN facts g ON g.id = st.case_id
    WHERE g.reported_at >= %(start)s AND g.reported_at < %(end)s) AS accept_hours_median,
  (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {_HOURS.format("st.resolved_at - st.accepted_at")})
     FROM stints st JOIN facts g ON g.id = st.case_id
    WHERE g.reported_at >= %(start)s AND g.reported_at < %(end)s) AS resolve_hours_median
  FROM facts f WHERE {_TOUCHES}
"""
    row = await fetch_one(conn, sql, {**p, "now": now})
    assert row is not None  # an aggregate without GROUP BY always answers one row
    return row


async def tiers(conn: Conn, *, filters: Filters, p: dict[str, Any]) -> list[Row]:
    """The funnel: per tier, over the cases received in the period, how many reached it,
    accepted, settled, failed, went up or were returned there, their missed deadlines, and
    the median hours to accept and from accept to resolve."""
    sql = f"""{_base(filters)}, cohort AS (
  SELECT st.* FROM stints st JOIN facts f ON f.id = st.case_id
   WHERE f.reported_at >= %(start)s AND f.reported_at < %(end)s
), missed AS (
  SELECT l.tier, count(*) AS missed_deadlines, count(DISTINCT l.case_id) AS late_cases
    FROM case_lateness l JOIN facts f ON f.id = l.case_id
   WHERE f.reported_at >= %(start)s AND f.reported_at < %(end)s GROUP BY l.tier
)
SELECT c.tier, count(DISTINCT c.case_id) AS cases, count(*) AS assignments,
       count(c.accepted_at) AS accepted, count(c.resolved_at) AS settled,
       count(*) FILTER (WHERE c.failed) AS failed, count(*) FILTER (WHERE c.escalated) AS escalated,
       count(*) FILTER (WHERE c.returned) AS returned,
       COALESCE(max(m.missed_deadlines), 0)::int AS missed_deadlines, COALESCE(max(m.late_cases), 0)::int AS late_cases,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY {_HOURS.format("c.accepted_at - c.assigned_at")})
         AS accept_hours_median,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY {_HOURS.format("c.resolved_at - c.accepted_at")})
         AS resolve_hours_median
  FROM cohort c LEFT JOIN missed m ON m.tier = c.tier
 GROUP BY c.tier
"""
    return await fetch_all(conn, sql, p)


async def monthly(conn: Conn, *, filters: Filters, p: dict[str, Any]) -> list[Row]:
    """The measures per county month of the period (months cut to the period's days)."""
    sql = f"""{_base(filters)}, months AS (
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


async def townships(conn: Conn, *, filters: Filters, p: dict[str, Any]) -> list[Row]:
    """The measures per township of the cases' places (the league table): every live
    township the caller's subtrees reach, with zeros where nothing happened."""
    sql = f"""{_base(filters)}
SELECT t.code, t.name, t.level, {_measures(*_PERIOD)}
  FROM node t LEFT JOIN facts f ON f.township_path = t.path AND {_TOUCHES}
 WHERE t.level = 'township' AND t.retired_at IS NULL
   AND (t.path <@ %(roots)s::ltree[] OR %(roots)s::ltree[] <@ t.path)
 GROUP BY t.code, t.name, t.level ORDER BY t.code
"""
    return await fetch_all(conn, sql, p)


async def categories(conn: Conn, *, filters: Filters, p: dict[str, Any]) -> list[Row]:
    sql = f"""{_base(filters)}
SELECT k.code, k.name_zh AS name, {_measures(*_PERIOD)}
  FROM facts f JOIN category k ON k.code = f.category
 WHERE {_TOUCHES}
 GROUP BY k.code, k.name_zh, k.sort ORDER BY k.sort, k.code
"""
    return await fetch_all(conn, sql, p)


async def nodes(conn: Conn, *, filters: Filters, p: dict[str, Any], level: str, silent_days: int) -> list[Row]:
    """Per live node of `level` in the caller's subtrees: the reports located in it during
    the period, its latest report before the period's end, and whether it is silent (no
    report in the `silent_days` before the period's end)."""
    category = _case_filters(filters)
    tier = (" AND (SELECT e.body->>'tier' FROM case_event e WHERE e.case_id = c.id AND e.action = 'assign'"
            " ORDER BY e.seq LIMIT 1) = %(tier)s") if filters.tier is not None else ""  # fmt: skip
    sql = f"""
WITH lvl AS (
  SELECT n.id, n.code, n.name, n.path, n.depth FROM node n
   WHERE n.level = %(level)s AND n.retired_at IS NULL AND n.path <@ %(roots)s::ltree[]
), hits AS (
  SELECT subpath(ln.path, 0, (SELECT min(depth) FROM lvl) + 1) AS at,
         count(*) FILTER (WHERE c.reported_at >= %(start)s) AS reports,
         max(c.reported_at) AS last_report_at
    FROM case_file c JOIN node ln ON ln.id = c.located_node_id
   WHERE ln.path <@ %(roots)s::ltree[] AND nlevel(ln.path) > (SELECT min(depth) FROM lvl)
     AND c.reported_at < %(end)s{category}{tier}
   GROUP BY 1
)
SELECT l.code, l.name, t.code AS township_code, t.name AS township_name,
       COALESCE(h.reports, 0)::int AS reports, h.last_report_at,
       (h.last_report_at IS NULL OR h.last_report_at < %(end)s - make_interval(days => %(silent_days)s)) AS silent
  FROM lvl l LEFT JOIN hits h ON h.at = l.path LEFT JOIN node t ON t.path = subpath(l.path, 0, LEAST(2, nlevel(l.path)))
 ORDER BY l.code
"""
    return await fetch_all(conn, sql, {**p, "level": level, "silent_days": silent_days})


async def node_by_code(conn: Conn, *, code: str) -> Row | None:
    return await fetch_one(
        conn, "SELECT code, name, level, path::text AS path FROM node WHERE code = %(c)s", {"c": code}
    )


async def category_exists(conn: Conn, *, code: str) -> bool:
    return await fetch_one(conn, "SELECT 1 FROM category WHERE code = %(c)s", {"c": code}) is not None


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
