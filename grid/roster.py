"""Roster import: posts (node code, role, name, phone, start date) from CSV or XLSX.

Every row is checked on its own (unknown node, malformed mainland mobile number,
unknown role, bad date) and against the file (two chiefs for one node). By default
the good rows are imported and the bad ones reported; `strict` imports nothing when
any row is bad. A new chief is a handover through `grid.service.hand_over`: the old
post ends and a new one starts, so the history survives.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import psycopg

from grid import people_time, service
from grid.db import Conn
from grid.exceptions import GridError, InvalidInput
from grid.glossary import role_name
from grid.repository import nodes as node_sql
from grid.repository import roster as roster_sql
from grid.sheets import append_row

MOBILE = re.compile(r"^1[3-9]\d{9}$")
COLUMNS = ("node_code", "role", "name", "phone", "start_date")
# Headers as county staff write them.
HEADER_ALIASES = {
    "node_code": "node_code", "code": "node_code", "节点编码": "node_code", "网格编码": "node_code",
    "role": "role", "职务": "role", "角色": "role",
    "name": "name", "姓名": "name",
    "phone": "phone", "mobile": "phone", "电话": "phone", "手机": "phone", "手机号": "phone",
    "start_date": "start_date", "started_at": "start_date", "start": "start_date", "任职日期": "start_date",
    "开始日期": "start_date",
}  # fmt: skip
# The headers an error workbook carries (each one HEADER_ALIASES reads back), and its reason column.
HEADERS_ZH = {"node_code": "节点编码", "role": "职务", "name": "姓名", "phone": "手机号", "start_date": "任职日期"}
ERROR_HEADER = "错误原因"
ROLE_ALIASES = {"chief": "chief", "长": "chief", "负责人": "chief", "deputy": "deputy", "副": "deputy",
                role_name("deputy"): "deputy"}  # fmt: skip


@dataclass(frozen=True)
class RosterRow:
    row: int  # the row number the user sees: 1 is the header, data starts at 2
    values: dict[str, Any]  # as read, for the error workbook


@dataclass(frozen=True)
class RowError:
    row: int
    node_code: str | None
    reason: str


@dataclass
class RosterReport:
    source: str
    strict: bool = False
    dry_run: bool = False
    rows: int = 0
    imported: int = 0  # rows written (posts started, or already current)
    handovers: int = 0  # chief rows that ended a previous chief's post
    unchanged: int = 0  # rows naming who already holds the post
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "error_count": len(self.errors)}


@dataclass(frozen=True)
class _Post:
    row: int
    node_code: str
    role: str
    name: str
    phone: str
    started_at: datetime


# Reading stops after this many blank rows in a row: what follows is a sheet's empty tail
# (a file of 2 million blank rows is read in a moment, not in minutes).
BLANK_RUN_END = 1000
# Columns read from each row: the header's few, with room for a county's own extra ones.
MAX_COLUMNS = 64
# What Excel on a Chinese Windows saves ("CSV" there is GBK; GB18030 is its superset),
# after UTF-8 with or without BOM.
CSV_ENCODINGS = ("utf-8-sig", "gb18030")


def read_roster(path: str | Path, *, name: str | None = None, max_rows: int = 50_000) -> list[RosterRow]:
    """Rows of a .csv (UTF-8 with or without BOM, GBK or GB18030) or .xlsx (first sheet,
    read as a stream), keyed by COLUMNS. `name` is what messages call the file (an upload's
    own name); a data row past row `max_rows` + 1 (WUZHANG_IMPORT_MAX_ROWS) refuses the file."""
    path = Path(path)
    name = name or path.name
    suffix = path.suffix.lower()
    if suffix == ".csv":
        encoding = _csv_encoding(path, name)
        with path.open(encoding=encoding, newline="") as fh:
            return _rows(csv.reader(fh), name, max_rows)
    if suffix == ".xlsx":
        return _xlsx_rows(path, name, max_rows)
    raise InvalidInput(f"{name}：名册应为 .csv 或 .xlsx 文件", file=name)


def _csv_encoding(path: Path, name: str) -> str:
    """The first of CSV_ENCODINGS that decodes the whole file (read in blocks, not at once)."""
    for encoding in CSV_ENCODINGS:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as fh:
                while block := fh.read(1 << 20):
                    decoder.decode(block)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise InvalidInput(f"{name}：无法识别文件的文字编码；请在 Excel 中另存为“CSV UTF-8”或 .xlsx 后重新导入", file=name)


def _xlsx_rows(path: Path, name: str, max_rows: int) -> list[RosterRow]:
    from openpyxl import load_workbook

    try:
        # read_only: the sheet's XML is parsed as a stream, so memory stays flat.
        book = load_workbook(path, read_only=True, data_only=True)
        try:
            return _rows(book.worksheets[0].iter_rows(values_only=True, max_col=MAX_COLUMNS), name, max_rows)
        finally:
            book.close()
    except GridError:
        raise
    except Exception as exc:  # openpyxl raises many kinds (zip, XML, KeyError) for a damaged file
        raise InvalidInput(f"{name}：无法读取这个 .xlsx 文件（{type(exc).__name__}）；请用 Excel 打开确认后另存再导入",
                           file=name) from None  # fmt: skip


def _blank(values: Sequence[Any]) -> bool:
    return all(v is None or str(v).strip() == "" for v in values)


def _rows(table: Iterable[Sequence[Any]], name: str, max_rows: int) -> list[RosterRow]:
    lines = iter(table)
    first = next(lines, None)
    if first is None:
        raise InvalidInput(
            f"{name} 是空文件：第一行应为表头（节点编码、职务、姓名、手机号、任职日期），下面每行一个岗位", file=name
        )
    header = [HEADER_ALIASES.get(str(h or "").strip().lower(), str(h or "").strip()) for h in first]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise InvalidInput(
            f"{name}：缺少列 {'、'.join(HEADERS_ZH[c] for c in missing)}；第一行（表头）须有"
            f"{'、'.join(HEADERS_ZH.values())}（也可写作 {'、'.join(COLUMNS)}）",
            file=name, missing=missing,
        )  # fmt: skip
    rows, blank_run = [], 0
    for number, values in enumerate(lines, start=2):
        if _blank(values):
            blank_run += 1
            if blank_run >= BLANK_RUN_END:
                break  # the sheet's empty tail
            continue
        blank_run = 0
        if number > max_rows + 1:
            raise InvalidInput(
                f"{name}：第 {number} 行超出了导入上限 {max_rows:,} 行（WUZHANG_IMPORT_MAX_ROWS）；"
                "请把名册分成几个文件分别导入，或删去表格末尾多余的行",
                file=name, row=number, max_rows=max_rows,
            )  # fmt: skip
        rows.append(RosterRow(number, {h: (values[i] if i < len(values) else None) for i, h in enumerate(header)}))
    return rows


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel keeps a phone number typed as a number as 13812345678.0
    return str(value).strip()


def _date(value: Any) -> datetime | None:
    """A start date means the day began in the county's time zone."""
    zone = people_time.county_zone()
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return datetime.combine(value, time(), zone)
    text = _text(value).replace("/", "-").replace(".", "-")
    try:
        return datetime.combine(date.fromisoformat(text), time(), zone)
    except ValueError:
        return None


