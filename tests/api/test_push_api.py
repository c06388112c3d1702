"""Devices, the live inbox stream and /metrics over HTTP."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import text

from grid import case_repository as repo


def owner(db, token):
    return db.execute(text("SELECT person_id FROM device WHERE token = :t"), {"t": token}).scalar()


def person_of(db, account):
    return db.execute(text("SELECT person_id FROM user_account WHERE id = :u"), {"u": account.user_id}).scalar_one()


def test_a_token_registers_moves_to_the_next_user_and_is_forgotten_only_by_its_owner(client, make_account, db):
    first, second = make_account("dispatcher"), make_account("leader")
    token = f"fcm-{uuid.uuid4()}"
    body = {"token": token, "platform": "android", "app_version": "1.2.0"}
    assert client.post("/api/v1/me/devices", json=body, headers=first.headers).status_code == 204
    assert client.post("/api/v1/me/devices", json=body, headers=first.headers).status_code == 204  # again: same row
    assert owner(db, token) == person_of(db, first)
    # The phone changes hands: the next login registers the same token.
    assert client.post("/api/v1/me/devices", json={**body, "platform": "ios"}, headers=second.headers).status_code == 204
    assert owner(db, token) == person_of(db, second)
    assert db.execute(text("SELECT count(*) FROM device WHERE token = :t"), {"t": token}).scalar_one() == 1
    # The previous owner cannot unregister it any more; the owner can.
    assert client.delete(f"/api/v1/me/devices/{token}", headers=first.headers).status_code == 204
    assert owner(db, token) == person_of(db, second)
    assert client.delete(f"/api/v1/me/devices/{token}", headers=second.headers).status_code == 204
    assert owner(db, token) is None


def test_a_device_with_an_unknown_platform_is_refused(client, make_account):
    r = client.post("/api/v1/me/devices", json={"token": "x" * 20, "platform": "symbian"},
                    headers=make_account("leader").headers)  # fmt: skip
    assert r.status_code == 422 and r.json()["error"]["code"]


def test_the_inbox_stream_sends_new_notifications_as_events(client, make_account, db):
    account = make_account("leader")
    pid = person_of(db, account)
    now = datetime.now(timezone.utc)
    repo.insert_notifications(db, rows=[{"county_code": "610827", "person_id": pid, "case_id": None, "kind": "info",
                                         "title": "新提醒", "body": "流", "dedupe_key": f"sse:{uuid.uuid4()}",
                                         "created_at": now}])  # fmt: skip
    db.commit()
    nid = db.execute(text("SELECT max(id) FROM notification WHERE person_id = :p"), {"p": pid}).scalar_one()
    r = client.get("/api/v1/me/inbox/stream", params={"max_s": 0.5}, headers={**account.headers,
                                                                              "Last-Event-ID": str(nid - 1)})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert f"id: {nid}\nevent: notification\n" in r.text and "新提醒" in r.text
    # Caught up: a reconnect with the last id gets nothing old again.
    r = client.get("/api/v1/me/inbox/stream", params={"max_s": 0.2},
                   headers={**account.headers, "Last-Event-ID": str(nid)})  # fmt: skip
    assert "event: notification" not in r.text


def test_metrics_are_prometheus_text(client):
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    for name in ("wuzhang_push_sent_total", "wuzhang_push_failed_total", "wuzhang_push_retried_total",
                 "wuzhang_push_tokens_deleted_total", "wuzhang_push_third_party_auth_errors_total",
                 "wuzhang_push_delivery_latency_seconds_bucket"):  # fmt: skip
        assert name in r.text, name


def test_an_overlong_token_is_refused_not_a_server_error(client, make_account):
    r = client.post("/api/v1/me/devices", json={"token": "x" * 3000, "platform": "android"},
                    headers=make_account("leader").headers)  # fmt: skip
    assert r.status_code == 422
