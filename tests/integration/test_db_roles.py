"""Issue 11, finding 13: the service's own database role cannot rewrite the ledger.

The app connects with DATABASE_URL's credentials (the role `wuzhang_app`, migration 0112):
it may read and write ordinary rows, but it is refused UPDATE, DELETE and TRUNCATE on the
ledger and the audit log at the GRANT level, it owns nothing so it cannot switch their
append-only triggers off, and it is no superuser. The owner, which runs migrations, is
still stopped by the triggers.
"""

from __future__ import annotations

import re

import psycopg
import pytest

from app.settings import libpq_url
from grid.db import connect, fetch_all, fetch_value
from tests.conftest import app_url, separate_roles

pytestmark = pytest.mark.skipif(
    not separate_roles(), reason="DATABASE_URL is the owner: set WUZHANG_MIGRATION_DATABASE_URL (make test does)"
)

APPEND_ONLY = {"case_event": "case_event_append_only", "audit_log": "audit_log_append_only"}
# Append-only for the app by its rights alone (no trigger): published notices and agreements (0114).
INSERT_ONLY = {"case_publication", "case_lateness", "meeting_task_note", "case_reflow"}  # 0117, 0121, 0119


async def _refused(url: str, sql: str) -> psycopg.Error:
    async with await connect(libpq_url(url)) as conn:
        with pytest.raises(psycopg.Error) as refused:
            async with conn.transaction():
                await conn.execute(sql)  # type: ignore[arg-type]
        return refused.value


@pytest.mark.parametrize("table", sorted(APPEND_ONLY))
async def test_the_apps_role_cannot_change_or_unlock_an_append_only_table(database_url, table):
    app = app_url(database_url)
    trigger = APPEND_ONLY[table]
    for sql in (f"UPDATE {table} SET id = id", f"DELETE FROM {table}", f"TRUNCATE {table}"):
        error = await _refused(app, sql)
        assert isinstance(error, psycopg.errors.InsufficientPrivilege), (sql, error)
        assert f"permission denied for table {table}" in str(error), (sql, error)
    for sql in (f"ALTER TABLE {table} DISABLE TRIGGER {trigger}", f"ALTER TABLE {table} DISABLE TRIGGER ALL",
                f"DROP TRIGGER {trigger} ON {table}", f"ALTER TABLE {table} OWNER TO CURRENT_USER"):  # fmt: skip
        error = await _refused(app, sql)
        assert isinstance(error, psycopg.errors.InsufficientPrivilege), (sql, error)
        assert re.search(f"must be owner of (table|relation) {table}", str(error)), (sql, error)
    # Nor can it skip every trigger for its session, which only a superuser may.
    error = await _refused(app, "SET session_replication_role = replica")
    assert isinstance(error, psycopg.errors.InsufficientPrivilege), error
    # What it needs still works: reading, and appending (refused here only by the row's content).
    async with await connect(libpq_url(app)) as conn:
        assert await fetch_value(conn, f"SELECT count(*) >= 0 FROM {table}")
        rights = await fetch_value(
            conn, "SELECT has_table_privilege(%(t)s, 'INSERT') AND NOT has_table_privilege(%(t)s, 'UPDATE')",
            {"t": table},
        )  # fmt: skip
        assert rights


async def test_the_owner_is_still_stopped_by_the_trigger(database_url):
    # TRUNCATE's trigger fires on an empty table too; the row triggers' refusal of UPDATE and
    # DELETE by the owner is what tests/integration/test_cases.py's tampering must switch off.
    for table in sorted(APPEND_ONLY):
        assert "append-only" in str(await _refused(database_url, f"TRUNCATE {table}")), table


async def test_the_apps_rights_table_by_table(database_url):
    """Every table readable and writable by rows, except the append-only ones and Alembic's;
    no TRUNCATE, TRIGGER or REFERENCES anywhere; no superuser, no CREATE in the schema."""
    async with await connect(libpq_url(app_url(database_url))) as conn:
        rows = await fetch_all(
            conn,
            "SELECT c.relname AS name, has_table_privilege(c.oid, 'SELECT') AS s,"
            " has_table_privilege(c.oid, 'INSERT') AS i, has_table_privilege(c.oid, 'UPDATE') AS u,"
            " has_table_privilege(c.oid, 'DELETE') AS d, has_table_privilege(c.oid, 'TRUNCATE') AS t,"
            " has_table_privilege(c.oid, 'TRIGGER') AS tr, pg_has_role(c.relowner, 'USAGE') AS owns"
            " FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')"
            " AND c.relname <> 'spatial_ref_sys'",
        )
        me = await fetch_value(conn, "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles"
                                     " WHERE rolname = current_user")  # fmt: skip
        create = await fetch_value(conn, "SELECT has_schema_privilege('public', 'CREATE')")
    assert me is False and create is False
    assert len(rows) >= 15
    for r in rows:
        assert r["s"] and not r["t"] and not r["tr"] and not r["owns"], r
        if r["name"] in APPEND_ONLY or r["name"] in INSERT_ONLY:
            assert r["i"] and not r["u"] and not r["d"], r
        elif r["name"] == "alembic_version":
            assert not (r["i"] or r["u"] or r["d"]), r
        else:
            assert r["i"] and r["u"] and r["d"], r


async def test_a_table_a_later_migration_makes_gets_the_apps_rights(database_url):
    """Default privileges: a table the owner creates after 0112 is the app's to use at once."""
    async with await connect(libpq_url(database_url)) as owner:
        async with owner.transaction(force_rollback=True):
            await owner.execute("CREATE TABLE later_table (id bigint GENERATED ALWAYS AS IDENTITY, x int)")
            await owner.execute("CREATE SEQUENCE later_sequence")
            role = app_url(database_url).split("://", 1)[1].split(":", 1)[0]
            granted = await fetch_value(
                owner,
                "SELECT has_table_privilege(%(r)s, 'later_table', 'SELECT, INSERT, UPDATE, DELETE')"
                " AND NOT has_table_privilege(%(r)s, 'later_table', 'TRUNCATE')"
                " AND has_sequence_privilege(%(r)s, 'later_sequence', 'USAGE')",
                {"r": role},
            )
            assert granted
