"""The quarterly report for the county joint meeting (联席会议): one quarter's figures from
grid/stats/service.py, as a workbook of several sheets (openpyxl) and as the content a
PDF is printed from (app/documents.py, `figures_pdf`).

A quarter is the county's: 2026Q3 is 1 July to 30 September 2026, midnight to midnight in
the county's zone (grid/people_time.py). Every time in the report is the county's.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook

from grid import people_time
from grid.db import Conn
from grid.exceptions import InvalidInput
from grid.glossary import FIGURE_VIEWS, figure_name
from grid.leadership.models import HARD_OUTCOMES
from grid.sheets import append_row
from grid.stats import leadership, service
from grid.stats import repository as repo
from grid.stats.definitions import Exclusions, Filters, Period, Ratio
from grid.stats.tables import Table, cell, table

QUARTER = re.compile(r"(\d{4})[Qq]([1-4])")

# The headline figures, in the order the report states them.
HEADLINE = ("received", "concluded", "succeeded", "success_rate", "settled", "settled_in_village_rate",
            "settled_in_township_rate", "settled_below_county_rate", "escalated_cases", "returned_cases",
            "late_cases", "still_late", "satisfaction_rate")  # fmt: skip
# A place's or a category's row on paper: the columns an A4 page holds (the workbook has all).
PRINTED = ("received", "concluded", "succeeded", "success_rate", "settled_in_village_rate",
           "settled_in_township_rate", "escalated_cases", "late_cases")  # fmt: skip
TIER_PRINTED = ("tier_name", "cases", "accepted", "settled", "failed", "escalated", "returned", "late_cases",
                "accept_hours_median", "resolve_hours_median")  # fmt: skip
LATENESS = ("late_cases", "missed_deadlines", "still_late", "late_hours_median", "late_hours_max",
            "escalations_by_deadline")  # fmt: skip
TIER_LATENESS = ("tier_name", "missed_deadlines", "late_cases", "accept_hours_median")


@dataclass(frozen=True)
class Quarter:
    year: int
    number: int  # 1..4

    @classmethod
    def parse(cls, text: str) -> Quarter:
        m = QUARTER.fullmatch(text.strip())
        if m is None or not 2000 <= int(m[1]) <= 2999:
            raise InvalidInput(f"季度“{text}”的写法不对：请写成年份加 Q 加季度数，例如 2026Q3（2026年7月1日至9月30日）",
                               quarter=text)  # fmt: skip
        return cls(int(m[1]), int(m[2]))

    @property
    def code(self) -> str:
        return f"{self.year}Q{self.number}"

    @property
    def period(self) -> Period:
        first = date(self.year, 3 * self.number - 2, 1)
        after = date(self.year + 1, 1, 1) if self.number == 4 else date(self.year, 3 * self.number + 1, 1)
        return Period(first, date.fromordinal(after.toordinal() - 1))

    @property
    def title(self) -> str:
        p = self.period
        return f"{self.year}年第{'一二三四'[self.number - 1]}季度（{p.start.isoformat()}至{p.end.isoformat()}）"


@dataclass(frozen=True)
class QuarterReport:
    quarter: Quarter
    place: str  # the county's or a township's name
    generated_at: datetime
    summary: dict[str, Any]
    tiers: dict[str, Any]
    monthly: dict[str, Any]
    townships: dict[str, Any]
    categories: dict[str, Any]
    leadership: dict[str, Any]  # grid/stats/leadership.py: a sheet and a section of their own

    @property
    def unfinished(self) -> bool:
        """The quarter is not over yet: its figures run to the time of the report."""
        return people_time.local_date(self.generated_at) <= self.quarter.period.end

    @property
    def title(self) -> str:
        return f"{self.place}矛盾纠纷调处工作季度报告"


async def build(*, conn: Conn, scope_paths: Sequence[str], quarter: Quarter, now: datetime, place: str,
                township: str | None = None, exclusions: Exclusions = Exclusions()) -> QuarterReport:  # fmt: skip
    """The quarter's figures for the caller's scope (narrowed to `township` if given; a
    township outside it is NodeNotFound, as in every view). `place` names the scope."""
    asked = service.Asked(scope_paths=tuple(scope_paths), filters=Filters(period=quarter.period), township=township,
                          exclusions=exclusions)  # fmt: skip
    views = {name: await view(conn=conn, asked=asked, now=now) for name, view in service.VIEWS.items()}
    views["leadership"] = await leadership.leadership(conn=conn, asked=asked, now=now)
    if township is not None and views["townships"]["items"]:
        place = views["townships"]["items"][0]["name"]
    return QuarterReport(quarter=quarter, place=place, generated_at=now, **views)


async def county_scope(conn: Conn, *, county_code: str) -> tuple[str, ...]:
    """The county's whole tree: the command line's scope (it runs for the county)."""
    node = await repo.node_by_code(conn, code=county_code)
    return (node["path"],) if node is not None else ()


# --- what the report says ----------------------------------------------------------------


def percent(r: Ratio) -> str:
    """'99.22%（127/128）', or '—' when nothing was counted."""
    return "—" if r.value is None else f"{r.value * 100:.2f}%（{r.numerator}/{r.denominator}）"


def shown(value: Any) -> str:
    """A value as printed: a rate in percent, hours with one decimal, nothing as '—'."""
    if isinstance(value, Ratio):
        return "—" if value.value is None else f"{value.value * 100:.2f}%"
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(cell(value))


def headline(r: QuarterReport) -> list[tuple[str, str]]:
    """(figure name, value) of the headline figures; a rate with what it divides."""
    s = r.summary
    return [(figure_name(k), percent(s[k]) if isinstance(s[k], Ratio) else shown(s[k])) for k in HEADLINE]


def printed(rows: Sequence[dict[str, Any]], columns: Sequence[str], first: str = "name") -> list[list[str]]:
    """A table for paper: Chinese headers, then one line per row."""
    head = [figure_name(first), *(figure_name(c) for c in columns)]
    return [head, *([shown(row[first]), *(shown(row[c]) for c in columns)] for row in rows)]


def lateness_table(r: QuarterReport) -> Table:
    """Lateness: the quarter's totals, then per tier."""
    rows: list[list[Any]] = [[figure_name(k), cell(r.summary[k])] for k in LATENESS]
    rows.append([])
    rows.append([figure_name(c) for c in TIER_LATENESS])
    rows += [[cell(t[c]) for c in TIER_LATENESS] for t in r.tiers["items"]]
    return Table("lateness", [figure_name("figure"), figure_name("value")], rows)


