"""The roll-up's histograms of hours (issue 13: medians under 200 ms on a large county).

`stats_hours`: per county month of the report, township, stint tier and measure
('accept': assigned to accepted; 'resolve': accepted to resolved), how many stints took
hours in each log-spaced bucket (grid/stats/definitions.py, `hours_bucket`). The medians
of a period of whole months are read from it instead of sorting every stint. Derived, as
the rest of the roll-up: a rebuild makes it again.

Revision ID: 0124
Revises: 0123
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from grid.models import LTree

revision = "0124"
down_revision = "0123"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stats_hours",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("township_path", LTree(), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("measure", sa.String(length=8), nullable=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("month", "township_path", "tier", "measure", "bucket", name="pk_stats_hours"),
    )


def downgrade() -> None:
    op.drop_table("stats_hours")
