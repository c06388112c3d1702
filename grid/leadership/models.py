"""ORM models of the leadership mechanisms (migration 0116 and later)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from grid.models import Base

# Where a case came from (case_file.source); names in grid/glossary.py SOURCE_NAMES.
SOURCES = ("grid", "visit", "hotline", "online", "handed_down")
# How a hard case ended (case_file.hard_outcome): 案结事了, 息诉罢访, 事心双结.
HARD_OUTCOMES = ("case_closed", "complaint_withdrawn", "heart_settled")
# What a unit is to a case: its owning unit (责任单位), a co-handling unit at the centre, a referral.
UNIT_PARTS = ("owner", "joint", "referral")


class Department(Base):
    """One of the county's functional units (信访局, 司法局, 民政局, ...); the admin edits the list."""

    __tablename__ = "department"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    sort: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("county_code", "code", name="uq_department_county_code_code"),)


class BacklogBatch(Base):
    """A numbered batch of backlog cases handed down from above (中省交办), e.g. 第三批."""

    __tablename__ = "backlog_batch"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    label: Mapped[str] = mapped_column(Text)
    handed_down_on: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("county_code", "label", name="uq_backlog_batch_county_code_label"),)


class CaseUnit(Base):
    """A department or a township responsible for part of a case. Department staff read
    the cases their department is a unit of (grid.cases.repository: the read rule)."""

    __tablename__ = "case_unit"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    part: Mapped[str] = mapped_column(String(16))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    node_id: Mapped[int | None] = mapped_column(ForeignKey("node.id"))
    task: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"part IN {UNIT_PARTS!r}", name="part_known"),
        CheckConstraint("(department_id IS NULL) <> (node_id IS NULL)", name="one_unit"),
        Index("uq_case_unit_owner", "case_id", unique=True, postgresql_where=text("part = 'owner'")),
    )


# 五包: the five duties of a hard case's owners, in their order (names: grid/glossary.py FIVE_DUTY_NAMES).
FIVE_DUTIES = ("know", "educate", "solve", "stabilise", "by_law")


class CaseDuty(Base):
    """One of the five duties (五包) ticked on a hard case, with its note; ticking again
    replaces it. Every tick is also a signed ledger step (`five_duty`)."""

    __tablename__ = "case_duty"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"))
    duty: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"duty IN {FIVE_DUTIES!r}", name="duty_known"),
        UniqueConstraint("case_id", "duty", name="uq_case_duty_case_id_duty"),
    )
