"""ORM models of the leadership mechanisms (migration 0116 and later)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Index,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from grid.models import Base, county_key

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
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
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
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    label: Mapped[str] = mapped_column(Text)
    handed_down_on: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        county_key("created_by", "person"),
        UniqueConstraint("county_code", "label", name="uq_backlog_batch_county_code_label"),
    )


class CaseUnit(Base):
    """A department or a township responsible for part of a case. Department staff read
    the cases their department is a unit of (grid.cases.repository: the read rule)."""

    __tablename__ = "case_unit"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger, index=True)
    part: Mapped[str] = mapped_column(String(16))
    department_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    node_id: Mapped[int | None] = mapped_column(BigInteger)
    task: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        county_key("case_id", "case_file"),
        county_key("department_id", "department"),
        county_key("node_id", "node"),
        county_key("created_by", "person"),
        CheckConstraint(f"part IN {UNIT_PARTS!r}", name="part_known"),
        CheckConstraint("(department_id IS NULL) <> (node_id IS NULL)", name="one_unit"),
        Index("uq_case_unit_owner", "case_id", "county_code", unique=True, postgresql_where=text("part = 'owner'")),
        # A department co-handles a case once, and is its referral unit once (migration 0120).
        Index(
            "uq_case_unit_joint",
            "case_id",
            "department_id",
            "county_code",
            unique=True,
            postgresql_where=text("part = 'joint'"),
        ),
        Index(
            "uq_case_unit_referral",
            "case_id",
            "department_id",
            "county_code",
            unique=True,
            postgresql_where=text("part = 'referral'"),
        ),
    )


# --- 联席会议 and 督办 (migration 0121) ---------------------------------------------------

# A meeting's level; names in grid/glossary.py MEETING_LEVEL_NAMES.
MEETING_LEVELS = ("county", "township")


class Meeting(Base):
    """A joint meeting (联席会议): the county's each quarter, or a township's own."""

    __tablename__ = "meeting"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    level: Mapped[str] = mapped_column(String(12))
    node_id: Mapped[int] = mapped_column(BigInteger, index=True)
    held_on: Mapped[date] = mapped_column(Date)  # the county's calendar day
    title: Mapped[str] = mapped_column(Text)
    chair_person_id: Mapped[int] = mapped_column(BigInteger)
    # [{name, person_id?, unit?}]: attendees include people without accounts.
    attendees: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'"))
    agenda_case_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default=text("'{}'"))
    agenda_topics: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    minutes: Mapped[str] = mapped_column(Text, server_default=text("''"))
    created_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        county_key("node_id", "node"),
        county_key("chair_person_id", "person"),
        county_key("created_by", "person"),
        CheckConstraint(f"level IN {MEETING_LEVELS!r}", name="level_known"),
        Index("ix_meeting_county_code_held_on", "county_code", "held_on"),
    )


class MeetingTask(Base):
    """A supervised task (督办事项): one decision of a meeting, with one owner and a due day.
    Its state (open, done, overdue) is derived from done_at and due_on, never stored."""

    __tablename__ = "meeting_task"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    meeting_id: Mapped[int] = mapped_column(BigInteger, index=True)
    parent_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    title: Mapped[str] = mapped_column(Text)
    owner_department_id: Mapped[int | None] = mapped_column(BigInteger)
    owner_node_id: Mapped[int | None] = mapped_column(BigInteger)
    owner_person_id: Mapped[int | None] = mapped_column(BigInteger)
    due_on: Mapped[date] = mapped_column(Date)  # the county's calendar day, included
    case_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default=text("'{}'"))
    created_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_by: Mapped[int | None] = mapped_column(BigInteger)
    done_note: Mapped[str | None] = mapped_column(Text)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalated_to: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        county_key("meeting_id", "meeting"),
        county_key("parent_id", "meeting_task"),
        county_key("owner_department_id", "department"),
        county_key("owner_node_id", "node"),
        county_key("owner_person_id", "person"),
        county_key("created_by", "person"),
        county_key("done_by", "person"),
        county_key("escalated_to", "person"),
        CheckConstraint("num_nonnulls(owner_department_id, owner_node_id, owner_person_id) = 1", name="one_owner"),
        CheckConstraint("(done_at IS NULL) = (done_by IS NULL)", name="done_by_someone"),
        Index("ix_meeting_task_open_due_on", "due_on", postgresql_where=text("done_at IS NULL")),
    )


class MeetingTaskNote(Base):
    """A progress note on a task (append-only for the app)."""

    __tablename__ = "meeting_task_note"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    task_id: Mapped[int] = mapped_column(BigInteger, index=True)
    person_id: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        county_key("task_id", "meeting_task"),
        county_key("person_id", "person"),
    )


# --- 坐班接访 and 零倒流 (migration 0119) ------------------------------------------------

# The county bodies a duty leader comes from; names in grid/glossary.py LEADER_BODY_NAMES.
LEADER_BODIES = ("party_committee", "peoples_congress", "government", "cppcc")
# What the duty leader decided for a walk-in visit; names in VISIT_DECISION_NAMES.
VISIT_DECISIONS = ("settle", "route", "unit", "own")
# How a resolved backlog case came back (倒流); names in REFLOW_KIND_NAMES.
REFLOW_KINDS = ("reopen", "linked")
# The duty leader's actions on a visit waiting for them (grid.leadership.visits; offered by
# grid.cases.service.allowed_for): settle it, route it into the tiers, give it to a unit, own it.
VISIT_ACTIONS = ("settle", "route_to_tier", "assign_unit", "take_ownership")


class DutyDay(Base):
    """坐班接访: the county leader on reception duty on one of the county's calendar days."""

    __tablename__ = "duty_day"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    leader_person_id: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[str] = mapped_column(String(24))
    note: Mapped[str | None] = mapped_column(Text)
    updated_by: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        county_key("leader_person_id", "person"),
        county_key("updated_by", "person"),
        CheckConstraint(f"body IN {LEADER_BODIES!r}", name="body_known"),
        UniqueConstraint("county_code", "day", name="uq_duty_day_county_code_day"),
    )


