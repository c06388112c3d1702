"""The roll-up's counts for the funnel and the grids (issue 13 §5: every view under 200 ms).

`stats_tier_month`: per county month of the report, township and stint tier, the funnel's
counts (cases that reached the tier, assignments, accepted, settled, failed, escalated,
returned, missed deadlines and late cases there), each additive over cases.
`stats_grid_month`: per county month of the report and located place cut at the grid or
village level (depth 4), the reports and the latest report time, for the reports per
node and the silent nodes. `stats_county_hours`: `stats_hours` summed over the county's
townships, so the county's medians read a ninth of the rows (scale 17). Derived, as the rest of the roll-up: a rebuild makes them again.

Revision ID: 0125
Revises: 0124
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from grid.models import LTree

revision = "0125"
down_revision = "0124"
branch_labels = None
depends_on = None

TIER_COUNTS = ("cases", "assignments", "accepted", "settled", "failed", "escalated", "returned", "missed_deadlines",
               "late_cases")  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "stats_tier_month",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("township_path", LTree(), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        *(sa.Column(n, sa.Integer(), nullable=False) for n in TIER_COUNTS),
        sa.PrimaryKeyConstraint("month", "township_path", "tier", name="pk_stats_tier_month"),
    )
    op.create_table(
        "stats_grid_month",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("grid_path", LTree(), nullable=False),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.Column("last_report_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("month", "grid_path", name="pk_stats_grid_month"),
    )
    op.create_table(
        "stats_county_hours",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("county_path", LTree(), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("measure", sa.String(length=8), nullable=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("month", "county_path", "tier", "measure", "bucket", name="pk_stats_county_hours"),
    )
    # The new tables start empty: the views read the ledger until the worker's next tick
    # rebuilds the whole roll-up (grid/stats/rollup.py rebuilds when never built).
    op.execute("UPDATE stats_rollup SET safe_event_id = NULL")


def downgrade() -> None:
    op.drop_table("stats_county_hours")
    op.drop_table("stats_grid_month")
    op.drop_table("stats_tier_month")
