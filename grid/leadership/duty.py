"""坐班接访: the duty roster. Each of the county's calendar days has at most one county
leader on reception duty, from one of the four county bodies (LEADER_BODY_NAMES). The
petition office (信访局) keeps the roster, by the day or by importing a sheet; everyone
logged in may read it. "Today" is the county's day (grid/people_time.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from grid import people_time
from grid.cases.exceptions import NotResponsible
from grid.db import Conn, Row
from grid.exceptions import GridError, InvalidInput
from grid.glossary import LEADER_BODY_NAMES, role_name, word
from grid.leadership import repository as repo
from grid.leadership.departments import PETITION_OFFICE
from grid.leadership.models import LEADER_BODIES
from grid.leadership.sheets import SheetRow, day, read_xlsx, text

# The longest span one roster read covers.
MAX_SPAN = timedelta(days=366)
COLUMNS = ("day", "leader_phone", "body")
HEADERS_ZH = {"day": "日期", "leader_phone": "领导手机号", "body": "所属班子", "note": "备注"}
HEADER_ALIASES = {
    "day": "day", "date": "day", "日期": "day", "值班日期": "day", "坐班日期": "day",
    "leader_phone": "leader_phone", "phone": "leader_phone", "领导手机号": "leader_phone", "手机号": "leader_phone",
    "body": "body", "所属班子": "body", "班子": "body", "单位": "body",
    "note": "note", "备注": "note",
}  # fmt: skip


class NoDutyLeader(GridError):
    """Nobody is on reception duty that day: a visit cannot be received until the roster says who is."""

    code = "no_duty_leader"


def today(now: datetime) -> date:
    return people_time.local_date(now)


def require_petition_office(*, department_codes: Iterable[str], admin: bool) -> None:
    """The roster and the backlog batches are the petition office's (and the admin's, to set up)."""
    if admin or PETITION_OFFICE in department_codes:
        return
    raise NotResponsible(f"只有信访局的{role_name('department_staff')}或{role_name('admin')}可以做这件事",
                         department=PETITION_OFFICE)  # fmt: skip


def body_code(value: str) -> str | None:
    """A body by its code or its Chinese name (县委, 县人大, 县政府, 县政协)."""
    value = value.strip()
    if value in LEADER_BODIES:
        return value
    return next((code for code, name in LEADER_BODY_NAMES.items() if name == value), None)


def _body_choices() -> str:
    return "、".join(f"{name}（{code}）" for code, name in LEADER_BODY_NAMES.items())


def span(first: date | None, last: date | None, now: datetime, *, back: bool = False) -> tuple[date, date]:
    """[first, last] with defaults (today, and 30 days on; `back`: the 30 days up to today);
    InvalidInput if reversed, too long, or off the calendar."""
    try:
        if back:
            last = last or today(now)
            first = first or last - timedelta(days=30)
        else:
            first = first or today(now)
            last = last or first + timedelta(days=30)
    except OverflowError:
        raise InvalidInput("日期超出了日历范围", first=str(first), last=str(last)) from None
    if last < first or last - first > MAX_SPAN:
        raise InvalidInput(f"日期范围应从 from 到 to（不早于 from），最长 {MAX_SPAN.days} 天",
                           first=first.isoformat(), last=last.isoformat())  # fmt: skip
    return first, last


async def set_day(
    *, conn: Conn, county_code: str, on: date, leader_person_id: int, body: str, note: str | None,
    by_person_id: int, now: datetime,
) -> Row:  # fmt: skip
    """The leader on duty on `on`, replacing whoever was."""
    code = body_code(body)
    if code is None:
        raise InvalidInput(f"所属班子“{body}”无法识别；可选：{_body_choices()}", body=body)
    async with conn.transaction():
        leader = await repo.live_leader(conn, person_id=leader_person_id)
        if leader is None:
            raise InvalidInput(f"坐班领导须是在职的县级{role_name('leader')}（有{role_name('leader')}账号）",
                               leader_person_id=leader_person_id)  # fmt: skip
        await repo.upsert_duty_days(conn, county_code=county_code, person_id=by_person_id, at=now,
                                    rows=[{"day": on, "leader_person_id": leader_person_id, "body": code,
                                           "note": note}])  # fmt: skip
        rows = await repo.duty_days(conn, county_code=county_code, first=on, last=on)
    return rows[0]


async def clear_day(*, conn: Conn, county_code: str, on: date) -> None:
    if not await repo.delete_duty_day(conn, county_code=county_code, day=on):
        raise InvalidInput(f"{on.isoformat()} 本来就没有安排坐班领导", day=on.isoformat())


async def days(*, conn: Conn, county_code: str, first: date, last: date) -> list[Row]:
    return await repo.duty_days(conn, county_code=county_code, first=first, last=last)


async def on_duty(*, conn: Conn, county_code: str, on: date) -> Row | None:
    """The day's duty leader (day, leader_person_id, leader_name, body, note), or None."""
    rows = await repo.duty_days(conn, county_code=county_code, first=on, last=on)
    return rows[0] if rows else None


