"""Devices, the live inbox stream and /metrics over HTTP."""

from __future__ import annotations

import json
import re
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from pydantic import SecretStr

from app.db import DatabaseUnreachable
from app.main import create_app
from grid.cases import repository as repo
from grid.db import fetch_value
from tests.conftest import SharedConnection, asgi_client


async def owner(db, token):
    return await fetch_value(db, "SELECT person_id FROM device WHERE token = %(t)s", {"t": token})


async def person_of(db, account):
    pid = await fetch_value(db, "SELECT person_id FROM user_account WHERE id = %(u)s", {"u": account.user_id})
    assert pid is not None
    return pid


def sse_events(stream: str) -> list[dict[str, str]]:
    """The stream's events as {field: value} (comment lines, `: ...`, left out)."""
    events = []
    for block in stream.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if line and not line.startswith(":"))
        if fields:
            events.append(fields)
    return events


async def test_a_token_registers_moves_to_the_next_user_and_is_forgotten_only_by_its_owner(client, make_account, db):
    first, second = await make_account("dispatcher"), await make_account("leader")
    token = f"fcm-{uuid.uuid4()}"
    body = {"token": token, "platform": "android", "app_version": "1.2.0"}
    assert (await client.post("/api/v1/me/devices", json=body, headers=first.headers)).status_code == 204
    again = await client.post("/api/v1/me/devices", json=body, headers=first.headers)
    assert again.status_code == 204  # the same row
    assert await owner(db, token) == await person_of(db, first)
    # The phone changes hands: the next login registers the same token.
    moved = await client.post("/api/v1/me/devices", json={**body, "platform": "ios"}, headers=second.headers)
    assert moved.status_code == 204
    assert await owner(db, token) == await person_of(db, second)
    assert await fetch_value(db, "SELECT count(*) FROM device WHERE token = %(t)s", {"t": token}) == 1
    # The previous owner cannot unregister it any more; the owner can.
    assert (await client.delete(f"/api/v1/me/devices/{token}", headers=first.headers)).status_code == 204
    assert await owner(db, token) == await person_of(db, second)
    assert (await client.delete(f"/api/v1/me/devices/{token}", headers=second.headers)).status_code == 204
    assert await owner(db, token) is None


async def test_a_device_with_an_unknown_platform_is_refused(client, make_account):
    leader = await make_account("leader")
    r = await client.post("/api/v1/me/devices", json={"token": "x" * 20, "platform": "symbian"}, headers=leader.headers)
    assert r.status_code == 422 and r.json()["error"]["code"]


async def test_the_inbox_stream_sends_new_notifications_as_events(client, make_account, db):
    account = await make_account("leader")
    pid = await person_of(db, account)
    now = datetime.now(UTC)
    # In the test's own transaction: the stream reads through the same connection (no commit needed).
    await repo.insert_notifications(db, rows=[{"county_code": "610827", "person_id": pid, "case_id": None,
                                               "kind": "info", "title": "新提醒", "body": "流",
                                               "dedupe_key": f"sse:{uuid.uuid4()}", "created_at": now}])  # fmt: skip
    nid = await fetch_value(db, "SELECT max(id) FROM notification WHERE person_id = %(p)s", {"p": pid})
    r = await client.get("/api/v1/me/inbox/stream", params={"max_s": 0.5},
                         headers={**account.headers, "Last-Event-ID": str(nid - 1)})  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    # fastapi.sse's field order: event, data, id.
    assert "event: notification\ndata: {" in r.text and f"}}\nid: {nid}\n\n" in r.text
    sent = [e for e in sse_events(r.text) if e.get("event") == "notification"]
    assert [e["id"] for e in sent] == [str(nid)]
    item = json.loads(sent[0]["data"])
    assert item["id"] == nid and item["title"] == "新提醒" and item["body"] == "流" and item["read_at"] is None
    # Caught up: a reconnect with the last id gets nothing old again.
    r = await client.get("/api/v1/me/inbox/stream", params={"max_s": 0.2},
                         headers={**account.headers, "Last-Event-ID": str(nid)})  # fmt: skip
    assert r.status_code == 200 and "event: notification" not in r.text


METRICS_TOKEN = "scraper-" + "m" * 32


def metrics_app(db, settings, **overrides):
    app = create_app(settings.model_copy(update=overrides))
    app.state.db = SharedConnection(db)
    return app


def scrape(client, token=METRICS_TOKEN):
    return client.get("/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})


async def test_metrics_need_the_metrics_token_and_are_not_served_without_one(db, settings, client):
    r = await scrape(client)  # WUZHANG_METRICS_TOKEN unset: there is no /metrics
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    app = metrics_app(db, settings, metrics_token=SecretStr(METRICS_TOKEN))
    async with asgi_client(app) as c:
        for token in (None, "wrong", METRICS_TOKEN + "x"):
            r = await scrape(c, token)
            assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated", token
        r = await scrape(c)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    for name in ("wuzhang_push_sent_total", "wuzhang_push_failed_total", "wuzhang_push_retried_total",
                 "wuzhang_push_tokens_deleted_total", "wuzhang_push_third_party_auth_errors_total",
                 "wuzhang_push_delivery_latency_seconds_bucket", "wuzhang_metrics_age_seconds"):  # fmt: skip
        assert name in r.text, name


class NoDatabase:
    """A database out of reach: any connection taken fails (the app maps this to 503)."""

    @asynccontextmanager
    async def connection(self):
        raise DatabaseUnreachable("no database in this test")
        yield

    dedicated = connection


def sent_total(text):
    return float(re.search(r"^wuzhang_push_sent_total (\S+)$", text, flags=re.M).group(1))


async def test_a_scrape_answers_from_memory_and_the_figures_are_read_again_in_the_background(db, settings):
    await db.execute("INSERT INTO push_counter (name, value) VALUES ('sent', 7)"
                     " ON CONFLICT (name) DO UPDATE SET value = 7")  # fmt: skip
    app = metrics_app(db, settings, metrics_token=SecretStr(METRICS_TOKEN))
    async with asgi_client(app) as c:
        assert sent_total((await scrape(c)).text) == 7  # the first reading
        await db.execute("UPDATE push_counter SET value = 9 WHERE name = 'sent'")
        real_db, app.state.db = app.state.db, NoDatabase()
        for _ in range(3):  # no query: with the database gone, the scrapes still answer
            r = await scrape(c)
            assert r.status_code == 200 and sent_total(r.text) == 7
        # Older than WUZHANG_METRICS_REFRESH_S: this scrape answers at once and starts a reading.
        app.state.db = real_db
        app.state.metrics_figures.taken_at -= settings.metrics_refresh_s
        assert sent_total((await scrape(c)).text) == 7
        await app.state.metrics_figures.refreshing
        assert sent_total((await scrape(c)).text) == 9


async def test_an_overlong_token_is_refused_not_a_server_error(client, make_account):
    leader = await make_account("leader")
    r = await client.post(
        "/api/v1/me/devices", json={"token": "x" * 3000, "platform": "android"}, headers=leader.headers
    )
    assert r.status_code == 422
