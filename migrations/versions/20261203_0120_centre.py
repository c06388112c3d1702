"""The county centre's lawful closure, joint handling, the township hall's team and
social-assistance referrals (issue 12, sections 5 to 7).

- `case_file.closure_channel` and `closure_reason`: 依法终结, the legal channel (litigation,
  arbitration, administrative review) the centre referred a failed case to, and why.
- `case_unit`: a department co-handles a case once (part 'joint') and is its referral unit
  once (part 'referral').
- `hall_member`: a township hall's mediation team (五位一体), each member with their kind;
  `case_work_group`: the members a hall chose to mediate a case (工作组).
- `assistance_referral`: a party referred to social assistance (社会救助), and 民政局's outcome.

Revision ID: 0120
Revises: 0118
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0120"
down_revision = "0118"
branch_labels = None
depends_on = None

CHANNELS = ("litigation", "arbitration", "administrative_review")
KINDS = ("cadre", "police", "judicial", "legal_adviser", "social_worker", "deputy")
TYPES = ("subsistence", "destitute", "medical", "education", "housing", "employment", "disaster", "emergency",
         "social_forces")  # fmt: skip
OUTCOMES = ("approved", "declined")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.add_column("case_file", sa.Column("closure_channel", sa.String(length=24), nullable=True))
    op.add_column("case_file", sa.Column("closure_reason", sa.Text(), nullable=True))
    op.execute("ALTER TABLE case_file ADD CONSTRAINT ck_case_file_closure_channel_known"
               f" CHECK (closure_channel IS NULL OR closure_channel IN ({_in(CHANNELS)}))")  # fmt: skip

    op.create_index("uq_case_unit_joint", "case_unit", ["case_id", "department_id"], unique=True,
                    postgresql_where=sa.text("part = 'joint'"))  # fmt: skip
    op.create_index("uq_case_unit_referral", "case_unit", ["case_id", "department_id"], unique=True,
                    postgresql_where=sa.text("part = 'referral'"))  # fmt: skip

    op.create_table(
        "hall_member",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("node_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"kind IN ({_in(KINDS)})", name="ck_hall_member_kind_known"),
        sa.ForeignKeyConstraint(["node_id"], ["node.id"], name="fk_hall_member_node_id_node"),
        sa.ForeignKeyConstraint(["created_by"], ["person.id"], name="fk_hall_member_created_by_person"),
        sa.PrimaryKeyConstraint("id", name="pk_hall_member"),
    )
    op.create_index("ix_hall_member_node_id", "hall_member", ["node_id"])

    op.create_table(
        "case_work_group",
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("chosen_by", sa.BigInteger(), nullable=True),
        sa.Column("chosen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], name="fk_case_work_group_case_id_case_file"),
        sa.ForeignKeyConstraint(["member_id"], ["hall_member.id"], name="fk_case_work_group_member_id_hall_member"),
        sa.ForeignKeyConstraint(["chosen_by"], ["person.id"], name="fk_case_work_group_chosen_by_person"),
        sa.PrimaryKeyConstraint("case_id", "member_id", name="pk_case_work_group"),
    )

    op.create_table(
        "assistance_referral",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("county_code", sa.String(length=12), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("party_name", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("referred_by", sa.BigInteger(), nullable=False),
        sa.Column("referred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("amount", sa.Numeric(12, 2), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"type IN ({_in(TYPES)})", name="ck_assistance_referral_type_known"),
        sa.CheckConstraint(
            f"outcome IS NULL OR outcome IN ({_in(OUTCOMES)})", name="ck_assistance_referral_outcome_known"
        ),
        sa.CheckConstraint("(outcome IS NULL) = (decided_at IS NULL)", name="ck_assistance_referral_decided_together"),
        sa.CheckConstraint("amount IS NULL OR amount >= 0", name="ck_assistance_referral_amount_not_negative"),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], name="fk_assistance_referral_case_id_case_file"),
        sa.ForeignKeyConstraint(["referred_by"], ["person.id"], name="fk_assistance_referral_referred_by_person"),
        sa.ForeignKeyConstraint(["decided_by"], ["person.id"], name="fk_assistance_referral_decided_by_person"),
        sa.PrimaryKeyConstraint("id", name="pk_assistance_referral"),
    )
    op.create_index("ix_assistance_referral_case_id", "assistance_referral", ["case_id"])
    op.create_index("ix_assistance_referral_open", "assistance_referral", ["county_code", "id"],
                    postgresql_where=sa.text("outcome IS NULL"))  # fmt: skip


def downgrade() -> None:
    op.drop_table("assistance_referral")
    op.drop_table("case_work_group")
    op.drop_table("hall_member")
    op.drop_index("uq_case_unit_referral", table_name="case_unit")
    op.drop_index("uq_case_unit_joint", table_name="case_unit")
    op.execute("ALTER TABLE case_file DROP CONSTRAINT ck_case_file_closure_channel_known")
    op.drop_column("case_file", "closure_reason")
    op.drop_column("case_file", "closure_channel")
