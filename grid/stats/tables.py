"""The figures as tables with Chinese headers, and their CSV and XLSX files.

CSV is UTF-8 with a byte-order mark, so Excel on Windows reads the Chinese; XLSX is
written with openpyxl. Times are the county's (grid/people_time.py), dates its days.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook

from grid import people_time
from grid.glossary import FIGURE_VIEWS, figure_name
from grid.sheets import append_row, csv_text
from grid.stats import leadership
from grid.stats.definitions import Ratio
from grid.stats.service import COUNTS

# The columns of a row of measures (summary, monthly, townships, categories).
MEASURE_COLUMNS = ("received", "concluded", "succeeded", "success_rate", "excluded", "settled",
                   "settled_in_village", "settled_in_village_rate", "settled_in_township", "settled_in_township_rate",
                   "settled_below_county", "settled_below_county_rate", "escalated_cases", "escalations",
                   "escalations_by_deadline", "escalations_by_person", "returned_cases", "returns", "reopened_cases",
                   "reopens", "extensions", "late_cases", "missed_deadlines", "visited", "satisfaction_scored",
                   "satisfaction_mean", "satisfied", "satisfaction_rate")  # fmt: skip
TIER_COLUMNS = ("tier", "tier_name", "cases", "assignments", "accepted", "settled", "failed", "escalated", "returned",
                "missed_deadlines", "late_cases", "accept_hours_median", "resolve_hours_median")  # fmt: skip
NODE_COLUMNS = ("code", "name", "township_code", "township_name", "reports", "last_report_at", "silent")
SUMMARY_EXTRA = ("still_late", "late_hours_median", "late_hours_max", "accept_hours_median", "resolve_hours_median")


@dataclass(frozen=True)
class Table:
    view: str
    headers: list[str]
    rows: list[list[Any]]

    @property
    def title(self) -> str:
        return FIGURE_VIEWS[self.view]


def cell(value: Any) -> Any:
    """A value as a person reads it in a sheet: a rate as its value, a time in the county's
    zone, a yes/no in words."""
    if isinstance(value, Ratio):
        return value.value
    if isinstance(value, bool):
        return figure_name("yes" if value else "no")
    if isinstance(value, datetime):
        return people_time.full(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def table(view: str, result: Mapping[str, Any]) -> Table:
    """The rows of an export of `result` (what service.<view> answered)."""
    if view == "leadership":  # one long table: section, item, figure, value
        return Table(view, [figure_name(c) for c in leadership.COLUMNS],
                     [[cell(v) for v in row] for row in leadership.rows(dict(result))])  # fmt: skip
    if view == "summary":
        head = [figure_name(k) for k in ("figure", "value", "numerator", "denominator")]
        rows: list[list[Any]] = [[figure_name(k), cell(result[k]), None, None]
                                 for k in ("period_start", "period_end", "generated_at")]  # fmt: skip
        for key in (*MEASURE_COLUMNS, *SUMMARY_EXTRA):
            v = result[key]
            rows.append([figure_name(key), cell(v), *((v.numerator, v.denominator) if isinstance(v, Ratio) else
                                                      (None, None))])  # fmt: skip
        return Table(view, head, rows)
    columns: Sequence[str] = {"tiers": TIER_COLUMNS, "nodes": NODE_COLUMNS, "monthly": ("month", *MEASURE_COLUMNS)}.get(
        view, ("code", "name", *MEASURE_COLUMNS)
    )
    return Table(view, [figure_name(c) for c in columns],
                 [[cell(item[c]) for c in columns] for item in result["items"]])  # fmt: skip


def to_csv(t: Table) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(t.headers)
    for row in t.rows:
        writer.writerow(["" if v is None else csv_text(v) for v in row])
    return buffer.getvalue().encode("utf-8-sig")


def to_xlsx(t: Table) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = t.title
    append_row(sheet, t.headers)
    for row in t.rows:
        append_row(sheet, row)
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


__all__ = ["COUNTS", "Table", "table", "to_csv", "to_xlsx"]
