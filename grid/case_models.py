"""ORM models of cases (一事一案): the case file, parties, recipients, the ledger,
attachments, notifications (the outbox and inbox), categories and routing rules."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from grid.models import Base

CASE_STATES = ("reported", "assigned", "accepted", "mediating", "resolved", "failed", "return_visit", "closed",
               "escalated", "returned", "reopened")  # fmt: skip
TIERS = ("chief", "village_house", "township_hall", "county_center")


class Category(Base):
    __tablename__ = "category"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    sort: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class RoutingRuleSet(Base):
    """A version of the routing rules; cases keep the version they were routed by."""

    __tablename__ = "routing_rule_set"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    rules: Mapped[dict[str, Any]] = mapped_column(JSONB)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("uq_routing_rule_set_active", "active", unique=True, postgresql_where=text("active")),
    )


class CaseFile(Base):
    __tablename__ = "case_file"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    reporter_person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    idempotency_key: Mapped[Any] = mapped_column(UUID(as_uuid=True))
    request_hash: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(ForeignKey("category.code"))
    severity: Mapped[int] = mapped_column(SmallInteger)
    description: Mapped[str] = mapped_column(Text)
    crs: Mapped[str] = mapped_column(String(8))
    lon_reported: Mapped[float] = mapped_column(Float)
    lat_reported: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    floor: Mapped[int | None] = mapped_column(SmallInteger)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    located_node_id: Mapped[int | None] = mapped_column(ForeignKey("node.id"))
    outside_county: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    tier: Mapped[str] = mapped_column(String(16))
    handling_node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    rule_version: Mapped[int] = mapped_column(ForeignKey("routing_rule_set.version"))
    route_flags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    client_recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accept_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolve_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    warn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Bumped whenever deadlines are set, so one deadline escalates or warns once.
    deadline_no: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    warned_deadline_no: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    outcome: Mapped[str | None] = mapped_column(String(16))  # agreement | failed
    agreement_text: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    satisfaction: Mapped[int | None] = mapped_column(SmallInteger)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("reporter_person_id", "idempotency_key", name="uq_case_file_idempotency"),
        CheckConstraint("severity BETWEEN 1 AND 4", name="severity_range"),
        CheckConstraint(f"state IN {CASE_STATES!r}", name="state_known"),
        CheckConstraint(f"tier IN {TIERS!r}", name="tier_known"),
        CheckConstraint("satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5", name="satisfaction_range"),
        Index("ix_case_file_geom", "geom", postgresql_using="gist"),
        Index("ix_case_file_state_deadlines", "state", "accept_by", "resolve_by"),
    )


class CaseParty(Base):
    """A person involved in the dispute: personal data, shown only to those responsible."""

    __tablename__ = "case_party"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(20))
    role: Mapped[str] = mapped_column(String(32))


class CaseRecipient(Base):
    """Who holds the case now: the posts of the handling node at assignment time."""

    __tablename__ = "case_recipient"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    role: Mapped[str] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CaseSection(Base):
    """一事一案六公开: investigation, facts, policy, reasoning, disposition, return visit."""

    __tablename__ = "case_section"

    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id", ondelete="CASCADE"), primary_key=True)
    section: Mapped[str] = mapped_column(String(16), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[int] = mapped_column(ForeignKey("person.id"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(
            "section IN ('investigation','facts','policy','reasoning','disposition','return_visit')",
            name="section_known",
        ),
    )


class CaseEvent(Base):
    """The ledger (台账): append-only, hash-chained per case, signed by the server."""

    __tablename__ = "case_event"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"))
    seq: Mapped[int] = mapped_column(Integer)
    actor_person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))  # None: the system
    action: Mapped[str] = mapped_column(String(24))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    attachment_hashes: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_case_event_case_id_seq"),)


class Attachment(Base):
    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(Text)
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("case_id", "sha256", name="uq_attachment_case_id_sha256"),)


class Notification(Base):
    """One message to one person: the outbox row written with the decision that causes
    it, and the person's inbox entry. Push (later) only rings the doorbell."""

    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_file.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    # Same decision, same notification: a retried transaction cannot notify twice.
    dedupe_key: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivery_state: Mapped[str] = mapped_column(String(12), server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_notification_person_id_id", "person_id", "id"),
        Index("ix_notification_pending", "next_attempt_at", postgresql_where=text("delivery_state = 'pending'")),
    )
