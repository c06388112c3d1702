"""Writes on a case through HTTP, as an attacker would send them (issue 11, findings 2, 4, 8
and 11): a return (退回) or an extension that leaves the case's chain, writes that tell
whether a case exists, retried steps, and photos from people who only read.

The demo accounts all sit in 银州街道, so, as in the issue's reproduction, the 桃镇
(610827100) accounts are made by an admin through the admin API."""

from __future__ import annotations

import uuid

import pytest

from grid.db import fetch_value
from tests.conftest import PASSWORD, current_chief_phone, holder_person_id
from tests.photos import png

TAOZHEN_GROUP = "610827100-R1-S1-V01-Z1"  # 桃镇, a group (组) of its first village
TAOZHEN_HOUSEHOLD = TAOZHEN_GROUP + "-H1"
TAOZHEN_VILLAGE = "610827100-R1-S1-V01"
YINZHOU_GROUP = "610827001-R3-S1-V01-Z1"  # 银州街道: another township
MISSING_CASE = 987654321


@pytest.fixture
async def taozhen(client, make_account, loaded_county, db):
    """The issue's setup: the demo admin makes accounts for the 桃镇 household's and group's
    chiefs; the household's chief reports a severity-1 quarrel, which the group chief
    receives (case 2 of the issue)."""
    admin = await make_account("admin")

    async def account(node_code):
        phone = current_chief_phone(loaded_county, node_code)
        made = await client.post("/api/v1/admin/users", headers=admin.headers,
                                 json={"phone": phone, "name": f"{node_code} 负责人", "password": PASSWORD})  # fmt: skip
        assert made.status_code == 201, made.text
        login = await client.post("/api/v1/auth/token", data={"username": phone, "password": PASSWORD})
        assert login.status_code == 200, login.text
        return {"Authorization": f"Bearer {login.json()['access_token']}"}

    reporter, group = await account(TAOZHEN_HOUSEHOLD), await account(TAOZHEN_GROUP)
    point = next(n for n in loaded_county.nodes if n.code == TAOZHEN_HOUSEHOLD).geom.point_on_surface()
    r = await client.post("/api/v1/reports", headers=reporter | {"Idempotency-Key": str(uuid.uuid4())},
                          json={"lon": point.x, "lat": point.y, "crs": "wgs84", "category": "neighbours",
                                "severity": 1, "description": "两家因排水沟争吵",
                                "parties": [{"name": "张三", "phone": "13800000001", "role": "申请人"}]})  # fmt: skip
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["tier"] == "chief" and case["handling_node"] == TAOZHEN_GROUP
    return {"case": case, "reporter": reporter, "group": group}


async def events_of(db, case_id):
    return await fetch_value(db, "SELECT count(*) FROM case_event WHERE case_id = %(c)s", {"c": case_id})


# --- finding 2: 退回 and 延期 stay on the case's chain ------------------------------------


async def test_a_return_to_another_township_is_refused_naming_the_allowed_nodes(
    client, taozhen, make_account, db, loaded_county
):
    cid, group = taozhen["case"]["id"], taozhen["group"]
    assert taozhen["case"]["return_choices"] == [TAOZHEN_HOUSEHOLD]  # the case file offers them
    # ... with their names, for the map's picker
    household = next(n for n in loaded_county.nodes if n.code == TAOZHEN_HOUSEHOLD)
    assert taozhen["case"]["return_choice_nodes"] == [{"code": household.code, "name": household.name,
                                                        "level": "household"}]  # fmt: skip
    r = await client.post(f"/api/v1/cases/{cid}/actions", headers=group,
                          json={"action": "return", "note": "x", "next_recipient": YINZHOU_GROUP})  # fmt: skip
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "next_recipient_not_allowed"
    assert error["details"]["allowed"] == [TAOZHEN_HOUSEHOLD] and error["details"]["within"] == TAOZHEN_GROUP
    assert TAOZHEN_HOUSEHOLD in error["message"] and YINZHOU_GROUP in error["message"]
    # Nothing moved: the case is where it was, and 银州's group chief cannot read it.
    after = (await client.get(f"/api/v1/cases/{cid}", headers=group)).json()
    assert (after["handling_node"], after["state"]) == (TAOZHEN_GROUP, "assigned") and await events_of(db, cid) == 2
    yinzhou = await make_account("chief", node_code=YINZHOU_GROUP)
    assert (await client.get(f"/api/v1/cases/{cid}", headers=yinzhou.headers)).status_code == 404
    # One of the offered nodes is taken.
    ok = await client.post(f"/api/v1/cases/{cid}/actions", headers=group,
                           json={"action": "return", "note": "中心户先处理", "next_recipient": TAOZHEN_HOUSEHOLD})  # fmt: skip
    assert ok.status_code == 200 and ok.json()["handling_node"] == TAOZHEN_HOUSEHOLD