def check_rows(rows: Sequence[RosterRow], *, known_codes: set[str]) -> tuple[list[_Post], list[RowError]]:
    """Split rows into posts to write and row errors (pure: node existence is passed in)."""
    posts: list[_Post] = []
    errors: list[RowError] = []
    chief_rows: dict[str, int] = {}
    for r in rows:
        v = r.values
        code, name, phone = _text(v.get("node_code")), _text(v.get("name")), _text(v.get("phone")).replace(" ", "")
        role = ROLE_ALIASES.get(_text(v.get("role")).lower())
        started = _date(v.get("start_date"))
        reasons = []
        if not code:
            reasons.append("缺少节点编码")
        elif code not in known_codes:
            reasons.append(f"没有编码为“{code}”的网格节点，请核对编码")
        if role is None:
            reasons.append(f"职务“{_text(v.get('role'))}”无法识别：请填“长”（负责人）或“副”（{role_name('deputy')}）")
        if not name:
            reasons.append("缺少姓名")
        if not MOBILE.match(phone):
            reasons.append(f"手机号“{phone}”格式不对：应为 13 到 19 开头的 11 位数字")
        if started is None:
            reasons.append(f"任职日期“{_text(v.get('start_date'))}”不是日期：请写成 2026-03-01 的形式")
        if role == "chief" and code and not reasons:
            if code in chief_rows:
                reasons.append(f"{code} 有两个负责人：第 {chief_rows[code]} 行已填了一个，一个节点只能有一个负责人")
            else:
                chief_rows[code] = r.row
        if reasons:
            errors.append(RowError(r.row, code or None, "；".join(reasons)))
        else:
            assert role is not None and started is not None
            posts.append(_Post(r.row, code, role, name, phone, started))
    return posts, errors


