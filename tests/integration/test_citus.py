"""Citus only (`make test-citus`; skipped on plain PostgreSQL): what the service's NOTIFY
triggers and the ledger's append-only guard do once a table is distributed. The findings
are written down in docs/scale.md ("LISTEN/NOTIFY and triggers on Citus").

Each test distributes a table of its own in a fresh database (the service's tables are
not distributed yet), carrying the service's real trigger functions (migrations 0004, 0107).
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from app.settings import libpq_url
from tests.conftest import app_url, citus_node_url, citus_workers

pytestmark = pytest.mark.skipif(not citus_workers(), reason="Citus only: make test-citus")

# A hang guard for reading a notification that must come, not a timed assertion.
WAIT = 30


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(libpq_url(url), autocommit=True)


@pytest.fixture
def owner(fresh_database: str) -> Iterator[psycopg.Connection]:
    with _connect(fresh_database) as conn:
        yield conn


def _worker_of(conn: psycopg.Connection, table: str, value: int) -> str:
    """host:port of the worker holding the shard of `table` for distribution value `value`."""
    row = conn.execute(
        "SELECT nodename, nodeport FROM pg_dist_shard_placement"
        " WHERE shardid = get_shard_id_for_distribution_column(%s, %s)",
        (table, value),
    ).fetchone()
    assert row is not None
    return f"{row[0]}:{row[1]}"


def _shard_of(conn: psycopg.Connection, table: str, value: int) -> str:
    name = conn.execute(
        "SELECT shard_name(%s::regclass, get_shard_id_for_distribution_column(%s, %s))", (table, table, value)
    ).fetchone()
    assert name is not None
    return str(name[0])


def _distribute_grant_copy(owner: psycopg.Connection) -> None:
    """`grant_copy`: user_id like "grant", with the real NOTIFY trigger of "grant", by user_id."""
    owner.execute("CREATE TABLE grant_copy (user_id bigint NOT NULL, role text NOT NULL)")
    owner.execute(
        "CREATE TRIGGER grant_copy_notify AFTER INSERT OR UPDATE OR DELETE ON grant_copy"
        " FOR EACH ROW EXECUTE FUNCTION notify_principal_grant()"
    )
    owner.execute("SET citus.enable_unsafe_triggers = on")
    owner.execute("SELECT create_distributed_table('grant_copy', 'user_id')")


def test_notify_from_the_coordinator_reaches_its_listeners(owner: psycopg.Connection, fresh_database: str) -> None:
    # The service's own tables are local to the coordinator: their triggers notify there.
    with _connect(fresh_database) as listener:
        listener.execute("LISTEN wuzhang_principal")
        owner.execute("UPDATE person SET name = name WHERE id = (SELECT min(id) FROM person)")
        owner.execute("SELECT pg_notify('wuzhang_principal', 'marker')")
        got = [n.payload for n in listener.notifies(timeout=WAIT, stop_after=2)]
    assert got[0].startswith("person:") and got[1] == "marker"


def test_a_distributed_tables_trigger_notifies_on_the_worker_not_on_the_coordinator(
    owner: psycopg.Connection, fresh_database: str
) -> None:
    _distribute_grant_copy(owner)
    worker = _worker_of(owner, "grant_copy", 7)
    with _connect(fresh_database) as listener, _connect(citus_node_url(fresh_database, worker)) as on_worker:
        listener.execute("LISTEN wuzhang_principal")
        on_worker.execute("LISTEN wuzhang_principal")
        owner.execute("INSERT INTO grant_copy VALUES (7, 'leader')")  # one shard: committed on one worker
        owner.execute("SELECT pg_notify('wuzhang_principal', 'marker')")
        # Notifications arrive in commit order: the shard's would come before the marker.
        assert [n.payload for n in listener.notifies(timeout=WAIT, stop_after=1)] == ["marker"]
        assert [n.payload for n in on_worker.notifies(timeout=WAIT, stop_after=1)] == ["user:7"]


def test_a_notifying_trigger_fails_a_write_to_shards_on_two_workers(owner: psycopg.Connection) -> None:
    _distribute_grant_copy(owner)
    # Two workers commit in two phases, and PostgreSQL cannot PREPARE a transaction that
    # ran NOTIFY: the write fails as a whole.
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="NOTIFY"):
        owner.execute("INSERT INTO grant_copy SELECT g, 'leader' FROM generate_series(1, 50) g")
    assert owner.execute("SELECT count(*) FROM grant_copy").fetchone() == (0,)


def _distribute_ledger_copy(owner: psycopg.Connection) -> None:
    """`ledger_copy`: guarded like case_event (migrations 0004 and 0112), distributed by case_id."""
    owner.execute("CREATE TABLE ledger_copy (case_id bigint NOT NULL, seq int NOT NULL, kind text NOT NULL)")
    for sql in (
        "CREATE TRIGGER ledger_copy_append_only BEFORE UPDATE OR DELETE ON ledger_copy"
        " FOR EACH ROW EXECUTE FUNCTION case_event_append_only()",
        "CREATE TRIGGER ledger_copy_no_truncate BEFORE TRUNCATE ON ledger_copy"
        " FOR EACH STATEMENT EXECUTE FUNCTION case_event_append_only()",
        "REVOKE UPDATE, DELETE ON ledger_copy FROM wuzhang_app",
    ):
        owner.execute(sql)  # type: ignore[arg-type]
    # Citus 13 refuses a table with triggers unless citus.enable_unsafe_triggers is on.
    with pytest.raises(psycopg.errors.InternalError_, match="because it has triggers"):
        owner.execute("SELECT create_distributed_table('ledger_copy', 'case_id')")
    owner.execute("SET citus.enable_unsafe_triggers = on")
    owner.execute("SELECT create_distributed_table('ledger_copy', 'case_id')")
    owner.execute("INSERT INTO ledger_copy VALUES (1, 1, 'created'), (2, 1, 'created')")


def test_the_ledgers_guard_holds_on_a_distributed_table(owner: psycopg.Connection, fresh_database: str) -> None:
    _distribute_ledger_copy(owner)
    with _connect(app_url(fresh_database)) as app:
        app.execute("INSERT INTO ledger_copy VALUES (3, 1, 'created')")  # the app still appends
        for sql in ("UPDATE ledger_copy SET kind = 'x' WHERE case_id = 1", "DELETE FROM ledger_copy WHERE case_id = 1"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                app.execute(sql)  # type: ignore[arg-type]
    # The owner passes the rights; the trigger, now on each shard, still refuses.
    for sql in ("UPDATE ledger_copy SET kind = 'x' WHERE case_id = 1", "DELETE FROM ledger_copy"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            owner.execute(sql)  # type: ignore[arg-type]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        owner.execute("TRUNCATE ledger_copy")
    assert owner.execute("SELECT count(*) FROM ledger_copy").fetchone() == (3,)


def test_the_ledgers_guard_holds_on_the_shard_itself(owner: psycopg.Connection, fresh_database: str) -> None:
    # A login that reaches a worker directly meets the same rights and trigger on the shard.
    _distribute_ledger_copy(owner)
    worker, shard = _worker_of(owner, "ledger_copy", 1), _shard_of(owner, "ledger_copy", 1)
    with _connect(app_url(citus_node_url(fresh_database, worker))) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            app.execute(f"DELETE FROM {shard}")  # type: ignore[arg-type]
    with _connect(citus_node_url(fresh_database, worker)) as worker_owner:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            worker_owner.execute(f"DELETE FROM {shard}")  # type: ignore[arg-type]
