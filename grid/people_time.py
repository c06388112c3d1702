"""Times as the county's people read them: in the county's time zone, never UTC.

Storage is UTC and the API's fields are ISO 8601 with their offset; only text meant
for a person (inbox and push texts, the server's notes in the ledger, exports) goes
through `for_person`. The zone is one setting, `WUZHANG_TIME_ZONE` (app.settings);
each process applies it once at start-up (`use_zone`), before it writes any text.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

DEFAULT_ZONE = "Asia/Shanghai"

_zone = ZoneInfo(DEFAULT_ZONE)


def use_zone(name: str) -> None:
    """The county's zone for this process (an unknown name raises ZoneInfoNotFoundError)."""
    global _zone
    _zone = ZoneInfo(name)


def county_zone() -> ZoneInfo:
    return _zone


def local(at: datetime) -> datetime:
    """`at` (aware) in the county's zone."""
    return at.astimezone(_zone)


def for_person(at: datetime | None) -> str:
    """'12月03日 22:36': month, day and minute in the county's zone; '—' for no time."""
    if at is None:
        return "—"
    t = local(at)
    return f"{t.month:02d}月{t.day:02d}日 {t.hour:02d}:{t.minute:02d}"


def local_date(at: datetime) -> date:
    """The county's calendar day of `at` (a roster's start date)."""
    return local(at).date()


def full(at: datetime | None) -> str:
    """'2026-12-03 22:36': a time in a table or an export (the year included), in the
    county's zone; '' for no time."""
    return "" if at is None else local(at).strftime("%Y-%m-%d %H:%M")


def zone_name() -> str:
    """The county's zone, for SQL that works in its days (`AT TIME ZONE`)."""
    return _zone.key


def day_for_person(day: date | None) -> str:
    """'03月31日': a county calendar day (a due day), as a person reads it; '—' for none."""
    return "—" if day is None else f"{day.month:02d}月{day.day:02d}日"