async def import_roster(
    *, conn: Conn, county_code: str, rows: Sequence[RosterRow], source: str, strict: bool = False,
    dry_run: bool = False,
) -> RosterReport:  # fmt: skip
    """Check every row, then write the good ones (none in strict mode if any is bad), in one transaction."""
    report = RosterReport(source=source, strict=strict, dry_run=dry_run, rows=len(rows))
    codes = {_text(r.values.get("node_code")) for r in rows}
    known = await node_sql.live_node_codes(conn, codes=sorted(c for c in codes if c), county_code=county_code)
    posts, report.errors = check_rows(rows, known_codes=known)
    if strict and report.errors:
        return report
    async with conn.transaction() as tx:
        simple, one_by_one = await _split_simple(conn, posts, report)
        # New posts on nodes where nobody is displaced go in bulk; handovers and anything
        # unusual go through hand_over, one savepoint each, so one bad row stays one row.
        await roster_sql.insert_people_and_posts(conn, county_code=county_code, posts=[
            {"node_code": p.node_code, "role": p.role, "name": p.name, "phone": p.phone,
             "started_at": p.started_at, "ended_at": None}
            for p in simple
        ], upsert_people=True)  # fmt: skip
        report.imported += len(simple)
        for post in sorted(one_by_one, key=lambda p: (p.started_at, p.row)):
            try:
                async with conn.transaction():
                    await _write(conn, county_code, post, report)
            except GridError as exc:
                report.errors.append(RowError(post.row, post.node_code, exc.message))
        report.errors.sort(key=lambda e: e.row)
        if strict and report.errors:
            report.imported = report.handovers = report.unchanged = 0
        if dry_run or (strict and report.errors):
            raise psycopg.Rollback(tx)
    return report


async def _split_simple(conn: Conn, posts: Sequence[_Post], report: RosterReport) -> tuple[list[_Post], list[_Post]]:
    """Posts that only add someone (no current chief displaced, person new to the node, each
    node and phone once in the file), and the rest; rows naming who already holds the post
    are counted as unchanged and dropped."""
    current = await roster_sql.current_posts_by_code(conn, codes=sorted({p.node_code for p in posts}))
    held = {(c["node_code"], c["phone"], c["role"]) for c in current}
    on_node = {(c["node_code"], c["phone"]) for c in current}
    with_chief = {c["node_code"] for c in current if c["role"] == "chief"}
    phones = Counter(p.phone for p in posts)
    simple, rest = [], []
    for p in posts:
        if (p.node_code, p.phone, p.role) in held:
            report.unchanged += 1
        elif (
            (p.node_code, p.phone) in on_node
            or (p.role == "chief" and p.node_code in with_chief)
            or phones[p.phone] > 1
        ):
            rest.append(p)
        else:
            simple.append(p)
    return simple, rest


async def _write(conn: Conn, county_code: str, post: _Post, report: RosterReport) -> None:
    node_id = await node_sql.node_id_by_code(conn, code=post.node_code)
    assert node_id is not None
    person = await roster_sql.person_by_phone(conn, phone=post.phone)
    if person is not None and await roster_sql.current_post(conn, node_id=node_id, role=post.role, person_id=person):
        report.unchanged += 1
        return
    had_chief = post.role == "chief" and await roster_sql.current_post(conn, node_id=node_id, role="chief") is not None
    await service.hand_over(
        conn=conn, county_code=county_code, node_code=post.node_code, name=post.name, phone=post.phone,
        role=post.role, at=post.started_at,
    )  # fmt: skip
    report.imported += 1
    report.handovers += int(had_chief)


def write_error_workbook(rows: Iterable[RosterRow], errors: Sequence[RowError], path: str | Path) -> None:
    """The rows as read under Chinese headers the import reads back, with an 错误原因 column:
    fix the marked rows and import the file again."""
    from openpyxl import Workbook
    from openpyxl.styles import PatternFill

    by_row: dict[int, str] = {e.row: e.reason for e in errors}
    book = Workbook(write_only=False)
    sheet = book.active
    sheet.title = "名册错误"
    append_row(sheet, [*HEADERS_ZH.values(), ERROR_HEADER])
    red = PatternFill("solid", fgColor="FFC7CE")
    for r in rows:
        append_row(sheet, [_cell(r.values.get(c)) for c in COLUMNS] + [by_row.get(r.row, "")])
        if r.row in by_row:
            for cell in sheet[sheet.max_row]:
                cell.fill = red
    book.save(path)


async def export_roster(*, conn: Conn, code: str, path: str | Path, counties: Sequence[str] | None = None) -> int:
    """The current posts under `code` as an .xlsx in the import's own columns; returns the rows.

    Importing the file again changes nothing. Phone numbers are personal data: an export
    is a deliberate act of an administrator. The workbook is written in a thread: the
    event loop keeps serving meanwhile.
    """
    await service.node_brief(conn=conn, code=code, counties=counties)  # an admin's: their county's nodes only
    posts = await roster_sql.subtree_current_posts(conn, code=code)
    await asyncio.to_thread(_write_roster_workbook, posts, path)
    return len(posts)


def _write_roster_workbook(posts: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    from openpyxl import Workbook

    # Not write_only: its rows cannot be restyled after append (append_row marks formula-like
    # text); a county's roster (some 9,000 posts) fits in memory easily.
    book = Workbook()
    sheet = book.active
    sheet.title = "roster"
    append_row(sheet, COLUMNS)
    for p in posts:
        append_row(sheet, [p["node_code"], p["role"], p["name"], p["phone"], people_time.local_date(p["started_at"])])
    book.save(path)


def _cell(value: Any) -> Any:
    return value.replace(tzinfo=None) if isinstance(value, datetime) else value
