"""ORM models of the leadership mechanisms (migration 0116 and later)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Numeric,
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
        # A department co-handles a case once, and is its referral unit once (migration 0120).
        Index("uq_case_unit_joint", "case_id", "department_id", unique=True, postgresql_where=text("part = 'joint'")),
        Index(
            "uq_case_unit_referral", "case_id", "department_id", unique=True, postgresql_where=text("part = 'referral'")
        ),
    )


# --- the county centre, the township hall's team, social assistance (migration 0120) ---------

# 依法终结: the legal channels (case_file.closure_channel); names in CLOSURE_CHANNEL_NAMES.
CLOSURE_CHANNELS = ("litigation", "arbitration", "administrative_review")
# 五位一体: the kinds of member of a township hall's team; names in TEAM_MEMBER_KIND_NAMES.
TEAM_MEMBER_KINDS = ("cadre", "police", "judicial", "legal_adviser", "social_worker", "deputy")
# 社会救助: the county's catalogue, by group (ASSISTANCE_GROUP_NAMES, ASSISTANCE_TYPE_NAMES).
ASSISTANCE_GROUPS: dict[str, tuple[str, ...]] = {
    "basic_living": ("subsistence", "destitute"),
    "special": ("medical", "education", "housing", "employment", "disaster"),
    "emergency": ("emergency",),
    "social_forces": ("social_forces",),
}
ASSISTANCE_TYPES = tuple(t for types in ASSISTANCE_GROUPS.values() for t in types)
REFERRAL_OUTCOMES = ("approved", "declined")


class HallMember(Base):
    """A member of a township hall's mediation team (五位一体). The phone is personal data:
    shown only to readers whose scope holds the township."""

    __tablename__ = "hall_member"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint(f"kind IN {TEAM_MEMBER_KINDS!r}", name="kind_known"),)


class CaseWorkGroup(Base):
    """The work group (工作组) a township hall chose from its team when it began mediating."""

    __tablename__ = "case_work_group"

    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("hall_member.id"), primary_key=True)
    chosen_by: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    chosen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AssistanceReferral(Base):
    """A party of a case referred to social assistance (社会救助); 民政局 records the outcome."""

    __tablename__ = "assistance_referral"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    party_name: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(24))
    note: Mapped[str | None] = mapped_column(Text)
    referred_by: Mapped[int] = mapped_column(ForeignKey("person.id"))
    referred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(16))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    decision_note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"type IN {ASSISTANCE_TYPES!r}", name="type_known"),
        CheckConstraint(f"outcome IS NULL OR outcome IN {REFERRAL_OUTCOMES!r}", name="outcome_known"),
        CheckConstraint("(outcome IS NULL) = (decided_at IS NULL)", name="decided_together"),
        CheckConstraint("amount IS NULL OR amount >= 0", name="amount_not_negative"),
        Index("ix_assistance_referral_open", "county_code", "id", postgresql_where=text("outcome IS NULL")),
    )
