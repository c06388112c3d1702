"""The leadership mechanisms' common ground: the county's departments, the roles that
work through them, where a case came from, backlog batches, a case's owning leader
(包案) and the units that handle it with the tiers, and the centre's lawful closure.

- `department`: the county's functional units (信访局, 司法局, 民政局, ...), a list the
  admin edits; `grant.department_id` ties a `department_staff` account to one of them.
- New roles: `department_staff` (the cases their department is a unit of), `reception`
  (registers walk-in visits), `supervisor` (discipline inspection: every county-tier case).
- `case_file.source`: grid report, visit, the 12345 hotline, online, or handed down from
  above (中省交办), with `batch_id` for a backlog batch.
- `case_file.hard` and `owner_leader_person_id`: a hard case owned by a county leader
  (包案); `hard_outcome`: 案结事了, 息诉罢访 or 事心双结 once concluded.
- `case_unit`: a department or a township responsible for a case, as its owning unit
  (责任单位), a co-handling unit at the centre (联合办理) or a referral.
- State `terminated`: the centre's lawful closure (依法终结), a terminal state.

Revision ID: 0116
Revises: 0115
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0116"
down_revision = "0115"
branch_labels = None
depends_on = None

OLD_STATES = ("reported", "assigned", "accepted", "mediating", "resolved", "failed", "return_visit", "closed",
              "escalated", "returned", "reopened")  # fmt: skip
NEW_STATES = (*OLD_STATES, "terminated")
OLD_ROLES = ("chief", "mediator", "dispatcher", "leader", "admin")
NEW_ROLES = (*OLD_ROLES, "department_staff", "reception", "supervisor")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.create_table(
        "department",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("county_code", sa.String(length=12), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("sort", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_department"),
        sa.UniqueConstraint("county_code", "code", name="uq_department_county_code_code"),
    )
    op.add_column("grant", sa.Column("department_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key("fk_grant_department_id_department", "grant", "department", ["department_id"], ["id"])
    op.execute('ALTER TABLE "grant" DROP CONSTRAINT ck_grant_role_known')
    op.execute(f'ALTER TABLE "grant" ADD CONSTRAINT ck_grant_role_known CHECK (role IN ({_in(NEW_ROLES)}))')
    op.execute('ALTER TABLE "grant" ADD CONSTRAINT ck_grant_department_for_staff'
               " CHECK ((role = 'department_staff') = (department_id IS NOT NULL))")  # fmt: skip

    op.create_table(
        "backlog_batch",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("county_code", sa.String(length=12), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("handed_down_on", sa.Date(), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["person.id"], name="fk_backlog_batch_created_by_person"),
        sa.PrimaryKeyConstraint("id", name="pk_backlog_batch"),
        sa.UniqueConstraint("county_code", "label", name="uq_backlog_batch_county_code_label"),
    )

    op.add_column("case_file", sa.Column("source", sa.String(length=16), server_default=sa.text("'grid'"),
                                         nullable=False))  # fmt: skip
    op.add_column("case_file", sa.Column("batch_id", sa.BigInteger(), nullable=True))
    op.add_column("case_file", sa.Column("hard", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.add_column("case_file", sa.Column("owner_leader_person_id", sa.BigInteger(), nullable=True))
    op.add_column("case_file", sa.Column("hard_outcome", sa.String(length=24), nullable=True))
    op.create_foreign_key("fk_case_file_batch_id_backlog_batch", "case_file", "backlog_batch", ["batch_id"], ["id"])
    op.create_foreign_key("fk_case_file_owner_leader_person_id_person", "case_file", "person",
                          ["owner_leader_person_id"], ["id"])  # fmt: skip
    op.create_index(
        "ix_case_file_batch_id", "case_file", ["batch_id"], postgresql_where=sa.text("batch_id IS NOT NULL")
    )
    op.create_index("ix_case_file_owner_leader_person_id", "case_file", ["owner_leader_person_id"],
                    postgresql_where=sa.text("owner_leader_person_id IS NOT NULL"))  # fmt: skip
    op.execute("ALTER TABLE case_file ADD CONSTRAINT ck_case_file_source_known"
               " CHECK (source IN ('grid', 'visit', 'hotline', 'online', 'handed_down'))")  # fmt: skip
    op.execute("ALTER TABLE case_file ADD CONSTRAINT ck_case_file_hard_outcome_known CHECK (hard_outcome IS NULL"
               " OR hard_outcome IN ('case_closed', 'complaint_withdrawn', 'heart_settled'))")  # fmt: skip
    op.execute("ALTER TABLE case_file ADD CONSTRAINT ck_case_file_owner_only_when_hard"
               " CHECK (owner_leader_person_id IS NULL OR hard)")  # fmt: skip
    op.execute("ALTER TABLE case_file DROP CONSTRAINT ck_case_file_state_known")
    op.execute(f"ALTER TABLE case_file ADD CONSTRAINT ck_case_file_state_known CHECK (state IN ({_in(NEW_STATES)}))")

    op.create_table(
        "case_unit",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("part", sa.String(length=16), nullable=False),
        sa.Column("department_id", sa.BigInteger(), nullable=True),
        sa.Column("node_id", sa.BigInteger(), nullable=True),
        sa.Column("task", sa.Text(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("part IN ('owner', 'joint', 'referral')", name="ck_case_unit_part_known"),
        sa.CheckConstraint("(department_id IS NULL) <> (node_id IS NULL)", name="ck_case_unit_one_unit"),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], name="fk_case_unit_case_id_case_file"),
        sa.ForeignKeyConstraint(["department_id"], ["department.id"], name="fk_case_unit_department_id_department"),
        sa.ForeignKeyConstraint(["node_id"], ["node.id"], name="fk_case_unit_node_id_node"),
        sa.ForeignKeyConstraint(["created_by"], ["person.id"], name="fk_case_unit_created_by_person"),
        sa.PrimaryKeyConstraint("id", name="pk_case_unit"),
    )
    op.create_index("ix_case_unit_case_id", "case_unit", ["case_id"])
    op.create_index("ix_case_unit_department_id", "case_unit", ["department_id"])
    # One owning unit per case.
    op.create_index("uq_case_unit_owner", "case_unit", ["case_id"], unique=True,
                    postgresql_where=sa.text("part = 'owner'"))  # fmt: skip


def downgrade() -> None:
    op.drop_table("case_unit")
    op.execute("DELETE FROM case_file WHERE state = 'terminated'")
    op.execute("ALTER TABLE case_file DROP CONSTRAINT ck_case_file_state_known")
    op.execute(f"ALTER TABLE case_file ADD CONSTRAINT ck_case_file_state_known CHECK (state IN ({_in(OLD_STATES)}))")
    for name in ("source_known", "hard_outcome_known", "owner_only_when_hard"):
        op.execute(f"ALTER TABLE case_file DROP CONSTRAINT ck_case_file_{name}")
    op.drop_index("ix_case_file_owner_leader_person_id", table_name="case_file")
    op.drop_index("ix_case_file_batch_id", table_name="case_file")
    op.drop_constraint("fk_case_file_owner_leader_person_id_person", "case_file", type_="foreignkey")
    op.drop_constraint("fk_case_file_batch_id_backlog_batch", "case_file", type_="foreignkey")
    for column in ("hard_outcome", "owner_leader_person_id", "hard", "batch_id", "source"):
        op.drop_column("case_file", column)
    op.drop_table("backlog_batch")
    op.execute('DELETE FROM "grant" WHERE department_id IS NOT NULL'
               f" OR role NOT IN ({_in(OLD_ROLES)})")  # fmt: skip
    op.execute('ALTER TABLE "grant" DROP CONSTRAINT ck_grant_department_for_staff')
    op.execute('ALTER TABLE "grant" DROP CONSTRAINT ck_grant_role_known')
    op.execute(f'ALTER TABLE "grant" ADD CONSTRAINT ck_grant_role_known CHECK (role IN ({_in(OLD_ROLES)}))')
    op.drop_constraint("fk_grant_department_id_department", "grant", type_="foreignkey")
    op.drop_column("grant", "department_id")
    op.drop_table("department")
