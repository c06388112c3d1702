"""Idempotent case writes: the answer to an action or a section write, kept per
(person, Idempotency-Key) in the same transaction as the write itself.

A retry with the same key and body gets the kept answer and changes nothing; the same
key with another body is refused (409). `case_id` has no foreign key on purpose: the key
is claimed before the case is read, and a write on a case that does not exist must be a
404, not a constraint error.

Revision ID: 0109
Revises: 0108
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0109"
down_revision = "0108"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_request",
        sa.Column(
            "person_id",
            sa.BigInteger(),
            sa.ForeignKey("person.id", name="fk_case_request_person_id_person"),
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.UUID(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=True),
        sa.Column("answer", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        # How many parties the kept answer shows: a replay is a read of them, audited.
        sa.Column("parties_shown", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "idempotency_key", name="pk_case_request"),
    )
    op.create_index("ix_case_request_created_at", "case_request", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_case_request_created_at", table_name="case_request")
    op.drop_table("case_request")
