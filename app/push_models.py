"""ORM models of push delivery: the phones that can be rung, and the operator counters.

On the grid's `Base`, so one metadata describes the schema (migration 0105)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, String, Text, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from grid.models import Base, county_key

PLATFORMS = ("android", "ios", "web")


class Device(Base):
    """One app install's FCM registration token. A token belongs to one person at a
    time: it moves when another user logs in on the same phone."""

    __tablename__ = "device"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    token: Mapped[str] = mapped_column(Text)
    person_id: Mapped[int] = mapped_column(BigInteger, index=True)
    platform: Mapped[str] = mapped_column(String(8))
    app_version: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        county_key("person_id", "person"),
        UniqueConstraint("token", "county_code", name="uq_device_token"),
        CheckConstraint(f"platform IN {PLATFORMS!r}", name="platform_known"),
    )


class PushCounter(Base):
    """Monotonic delivery counters kept in the database, so /metrics in the API process
    reports what every worker process did, across restarts."""

    __tablename__ = "push_counter"

    name: Mapped[str] = mapped_column(String(48), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