async def test_an_extension_needs_an_approver_one_tier_up(client, taozhen, db):
    cid, group = taozhen["case"]["id"], taozhen["group"]
    village_chief = await holder_person_id(db, TAOZHEN_VILLAGE)
    township_chief = await holder_person_id(db, "610827100")

    async def extend(approver):
        return await client.post(f"/api/v1/cases/{cid}/actions", headers=group,
                                 json={"action": "extend", "note": "等待丈量", "approver": approver})  # fmt: skip

    for wrong in ("村主任", str(township_chief)):
        r = await extend(wrong)
        assert r.status_code == 422 and r.json()["error"]["code"] == "approver_not_allowed", r.text
        assert village_chief in r.json()["error"]["details"]["allowed"]
    assert await events_of(db, cid) == 2
    r = await extend(str(village_chief))
    assert r.status_code == 200, r.text
    ledger = (await client.get(f"/api/v1/cases/{cid}/ledger", headers=group)).json()["events"]
    assert ledger[-1]["action"] == "extend"


# --- finding 4: a write on a case the caller cannot read is 404, like a read ---------------


def without_id(body, case_id):
    """The error with the case's own id taken out (each names the id it was asked about)."""
    error = body["error"]
    assert error["details"] == {"case_id": case_id}
    return {**error, "message": error["message"].replace(f" {case_id} ", " N "), "details": {}}


WRITES = {
    "action": lambda cid: ("POST", f"/api/v1/cases/{cid}/actions", {"json": {"action": "accept"}}),
    "section": lambda cid: ("PUT", f"/api/v1/cases/{cid}/sections/facts", {"json": {"body": "事实"}}),
    "attachment": lambda cid: ("POST", f"/api/v1/reports/{cid}/attachments",
                               {"files": {"file": ("a.png", png(), "image/png")}}),
    "read": lambda cid: ("GET", f"/api/v1/cases/{cid}", {}),
    "ledger": lambda cid: ("GET", f"/api/v1/cases/{cid}/ledger", {}),
}  # fmt: skip


@pytest.mark.parametrize("kind", WRITES)
async def test_an_unreadable_case_and_a_missing_one_answer_the_same_404(kind, client, taozhen, make_account, db):
    cid = taozhen["case"]["id"]
    outsider = (await make_account("chief", node_code=YINZHOU_GROUP)).headers

    async def send(case_id):
        method, url, kw = WRITES[kind](case_id)
        return await client.request(method, url, headers=outsider, **kw)

    unreadable, missing = await send(cid), await send(MISSING_CASE)
    assert (unreadable.status_code, missing.status_code) == (404, 404), (unreadable.text, missing.text)
    assert without_id(unreadable.json(), cid) == without_id(missing.json(), MISSING_CASE)
    assert unreadable.json()["error"]["code"] == "case_not_found"
    assert "桃" not in unreadable.text  # the handling node is not named
    assert await events_of(db, cid) == 2


@pytest.mark.parametrize("kind", ["action", "section", "attachment"])
async def test_a_reader_who_does_not_handle_the_case_gets_403(kind, client, taozhen, make_account, db):
    """The village's chief reads every case in the village, but this one is its group's."""
    cid = taozhen["case"]["id"]
    village = (await make_account("chief", node_code=TAOZHEN_VILLAGE)).headers
    assert (await client.get(f"/api/v1/cases/{cid}", headers=village)).status_code == 200
    method, url, kw = WRITES[kind](cid)
    r = await client.request(method, url, headers=village, **kw)
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_responsible", r.text
    assert await events_of(db, cid) == 2


# --- finding 11: attaching needs the right to act ------------------------------------------


