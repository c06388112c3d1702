"""Chiefs follow their own reports, and repeated push_unreachable events fold.

- `ix_case_file_reporter_person_id_id`: `GET /api/v1/me/reports` reads one reporter's
  cases newest first, a page at a time (keyset on id).
- `push_unreachable_run`: while a person stays unreachable on a case, the ledger gets one
  signed `push_unreachable` event when the run opens, and the later failures are only
  counted here; the count goes on the ledger in one more event when the run ends (a
  notice reaches the person, the case takes another step, or the window passes). The
  ledger is never updated; this table is ordinary rows (the app may update and delete
  them), one per (case, person) with an open run (docs/push.md).

Revision ID: 0113
Revises: 0112
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0113"
down_revision = "0112"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_case_file_reporter_person_id_id", "case_file", ["reporter_person_id", "id"])
    op.create_table(
        "push_unreachable_run",
        sa.Column(
            "case_id",
            sa.BigInteger(),
            sa.ForeignKey("case_file.id", name="fk_push_unreachable_run_case_id_case_file"),
            nullable=False,
        ),
        sa.Column(
            "person_id",
            sa.BigInteger(),
            sa.ForeignKey("person.id", name="fk_push_unreachable_run_person_id_person"),
            nullable=False,
        ),
        # The signed event that opened the run, and whom it rang instead.
        sa.Column("opened_seq", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_person_id", sa.BigInteger(), nullable=True),
        # Failures after the opening one, not yet on the ledger.
        sa.Column("folded", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("first_folded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_folded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_notification_id", sa.BigInteger(), nullable=True),
        sa.Column("last_notification_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("case_id", "person_id", name="pk_push_unreachable_run"),
    )


def downgrade() -> None:
    op.drop_table("push_unreachable_run")
    op.drop_index("ix_case_file_reporter_person_id_id", table_name="case_file")
