"""Accounts: users, role grants, refresh tokens, the append-only audit log, login throttle.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The audit log is evidence: nobody rewrites it, not even the application's own role.
AUDIT_APPEND_ONLY_SQL = """
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % is refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
"""


def _ts(name: str, *, nullable: bool = True, now: bool = False) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), nullable=nullable, server_default=sa.func.now() if now else None
    )


def upgrade() -> None:
    op.create_table(
        "user_account",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("county_code", sa.String(12), nullable=False),
        sa.Column(
            "person_id", sa.BigInteger(),
            sa.ForeignKey("person.id", name="fk_user_account_person_id_person"), nullable=False,
        ),  # fmt: skip
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        _ts("disabled_at"),
        _ts("password_changed_at", nullable=False, now=True),
        _ts("created_at", nullable=False, now=True),
        sa.PrimaryKeyConstraint("id", name="pk_user_account"),
        sa.UniqueConstraint("person_id", name="uq_user_account_person_id"),
        sa.UniqueConstraint("phone", name="uq_user_account_phone"),
    )

    op.create_table(
        "grant",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("county_code", sa.String(12), nullable=False),
        sa.Column(
            "user_id", sa.BigInteger(),
            sa.ForeignKey("user_account.id", name="fk_grant_user_id_user_account"), nullable=False,
        ),  # fmt: skip
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("tier", sa.String(16), nullable=True),
        sa.Column("node_id", sa.BigInteger(), sa.ForeignKey("node.id", name="fk_grant_node_id_node"), nullable=False),
        _ts("created_at", nullable=False, now=True),
        _ts("revoked_at"),
        sa.PrimaryKeyConstraint("id", name="pk_grant"),
        sa.CheckConstraint(
            "role IN ('chief','mediator','dispatcher','leader','admin')", name=op.f("ck_grant_role_known")
        ),
        sa.CheckConstraint(
            "(role = 'mediator') = (tier IS NOT NULL)"
            " AND (tier IS NULL OR tier IN ('village_house','township_hall','county_center'))",
            name=op.f("ck_grant_tier_for_mediators"),
        ),
    )
    op.create_index("ix_grant_user_id", "grant", ["user_id"])
    op.create_index("ix_grant_node_id", "grant", ["node_id"])
    op.create_index(
        "uq_grant_live", "grant", ["user_id", "role", "node_id"], unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )  # fmt: skip

    op.create_table(
        "refresh_token",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "user_id", sa.BigInteger(),
            sa.ForeignKey("user_account.id", name="fk_refresh_token_user_id_user_account"), nullable=False,
        ),  # fmt: skip
        sa.Column("family_id", UUID(as_uuid=True), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        _ts("created_at", nullable=False, now=True),
        _ts("expires_at", nullable=False),
        _ts("used_at"),
        _ts("revoked_at"),
        sa.PrimaryKeyConstraint("id", name="pk_refresh_token"),
        sa.UniqueConstraint("token_hash", name="uq_refresh_token_token_hash"),
    )
    op.create_index("ix_refresh_token_user_id", "refresh_token", ["user_id"])
    op.create_index("ix_refresh_token_family_id", "refresh_token", ["family_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("county_code", sa.String(12), nullable=False),
        _ts("at", nullable=False, now=True),
        sa.Column(
            "actor_user_id", sa.BigInteger(),
            sa.ForeignKey("user_account.id", name="fk_audit_log_actor_user_id_user_account"), nullable=True,
        ),  # fmt: skip
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("details", JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_actor_user_id", "audit_log", ["actor_user_id"])
    op.execute(AUDIT_APPEND_ONLY_SQL)

    op.create_table(
        "login_throttle",
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _ts("last_failed_at", nullable=False, now=True),
        _ts("locked_until"),
        sa.PrimaryKeyConstraint("key_hash", name="pk_login_throttle"),
        sa.CheckConstraint("kind IN ('phone','ip')", name=op.f("ck_login_throttle_kind_known")),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
    op.drop_table("audit_log")  # DROP is not DELETE: the append-only trigger goes with the table
    op.execute("DROP FUNCTION IF EXISTS audit_log_refuse_change()")
    op.drop_table("refresh_token")
    op.drop_table("grant")
    op.drop_table("user_account")
