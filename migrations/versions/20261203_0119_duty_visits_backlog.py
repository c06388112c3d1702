"""坐班接访 and 零倒流: the county's reception-duty roster, the walk-in visits it receives
and what the duty leader decided for each, and the reflows (倒流) of backlog cases.

- `duty_day`: one county leader on reception duty per county and calendar day, with the
  body they come from (县委, 县人大, 县政府, 县政协).
- `case_visit`: a case that began as a walk-in visit: the day, its duty leader, and the
  leader's decision (settled on the spot, routed into the grid's tiers, given to a unit,
  taken as 包案) once made.
- `case_reflow`: a resolved backlog case that came back, reopened or linked by a
  dispatcher to a new case from the same party on the same matter. Append-only.

Revision ID: 0119
Revises: 0121
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0119"
down_revision = "0121"
branch_labels = None
depends_on = None

APP_ROLE = "wuzhang_app"


def upgrade() -> None:
    op.create_table(
        "duty_day",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("county_code", sa.String(length=12), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("leader_person_id", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.String(length=24), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "body IN ('party_committee', 'peoples_congress', 'government', 'cppcc')", name="ck_duty_day_body_known"
        ),
        sa.ForeignKeyConstraint(["leader_person_id"], ["person.id"], name="fk_duty_day_leader_person_id_person"),
        sa.ForeignKeyConstraint(["updated_by"], ["person.id"], name="fk_duty_day_updated_by_person"),
        sa.PrimaryKeyConstraint("id", name="pk_duty_day"),
        sa.UniqueConstraint("county_code", "day", name="uq_duty_day_county_code_day"),
    )
    op.create_table(
        "case_visit",
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("county_code", sa.String(length=12), nullable=False),
        sa.Column("visited_on", sa.Date(), nullable=False),
        sa.Column("leader_person_id", sa.BigInteger(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "decision IS NULL OR decision IN ('settle', 'route', 'unit', 'own')", name="ck_case_visit_decision_known"
        ),
        sa.CheckConstraint("(decision IS NULL) = (decided_at IS NULL)", name="ck_case_visit_decided_together"),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], name="fk_case_visit_case_id_case_file"),
        sa.ForeignKeyConstraint(["leader_person_id"], ["person.id"], name="fk_case_visit_leader_person_id_person"),
        sa.PrimaryKeyConstraint("case_id", name="pk_case_visit"),
    )
    op.create_index("ix_case_visit_county_code_visited_on", "case_visit", ["county_code", "visited_on"])
    op.create_table(
        "case_reflow",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("new_case_id", sa.BigInteger(), nullable=True),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('reopen', 'linked')", name="ck_case_reflow_kind_known"),
        sa.CheckConstraint("(kind = 'linked') = (new_case_id IS NOT NULL)", name="ck_case_reflow_linked_has_case"),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], name="fk_case_reflow_case_id_case_file"),
        sa.ForeignKeyConstraint(["new_case_id"], ["case_file.id"], name="fk_case_reflow_new_case_id_case_file"),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name="fk_case_reflow_person_id_person"),
        sa.PrimaryKeyConstraint("id", name="pk_case_reflow"),
        sa.UniqueConstraint("case_id", "new_case_id", name="uq_case_reflow_case_id_new_case_id"),
    )
    op.create_index("ix_case_reflow_case_id", "case_reflow", ["case_id"])
    # A reflow, once counted, stays counted (the app may add rows, never change or remove one).
    op.execute(f"""
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
    EXECUTE 'REVOKE UPDATE, DELETE ON case_reflow FROM {APP_ROLE}';
  END IF;
END
$$;
""")


def downgrade() -> None:
    op.drop_index("ix_case_reflow_case_id", table_name="case_reflow")
    op.drop_table("case_reflow")
    op.drop_index("ix_case_visit_county_code_visited_on", table_name="case_visit")
    op.drop_table("case_visit")
    op.drop_table("duty_day")
