"""ORM models of the figures' roll-ups (migration 0123): a copy of each case's facts,
stints and missed deadlines as grid/stats/repository.py `_base` computes them, the
additive counts per county day, and the refresh's watermark. All derived: a full
rebuild (`wuzhang stats rollup --rebuild`) makes them again from the cases and the
ledger. How they are kept and read: docs/statistics.md, "The daily roll-up"."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, DateTime, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from grid.models import Base, LTree


class StatsCase(Base):
    """A case's facts (`_base`'s `facts`), as of the refresh that last saw it."""

    __tablename__ = "stats_case"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # case_file.id
    category: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    open: Mapped[bool] = mapped_column(Boolean)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    satisfaction: Mapped[int | None] = mapped_column(SmallInteger)
    late_count: Mapped[int] = mapped_column(Integer)
    place = mapped_column(LTree(), nullable=False)
    located: Mapped[bool] = mapped_column(Boolean)  # the place is the located node (not the handling node)
    township_path = mapped_column(LTree(), nullable=False)
    entry_tier: Mapped[str | None] = mapped_column(String(16))
    escalations: Mapped[int] = mapped_column(Integer)
    escalations_by_deadline: Mapped[int] = mapped_column(Integer)
    returns: Mapped[int] = mapped_column(Integer)
    reopens: Mapped[int] = mapped_column(Integer)
    extensions: Mapped[int] = mapped_column(Integer)
    visited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(8))
    outcome_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome_tier: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (Index("ix_stats_case_reported_at", "reported_at"),)


class StatsStint(Base):
    """An assignment of a case to a tier (`_base`'s `stints`)."""

    __tablename__ = "stats_stint"

    case_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    stint: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tier: Mapped[str | None] = mapped_column(String(16))
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed: Mapped[bool] = mapped_column(Boolean)
    escalated: Mapped[bool] = mapped_column(Boolean)
    returned: Mapped[bool] = mapped_column(Boolean)
    # The case's, so the period's cohort and the filters need no join.
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    place = mapped_column(LTree(), nullable=False)
    entry_tier: Mapped[str | None] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))

    __table_args__ = (Index("ix_stats_stint_reported_at", "reported_at"),)


class StatsLate(Base):
    """A missed deadline (case_lateness) and when its step was done, if it was."""

    __tablename__ = "stats_late"

    case_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    deadline_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    step: Mapped[str] = mapped_column(String(8), primary_key=True)
    tier: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The case's, as on a stint.
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    place = mapped_column(LTree(), nullable=False)
    entry_tier: Mapped[str | None] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))


