"""The leadership figures (issue 13, from issue 12's records): visits per duty leader, 包案
progress, backlog batches cleared (清零), reflows (倒流), supervised tasks done in time,
social-assistance referrals and lawful closures (依法终结), for a caller's subtrees and
a period. The definitions in words: docs/statistics.md, "Leadership figures".

One more view beside grid/stats/service.py's, built the same way: the asked period and
township are checked by `service.params`; the SQL is in grid/stats/repository.py, or, for
the figures an endpoint of their own already gives (visits, batches, referrals), the SQL
behind that endpoint in grid/leadership/repository.py, narrowed to the caller's subtrees.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from grid import people_time
from grid.db import Conn
from grid.glossary import (
    ASSISTANCE_GROUP_NAMES,
    ASSISTANCE_TYPE_NAMES,
    CLOSURE_CHANNEL_NAMES,
    FIVE_DUTY_NAMES,
    HARD_OUTCOME_NAMES,
    LEADERSHIP_SECTIONS,
    LEADERSHIP_WORK,
    REFERRAL_OUTCOME_NAMES,
    REFLOW_KIND_NAMES,
    TASK_STATE_NAMES,
    TASK_TIMELINESS_NAMES,
    VISIT_DECISION_NAMES,
    action_name,
    figure_name,
    state_name,
    word,
)
from grid.leadership import assistance, backlog
from grid.leadership import repository as leadership_sql
from grid.leadership.models import CLOSURE_CHANNELS, HARD_OUTCOMES, VISIT_DECISIONS
from grid.stats import repository as repo
from grid.stats import service
from grid.stats.definitions import Ratio

VISIT_COUNTS = ("visits", *VISIT_DECISIONS, "undecided", "resolved_later")
TASK_COUNTS = ("due", "done", "on_time", "late", "open", "overdue")


async def leadership(*, conn: Conn, asked: service.Asked, now: datetime) -> dict[str, Any]:
    """Every leadership figure of the period for the asked subtrees (a township's, if asked)."""
    p = await service.params(conn, asked)
    roots, period = p["roots"], asked.filters.period
    county_code = await repo.county_code_of(conn, path=roots[0])
    visits = await leadership_sql.visit_figures(conn, county_code=county_code, first=period.start, last=period.end,
                                                roots=roots)  # fmt: skip
    batches = [backlog.progress(r) for r in await leadership_sql.batches(conn, county_code=county_code, roots=roots,
                                                                         before=p["end"])]  # fmt: skip
    referrals = await assistance.summary(conn=conn, county_code=county_code, roots=roots, start=p["start"],
                                         end=p["end"])  # fmt: skip
    hard = await repo.hard_cases(conn, p=p, outcomes=HARD_OUTCOMES)
    tasks = await repo.tasks(conn, p=p, today=people_time.local_date(now))
    closed = {r["channel"]: int(r["closed"]) for r in await repo.lawful_closures(conn, p=p)}
    reflows = await repo.reflows(conn, p=p)
    task_counts = {k: int(tasks[k]) for k in TASK_COUNTS}
    return {
        "period_start": period.start, "period_end": period.end, "generated_at": now,
        # Counted from the records directly, never from the daily roll-up: fresh as of now.
        "fresh_as_of": now, "rolled_up_at": None, "pending_cases": None,
        "visits": {"items": visits, **{k: sum(int(v[k]) for v in visits) for k in VISIT_COUNTS}},
        "ownership": _ownership(hard),
        "batches": {"items": batches, "batches": len(batches), "batches_cleared": sum(b["cleared"] for b in batches)},
        "reflows": {k: int(reflows[k]) for k in ("reflows", "reopen", "linked")},
        # In time of those whose timeliness is known: done (either way), or overdue and not done.
        "tasks": {**task_counts, "on_time_rate": Ratio(task_counts["on_time"],
                                                       task_counts["done"] + task_counts["overdue"])},
        "referrals": {
            "types": [{**r, "type_name": word(ASSISTANCE_TYPE_NAMES, r["type"]),
                       "group_name": word(ASSISTANCE_GROUP_NAMES, r["group"]), "amount": float(r["amount"])}
                      for r in referrals],
            **{k: sum(int(r[k]) for r in referrals) for k in ("referred", "approved", "declined")},
            "amount": float(sum((r["amount"] for r in referrals), Decimal(0))),
        },
        "closures": {"lawful_closures": sum(closed.values()),
                     "items": [{"channel": c, "channel_name": word(CLOSURE_CHANNEL_NAMES, c),
                                "lawful_closures": closed.get(c, 0)} for c in CLOSURE_CHANNELS]},
        "names": names(),
    }  # fmt: skip


def _ownership(row: dict[str, Any]) -> dict[str, Any]:
    counts = {k: int(row[k]) for k in ("hard", "owned", "open", "closed_otherwise", "terminated", *HARD_OUTCOMES)}
    return {**counts, "unowned": counts["hard"] - counts["owned"],
            "concluded": sum(counts[o] for o in HARD_OUTCOMES),
            "duties": [{"done": n, "cases": int(row[f"duties_{n}"])} for n in range(len(FIVE_DUTY_NAMES) + 1)]}  # fmt: skip


# --- the export: one long table, a row per figure -----------------------------------------

COLUMNS = ("section", "item", "figure", "value", "numerator", "denominator")
OWNERSHIP_ROWS = ("hard", "owned", "unowned", *HARD_OUTCOMES, "closed_otherwise", "terminated", "hard_open")
BATCH_ROWS = ("batch_total", "batch_resolved", "batch_open", "batch_owned", "reflows", "cleared")


def figure_label(key: str) -> str:
    """A figure's Chinese name, taken from the list it belongs to."""
    if key in VISIT_DECISION_NAMES:
        return VISIT_DECISION_NAMES[key]
    if key in HARD_OUTCOME_NAMES:
        return HARD_OUTCOME_NAMES[key]
    if key in TASK_TIMELINESS_NAMES:
        return TASK_TIMELINESS_NAMES[key]
    if key in ("open", "overdue", "done"):
        return TASK_STATE_NAMES[key]
    if key in ("approved", "declined"):
        return REFERRAL_OUTCOME_NAMES[key]
    if key in REFLOW_KIND_NAMES:
        return REFLOW_KIND_NAMES[key]
    if key == "terminated":
        return state_name(key)
    return figure_name(key)


# The words a page shows beside the figures: the dashboard spells none of its own.
NAMED = (*VISIT_COUNTS, "leader_name", *OWNERSHIP_ROWS, *BATCH_ROWS, "batches", "batches_cleared", "reopen",
         "linked", "tasks_due", *TASK_COUNTS[1:], "on_time_rate", "referred", "approved", "declined", "amount",
         "lawful_closures", "total", "item", "name", "yes", "no")  # fmt: skip


def names() -> dict[str, Any]:
    """The section's title, its parts' names and every figure's name, from the glossary."""
    return {"title": LEADERSHIP_WORK, "sections": dict(LEADERSHIP_SECTIONS),
            "figures": {k: figure_label(k) for k in NAMED}}  # fmt: skip


def rows(result: dict[str, Any]) -> list[list[Any]]:
    """The figures as rows of (section, item, figure, value, numerator, denominator)."""
    out: list[list[Any]] = [["", "", figure_name(k), result[k], None, None]
                            for k in ("period_start", "period_end", "generated_at")]  # fmt: skip

    def add(section: str, item: str, key: str, value: Any) -> None:
        ratio = value if isinstance(value, Ratio) else None
        out.append([LEADERSHIP_SECTIONS[section], item, figure_label(key), value,
                    ratio.numerator if ratio else None, ratio.denominator if ratio else None])  # fmt: skip

    total = figure_name("total")
    v = result["visits"]
    for leader in [*v["items"], {**v, "leader_name": total}]:
        for k in VISIT_COUNTS:
            add("visits", leader["leader_name"], k, leader[k])
    o = {**result["ownership"], "hard_open": result["ownership"]["open"]}
    for k in OWNERSHIP_ROWS:
        add("ownership", "", k, o[k])
    for d in o["duties"]:
        add("ownership", f"{action_name('five_duty')} {d['done']}/{len(FIVE_DUTY_NAMES)}", "hard", d["cases"])
    b = result["batches"]
    for batch in b["items"]:
        named = {"batch_total": batch["total"], "batch_resolved": batch["resolved"], "batch_open": batch["open"],
                 "batch_owned": batch["owned"], "reflows": batch["reflows"], "cleared": batch["cleared"]}  # fmt: skip
        for k in BATCH_ROWS:
            add("batches", batch["label"], k, named[k])
    add("batches", total, "batches", b["batches"])
    add("batches", total, "batches_cleared", b["batches_cleared"])
    for k in ("reflows", "reopen", "linked"):
        add("reflows", "", k, result["reflows"][k])
    for k in (*TASK_COUNTS, "on_time_rate"):
        add("tasks", "", "tasks_due" if k == "due" else k, result["tasks"][k])
    r = result["referrals"]
    for t in [*r["types"], {**r, "type_name": total}]:
        for k in ("referred", "approved", "declined", "amount"):
            add("referrals", t["type_name"], k, t[k])
    for c in [*result["closures"]["items"], {**result["closures"], "channel_name": total}]:
        add("closures", c["channel_name"], "lawful_closures", c["lawful_closures"])
    return out