class CaseVisit(Base):
    """A case that began as a walk-in visit, its duty leader, and what they decided."""

    __tablename__ = "case_visit"

    case_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    visited_on: Mapped[date] = mapped_column(Date)
    leader_person_id: Mapped[int] = mapped_column(BigInteger)
    decision: Mapped[str | None] = mapped_column(String(16))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        county_key("case_id", "case_file"),
        county_key("leader_person_id", "person"),
        CheckConstraint(f"decision IS NULL OR decision IN {VISIT_DECISIONS!r}", name="decision_known"),
        CheckConstraint("(decision IS NULL) = (decided_at IS NULL)", name="decided_together"),
        Index("ix_case_visit_county_code_visited_on", "county_code", "visited_on"),
    )


class CaseReflow(Base):
    """零倒流: a resolved backlog case that came back (reopened, or linked to a new case). Append-only."""

    __tablename__ = "case_reflow"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(8))
    new_case_id: Mapped[int | None] = mapped_column(BigInteger)
    person_id: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        county_key("case_id", "case_file"),
        county_key("new_case_id", "case_file"),
        county_key("person_id", "person"),
        CheckConstraint(f"kind IN {REFLOW_KINDS!r}", name="kind_known"),
        CheckConstraint("(kind = 'linked') = (new_case_id IS NOT NULL)", name="linked_has_case"),
        UniqueConstraint("case_id", "new_case_id", "county_code", name="uq_case_reflow_case_id_new_case_id"),
    )


# 五包: the five duties of a hard case's owners, in their order (names: grid/glossary.py FIVE_DUTY_NAMES).
FIVE_DUTIES = ("know", "educate", "solve", "stabilise", "by_law")


class CaseDuty(Base):
    """One of the five duties (五包) ticked on a hard case, with its note; ticking again
    replaces it. Every tick is also a signed ledger step (`five_duty`)."""

    __tablename__ = "case_duty"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger)
    duty: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text)
    person_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        county_key("case_id", "case_file"),
        county_key("person_id", "person"),
        CheckConstraint(f"duty IN {FIVE_DUTIES!r}", name="duty_known"),
        UniqueConstraint("case_id", "duty", "county_code", name="uq_case_duty_case_id_duty"),
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
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    node_id: Mapped[int] = mapped_column(BigInteger, index=True)
    name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        county_key("node_id", "node"),
        county_key("created_by", "person"),
        CheckConstraint(f"kind IN {TEAM_MEMBER_KINDS!r}", name="kind_known"),
    )


class CaseWorkGroup(Base):
    """The work group (工作组) a township hall chose from its team when it began mediating."""

    __tablename__ = "case_work_group"

    case_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    chosen_by: Mapped[int | None] = mapped_column(BigInteger)
    chosen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        county_key("case_id", "case_file"),
        county_key("member_id", "hall_member"),
        county_key("chosen_by", "person"),
    )


class AssistanceReferral(Base):
    """A party of a case referred to social assistance (社会救助); 民政局 records the outcome."""

    __tablename__ = "assistance_referral"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger, index=True)
    party_name: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(24))
    note: Mapped[str | None] = mapped_column(Text)
    referred_by: Mapped[int] = mapped_column(BigInteger)
    referred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(16))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    decision_note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        county_key("case_id", "case_file"),
        county_key("referred_by", "person"),
        county_key("decided_by", "person"),
        CheckConstraint(f"type IN {ASSISTANCE_TYPES!r}", name="type_known"),
        CheckConstraint(f"outcome IS NULL OR outcome IN {REFERRAL_OUTCOMES!r}", name="outcome_known"),
        CheckConstraint("(outcome IS NULL) = (decided_at IS NULL)", name="decided_together"),
        CheckConstraint("amount IS NULL OR amount >= 0", name="amount_not_negative"),
        Index("ix_assistance_referral_open", "county_code", "id", postgresql_where=text("outcome IS NULL")),
    )
