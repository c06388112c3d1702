"""包案's five duties (五包): one row per duty ticked on a hard case, with its note, who
ticked it and when. Ticking again replaces the row; every tick is also a signed ledger
step (`five_duty`), which keeps the history.

Revision ID: 0118
Revises: 0119
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0118"
down_revision = "0119"
branch_labels = None
depends_on = None

DUTIES = ("know", "educate", "solve", "stabilise", "by_law")


def upgrade() -> None:
    op.create_table(
        "case_duty",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("duty", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"duty IN ({', '.join(repr(d) for d in DUTIES)})", name="ck_case_duty_duty_known"),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], name="fk_case_duty_case_id_case_file"),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name="fk_case_duty_person_id_person"),
        sa.PrimaryKeyConstraint("id", name="pk_case_duty"),
        sa.UniqueConstraint("case_id", "duty", name="uq_case_duty_case_id_duty"),
    )


def downgrade() -> None:
    op.drop_table("case_duty")
