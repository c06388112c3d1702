"""The lateness record: a case remembers every deadline it missed (issue 13).

The worker escalates within seconds of a deadline and sets a new one, so before this
nothing showed that a case had ever been late. Now, when a deadline is found passed
(by the worker's sweep, or by a person's step that comes first), the same transaction
adds a `case_lateness` row (which deadline, which step, the tier, when it was due and
when it was noticed), counts it on the case (`late_count`, `first_late_at`: the due time
of its first missed deadline) and signs a `deadline_missed` step on the ledger, before
the escalation or the step. Append-only for the app, like the ledger.

Revision ID: 0117
Revises: 0116
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0117"
down_revision = "0116"
branch_labels = None
depends_on = None

APP_ROLE = "wuzhang_app"


def upgrade() -> None:
    op.add_column("case_file", sa.Column("late_count", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("case_file", sa.Column("first_late_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "case_lateness",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("deadline_no", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=8), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("noticed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("step IN ('accept', 'resolve')", name="ck_case_lateness_step_known"),
        sa.CheckConstraint(
            "tier IN ('chief', 'village_house', 'township_hall', 'county_center')", name="ck_case_lateness_tier_known"
        ),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], name="fk_case_lateness_case_id_case_file"),
        sa.PrimaryKeyConstraint("id", name="pk_case_lateness"),
        sa.UniqueConstraint("case_id", "deadline_no", "step", name="uq_case_lateness_case_id_deadline_no_step"),
    )
    # The app may add a missed deadline, never change or remove one (migration 0112 granted the rest).
    op.execute(f"""
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
    EXECUTE 'REVOKE UPDATE, DELETE ON case_lateness FROM {APP_ROLE}';
  END IF;
END
$$;
""")


def downgrade() -> None:
    op.drop_table("case_lateness")
    op.drop_column("case_file", "first_late_at")
    op.drop_column("case_file", "late_count")
