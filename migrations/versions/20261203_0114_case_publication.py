"""Published documents of a case: public notices (公示) and mediation agreements
(人民调解协议书).

Each row keeps the exact content that was published or issued (JSON), its sha256 (the
same hash the ledger's `publish` or `agreement_issued` step signs), and an unguessable
token: the public URL names the token, never the case id. Append-only, like the ledger:
what was published stays as it was; a new version is a new row.

Revision ID: 0114
Revises: 0113
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0114"
down_revision = "0113"
branch_labels = None
depends_on = None

APP_ROLE = "wuzhang_app"


def upgrade() -> None:
    op.create_table(
        "case_publication",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=43), nullable=False),
        sa.Column("content", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('notice', 'agreement')", name="ck_case_publication_kind_known"),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], name="fk_case_publication_case_id_case_file"),
        sa.ForeignKeyConstraint(["created_by"], ["person.id"], name="fk_case_publication_created_by_person"),
        sa.PrimaryKeyConstraint("id", name="pk_case_publication"),
        sa.UniqueConstraint("token", name="uq_case_publication_token"),
    )
    op.create_index("ix_case_publication_case_id_kind", "case_publication", ["case_id", "kind", "id"])
    # The app may add versions, never change or remove one (migration 0112 granted the rest).
    op.execute(f"""
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
    EXECUTE 'REVOKE UPDATE, DELETE ON case_publication FROM {APP_ROLE}';
  END IF;
END
$$;
""")


def downgrade() -> None:
    op.drop_index("ix_case_publication_case_id_kind", table_name="case_publication")
    op.drop_table("case_publication")
