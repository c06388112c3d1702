"""Push: device tokens and delivery counters.

Revision ID: 0105
Revises: 0004
Create Date: 2026-11-28 23:55:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0105"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "device",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("county_code", sa.String(length=12), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.String(length=8), nullable=False),
        sa.Column("app_version", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("platform IN ('android', 'ios', 'web')", name=op.f("ck_device_platform_known")),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_device_person_id_person")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device")),
        sa.UniqueConstraint("token", name=op.f("uq_device_token")),
    )
    op.create_index(op.f("ix_device_person_id"), "device", ["person_id"], unique=False)
    op.create_table(
        "push_counter",
        sa.Column("name", sa.String(length=48), nullable=False),
        sa.Column("value", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_push_counter")),
    )


def downgrade() -> None:
    op.drop_table("push_counter")
    op.drop_index(op.f("ix_device_person_id"), table_name="device")
    op.drop_table("device")
