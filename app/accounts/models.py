"""ORM models of accounts, on the grid's `Base` so one metadata describes the schema.

Mirrors `migrations/versions/20261128_0003_accounts.py`; the migrations test compares them.
Import this module wherever the full metadata is needed (migrations/env.py, tests).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, Integer, String, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from grid.models import Base, county_key


class UserAccount(Base):
    """A person who can log in. The login phone lives here, not on `person`, so a
    roster import that rewrites a person's contact number cannot change a login."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    person_id: Mapped[int] = mapped_column(BigInteger)
    phone: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(Text)
    # Users are disabled, never deleted: audit rows keep pointing at them.
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        county_key("person_id", "person"),
        UniqueConstraint("person_id", "county_code", name="uq_user_account_person_id"),
        UniqueConstraint("phone", "county_code", name="uq_user_account_phone"),
    )


class Grant(Base):
    """A role on a node; a user's rights are the union of their live grants.
    Chiefs need no grant: their scope comes from their current posts."""

    __tablename__ = "grant"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    role: Mapped[str] = mapped_column(String(16))
    tier: Mapped[str | None] = mapped_column(String(16))
    node_id: Mapped[int] = mapped_column(BigInteger, index=True)
    # The department a `department_staff` account works for (migration 0116).
    department_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # A grant lives in its node's county; its account may belong to another (the city
    # role, 市级, holds grants in several counties), so no key ties it to the account's.
    __table_args__ = (
        county_key("node_id", "node"),
        county_key("department_id", "department"),
        CheckConstraint(
            "role IN ('chief', 'mediator', 'dispatcher', 'leader', 'admin', 'department_staff', 'reception',"
            " 'supervisor', 'city')",
            name="role_known",
        ),
        CheckConstraint("(role = 'department_staff') = (department_id IS NOT NULL)", name="department_for_staff"),
        CheckConstraint(
            "(role = 'mediator') = (tier IS NOT NULL)"
            " AND (tier IS NULL OR tier IN ('village_house','township_hall','county_center'))",
            name="tier_for_mediators",
        ),
        Index(
            "uq_grant_live",
            "user_id",
            "role",
            "node_id",
            "county_code",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )


class RefreshToken(Base):
    """One link of a rotation chain. Only the SHA-256 of the token is stored; a
    second use of a used token revokes its whole family (theft detection)."""

    __tablename__ = "refresh_token"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    family_id: Mapped[Any] = mapped_column(UUID(as_uuid=True), index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        county_key("user_id", "user_account"),
        UniqueConstraint("token_hash", "county_code", name="uq_refresh_token_token_hash"),
    )


class AuditLog(Base):
    """Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))

    __table_args__ = (county_key("actor_user_id", "user_account"),)


class LoginThrottle(Base):
    """Failed logins per phone and per address. The key is a SHA-256, so numbers
    typed by strangers are not stored; rows go away on a successful login."""

    __tablename__ = "login_throttle"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    failures: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("kind IN ('pair','phone','ip')", name="kind_known"),)


__all__ = ["AuditLog", "Grant", "LoginThrottle", "RefreshToken", "UserAccount"]
