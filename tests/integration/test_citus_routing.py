"""Citus only (`make test-citus`; skipped on plain PostgreSQL): the hot paths are routed to
one shard. Each test explains the statement the code runs, imported from its repository
with the parameters the code passes, and reads Citus's plan: one "Citus Adaptive" custom
scan whose every job has one task. Cross-county work (the city's figures) is the only
multi-shard work; docs/scale.md ("The hot paths on Citus") lists the paths.

The schema is migrated into a database of the module's own, empty: EXPLAIN needs no rows.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from app.settings import libpq_url
from geo import tiles
from grid.cases import repository as cases
from grid.repository import nodes
from tests.conftest import citus_workers, create_database, drop_database, migrate

pytestmark = pytest.mark.skipif(not citus_workers(), reason="Citus only: make test-citus")

COUNTY = "610827"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def conn() -> Iterator[psycopg.Connection]:
    url = create_database("wuzhang_routing")
    try:
        migrate(url)
        with psycopg.connect(libpq_url(url), autocommit=True) as c:
            yield c
    finally:
        drop_database(url)


def _task_counts(plan: Any) -> list[int]:
    found: list[int] = []
    if isinstance(plan, dict):
        for key, value in plan.items():
            if key == "Task Count":
                found.append(value)
            found.extend(_task_counts(value))
    elif isinstance(plan, list):
        for value in plan:
            found.extend(_task_counts(value))
    return found


def _tasks(conn: psycopg.Connection, sql: str, params: dict[str, Any]) -> list[int]:
    """The task count of each job of the distributed plan of `sql` (a recursively planned
    subquery is a job of its own)."""
    row = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()  # type: ignore[operator]
    assert row is not None
    return _task_counts(row[0][0]["Plan"])


def assert_one_shard(conn: psycopg.Connection, sql: str, params: dict[str, Any]) -> None:
    row = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()  # type: ignore[operator]
    assert row is not None
    plan = row[0][0]["Plan"]
    # A router plan is the Citus scan itself: nothing of it is left for the coordinator to merge.
    assert plan.get("Custom Plan Provider") == "Citus Adaptive", f"top node {plan.get('Node Type')}"
    counts = _task_counts(plan)
    assert counts and all(n == 1 for n in counts), f"task counts {counts}: not routed to one shard"


def _reader() -> dict[str, Any]:
    return cases.reader_params(person_id=7, read_paths=["1.2"], now=NOW, department_ids=[3], counties=[COUNTY])


def test_the_checker_sees_a_statement_without_its_county_filter(conn: psycopg.Connection) -> None:
    # The inbox with its county filter removed reads every shard: the check must see it.
    sql, params = cases.inbox_query(county=COUNTY, person_id=7, before=None, limit=20)
    unfiltered = sql.replace("county_code = %(county)s AND ", "")
    assert unfiltered != sql
    assert max(_tasks(conn, unfiltered, params)) > 1


def test_locate(conn: psycopg.Connection) -> None:
    params = nodes.locate_params(lon=110.18, lat=37.75, floor=3, scope_ids=[1, 2], county=COUNTY)
    assert_one_shard(conn, nodes.LOCATE_SQL, params)


def _params_of(sql: str, **given: Any) -> dict[str, Any]:
    """Every parameter the statement names, None unless given (EXPLAIN reads no row)."""
    return {**dict.fromkeys(re.findall(r"%\((\w+)\)s", sql)), **given}


def _case_row() -> dict[str, Any]:
    return _params_of(cases.INSERT_CASE_SQL, county_code=COUNTY, lon=110.18, lat=37.75, reported_at=NOW)


def _event_row() -> dict[str, Any]:
    return _params_of(cases.INSERT_EVENTS_SQL, case_id=1, county_code=COUNTY, seq=1, body="{}", created_at=NOW)


def test_report_inserts_the_case_and_its_first_events(conn: psycopg.Connection) -> None:
    assert_one_shard(conn, cases.FIND_BY_KEY_SQL, {"reporter": 7, "key": uuid.uuid4(), "reader_counties": [COUNTY]})
    assert_one_shard(conn, cases.INSERT_CASE_SQL, _case_row())
    assert_one_shard(conn, cases.INSERT_EVENTS_SQL, _event_row())


def test_a_case_read(conn: psycopg.Connection) -> None:
    params = cases.case_detail_params(
        case_id=1, person_id=7, read_paths=["1.2"], department_ids=[3], supervises=True, counties=[COUNTY]
    )
    assert_one_shard(conn, cases.CASE_DETAIL_SQL, params)


def test_an_action_locks_reads_and_appends(conn: psycopg.Connection) -> None:
    params = {"id": 1, "ids": [1], "pid": 7, **_reader()}
    assert_one_shard(conn, cases.LOCK_CASE_SQL, params)
    assert_one_shard(conn, cases.CASE_FOR_ACTION_SQL, params)
    assert_one_shard(conn, cases.INSERT_EVENTS_SQL, _event_row())


@pytest.mark.parametrize("z", [16, 10], ids=["points", "clusters"])
def test_a_case_tile(conn: psycopg.Connection, z: int) -> None:
    sql, params = tiles.case_tile_query(z=z, x=1, y=1, reader=_reader())
    assert_one_shard(conn, sql, params)


def test_a_grid_tile(conn: psycopg.Connection) -> None:
    sql, params = tiles.grid_tile_query(z=14, x=1, y=1, reader=_reader())
    assert_one_shard(conn, sql, params)


def test_the_inbox(conn: psycopg.Connection) -> None:
    for before in (None, 100):
        sql, params = cases.inbox_query(county=COUNTY, person_id=7, before=before, limit=20)
        assert_one_shard(conn, sql, params)
