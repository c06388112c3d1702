"""坐班接访 over HTTP: the petition office keeps the duty roster (by the day or from a
sheet), the reception desk registers a walk-in visit as a case held by the day's duty
leader, and the leader decides what becomes of it; every step is signed on the ledger."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import Workbook

from grid.db import fetch_all, fetch_value
from grid.leadership import duty
from grid.leadership.models import VISIT_ACTIONS

TODAY = duty.today(datetime.now(UTC))


async def person_of(db, account) -> int:
    return int(await fetch_value(db, "SELECT person_id FROM user_account WHERE id = %(u)s", {"u": account.user_id}))


async def on_duty(client, db, make_account, *, day=TODAY):
    """A fresh leader on duty on `day`, set by the petition office; (leader account, person id)."""
    office, leader = await make_account("department_staff"), await make_account("leader")
    pid = await person_of(db, leader)
    r = await client.put(f"/api/v1/duty/{day.isoformat()}", headers=office.headers,
                         json={"leader_person_id": pid, "body": "party_committee"})  # fmt: skip
    assert r.status_code == 200, r.text
    return leader, pid


def visit_body(nodes, **kw):
    return {"visitor_name": "来访群众甲", "visitor_phone": "13912345678", "category": "neighbours", "severity": 2,
            "description": "邻居加盖房屋挡住采光", "node_code": nodes.village, **kw}  # fmt: skip


async def register(client, reception, nodes, key=None, **kw):
    return await client.post("/api/v1/visits", headers={**reception.headers, "Idempotency-Key": str(key or uuid.uuid4())},
                             json=visit_body(nodes, **kw))  # fmt: skip


async def test_the_petition_office_keeps_the_roster_and_everyone_reads_today(client, db, make_account):
    reader = await make_account("chief")
    r = await client.get("/api/v1/duty/today", headers=reader.headers)
    assert r.status_code == 200 and r.json() == {"day": TODAY.isoformat(), "on_duty": None}

    _leader, pid = await on_duty(client, db, make_account)
    today = (await client.get("/api/v1/duty/today", headers=reader.headers)).json()
    assert today["on_duty"]["leader_person_id"] == pid
    assert today["on_duty"]["leader_name"] == "测试leader" and today["on_duty"]["body_name"] == "县委"
    listed = (
        await client.get(
            "/api/v1/duty",
            headers=reader.headers,
            params={"from": TODAY.isoformat(), "to": (TODAY + timedelta(days=3)).isoformat()},
        )
    ).json()
    assert [d["day"] for d in listed["items"]] == [TODAY.isoformat()]

    # Another department's staff may not edit it; a wrong body or a non-leader is a 422 in Chinese.
    civil = await make_account("department_staff", department_code="civil_affairs")
    r = await client.put(f"/api/v1/duty/{TODAY}", headers=civil.headers, json={"leader_person_id": pid, "body": "县委"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_responsible"
    office = await make_account("department_staff")
    r = await client.put(
        f"/api/v1/duty/{TODAY}", headers=office.headers, json={"leader_person_id": pid, "body": "县法院"}
    )
    assert r.status_code == 422 and "县政协" in r.json()["error"]["message"]
    reception_pid = await person_of(db, await make_account("reception"))
    r = await client.put(f"/api/v1/duty/{TODAY}", headers=office.headers,
                         json={"leader_person_id": reception_pid, "body": "县委"})  # fmt: skip
    assert r.status_code == 422 and "领导" in r.json()["error"]["message"]
    assert (await client.get("/api/v1/duty/today", headers=reader.headers)).json()["on_duty"]["leader_person_id"] == pid

    r = await client.delete(f"/api/v1/duty/{TODAY}", headers=office.headers)
    assert r.status_code == 204
    assert (await client.get("/api/v1/duty/today", headers=reader.headers)).json()["on_duty"] is None


def workbook(rows) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["日期", "领导手机号", "所属班子", "备注"])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_the_roster_imports_from_a_sheet_all_or_nothing(client, db, make_account):
    office, a, b = await make_account("department_staff"), await make_account("leader"), await make_account("leader")
    d1, d2 = TODAY + timedelta(days=40), TODAY + timedelta(days=41)
    bad = workbook([[d1, a.phone, "县委", None], [d2.isoformat(), "13000000000", "县政府", None],
                    [d2.isoformat(), b.phone, "县法院", None]])  # fmt: skip

    def upload(data, **form):
        return client.post("/api/v1/duty/imports", headers=office.headers, data=form,
                           files={"file": ("坐班表.xlsx", data, "application/octet-stream")})  # fmt: skip

    r = await upload(bad)
    assert r.status_code == 422, r.text
    errors = r.json()["error"]["details"]["report"]["errors"]
    assert [e["row"] for e in errors] == [3, 4]  # 2 is good; 3 and 4 name the same day, and each has its own fault
    assert "13000000000" in errors[0]["reason"] and "县法院" in errors[1]["reason"]
    assert "不止一次" in errors[0]["reason"]
    count = "SELECT count(*) FROM duty_day WHERE day BETWEEN %(a)s AND %(b)s"
    assert await fetch_value(db, count, {"a": d1, "b": d2}) == 0

    good = workbook([[d1, a.phone, "县委", "上午"], [d2.isoformat(), b.phone, "cppcc", None]])
    r = await upload(good, dry_run="true")
    assert r.status_code == 200 and r.json()["imported"] == 0
    assert await fetch_value(db, count, {"a": d1, "b": d2}) == 0
    r = await upload(good)
    assert r.status_code == 200 and r.json()["imported"] == 2, r.text
    listed = (await client.get("/api/v1/duty", headers=office.headers,
                               params={"from": d1.isoformat(), "to": d2.isoformat()})).json()["items"]  # fmt: skip
    assert [(d["leader_person_id"], d["body_name"], d["note"]) for d in listed] == [
        (await person_of(db, a), "县委", "上午"), (await person_of(db, b), "县政协", None)]  # fmt: skip

    r = await client.post("/api/v1/duty/imports", headers=office.headers,
                          files={"file": ("坐班表.csv", b"a,b", "text/csv")})  # fmt: skip
    assert r.status_code == 415


async def test_no_visit_without_a_duty_leader(client, make_account, demo_nodes):
    reception = await make_account("reception")
    r = await register(client, reception, demo_nodes)
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_duty_leader"
    assert "坐班" in r.json()["error"]["message"]


async def test_a_visit_becomes_a_case_held_by_the_duty_leader_who_takes_it_as_baoan(
    client, db, make_account, demo_nodes
):
    leader, pid = await on_duty(client, db, make_account)
    reception = await make_account("reception")
    key = uuid.uuid4()
    r = await register(client, reception, demo_nodes, key=key)
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["tier"] == "county_center" and case["handling_node"] == demo_nodes.county
    assert case["located_node"] == demo_nodes.village and case["state"] == "assigned"
    assert [(h["person_id"], h["role"]) for h in case["recipients"]] == [(pid, "leader")]
    assert case["parties"] == [{"name": "来访群众甲", "phone": "13912345678", "role": "来访人"}]
    assert case["allowed_actions"] == []  # the desk registers; it does not handle
    source = await fetch_value(db, "SELECT source FROM case_file WHERE id = %(c)s", {"c": case["id"]})
    assert source == "visit"
    # A retry with the same key is the same case; another visit under that key is a conflict.
    again = await register(client, reception, demo_nodes, key=key)
    assert again.status_code == 200 and again.json()["id"] == case["id"]
    assert (await register(client, reception, demo_nodes, key=key, description="另一件事")).status_code == 409

    # The duty leader is offered exactly their four decisions, in Chinese.
    seen = (await client.get(f"/api/v1/cases/{case['id']}", headers=leader.headers)).json()
    assert seen["allowed_actions"] == list(VISIT_ACTIONS)
    assert list(seen["allowed_action_names"].values()) == ["当场化解", "交办网格", "交办部门", "包案"]
    inbox = (await client.get("/api/v1/me/inbox", headers=leader.headers)).json()["items"]
    assert [i["case_id"] for i in inbox] == [case["id"]]

    r = await client.post(
        f"/api/v1/visits/{case['id']}/decision",
        headers=leader.headers,
        json={"action": "take_ownership", "department_code": "housing", "note": "本人包案"},
    )
    assert r.status_code == 200, r.text
    owned = await fetch_value(db, "SELECT owner_leader_person_id FROM case_file WHERE id = %(c)s AND hard",
                              {"c": case["id"]})  # fmt: skip
    assert owned == pid
    assert r.json()["allowed_actions"] != list(VISIT_ACTIONS)  # decided: the visit no longer waits for them
    ledger = (await client.get(f"/api/v1/cases/{case['id']}/ledger", headers=leader.headers)).json()["events"]
    assert [e["action"] for e in ledger] == ["register_visit", "assign", "take_ownership"]
    assert [e["action_name"] for e in ledger] == ["来访登记", "分派", "包案"]
    verdict = (await client.get(f"/api/v1/cases/{case['id']}/ledger/verify", headers=leader.headers)).json()
    assert verdict["valid"] and verdict["events"] == 3

    # Decided once: a second decision is refused.
    r = await client.post(f"/api/v1/visits/{case['id']}/decision", headers=leader.headers,
                          json={"action": "settle", "agreement_text": "当场说清"})  # fmt: skip
    assert r.status_code == 409
    figures = (await client.get("/api/v1/duty/visits", headers=leader.headers)).json()
    mine = next(f for f in figures["leaders"] if f["leader_person_id"] == pid)
    assert (mine["visits"], mine["own"], mine["undecided"]) == (1, 1, 0)
    assert figures["decision_names"]["own"] == "领导包案"


async def test_each_of_the_duty_leaders_decisions_succeeds(client, db, make_account, demo_nodes):
    leader, pid = await on_duty(client, db, make_account)
    reception = await make_account("reception")
    housing_staff = await make_account("department_staff", department_code="housing")
    civil_staff = await make_account("department_staff", department_code="civil_affairs")
    ids = [(await register(client, reception, demo_nodes)).json()["id"] for _ in range(3)]

    async def decide(case_id, **body):
        return await client.post(f"/api/v1/visits/{case_id}/decision", headers=leader.headers, json=body)

    # Another leader, not on duty for it, may not decide; a decision needs its field.
    other = await make_account("leader")
    r = await client.post(f"/api/v1/visits/{ids[0]}/decision", headers=other.headers,
                          json={"action": "settle", "agreement_text": "x"})  # fmt: skip
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_responsible"
    assert (await decide(ids[0], action="settle")).status_code == 422
    assert (await decide(ids[0], action="no_such")).status_code == 422

    settled = await decide(ids[0], action="settle", agreement_text="双方当场达成一致：拆除遮挡部分")
    assert settled.status_code == 200, settled.text
    assert settled.json()["state"] == "resolved" and settled.json()["agreement_text"].startswith("双方")
    assert settled.json()["allowed_actions"] == ["return_visit", "reopen"]  # the usual return visit follows

    routed = await decide(ids[1], action="route_to_tier", tier="township_hall", note="交乡镇调处")
    assert routed.status_code == 200, routed.text
    assert routed.json()["tier"] == "township_hall" and routed.json()["handling_node"] == demo_nodes.township
    assert pid not in [h["person_id"] for h in routed.json()["recipients"]]

    unit = await decide(ids[2], action="assign_unit", department_code="housing")
    assert unit.status_code == 200, unit.text
    staff_pid = await person_of(db, housing_staff)
    assert [(h["person_id"], h["role_name"]) for h in unit.json()["recipients"]] == [(staff_pid, "部门承办人")]
    seen = (await client.get(f"/api/v1/cases/{ids[2]}", headers=housing_staff.headers)).json()
    assert seen["allowed_actions"][0] == "accept"
    r = await client.post(f"/api/v1/cases/{ids[2]}/actions", headers=housing_staff.headers, json={"action": "accept"})
    assert r.status_code == 200 and r.json()["state"] == "accepted"
    assert (await client.get(f"/api/v1/cases/{ids[2]}", headers=civil_staff.headers)).status_code == 404

    figures = (await client.get("/api/v1/duty/visits", headers=housing_staff.headers)).json()
    mine = next(f for f in figures["leaders"] if f["leader_person_id"] == pid)
    assert (mine["visits"], mine["settle"], mine["route"], mine["unit"], mine["resolved_later"]) == (3, 1, 1, 1, 0)
    for case_id in ids:
        events = await fetch_all(db, "SELECT action FROM case_event WHERE case_id = %(c)s ORDER BY seq", {"c": case_id})
        assert events[0]["action"] == "register_visit"
        verdict = (await client.get(f"/api/v1/cases/{case_id}/ledger/verify", headers=leader.headers)).json()
        assert verdict["valid"], verdict


@pytest.mark.parametrize("place", [{"lon": 10.0, "lat": 10.0, "node_code": None}, {"node_code": "no-such-node"},
                                   {"node_code": None}])  # fmt: skip
async def test_a_visit_needs_a_place_in_the_county(client, db, make_account, demo_nodes, place):
    await on_duty(client, db, make_account)
    reception = await make_account("reception")
    r = await register(client, reception, demo_nodes, **place)
    assert r.status_code == 422, r.text
    assert await fetch_value(db, "SELECT count(*) FROM case_visit") == 0


@pytest.mark.parametrize("params", [{"from": "9999-12-31"}, {"to": "0001-01-02"}, {"from": "2026-01-02", "to": "2026-01-01"},
                                    {"from": "2020-01-01", "to": "2026-01-01"}])  # fmt: skip
async def test_a_span_off_the_calendar_or_too_long_is_a_422(client, make_account, params):
    leader = await make_account("leader")
    for path in ("/api/v1/duty", "/api/v1/duty/visits"):
        r = await client.get(path, headers=leader.headers, params=params)
        assert r.status_code == 422, (path, params, r.text)