async def test_the_handler_and_the_reporter_may_attach_photos(client, taozhen, db):
    cid = taozhen["case"]["id"]
    for who, photo in (
        (taozhen["group"], png((10, 20, 30))),
        (taozhen["reporter"], png((30, 20, 10))),
    ):
        r = await client.post(f"/api/v1/reports/{cid}/attachments", headers=who,
                              files={"file": ("a.png", photo, "image/png")})  # fmt: skip
        assert r.status_code == 201, r.text
    assert await events_of(db, cid) == 4


# --- finding 8: a step sent twice with one Idempotency-Key is taken once -------------------


async def test_escalate_twice_with_one_key_escalates_once_and_answers_the_same(client, taozhen, make_account, db):
    """The issue's reproduction: a dispatcher over 桃镇 may act at every tier of it, so two
    escalations would go chief → village house → township hall."""
    cid = taozhen["case"]["id"]
    dispatcher = (await make_account("dispatcher", node_code="610827100")).headers
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"action": "escalate", "note": "双方情绪激动"}
    first = await client.post(f"/api/v1/cases/{cid}/actions", json=body, headers=dispatcher | key)
    second = await client.post(f"/api/v1/cases/{cid}/actions", json=body, headers=dispatcher | key)
    assert (first.status_code, second.status_code) == (200, 200), second.text
    assert first.json() == second.json()
    assert first.json()["tier"] == "village_house" and first.json()["handling_node"] == TAOZHEN_VILLAGE
    now = (await client.get(f"/api/v1/cases/{cid}", headers=dispatcher)).json()
    assert now["tier"] == "village_house"
    ledger = (await client.get(f"/api/v1/cases/{cid}/ledger", headers=dispatcher)).json()["events"]
    assert [e["action"] for e in ledger] == ["report", "assign", "escalate", "assign"]
    # The same key with another body, on another route, or on another case: 409, nothing done.
    for method, url, kw in (
        ("POST", f"/api/v1/cases/{cid}/actions", {"json": body | {"note": "再次上报"}}),
        ("PUT", f"/api/v1/cases/{cid}/sections/facts", {"json": {"body": "事实"}}),
    ):
        r = await client.request(method, url, headers=dispatcher | key, **kw)
        assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_reused", r.text
    assert await events_of(db, cid) == 4
    # Without a key (older phones) a step is still taken, each time it is sent.
    again = await client.post(f"/api/v1/cases/{cid}/actions", json=body, headers=dispatcher)
    assert again.status_code == 200 and again.json()["tier"] == "township_hall"


async def test_a_section_written_twice_with_one_key_is_written_once(client, taozhen, db):
    cid, group = taozhen["case"]["id"], taozhen["group"]
    key = {"Idempotency-Key": str(uuid.uuid4())}
    url = f"/api/v1/cases/{cid}/sections/facts"
    first = await client.put(url, json={"body": "两家排水沟相邻"}, headers=group | key)
    second = await client.put(url, json={"body": "两家排水沟相邻"}, headers=group | key)
    assert (first.status_code, second.status_code) == (204, 204) and first.content == second.content == b""
    assert await events_of(db, cid) == 3
    other = await client.put(url, json={"body": "改过的事实"}, headers=group | key)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    sections = (await client.get(f"/api/v1/cases/{cid}", headers=group)).json()["sections"]
    assert sections == {"facts": "两家排水沟相邻"} and await events_of(db, cid) == 3


async def test_a_retried_answer_showing_parties_is_audited_again(client, taozhen, db):
    cid, group = taozhen["case"]["id"], taozhen["group"]
    key = {"Idempotency-Key": str(uuid.uuid4())}

    async def reads():
        return await fetch_value(db, "SELECT count(*) FROM audit_log WHERE action = 'read.case_parties'"
                                     " AND target = %(t)s", {"t": f"case:{cid}"})  # fmt: skip

    first = await client.post(f"/api/v1/cases/{cid}/actions", json={"action": "accept"}, headers=group | key)
    assert first.status_code == 200 and first.json()["parties"][0]["phone"] == "13800000001"
    before = await reads()
    again = await client.post(f"/api/v1/cases/{cid}/actions", json={"action": "accept"}, headers=group | key)
    assert again.json() == first.json() and await reads() == before + 1
