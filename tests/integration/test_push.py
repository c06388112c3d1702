"""Push delivery through the real firebase-admin, against a fake FCM v1 server of our own."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import firebase_admin
import psycopg
import pytest
from firebase_admin import _http_client, credentials, messaging

from app import push
from app.accounts.service import ROOMS
from app.settings import libpq_url
from geo.crs import CRS, wgs84_to_gcj02
from grid.cases import repository as repo
from grid.cases import service as cases
from grid.cases.ledger import Signer
from grid.db import connect, fetch_all, fetch_one, fetch_value
from tests.conftest import settings_for_tests
from tests.fake_fcm import OK, Answer, FakeFcm

NOW = datetime.now(UTC)
SIGNER = Signer.from_seed(base64.b64encode(b"k" * 32).decode())
KEYS = {SIGNER.key_id: SIGNER.public_key}


async def actor_for(conn, code) -> cases.Actor:
    """The node's chief, reading their own node's subtree."""
    h = await fetch_one(conn, "SELECT po.person_id, n.path::text AS path FROM post po JOIN node n ON n.id = po.node_id"
                              " WHERE n.code = %(c)s AND po.role = 'chief' AND po.ended_at IS NULL", {"c": code})  # fmt: skip
    assert h is not None
    return cases.Actor(person_id=h["person_id"], read_paths=(h["path"],), counties=("610827",))


def household_report(county, index=300, **kw):
    household = [n for n in county.nodes if n.level == "household"][index]
    p = household.geom.point_on_surface()
    lon, lat = wgs84_to_gcj02(p.x, p.y)
    fields = dict(lon=lon, lat=lat, crs=CRS.gcj02, category="neighbours", severity=2, description="两家因排水沟争吵",
                  parties=(cases.Party("张三", "13800000001", "申请人"), cases.Party("李四", None, "被申请人")))  # fmt: skip
    fields.update(kw)
    return household, cases.Report(**fields)


@pytest.fixture
def fake(request):
    answer = getattr(request, "param", None)
    with FakeFcm(answer) as server:
        yield server


@pytest.fixture
def sender(fake, monkeypatch):
    """One App per test, on the fake server; the URL is patched before its messaging service exists."""
    monkeypatch.setattr(messaging._MessagingService, "FCM_URL", fake.send_url)
    monkeypatch.setattr(_http_client.DEFAULT_RETRY_CONFIG, "backoff_factor", 0)  # tests only
    app = firebase_admin.initialize_app(credentials.Certificate(fake.service_account()), {"httpTimeout": 5},
                                        name=f"test-{uuid.uuid4().hex[:8]}")  # fmt: skip
    yield push.FcmSender(app, ttl_s=3600)
    firebase_admin.delete_app(app)


PUSH = {"push_claim": 2000, "push_backoff_base_s": 10, "push_backoff_max_s": 60, "push_give_up_after_s": 3600}


@pytest.fixture
def push_settings(settings):
    return settings.model_copy(update=PUSH)


async def person(db, name="测试") -> int:
    return await fetch_value(db, "INSERT INTO person (county_code, name) VALUES ('610827', %(n)s) RETURNING id",
                             {"n": name})  # fmt: skip


async def device(db, pid, token, platform="android"):
    await push.register_device(db, person_id=pid, county_code="610827", token=token, platform=platform,
                               app_version="1.0", now=NOW)  # fmt: skip


async def note(db, pid, *, kind="info", at=NOW) -> int:
    key = f"test:{uuid.uuid4()}"
    await repo.insert_notifications(db, rows=[{"county_code": "610827", "person_id": pid, "case_id": None,
                                               "kind": kind, "title": "测试", "body": "测试提醒", "dedupe_key": key,
                                               "created_at": at}])  # fmt: skip
    return await fetch_value(db, "SELECT id FROM notification WHERE dedupe_key = %(k)s", {"k": key})


async def row(db, nid):
    r = await fetch_one(db, "SELECT * FROM notification WHERE id = %(i)s", {"i": nid})
    assert r is not None
    return r


async def tokens(db, pid):
    return [r["token"] for r in await fetch_all(db, "SELECT token FROM device WHERE person_id = %(p)s", {"p": pid})]


async def counter(db, name):
    return await fetch_value(db, "SELECT coalesce((SELECT value FROM push_counter WHERE name = %(n)s), 0)",
                             {"n": name})  # fmt: skip


async def deliver(db, sender, settings, now=NOW):
    return await push.deliver_round(conn=db, sender=sender, settings=settings, now=now, signer=SIGNER)


async def test_a_new_case_rings_its_holders_with_ids_and_a_deep_link_and_no_personal_data(
    db, loaded_county, fake, sender, push_settings
):
    household, report = household_report(loaded_county)
    out = await cases.submit_report(conn=db, actor=await actor_for(db, household.code), key=uuid.uuid4(),
                                    report=report, now=NOW, signer=SIGNER, rooms=ROOMS, county_code="610827")  # fmt: skip
    case_id = out.case["id"]
    mine = [(r["id"], r["person_id"]) for r in await fetch_all(
        db, "SELECT id, person_id FROM notification WHERE case_id = %(c)s", {"c": case_id})]  # fmt: skip
    assert mine
    for i, (_, pid) in enumerate(mine):
        await device(db, pid, f"token-ok-{case_id}-{i}")

    await deliver(db, sender, push_settings)

    assert {(await row(db, nid))["delivery_state"] for nid, _ in mine} == {"sent"}
    got = [m for m in fake.accepted if m["data"]["case_id"] == str(case_id)]
    assert sorted(int(m["data"]["notification_id"]) for m in got) == sorted(nid for nid, _ in mine)
    m = got[0]
    assert m["data"]["link"] == f"wuzhang://cases/{case_id}" and m["data"]["kind"] == "assigned"
    assert m["notification"]["title"].startswith("新的矛盾纠纷待处理")
    assert m["android"]["priority"] == "high" and m["android"]["collapse_key"] == f"case-{case_id}"
    assert m["android"]["ttl"] == "3600s"
    assert m["apns"]["headers"]["apns-priority"] == "10"
    assert m["apns"]["headers"]["apns-collapse-id"] == f"case-{case_id}"
    payloads = json.dumps(fake.messages, ensure_ascii=False)
    for party in report.parties:  # names and phones of the parties never leave for Google
        assert party.name not in payloads and (party.phone is None or party.phone not in payloads)
    assert fake.token_requests >= 1  # the OAuth grant went to our token endpoint


def _answers(rule):
    return pytest.mark.parametrize("fake", [rule], indirect=True)


@_answers(lambda token, n: Answer(404, "UNREGISTERED") if token.startswith("dead") else OK)
async def test_unregistered_deletes_the_token_and_a_live_one_still_rings(db, fake, sender, push_settings):
    pid = await person(db)
    await device(db, pid, "dead-token-1")
    await device(db, pid, "live-token-1", "ios")
    nid = await note(db, pid)
    before = await counter(db, "tokens_deleted")

    await deliver(db, sender, push_settings)

    assert await tokens(db, pid) == ["live-token-1"]
    assert (await row(db, nid))["delivery_state"] == "sent"
    assert await counter(db, "tokens_deleted") == before + 1


@_answers(lambda token, n: Answer(404, "UNREGISTERED"))
async def test_every_token_dead_fails_the_push_with_a_reason_and_the_inbox_keeps_it(db, fake, sender, push_settings):
    pid = await person(db)
    await device(db, pid, "dead-token-2")
    nid = await note(db, pid)

    await deliver(db, sender, push_settings)

    r = await row(db, nid)
    assert (r["delivery_state"], r["last_error"]) == ("failed", "unreachable: every device token is dead")
    assert await tokens(db, pid) == []
    assert nid in [n["id"] for n in await repo.inbox(db, county="610827", person_id=pid, before=None, limit=10)]


@_answers(lambda token, n: Answer(400, "INVALID_ARGUMENT", token_field=token.startswith("bad")))
async def test_invalid_argument_deletes_the_token_only_when_the_token_is_named(db, fake, sender, push_settings):
    bad, other = await person(db), await person(db)
    await device(db, bad, "bad-token-3")
    await device(db, other, "good-token-3")
    n_bad, n_other = await note(db, bad), await note(db, other)

    await deliver(db, sender, push_settings)

    assert await tokens(db, bad) == [] and (await row(db, n_bad))["delivery_state"] == "failed"
    # The payload's fault, not the token's: keep the token, never retry, say why.
    assert await tokens(db, other) == ["good-token-3"]
    r = await row(db, n_other)
    assert r["delivery_state"] == "failed" and r["last_error"].startswith("refused by FCM: InvalidArgumentError")


@_answers(lambda token, n: Answer(429, "QUOTA_EXCEEDED", {"Retry-After": "120"}) if n == 1 else OK)
async def test_quota_exceeded_waits_at_least_retry_after_then_delivers(db, fake, sender, push_settings):
    pid = await person(db)
    await device(db, pid, "quota-token-4")
    nid = await note(db, pid)

    await deliver(db, sender, push_settings)

    r = await row(db, nid)
    assert r["delivery_state"] == "pending" and r["attempts"] == 1 and "QuotaExceededError" in r["last_error"]
    assert r["next_attempt_at"] >= NOW + timedelta(seconds=120)  # Retry-After beats our 10 s backoff
    assert await tokens(db, pid) == ["quota-token-4"]
    await deliver(db, sender, push_settings, now=NOW + timedelta(seconds=60))  # not due yet
    assert (await row(db, nid))["attempts"] == 1
    await deliver(db, sender, push_settings, now=NOW + timedelta(seconds=121))
    r = await row(db, nid)
    assert (r["delivery_state"], r["attempts"], r["last_error"]) == ("sent", 2, None)


@_answers(lambda token, n: Answer(503, "UNAVAILABLE") if n == 1 else OK)
async def test_a_503_then_success_is_delivered(db, fake, sender, push_settings):
    pid = await person(db)
    await device(db, pid, "flaky-token-5")
    nid = await note(db, pid)

    await deliver(db, sender, push_settings)

    assert (await row(db, nid))["delivery_state"] == "sent"
    assert [m["token"] for m in fake.messages].count("flaky-token-5") == 2


@_answers(lambda token, n: Answer(503, "UNAVAILABLE"))
async def test_an_fcm_outage_backs_off_exponentially_then_gives_up_after_the_horizon(db, fake, sender, push_settings):
    pid = await person(db)
    await device(db, pid, "down-token-6")
    nid = await note(db, pid)
    waits = []
    at = NOW
    for _ in range(3):
        await deliver(db, sender, push_settings, now=at)
        r = await row(db, nid)
        assert r["delivery_state"] == "pending" and "UnavailableError" in r["last_error"]
        waits.append((r["next_attempt_at"] - at).total_seconds())
        at = r["next_attempt_at"]
    assert 5 <= waits[0] <= 10 and 10 <= waits[1] <= 20 and 20 <= waits[2] <= 40  # doubling, with jitter
    await deliver(db, sender, push_settings, now=NOW + timedelta(hours=2))
    r = await row(db, nid)
    assert r["delivery_state"] == "failed" and r["last_error"].startswith("gave up after 4 attempts")
    assert await tokens(db, pid) == ["down-token-6"]


@_answers(lambda token, n: Answer(401, "THIRD_PARTY_AUTH_ERROR"))
async def test_third_party_auth_error_keeps_the_token_and_counts_for_the_operator(db, fake, sender, push_settings):
    pid = await person(db)
    await device(db, pid, "apns-token-7", "ios")
    nid = await note(db, pid)
    before = await counter(db, "third_party_auth_errors")

    await deliver(db, sender, push_settings)

    assert await tokens(db, pid) == ["apns-token-7"] and (await row(db, nid))["delivery_state"] == "pending"
    assert await counter(db, "third_party_auth_errors") == before + 1


async def test_1200_recipients_go_as_three_batches(db, fake, sender, push_settings, monkeypatch):
    batches = []
    real = messaging.send_each

    def spy(messages, dry_run=False, app=None):
        batches.append(len(messages))
        return real(messages, dry_run=dry_run, app=app)

    monkeypatch.setattr(messaging, "send_each", spy)
    pids = [r["id"] for r in await fetch_all(db, "INSERT INTO person (county_code, name) SELECT '610827', '批量' || g"
                                                 " FROM generate_series(1, 1200) g RETURNING id")]  # fmt: skip
    await db.execute("INSERT INTO device (county_code, token, person_id, platform) SELECT '610827', 'bulk-' || p, p,"
                     " 'android' FROM unnest(%(p)s::bigint[]) p", {"p": pids})  # fmt: skip
    await db.execute("INSERT INTO notification (county_code, person_id, kind, title, body, dedupe_key, created_at,"
                     " next_attempt_at) SELECT '610827', p, 'info', '通知', '批量', 'bulk:' || p, %(now)s, %(now)s"
                     " FROM unnest(%(p)s::bigint[]) p", {"p": pids, "now": NOW})  # fmt: skip

    result = await deliver(db, sender, push_settings)

    assert batches == [500, 500, 200]
    assert result.sent >= 1200
    sent = await fetch_value(db, "SELECT count(*) FROM notification WHERE dedupe_key LIKE 'bulk:%'"
                                 " AND delivery_state = 'sent'")  # fmt: skip
    assert sent == 1200 and len({m["token"] for m in fake.accepted}) == 1200


async def test_a_chief_with_no_phone_makes_the_next_chief_up_ring_and_the_ledger_says_so(
    db, loaded_county, fake, sender, push_settings
):
    household, report = household_report(loaded_county, index=310, severity=1)
    out = await cases.submit_report(conn=db, actor=await actor_for(db, household.code), key=uuid.uuid4(),
                                    report=report, now=NOW, signer=SIGNER, rooms=ROOMS, county_code="610827")  # fmt: skip
    case = out.case
    holders = {r["person_id"] for r in await fetch_all(
        db, "SELECT person_id FROM notification WHERE case_id = %(c)s", {"c": case["id"]})}  # fmt: skip

    await deliver(db, sender, push_settings)

    events = [e for e in await repo.events(db, case_id=case["id"]) if e["action"] == "push_unreachable"]
    assert events, "an unreachable holder must leave a trace in the ledger"
    body = events[0]["body"] if isinstance(events[0]["body"], dict) else json.loads(events[0]["body"])
    up = body["notified_person_id"]
    assert up is not None and up not in holders and body["unreachable_person_id"] in holders
    assert case["handling_node_code"].startswith(body["node_code"])  # an ancestor of the handling node
    fallback = await fetch_one(db, "SELECT kind, delivery_state FROM notification"
                                   " WHERE case_id = %(c)s AND person_id = %(p)s", {"c": case["id"], "p": up})  # fmt: skip
    assert fallback is not None and fallback["kind"] == "unreachable"
    assert (await cases.verify_ledger(conn=db, case_id=case["id"], keys=KEYS)).valid


async def test_a_round_whose_lease_ran_out_does_not_overwrite_the_next_claim(fresh_database):
    """Two workers for real: the round's own transactions commit (a database of the test's
    own), and while it sends, in its thread, another connection claims the row again."""
    url = libpq_url(fresh_database)
    settings = settings_for_tests(fresh_database).model_copy(update=PUSH)
    async with await connect(url) as conn:
        pid = await person(conn)
        await device(conn, pid, "slow-token-8")
        nid = await note(conn, pid)

        class SlowSender:
            """While this round sends, its lease ends and another worker claims the row again."""

            def send(self, pushes):
                with psycopg.connect(url, autocommit=True) as other:
                    other.execute("UPDATE notification SET attempts = attempts + 1 WHERE id = %(i)s", {"i": nid})
                return [push.Result("ok") for _ in pushes]

        result = await deliver(conn, SlowSender(), settings)

        r = await row(conn, nid)
    assert (r["delivery_state"], r["attempts"], r["delivered_at"]) == ("pending", 2, None)
    assert result.sent == 0  # the second claim's result is the one that counts


async def unreachable_events(db, case_id, pid):
    return [e for e in await repo.events(db, case_id=case_id)
            if e["action"] == "push_unreachable" and e["body"]["unreachable_person_id"] == pid]  # fmt: skip


async def ring_again(db, case_id, pid, at) -> int:
    """Another notice that asks `pid` to act on the case (as a deadline warning does)."""
    key = f"again:{uuid.uuid4()}"
    await repo.insert_notifications(db, rows=[{"county_code": "610827", "person_id": pid, "case_id": case_id,
                                               "kind": "deadline_warning", "title": "案件即将超期", "body": "测试",
                                               "dedupe_key": key, "created_at": at}])  # fmt: skip
    return await fetch_value(db, "SELECT id FROM notification WHERE dedupe_key = %(k)s", {"k": key})


async def test_repeated_unreachable_notices_fold_into_one_signed_event_with_their_count(
    db, loaded_county, fake, sender, push_settings
):
    household, report = household_report(loaded_county, index=320, severity=1)
    reporter = await actor_for(db, household.code)
    case = (await cases.submit_report(conn=db, actor=reporter, key=uuid.uuid4(), report=report, now=NOW,
                                      signer=SIGNER, rooms=ROOMS, county_code="610827")).case  # fmt: skip
    chief = await actor_for(db, case["handling_node_code"])
    pid = chief.person_id
    await deliver(db, sender, push_settings)  # the assignment: nobody has a phone
    opened = await unreachable_events(db, case["id"], pid)
    assert [e["body"]["count"] for e in opened] == [1]
    above = opened[0]["body"]["notified_person_id"]
    told_above = (
        "SELECT count(*) FROM notification WHERE case_id = %(c)s AND person_id = %(p)s AND kind = 'unreachable'"
    )

    n = 12
    for i in range(1, n):  # eleven more notices that cannot reach the chief, each in a round of its own
        at = NOW + timedelta(minutes=10 * i)
        await ring_again(db, case["id"], pid, at)
        await deliver(db, sender, push_settings, now=at)
    assert len(await unreachable_events(db, case["id"], pid)) == 1  # counted, not signed one by one
    assert await fetch_value(db, told_above, {"c": case["id"], "p": above}) == 1  # nor rung above again

    # The next step on the case puts the count on the ledger first, in order.
    await cases.act(conn=db, actor=chief, case_id=case["id"], action="accept", fields={},
                    now=NOW + timedelta(hours=3), signer=SIGNER, rooms=ROOMS)  # fmt: skip
    events = await repo.events(db, case_id=case["id"])
    folded = await unreachable_events(db, case["id"], pid)
    assert [e["body"]["count"] for e in folded] == [1, n - 1]  # the run's 12 failures, in two signed events
    assert folded[1]["body"]["ended_by"] == "case_step" and folded[1]["body"]["opened_seq"] == folded[0]["seq"]
    assert events[-1]["action"] == "accept" and events[-1]["seq"] == folded[1]["seq"] + 1
    assert await fetch_value(db, "SELECT count(*) FROM push_unreachable_run WHERE case_id = %(c)s AND person_id"
                                 " = %(p)s", {"c": case["id"], "p": pid}) == 0  # fmt: skip
    assert (await cases.verify_ledger(conn=db, case_id=case["id"], keys=KEYS)).valid


async def test_a_run_ends_when_a_notice_reaches_the_person_and_a_new_one_opens_after_the_window(
    db, loaded_county, fake, sender, push_settings
):
    household, report = household_report(loaded_county, index=321, severity=1)
    case = (await cases.submit_report(conn=db, actor=await actor_for(db, household.code), key=uuid.uuid4(),
                                      report=report, now=NOW, signer=SIGNER, rooms=ROOMS,
                                      county_code="610827")).case  # fmt: skip
    pid = (await actor_for(db, case["handling_node_code"])).person_id
    settings = push_settings.model_copy(update={"push_unreachable_fold_s": 3600})
    await deliver(db, sender, settings)
    for minutes in (10, 20, 30):
        await ring_again(db, case["id"], pid, NOW + timedelta(minutes=minutes))
        await deliver(db, sender, settings, now=NOW + timedelta(minutes=minutes))
    # Past the window: the three folded failures are signed, and a new run opens with its own event.
    later = NOW + timedelta(hours=2)
    await ring_again(db, case["id"], pid, later)
    await deliver(db, sender, settings, now=later)
    assert [(e["body"]["count"], e["body"].get("ended_by")) for e in await unreachable_events(db, case["id"], pid)] \
        == [(1, None), (3, "window"), (1, None)]  # fmt: skip

    # One more failure is folded; then the chief's phone is registered, the next notice rings it, and the
    # run ends: its one folded failure is signed, ended by the delivery.
    await ring_again(db, case["id"], pid, later + timedelta(minutes=10))
    await deliver(db, sender, settings, now=later + timedelta(minutes=10))
    await device(db, pid, "back-online-token")
    await ring_again(db, case["id"], pid, later + timedelta(minutes=20))
    await deliver(db, sender, settings, now=later + timedelta(minutes=20))
    events = await unreachable_events(db, case["id"], pid)
    assert [(e["body"]["count"], e["body"].get("ended_by")) for e in events][-1] == (1, "delivered")
    assert len(events) == 4
    assert await fetch_value(db, "SELECT count(*) FROM push_unreachable_run WHERE case_id = %(c)s AND person_id"
                                 " = %(p)s", {"c": case["id"], "p": pid}) == 0  # fmt: skip
    assert (await cases.verify_ledger(conn=db, case_id=case["id"], keys=KEYS)).valid
