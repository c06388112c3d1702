"""Hostile input (issue 11, finding 10): each input that used to answer 500 is sent as the
issue reproduced it, and gets a 4xx naming the field, with nothing written."""

from __future__ import annotations

import json
import uuid

import pytest

from grid.db import fetch_value
from tests.api.test_cases_api import floor_and_point, report_body

TABLES = ("case_file", "case_event", "case_party", "user_account", "person", "device", "audit_log")


async def counts(db) -> dict[str, int]:
    return {t: await fetch_value(db, f"SELECT count(*) FROM {t}") for t in TABLES}


def refused(response, field: str) -> str:
    """The error's message, after checking it is a 422 in the one shape that names `field`."""
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert field in error["message"], (field, error["message"])
    return str(error["message"])


@pytest.fixture
async def case(client, make_account, loaded_county):
    """A case reported by a floor chief, and that chief's headers."""
    floor, _, (lon, lat) = floor_and_point(loaded_county)
    reporter = await make_account("chief", node_code=floor.code)
    r = await client.post("/api/v1/reports", json=report_body(lon, lat),
                          headers=reporter.headers | {"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()["id"], reporter.headers, (lon, lat)


NUL = "争执\x00"


async def test_a_nul_in_any_json_or_form_string_is_422_naming_the_field(client, db, case, auth_headers):
    case_id, chief, (lon, lat) = case
    admin = await auth_headers("admin")
    key = lambda: {"Idempotency-Key": str(uuid.uuid4())}  # noqa: E731
    before = await counts(db)
    sent = [
        (client.post("/api/v1/reports", json=report_body(lon, lat, description=NUL), headers=chief | key()),
         "字段“description”"),
        (client.post("/api/v1/reports", json=report_body(lon, lat, parties=[
            {"name": NUL, "phone": "13912345678", "role": "申请人"}]), headers=chief | key()),
         "字段“parties.0.name”"),
        (client.post("/api/v1/reports", json=report_body(lon, lat, category="neighbours\x00"), headers=chief | key()),
         "字段“category”"),
        (client.put(f"/api/v1/cases/{case_id}/sections/facts", json={"body": NUL}, headers=chief),
         "字段“body”"),
        (client.post(f"/api/v1/cases/{case_id}/actions", json={"action": "accept", "note": NUL}, headers=chief),
         "字段“note”"),
        (client.post("/api/v1/me/devices", json={"token": "fcm-token\x00-123456"}, headers=chief),
         "字段“token”"),
        # Without a Content-Type FastAPI reads the body as JSON all the same: so does the check.
        (client.post("/api/v1/me/devices", content=json.dumps({"token": "fcm-token\x00-123456"}), headers=chief),
         "字段“token”"),
        (client.post("/api/v1/auth/token", data={"username": "19100000006\x00", "password": "wuzhang-demo"}),
         "字段“username”"),
        (client.post("/api/v1/admin/users", json={"phone": "13700000001", "name": NUL}, headers=admin),
         "字段“name”"),
        # A lone surrogate cannot be encoded for PostgreSQL either.
        (client.post("/api/v1/reports", content=json.dumps(report_body(lon, lat, description="\ud800")),
                     headers=chief | key() | {"Content-Type": "application/json"}),
         "字段“description”"),
    ]  # fmt: skip
    for request, field in sent:
        refused(await request, field)
    assert await counts(db) == before


async def test_times_outside_1900_to_2100_are_422_naming_the_field(client, db, case):
    _, chief, (lon, lat) = case
    before = await counts(db)
    for field, value in (("client_recorded_at", "9999-12-31T23:59:59-12:00"),
                         ("occurred_at", "0001-01-01T00:00:00+14:00")):  # fmt: skip
        r = await client.post("/api/v1/reports", json=report_body(lon, lat, **{field: value}),
                              headers=chief | {"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
        assert "1900" in refused(r, f"字段“{field}”")
    assert await counts(db) == before


async def test_integers_past_bigint_are_422_naming_the_parameter(client, case, auth_headers):
    _, chief, _ = case
    admin = await auth_headers("admin")
    for big in ("1" + "0" * 30, "1e30"):  # 10**30 written out, as pydantic reads it, and as the issue wrote it
        for path, headers, name in ((f"/api/v1/me/inbox?after={big}", chief, "after"),
                                    (f"/api/v1/admin/users?cursor={big}", admin, "cursor"),
                                    (f"/api/v1/audit?cursor={big}", admin, "cursor"),
                                    (f"/api/v1/audit?actor={big}", admin, "actor")):  # fmt: skip
            refused(await client.get(path, headers=headers), f"查询参数“{name}”")
    # Ids in the path: the database refuses them (mapped once, app/errors.py), never a 500.
    big = "1" + "0" * 30
    for path, headers in ((f"/api/v1/cases/{big}", chief), (f"/api/v1/admin/users/{big}", admin),
                          (f"/api/v1/cases/{big}/ledger", chief), (f"/api/v1/cases?cursor={big}", chief)):  # fmt: skip
        r = await client.get(path, headers=headers)
        assert r.status_code in (404, 422), (path, r.text)


async def test_bd09_at_the_corner_of_the_world_is_a_4xx(client, db, case):
    _, chief, _ = case
    r = await client.get("/api/v1/grid/locate?lon=-180&lat=-90&crs=bd09", headers=chief)
    assert r.status_code == 422 and r.json()["error"]["code"] == "point_off_earth", r.text
    assert "bd09" in r.json()["error"]["message"]
    before = await counts(db)
    r = await client.post("/api/v1/reports", json=report_body(-180, -90, crs="bd09"),
                          headers=chief | {"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
    assert r.status_code == 422 and r.json()["error"]["code"] == "point_off_earth", r.text
    assert await counts(db) == before


@pytest.mark.parametrize(
    ("sql", "status", "code"),
    [
        ("SELECT (10^30)::numeric::bigint", 422, "invalid_input"),  # NumericValueOutOfRange
        ("SELECT 'abc'::int", 422, "invalid_input"),  # InvalidTextRepresentation
        ("SELECT make_timestamptz(10000, 1, 1, 0, 0, 0) + interval '1000000 years'", 422, "invalid_input"),
        ("SELECT convert_from('\\xff'::bytea, 'UTF8')", 422, "invalid_input"),  # CharacterNotInRepertoire
        ("CREATE TEMP TABLE u (x int UNIQUE); INSERT INTO u VALUES (1), (1)", 409, "conflict"),
    ],
)
async def test_what_the_database_refuses_is_mapped_once_to_422_or_409(db, sql, status, code):
    """Errors raised by the real database go through app.errors' one handler."""
    import psycopg
    from starlette.requests import Request

    from app.errors import database_refused

    with pytest.raises((psycopg.DataError, psycopg.IntegrityError)) as raised:
        async with db.transaction():
            for statement in sql.split("; "):
                await db.execute(statement)
    request = Request({"type": "http", "method": "POST", "path": "/x", "headers": [], "query_string": b""})
    answer = await database_refused(request, raised.value)
    body = json.loads(bytes(answer.body))
    assert answer.status_code == status and body["error"]["code"] == code, body
    assert body["error"]["message"]