# --- importing the roster from a sheet ---------------------------------------------------


@dataclass(frozen=True)
class RowError:
    row: int
    reason: str


@dataclass
class DutyImport:
    source: str
    dry_run: bool = False
    rows: int = 0
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "error_count": len(self.errors)}


def read_sheet(data: bytes, *, name: str, max_rows: int) -> list[SheetRow]:
    """The rows of a duty roster workbook: 日期, 领导手机号, 所属班子 (and 备注)."""
    return read_xlsx(data, name=name, aliases=HEADER_ALIASES, required=COLUMNS, headers_zh=HEADERS_ZH,
                     max_rows=max_rows)  # fmt: skip


async def import_days(
    *, conn: Conn, county_code: str, rows: Sequence[SheetRow], source: str, by_person_id: int | None, now: datetime,
    dry_run: bool = False,
) -> DutyImport:  # fmt: skip
    """All or nothing: every row is checked (a day, a leader's account by phone, a body; a
    day only once); if any is wrong nothing is written and the report says which and why."""
    report = DutyImport(source=source, dry_run=dry_run, rows=len(rows))
    phones = {text(r.values.get("leader_phone")).replace(" ", "") for r in rows}
    leaders = await repo.leaders_by_phone(conn, phones=sorted(p for p in phones if p))
    seen = Counter(day(r.values.get("day")) for r in rows)
    good: list[dict[str, Any]] = []
    for r in rows:
        on, phone = day(r.values.get("day")), text(r.values.get("leader_phone")).replace(" ", "")
        body = body_code(text(r.values.get("body")))
        reasons = []
        if on is None:
            reasons.append(f"日期“{text(r.values.get('day'))}”不是日期：请写成 2026-12-03 的形式")
        elif seen[on] > 1:
            reasons.append(f"{on.isoformat()} 出现了不止一次：每天只安排一位坐班领导")
        if phone not in leaders:
            reasons.append(f"手机号“{phone}”不是在职县级{role_name('leader')}的账号；请先为该领导开通账号")
        if body is None:
            reasons.append(f"所属班子“{text(r.values.get('body'))}”无法识别；可选：{_body_choices()}")
        if reasons:
            report.errors.append(RowError(r.row, "；".join(reasons)))
        else:
            good.append({"day": on, "leader_person_id": leaders[phone]["id"], "body": body,
                         "note": text(r.values.get("note")) or None})  # fmt: skip
    if report.errors or dry_run:
        return report
    await repo.upsert_duty_days(conn, county_code=county_code, rows=good, person_id=by_person_id, at=now)
    report.imported = len(good)
    return report


def day_fields(row: Row) -> dict[str, Any]:
    """A roster day as the API shows it, with the body's Chinese name."""
    return {**row, "body_name": word(LEADER_BODY_NAMES, row["body"])}
