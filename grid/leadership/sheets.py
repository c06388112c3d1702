"""Reading the leadership mechanisms' spreadsheets (the duty roster, backlog batches):
the first sheet of an .xlsx, its first row the header, each later row keyed by column.
The header may be written in Chinese or as the codes; a row's number is what the
person sees in Excel (1 is the header)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from grid.exceptions import GridError, InvalidInput

# Reading stops after this many blank rows in a row (a sheet's empty tail).
BLANK_RUN_END = 1000
MAX_COLUMNS = 64


@dataclass(frozen=True)
class SheetRow:
    row: int
    values: dict[str, Any]


def read_xlsx(
    data: bytes, *, name: str, aliases: Mapping[str, str], required: Sequence[str], headers_zh: Mapping[str, str],
    max_rows: int,
) -> list[SheetRow]:  # fmt: skip
    """The data rows of the workbook's first sheet; InvalidInput for a file that is not a
    readable .xlsx, lacks a required column or has more than `max_rows` rows."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            lines = book.worksheets[0].iter_rows(values_only=True, max_col=MAX_COLUMNS)
            return _rows(lines, name=name, aliases=aliases, required=required, headers_zh=headers_zh,
                         max_rows=max_rows)  # fmt: skip
        finally:
            book.close()
    except GridError:
        raise
    except Exception as exc:  # openpyxl raises many kinds (zip, XML, KeyError) for a damaged file
        raise InvalidInput(f"{name}：无法读取这个 .xlsx 文件（{type(exc).__name__}）；请用 Excel 打开确认后另存再导入",
                           file=name) from None  # fmt: skip


def _rows(lines: Any, *, name: str, aliases: Mapping[str, str], required: Sequence[str],
          headers_zh: Mapping[str, str], max_rows: int) -> list[SheetRow]:  # fmt: skip
    lines = iter(lines)
    first = next(lines, None)
    wanted = "、".join(headers_zh[c] for c in required)
    if first is None:
        raise InvalidInput(f"{name} 是空文件：第一行应为表头（{wanted}），下面每行一条", file=name)
    header = [aliases.get(text(h).lower(), text(h)) for h in first]
    missing = [c for c in required if c not in header]
    if missing:
        raise InvalidInput(f"{name}：缺少列 {'、'.join(headers_zh[c] for c in missing)}；第一行（表头）须有{wanted}",
                           file=name, missing=missing)  # fmt: skip
    rows: list[SheetRow] = []
    blank_run = 0
    for number, values in enumerate(lines, start=2):
        if all(text(v) == "" for v in values):
            blank_run += 1
            if blank_run >= BLANK_RUN_END:
                break
            continue
        blank_run = 0
        if number > max_rows + 1:
            raise InvalidInput(f"{name}：第 {number} 行超出了导入上限 {max_rows:,} 行；请分成几个文件分别导入",
                               file=name, row=number, max_rows=max_rows)  # fmt: skip
        rows.append(SheetRow(number, {h: (values[i] if i < len(values) else None) for i, h in enumerate(header)}))
    return rows


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel keeps a phone number typed as a number as 13812345678.0
    return str(value).strip()


def day(value: Any) -> date | None:
    """A calendar day as Excel gives it (a date cell) or as typed (2026-12-03, 2026/12/03, 2026.12.03)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(text(value).replace("/", "-").replace(".", "-"))
    except ValueError:
        return None