class StatsDay(Base):
    """The additive counts of one county day, township, entry tier ('' when none),
    category and source; each case adds to the day of its report (received and the
    process counts), of its outcome and of its latest return visit."""

    __tablename__ = "stats_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    township_path = mapped_column(LTree(), primary_key=True)
    entry_tier: Mapped[str] = mapped_column(String(16), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    received: Mapped[int] = mapped_column(Integer)
    escalated_cases: Mapped[int] = mapped_column(Integer)
    escalations: Mapped[int] = mapped_column(Integer)
    escalations_by_deadline: Mapped[int] = mapped_column(Integer)
    returned_cases: Mapped[int] = mapped_column(Integer)
    returns: Mapped[int] = mapped_column(Integer)
    reopened_cases: Mapped[int] = mapped_column(Integer)
    reopens: Mapped[int] = mapped_column(Integer)
    extensions: Mapped[int] = mapped_column(Integer)
    late_cases: Mapped[int] = mapped_column(Integer)
    missed_deadlines: Mapped[int] = mapped_column(Integer)
    outcomes: Mapped[int] = mapped_column(Integer)  # resolve or fail
    resolved: Mapped[int] = mapped_column(Integer)
    failed_open: Mapped[int] = mapped_column(Integer)  # a failure whose case is still open
    resolved_in_village: Mapped[int] = mapped_column(Integer)
    resolved_in_township: Mapped[int] = mapped_column(Integer)
    resolved_below_county: Mapped[int] = mapped_column(Integer)
    visited: Mapped[int] = mapped_column(Integer)
    satisfaction_scored: Mapped[int] = mapped_column(Integer)
    satisfaction_sum: Mapped[int] = mapped_column(Integer)
    satisfied: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_stats_day_township_path_day", "township_path", "day"),)


class StatsMonth(Base):
    """The daily rows summed per county month (`month`: its first day), so a long period
    reads a row per month and key, and day rows only for the months it cuts."""

    __tablename__ = "stats_month"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    township_path = mapped_column(LTree(), primary_key=True)
    entry_tier: Mapped[str] = mapped_column(String(16), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    received: Mapped[int] = mapped_column(Integer)
    escalated_cases: Mapped[int] = mapped_column(Integer)
    escalations: Mapped[int] = mapped_column(Integer)
    escalations_by_deadline: Mapped[int] = mapped_column(Integer)
    returned_cases: Mapped[int] = mapped_column(Integer)
    returns: Mapped[int] = mapped_column(Integer)
    reopened_cases: Mapped[int] = mapped_column(Integer)
    reopens: Mapped[int] = mapped_column(Integer)
    extensions: Mapped[int] = mapped_column(Integer)
    late_cases: Mapped[int] = mapped_column(Integer)
    missed_deadlines: Mapped[int] = mapped_column(Integer)
    outcomes: Mapped[int] = mapped_column(Integer)
    resolved: Mapped[int] = mapped_column(Integer)
    failed_open: Mapped[int] = mapped_column(Integer)
    resolved_in_village: Mapped[int] = mapped_column(Integer)
    resolved_in_township: Mapped[int] = mapped_column(Integer)
    resolved_below_county: Mapped[int] = mapped_column(Integer)
    visited: Mapped[int] = mapped_column(Integer)
    satisfaction_scored: Mapped[int] = mapped_column(Integer)
    satisfaction_sum: Mapped[int] = mapped_column(Integer)
    satisfied: Mapped[int] = mapped_column(Integer)


class StatsRollup(Base):
    """The one row of the refresh: every ledger event up to `safe_event_id` is in the
    roll-up (NULL: never built); `seen_event_id` was the newest at `seen_at`, and
    becomes safe once no transaction that began before then can still commit."""

    __tablename__ = "stats_rollup"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    zone: Mapped[str | None] = mapped_column(Text)  # the county days are this zone's
    safe_event_id: Mapped[int | None] = mapped_column(BigInteger)
    seen_event_id: Mapped[int | None] = mapped_column(BigInteger)
    seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    built_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)


class StatsHours(Base):
    """Histograms of a stint's hours (migration 0124): per county month of the report,
    township, stint tier and measure ('accept', 'resolve'), the stints per log-spaced
    bucket (grid/stats/definitions.py, `hours_bucket`), for the medians."""

    __tablename__ = "stats_hours"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    township_path = mapped_column(LTree(), primary_key=True)
    tier: Mapped[str] = mapped_column(String(16), primary_key=True)
    measure: Mapped[str] = mapped_column(String(8), primary_key=True)
    bucket: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class StatsTierMonth(Base):
    """The funnel's counts (migration 0125) per county month of the report, township and
    stint tier ('' when none): each case adds one to `cases` of every tier it reached."""

    __tablename__ = "stats_tier_month"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    township_path = mapped_column(LTree(), primary_key=True)
    tier: Mapped[str] = mapped_column(String(16), primary_key=True)
    cases: Mapped[int] = mapped_column(Integer)
    assignments: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    settled: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    escalated: Mapped[int] = mapped_column(Integer)
    returned: Mapped[int] = mapped_column(Integer)
    missed_deadlines: Mapped[int] = mapped_column(Integer)
    late_cases: Mapped[int] = mapped_column(Integer)


class StatsGridMonth(Base):
    """The located reports (migration 0125) per county month of the report and place cut
    at depth 4 (a grid or village; the place itself when shallower), and the latest one."""

    __tablename__ = "stats_grid_month"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    grid_path = mapped_column(LTree(), primary_key=True)
    reports: Mapped[int] = mapped_column(Integer)
    last_report_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StatsCountyHours(Base):
    """`stats_hours` summed per county (migration 0125): the county's medians read these."""

    __tablename__ = "stats_county_hours"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    county_path = mapped_column(LTree(), primary_key=True)
    tier: Mapped[str] = mapped_column(String(16), primary_key=True)
    measure: Mapped[str] = mapped_column(String(8), primary_key=True)
    bucket: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
