"""联席会议 and 督办: joint meetings and the supervised tasks their decisions become.

- `meeting`: a county meeting (each quarter) or a township's own; its date (the county's
  calendar day), node, chair, attendees (people with or without accounts), agenda (linked
  cases and topics) and minutes.
- `meeting_task`: one decision, owned by a department, a township or a person, due on a
  county day; a township's sub-task names its parent (`parent_id`). Done once
  (`done_at`); the worker marks the overdue reminder (`reminded_at`) and the escalation
  to the chair (`escalated_at`) in the same transaction as their notifications, so each
  happens once.
- `meeting_task_note`: progress notes, append-only for the app.

Revision ID: 0121
Revises: 0117
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0121"
down_revision = "0117"
branch_labels = None
depends_on = None

APP_ROLE = "wuzhang_app"


def upgrade() -> None:
    op.create_table(
        "meeting",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("county_code", sa.String(length=12), nullable=False),
        sa.Column("level", sa.String(length=12), nullable=False),
        sa.Column("node_id", sa.BigInteger(), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("chair_person_id", sa.BigInteger(), nullable=False),
        sa.Column("attendees", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("agenda_case_ids", postgresql.ARRAY(sa.BigInteger()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("agenda_topics", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("minutes", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("level IN ('county', 'township')", name="ck_meeting_level_known"),
        sa.ForeignKeyConstraint(["node_id"], ["node.id"], name="fk_meeting_node_id_node"),
        sa.ForeignKeyConstraint(["chair_person_id"], ["person.id"], name="fk_meeting_chair_person_id_person"),
        sa.ForeignKeyConstraint(["created_by"], ["person.id"], name="fk_meeting_created_by_person"),
        sa.PrimaryKeyConstraint("id", name="pk_meeting"),
    )
    op.create_index("ix_meeting_county_code_held_on", "meeting", ["county_code", "held_on"])
    op.create_index("ix_meeting_node_id", "meeting", ["node_id"])

    op.create_table(
        "meeting_task",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("meeting_id", sa.BigInteger(), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("owner_department_id", sa.BigInteger(), nullable=True),
        sa.Column("owner_node_id", sa.BigInteger(), nullable=True),
        sa.Column("owner_person_id", sa.BigInteger(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("case_ids", postgresql.ARRAY(sa.BigInteger()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.BigInteger(), nullable=True),
        sa.Column("done_note", sa.Text(), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_to", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "num_nonnulls(owner_department_id, owner_node_id, owner_person_id) = 1", name="ck_meeting_task_one_owner"
        ),
        sa.CheckConstraint("(done_at IS NULL) = (done_by IS NULL)", name="ck_meeting_task_done_by_someone"),
        sa.ForeignKeyConstraint(["meeting_id"], ["meeting.id"], name="fk_meeting_task_meeting_id_meeting"),
        sa.ForeignKeyConstraint(["parent_id"], ["meeting_task.id"], name="fk_meeting_task_parent_id_meeting_task"),
        sa.ForeignKeyConstraint(
            ["owner_department_id"], ["department.id"], name="fk_meeting_task_owner_department_id_department"
        ),
        sa.ForeignKeyConstraint(["owner_node_id"], ["node.id"], name="fk_meeting_task_owner_node_id_node"),
        sa.ForeignKeyConstraint(["owner_person_id"], ["person.id"], name="fk_meeting_task_owner_person_id_person"),
        sa.ForeignKeyConstraint(["created_by"], ["person.id"], name="fk_meeting_task_created_by_person"),
        sa.ForeignKeyConstraint(["done_by"], ["person.id"], name="fk_meeting_task_done_by_person"),
        sa.ForeignKeyConstraint(["escalated_to"], ["person.id"], name="fk_meeting_task_escalated_to_person"),
        sa.PrimaryKeyConstraint("id", name="pk_meeting_task"),
    )
    op.create_index("ix_meeting_task_meeting_id", "meeting_task", ["meeting_id"])
    op.create_index("ix_meeting_task_parent_id", "meeting_task", ["parent_id"])
    # The worker's sweep: tasks not done, by due day.
    op.create_index("ix_meeting_task_open_due_on", "meeting_task", ["due_on"],
                    postgresql_where=sa.text("done_at IS NULL"))  # fmt: skip

    op.create_table(
        "meeting_task_note",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["meeting_task.id"], name="fk_meeting_task_note_task_id_meeting_task"),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name="fk_meeting_task_note_person_id_person"),
        sa.PrimaryKeyConstraint("id", name="pk_meeting_task_note"),
    )
    op.create_index("ix_meeting_task_note_task_id", "meeting_task_note", ["task_id"])
    # Progress notes are a record: the app adds them, never changes or removes one.
    op.execute(f"""
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
    EXECUTE 'REVOKE UPDATE, DELETE ON meeting_task_note FROM {APP_ROLE}';
  END IF;
END
$$;
""")


def downgrade() -> None:
    op.drop_table("meeting_task_note")
    op.drop_table("meeting_task")
    op.drop_table("meeting")