def printed_lateness(r: QuarterReport) -> tuple[list[list[str]], list[list[str]]]:
    """Lateness on paper: the totals, and per tier."""
    totals = [[figure_name("figure"), figure_name("value")], *([figure_name(k), shown(r.summary[k])] for k in LATENESS)]
    return totals, printed(r.tiers["items"], TIER_LATENESS[1:], first="tier_name")


def leadership_headline(r: QuarterReport) -> list[tuple[str, str]]:
    """(figure name, value) of the leadership figures on paper; the workbook has them all."""
    f = r.leadership
    picked = [("visits", f["visits"]["visits"]), *((k, f["visits"][k]) for k in ("settle", "own", "resolved_later")),
              ("hard", f["ownership"]["hard"]), *((k, f["ownership"][k]) for k in HARD_OUTCOMES),
              ("hard_open", f["ownership"]["open"]), ("batches", f["batches"]["batches"]),
              ("batches_cleared", f["batches"]["batches_cleared"]), ("reflows", f["reflows"]["reflows"]),
              ("tasks_due", f["tasks"]["due"]), *((k, f["tasks"][k]) for k in ("on_time", "late", "overdue")),
              ("on_time_rate", f["tasks"]["on_time_rate"]), ("referred", f["referrals"]["referred"]),
              ("approved", f["referrals"]["approved"]), ("amount", f["referrals"]["amount"]),
              ("lawful_closures", f["closures"]["lawful_closures"])]  # fmt: skip
    return [(leadership.figure_label(k), percent(v) if isinstance(v, Ratio) else shown(v)) for k, v in picked]


def printed_visits(r: QuarterReport) -> list[list[str]]:
    """Visits per duty leader, on paper."""
    return [[figure_name("leader_name"), *(leadership.figure_label(k) for k in leadership.VISIT_COUNTS)],
            *([shown(v["leader_name"]), *(shown(v[k]) for k in leadership.VISIT_COUNTS)]
              for v in r.leadership["visits"]["items"])]  # fmt: skip


def sheets(r: QuarterReport) -> list[Table]:
    return [table("summary", r.summary), table("tiers", r.tiers), table("townships", r.townships),
            table("categories", r.categories), table("monthly", r.monthly), lateness_table(r),
            table("leadership", r.leadership)]  # fmt: skip


def to_xlsx(r: QuarterReport) -> bytes:
    """The workbook: a sheet per view, Chinese headers, times in the county's zone."""
    book = Workbook()
    first = book.active
    assert first is not None
    book.remove(first)
    for t in sheets(r):
        sheet = book.create_sheet(FIGURE_VIEWS[t.view])
        append_row(sheet, [r.title, r.quarter.title])
        append_row(sheet, [figure_name("generated_at"), people_time.full(r.generated_at)])
        append_row(sheet, t.headers)
        for row in t.rows:
            append_row(sheet, row)
        sheet.freeze_panes = "A4"
    book.properties.title = f"{r.title} {r.quarter.code}"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def file_name(r: QuarterReport, fmt: str) -> str:
    return f"{r.place}_{r.quarter.code}_季度报告.{fmt}"
