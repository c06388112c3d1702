"""The application's database role, `wuzhang_app`: only the rights the service needs.

Migrations run as the owner role (WUZHANG_MIGRATION_DATABASE_URL), which owns every
table; the service connects as `wuzhang_app` (DATABASE_URL), or as a login that is a
member of it. That role may read and write ordinary rows, and nothing more:

- SELECT, INSERT, UPDATE, DELETE on every table, and USAGE, SELECT on every sequence;
- on the append-only tables, `case_event` (the ledger) and `audit_log`, SELECT and INSERT
  only; on `alembic_version` SELECT only;
- no TRUNCATE, TRIGGER or REFERENCES anywhere, no CREATE in the schema, and it owns
  nothing, so it cannot `ALTER TABLE ... DISABLE TRIGGER` (the append-only triggers stay
  as the second lock, against the owner).

Tables and sequences that later migrations create (as the same owner) get the same rights
by ALTER DEFAULT PRIVILEGES; a later append-only table must REVOKE UPDATE, DELETE itself.
Temporary tables (boundary imports) need TEMP on the database, which PUBLIC has by default.

The role is cluster-wide: made here (NOLOGIN) when missing and the owner may create roles;
`scripts/dev.sh db-start` makes it a login with a password. A single-role deployment
whose owner may not create roles skips this with a warning (then DATABASE_URL is the
owner, as before).

Revision ID: 0112
Revises: 0110
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0112"
down_revision = "0110"
branch_labels = None
depends_on = None

APP_ROLE = "wuzhang_app"
APPEND_ONLY = ("case_event", "audit_log")

ENSURE_ROLE_SQL = f"""
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
    IF (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
      CREATE ROLE {APP_ROLE} NOLOGIN;
    ELSE
      RAISE WARNING 'role {APP_ROLE} does not exist and % may not create it: no rights granted. '
        'Ask the DBA for: CREATE ROLE {APP_ROLE} NOLOGIN; then migrate again from 0107.', current_user;
    END IF;
  END IF;
END
$$;
"""

GRANT_SQL = f"""
GRANT USAGE ON SCHEMA public TO {APP_ROLE};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE};
REVOKE UPDATE, DELETE ON {", ".join(APPEND_ONLY)} FROM {APP_ROLE};
REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {APP_ROLE};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE};
"""

REVOKE_SQL = f"""
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM {APP_ROLE};
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM {APP_ROLE};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE};
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE};
REVOKE USAGE ON SCHEMA public FROM {APP_ROLE};
"""


def _when_role_exists(sql: str) -> str:
    statements = [s.strip() for s in sql.strip().split(";") if s.strip()]
    body = "\n    ".join(f"EXECUTE $sql${s}$sql$;" for s in statements)
    return f"""
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
    {body}
  END IF;
END
$$;
"""


def upgrade() -> None:
    op.execute(ENSURE_ROLE_SQL)
    op.execute(_when_role_exists(GRANT_SQL))


def downgrade() -> None:
    # The role stays: it is the cluster's, and other databases may use it.
    op.execute(_when_role_exists(REVOKE_SQL))
