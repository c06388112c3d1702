"""The figures' daily roll-up (issue 13, fast on a large county).

Computing the figures from the ledger takes seconds on a county with a year of cases, so
the worker keeps a copy: each case's facts, stints and missed deadlines as the figures'
one query computes them (`stats_case`, `stats_stint`, `stats_late`), the additive counts
per county day, township, entry tier, category and source (`stats_day`) and per month
(`stats_month`), and how far the
ledger has been read (`stats_rollup`, one row). All derived, all rebuilt on demand; the
app role keeps every right on them (the worker rewrites them).

Revision ID: 0123
Revises: 0120
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from grid.models import LTree

revision = "0123"
down_revision = "0120"
branch_labels = None
depends_on = None

DAY_COUNTS = ("received", "escalated_cases", "escalations", "escalations_by_deadline", "returned_cases", "returns",
              "reopened_cases", "reopens", "extensions", "late_cases", "missed_deadlines", "outcomes", "resolved",
              "failed_open", "resolved_in_village", "resolved_in_township", "resolved_below_county", "visited",
              "satisfaction_scored", "satisfaction_sum", "satisfied")  # fmt: skip


def _at(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def _case_columns() -> list[sa.Column]:
    """A stint's or missed deadline's case: its report time and filter columns."""
    return [sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("place", LTree(), nullable=False),
            sa.Column("entry_tier", sa.String(length=16), nullable=True),
            sa.Column("category", sa.String(length=32), nullable=False),
            sa.Column("source", sa.String(length=16), nullable=False)]  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "stats_case",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("satisfaction", sa.SmallInteger(), nullable=True),
        sa.Column("late_count", sa.Integer(), nullable=False),
        sa.Column("place", LTree(), nullable=False),
        sa.Column("located", sa.Boolean(), nullable=False),
        sa.Column("township_path", LTree(), nullable=False),
        sa.Column("entry_tier", sa.String(length=16), nullable=True),
        *(sa.Column(n, sa.Integer(), nullable=False)
          for n in ("escalations", "escalations_by_deadline", "returns", "reopens", "extensions")),
        _at("visited_at"),
        sa.Column("outcome", sa.String(length=8), nullable=True),
        _at("outcome_at"),
        sa.Column("outcome_tier", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_stats_case"),
    )  # fmt: skip
    op.create_index("ix_stats_case_reported_at", "stats_case", ["reported_at"])
    op.create_table(
        "stats_stint",
        sa.Column("case_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("stint", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=True),
        _at("assigned_at"), _at("accepted_at"), _at("resolved_at"),
        *(sa.Column(n, sa.Boolean(), nullable=False) for n in ("failed", "escalated", "returned")),
        *_case_columns(),
        sa.PrimaryKeyConstraint("case_id", "stint", name="pk_stats_stint"),
    )  # fmt: skip
    op.create_index("ix_stats_stint_reported_at", "stats_stint", ["reported_at"])
    op.create_table(
        "stats_late",
        sa.Column("case_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("deadline_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("step", sa.String(length=8), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        _at("done_at"),
        *_case_columns(),
        sa.PrimaryKeyConstraint("case_id", "deadline_no", "step", name="pk_stats_late"),
    )
    op.create_table(
        "stats_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("township_path", LTree(), nullable=False),
        sa.Column("entry_tier", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        *(sa.Column(n, sa.Integer(), nullable=False) for n in DAY_COUNTS),
        sa.PrimaryKeyConstraint("day", "township_path", "entry_tier", "category", "source", name="pk_stats_day"),
    )
    op.create_index("ix_stats_day_township_path_day", "stats_day", ["township_path", "day"])
    op.create_table(
        "stats_month",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("township_path", LTree(), nullable=False),
        sa.Column("entry_tier", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        *(sa.Column(n, sa.Integer(), nullable=False) for n in DAY_COUNTS),
        sa.PrimaryKeyConstraint("month", "township_path", "entry_tier", "category", "source", name="pk_stats_month"),
    )
    op.create_table(
        "stats_rollup",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("zone", sa.Text(), nullable=True),
        sa.Column("safe_event_id", sa.BigInteger(), nullable=True),
        sa.Column("seen_event_id", sa.BigInteger(), nullable=True),
        _at("seen_at"), _at("refreshed_at"), _at("built_at"),
        sa.CheckConstraint("id = 1", name="ck_stats_rollup_one_row"),
        sa.PrimaryKeyConstraint("id", name="pk_stats_rollup"),
    )  # fmt: skip
    # The one row every refresh locks (so two workers take turns); never built yet.
    op.execute("INSERT INTO stats_rollup (id) VALUES (1)")


def downgrade() -> None:
    for table in ("stats_rollup", "stats_month", "stats_day", "stats_late", "stats_stint", "stats_case"):
        op.drop_table(table)
