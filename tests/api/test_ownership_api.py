"""包案 over HTTP: a case made hard and owned by a county leader and a unit, the five duties
ticked, the owners' actions (exactly those the case file lists), concluded 事心双结 on a
ledger that verifies; who may mark a case hard; what a department's staff see."""

from __future__ import annotations

import uuid

import pytest

from grid.db import fetch_all, fetch_value

SIX = ("investigation", "facts", "policy", "reasoning", "disposition", "return_visit")
DUTIES = ("know", "educate", "solve", "stabilise", "by_law")
OWNER_ACTIONS_ASSIGNED = ["extend", "direct", "note", "conclude"]  # the table's order, in state `assigned`


async def person_of(db, account) -> int:
    return int(await fetch_value(db, "SELECT person_id FROM user_account WHERE id = %(u)s", {"u": account.user_id}))


@pytest.fixture
async def reporter(make_account, demo_nodes):
    """The chief of the demo household, who reports the cases here."""
    return await make_account("chief", node_code=demo_nodes.household)


async def report(client, chief, nodes, *, severity: int = 2) -> int:
    """An ordinary report by the household's chief, over HTTP; the case's id."""
    lon, lat = nodes.points[nodes.household]
    r = await client.post("/api/v1/reports", headers=chief.headers | {"Idempotency-Key": str(uuid.uuid4())},
                          json={"lon": lon, "lat": lat, "category": "homestead", "severity": severity,
                                "description": "宅基地界址纠纷，多年未解", "parties": [{"name": "王五", "role": "申请人"}]})  # fmt: skip
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def owned_by(client, db, make_account, case_id: int, *, unit: dict, marker: str = "mediator_county_center"):
    """The case made hard by `marker` (the county centre's mediator by default), owned by a
    fresh county leader and `unit`; returns the leader's account and person id."""
    leader = await make_account("leader")
    by = await make_account(marker)
    r = await client.post(f"/api/v1/cases/{case_id}/ownership", headers=by.headers,
                          json={"leader_person_id": await person_of(db, leader), "unit": unit, "note": "多年积案，县领导包案"})  # fmt: skip
    assert r.status_code == 200, r.text
    return leader, (await client.get(f"/api/v1/cases/{case_id}", headers=by.headers)).json()


async def test_a_hard_case_owned_five_duties_ticked_and_concluded_on_a_verified_ledger(
    client, db, make_account, demo_nodes, reporter
):
    cid = await report(client, reporter, demo_nodes)
    leader, case = await owned_by(client, db, make_account, cid, unit={"department_code": "housing"})
    leader_pid = await person_of(db, leader)
    assert case["hard"] is True and case["owner_leader"] == {"person_id": leader_pid, "name": "测试leader"}
    assert case["owner_unit"] == {"kind": "department", "code": "housing", "name": "住建局"}
    assert [d["name"] for d in case["five_duties"]] == [
        "包掌握情况",
        "包思想教育",
        "包解决问题",
        "包稳控管理",
        "包依法处理",
    ]
    assert not any(d["done"] for d in case["five_duties"])

    # The leader is told, and now sees the owners' actions (and only those) on this case.
    inbox = (await client.get("/api/v1/me/inbox", headers=leader.headers)).json()["items"]
    assert [i["kind"] for i in inbox if i["case_id"] == cid] == ["take_ownership"]
    mine = (await client.get(f"/api/v1/cases/{cid}", headers=leader.headers)).json()
    assert mine["allowed_actions"] == OWNER_ACTIONS_ASSIGNED
    assert mine["allowed_action_names"]["conclude"] == "包案办结"

    for i, duty in enumerate(DUTIES, 1):
        r = await client.post(f"/api/v1/cases/{cid}/duties/{duty}", json={"note": f"第{i}项已落实"},
                              headers=leader.headers)  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["done"] == i
    owned = (await client.get("/api/v1/me/owned", headers=leader.headers)).json()["items"]
    assert [(o["id"], o["duties_done"], o["as_leader"], o["owner_unit"]["name"]) for o in owned] == [
        (cid, 5, True, "住建局")
    ]
    assert owned[0]["category_name"] == "宅基地"  # the leader's page shows it as it is
    detail = (await client.get(f"/api/v1/cases/{cid}", headers=leader.headers)).json()
    know = detail["five_duties"][0]
    assert know["done"] and know["note"] == "第1项已落实" and know["by"] == "测试leader"
    assert know["at_text"] and "月" in know["at_text"]  # the county's time, as a person reads it

    # Concluding closes the case, so the file's six sections must be there first (409 names them).
    r = await client.post(f"/api/v1/cases/{cid}/actions", headers=leader.headers,
                          json={"action": "conclude", "note": "双方和解", "hard_outcome": "heart_settled"})  # fmt: skip
    assert r.status_code == 409 and r.json()["error"]["code"] == "sections_missing", r.text
    for section in SIX:
        r = await client.put(f"/api/v1/cases/{cid}/sections/{section}", json={"body": f"{section}：已核实"},
                             headers=leader.headers)  # fmt: skip
        assert r.status_code == 204, r.text
    r = await client.post(f"/api/v1/cases/{cid}/actions", headers=leader.headers,
                          json={"action": "conclude", "note": "双方握手言和，心结已解", "hard_outcome": "heart_settled"})  # fmt: skip
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["state"] == "closed" and done["hard_outcome"] == "heart_settled"
    assert done["hard_outcome_name"] == "事心双结" and done["allowed_actions"] == []

    ledger = (await client.get(f"/api/v1/cases/{cid}/ledger", headers=leader.headers)).json()["events"]
    steps = [e["action"] for e in ledger]
    assert steps[:2] == ["report", "assign"] and steps[2] == "take_ownership"
    assert steps[3:8] == ["five_duty"] * 5 and [e["details"]["duty"] for e in ledger[3:8]] == list(DUTIES)
    assert steps[8:] == [f"file_{s}" for s in SIX] + ["conclude"]
    assert all(e["actor_person_id"] == leader_pid for e in ledger[3:])
    assert ledger[-1]["action_name"] == "包案办结" and ledger[-1]["details"]["hard_outcome"] == "heart_settled"
    assert ledger[3]["action_name"] == "落实五包" and ledger[3]["note"].startswith("包掌握情况")
    verdict = (await client.get(f"/api/v1/cases/{cid}/ledger/verify", headers=leader.headers)).json()
    assert verdict["valid"] is True and verdict["events"] == len(ledger)

    # Ended: the duties are frozen (409), and the case leaves the open list.
    r = await client.post(f"/api/v1/cases/{cid}/duties/know", json={"note": "补记"}, headers=leader.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "case_closed"
    still_open = (await client.get("/api/v1/me/owned", params={"open": "true"}, headers=leader.headers)).json()
    assert still_open["items"] == []


async def test_each_action_the_case_file_offers_a_leader_succeeds_and_nothing_else_is_offered(
    client, db, make_account, demo_nodes, reporter
):
    cid = await report(client, reporter, demo_nodes)
    other = await report(client, reporter, demo_nodes)  # not theirs
    leader, _ = await owned_by(client, db, make_account, cid, unit={"township_code": demo_nodes.township})
    leader_pid = await person_of(db, leader)

    async def offered(case_id):
        return (await client.get(f"/api/v1/cases/{case_id}", headers=leader.headers)).json()["allowed_actions"]

    async def act(action, **fields):
        return await client.post(f"/api/v1/cases/{cid}/actions", json={"action": action, **fields},
                                 headers=leader.headers)  # fmt: skip

    assert await offered(other) == []  # a leader reads every case, and acts on none but their own
    r = await client.post(
        f"/api/v1/cases/{other}/actions", json={"action": "note", "note": "x"}, headers=leader.headers
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_responsible"

    assert await offered(cid) == OWNER_ACTIONS_ASSIGNED
    r = await act("accept")  # a handler's step, not an owner's
    assert r.status_code == 403 and "包案领导和责任单位现在可以" in r.json()["error"]["message"]
    r = await act("note", note="已约谈双方")
    assert r.status_code == 200, r.text
    r = await act("extend", note="需补充调查", approver=str(leader_pid), hours=48)  # the owning leader approves
    assert r.status_code == 200, r.text
    r = await act("direct", note="请调处中心牵头", tier="county_center")
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["tier"] == "county_center" and moved["state"] == "assigned"
    assert await offered(cid) == OWNER_ACTIONS_ASSIGNED
    r = await act("direct", tier="nowhere")
    assert r.status_code == 422
    r = await act("conclude", note="x", hard_outcome="maybe")
    assert r.status_code == 422
    for section in SIX:
        await client.put(f"/api/v1/cases/{cid}/sections/{section}", json={"body": "已核实"}, headers=leader.headers)
    r = await act("conclude", note="息诉罢访，承诺不再上访", hard_outcome="complaint_withdrawn")
    assert r.status_code == 200, r.text
    assert await offered(cid) == []  # closed: reopening is the handlers' (the resident is not satisfied)

    steps = [
        e["action"] for e in (await client.get(f"/api/v1/cases/{cid}/ledger", headers=leader.headers)).json()["events"]
    ]
    # Handed to the county centre: assigned there, and not marked hard a second time.
    assert steps[2:6] == ["take_ownership", "note", "extend", "direct"] and steps[6] == "assign"
    assert "mark_hard" not in steps


async def test_the_owning_township_and_the_handlers_each_get_their_own_actions(
    client, db, make_account, demo_nodes, reporter
):
    cid = await report(client, reporter, demo_nodes)
    await owned_by(client, db, make_account, cid, unit={"township_code": demo_nodes.township})
    township = await make_account("dispatcher")  # dispatcher of demo_nodes.township: the owning unit's staff
    village = await make_account("mediator_village_house")  # a handler of the village's house, not an owner
    offered = (await client.get(f"/api/v1/cases/{cid}", headers=township.headers)).json()["allowed_actions"]
    # The dispatcher handles cases in the township and is the owning unit's staff: both sets.
    assert offered == ["accept", "escalate", "return", "extend", "direct", "note", "conclude"]
    handler = (await client.get(f"/api/v1/cases/{cid}", headers=village.headers)).json()["allowed_actions"]
    assert handler == ["accept", "escalate", "return", "extend"]
    r = await client.post(f"/api/v1/cases/{cid}/actions", json={"action": "conclude", "note": "x",
                                                                "hard_outcome": "case_closed"}, headers=village.headers)  # fmt: skip
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_responsible"
    r = await client.post(f"/api/v1/cases/{cid}/duties/solve", json={"note": "x"}, headers=village.headers)
    assert r.status_code == 403
    r = await client.post(f"/api/v1/cases/{cid}/duties/solve", json={"note": "镇里协调资金"}, headers=township.headers)
    assert r.status_code == 200 and r.json()["done"] == 1


async def test_who_may_mark_a_case_hard(client, db, make_account, demo_nodes, reporter):
    cid = await report(client, reporter, demo_nodes)
    leader = await make_account("leader")
    body = {"leader_person_id": await person_of(db, leader), "unit": {"department_code": "justice"}}
    for kind, status in [("mediator_township_hall", 403), ("dispatcher", 403), ("leader", 403),
                         ("mediator_county_center", 200)]:  # fmt: skip
        who = await make_account(kind)
        r = await client.post(f"/api/v1/cases/{cid}/ownership", json=body, headers=who.headers)
        assert r.status_code == status, (kind, r.text)
    # The petition office (信访局's staff) may, on the cases it reads (信访局 is one of their units);
    # another department's staff may not, and do not read it either: 404.
    petition = await make_account("department_staff")
    civil = await make_account("department_staff", department_code="civil_affairs")
    r = await client.post(f"/api/v1/cases/{cid}/ownership", json=body, headers=petition.headers)
    assert r.status_code == 404  # justice owns it so far: not the petition office's to read
    r = await client.post(f"/api/v1/cases/{cid}/ownership", json=body | {"unit": {"department_code": "petition"}},
                          headers=(await make_account("mediator_county_center")).headers)  # fmt: skip
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/cases/{cid}/ownership", json=body | {"unit": {"department_code": "housing"}},
                          headers=petition.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/cases/{cid}/ownership", json=body, headers=civil.headers)
    assert r.status_code == 404
    # A wrong leader is 422 and lists the county's leaders; a township elsewhere cannot own it.
    centre = await make_account("mediator_county_center")
    chief_pid = int(await fetch_value(db, "SELECT person_id FROM user_account WHERE id = %(u)s",
                                      {"u": (await make_account("chief")).user_id}))  # fmt: skip
    r = await client.post(f"/api/v1/cases/{cid}/ownership", json=body | {"leader_person_id": chief_pid},
                          headers=centre.headers)  # fmt: skip
    assert r.status_code == 422 and body["leader_person_id"] in r.json()["error"]["details"]["allowed"]
    r = await client.post(f"/api/v1/cases/{cid}/ownership", json=body | {"unit": {"township_code": demo_nodes.other_township}},
                          headers=centre.headers)  # fmt: skip
    assert r.status_code == 422 and "辖区" in r.json()["error"]["message"]
    r = await client.post(f"/api/v1/cases/{cid}/ownership", json=body | {"unit": {}}, headers=centre.headers)
    assert r.status_code == 422 and "二选一" in r.json()["error"]["message"]
    owners = await fetch_all(db, "SELECT d.code FROM case_unit u JOIN department d ON d.id = u.department_id"
                                 " WHERE u.case_id = %(c)s", {"c": cid})  # fmt: skip
    assert owners == [{"code": "housing"}]  # the refusals changed nothing


async def test_a_departments_staff_see_only_their_departments_cases(client, db, make_account, demo_nodes, reporter):
    theirs = await report(client, reporter, demo_nodes)
    not_theirs = await report(client, reporter, demo_nodes)
    await owned_by(client, db, make_account, theirs, unit={"department_code": "housing"})
    await owned_by(client, db, make_account, not_theirs, unit={"department_code": "justice"})
    housing = await make_account("department_staff", department_code="housing")

    r = await client.get(f"/api/v1/cases/{theirs}", headers=housing.headers)
    assert r.status_code == 200 and r.json()["parties"][0]["name"] == "王五"
    assert r.json()["allowed_actions"] == OWNER_ACTIONS_ASSIGNED  # the owning unit's staff
    assert (await client.get(f"/api/v1/cases/{not_theirs}", headers=housing.headers)).status_code == 404
    assert (await client.get(f"/api/v1/cases/{not_theirs}/ledger", headers=housing.headers)).status_code == 404
    listed = (await client.get("/api/v1/cases", headers=housing.headers)).json()["items"]
    assert [c["id"] for c in listed] == [theirs]
    owned = (await client.get("/api/v1/me/owned", headers=housing.headers)).json()["items"]
    assert [(o["id"], o["as_leader"]) for o in owned] == [(theirs, False)]
    # Their read of the parties is audited like anyone's.
    audited = await fetch_value(db, "SELECT count(*) FROM audit_log WHERE actor_user_id = %(u)s"
                                    " AND action = 'read.case_parties'", {"u": housing.user_id})  # fmt: skip
    assert audited == 1


async def test_a_case_reaching_the_county_centre_is_marked_hard(client, db, make_account, demo_nodes, reporter):
    cid = await report(client, reporter, demo_nodes, severity=4)  # severity 4: the county centre at once
    centre = await make_account("mediator_county_center")
    case = (await client.get(f"/api/v1/cases/{cid}", headers=centre.headers)).json()
    assert case["tier"] == "county_center" and case["hard"] is True and case["owner_leader"] is None
    ledger = (await client.get(f"/api/v1/cases/{cid}/ledger", headers=centre.headers)).json()["events"]
    assert [e["action"] for e in ledger] == ["report", "assign", "mark_hard"]
    assert ledger[-1]["action_name"] == "列为疑难案件" and ledger[-1]["actor_person_id"] is None
    # Hard, with no owner yet: nobody is offered the owners' steps, the centre its own (no
    # escalation: the centre is the last tier, it closes lawfully instead).
    assert case["allowed_actions"] == ["accept", "return", "extend"]
    verdict = (await client.get(f"/api/v1/cases/{cid}/ledger/verify", headers=centre.headers)).json()
    assert verdict["valid"]


async def test_departments_listed_added_and_changed_by_the_admin_with_an_audit_trail(client, make_account, db):
    admin, dispatcher = await make_account("admin"), await make_account("dispatcher")
    listed = (await client.get("/api/v1/departments", headers=dispatcher.headers)).json()
    assert len(listed) == 10 and listed[0] == {"code": "petition", "name": "信访局", "active": True}

    r = await client.post("/api/v1/admin/departments", json={"code": "veterans", "name": "退役军人事务局"},
                          headers=admin.headers)  # fmt: skip
    assert r.status_code == 201 and r.json() == {"code": "veterans", "name": "退役军人事务局", "active": True}
    r = await client.post(
        "/api/v1/admin/departments", json={"code": "veterans", "name": "又一个"}, headers=admin.headers
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "department_exists"
    r = await client.post("/api/v1/admin/departments", json={"code": "Bad Code", "name": "x"}, headers=admin.headers)
    assert r.status_code == 422
    r = await client.post("/api/v1/admin/departments", json={"code": "x1", "name": "x"}, headers=dispatcher.headers)
    assert r.status_code == 403

    r = await client.patch("/api/v1/admin/departments/veterans", json={"name": "退役军人局", "active": False},
                           headers=admin.headers)  # fmt: skip
    assert r.status_code == 200 and r.json() == {"code": "veterans", "name": "退役军人局", "active": False}
    assert (await client.patch("/api/v1/admin/departments/nowhere", json={"active": True},
                               headers=admin.headers)).status_code == 404  # fmt: skip
    assert (await client.patch("/api/v1/admin/departments/veterans", json={}, headers=admin.headers)).status_code == 422
    listed = (await client.get("/api/v1/departments", headers=dispatcher.headers)).json()
    assert listed[-1] == {"code": "veterans", "name": "退役军人局", "active": False}
    # An inactive department takes no new staff.
    r = await client.post("/api/v1/admin/users", headers=admin.headers, json={
        "phone": "19833300001", "name": "甲", "grants": [
            {"role": "department_staff", "node_code": "610827", "department_code": "veterans"}]})  # fmt: skip
    assert r.status_code == 422
    audit = await fetch_all(db, "SELECT action, target FROM audit_log WHERE actor_user_id = %(u)s"
                                " AND action LIKE 'admin.department%%' ORDER BY id", {"u": admin.user_id})  # fmt: skip
    assert audit == [{"action": "admin.department_add", "target": "department:veterans"},
                     {"action": "admin.department_change", "target": "department:veterans"}]  # fmt: skip


async def test_the_admin_creates_a_department_staff_account(client, make_account):
    admin = await make_account("admin")

    async def create(phone, grant):
        return await client.post("/api/v1/admin/users", headers=admin.headers,
                                 json={"phone": phone, "name": "部门员工", "grants": [grant]})  # fmt: skip

    grant = {"role": "department_staff", "node_code": "610827"}
    r = await create("19833300002", grant | {"department_code": "civil_affairs"})
    assert r.status_code == 201, r.text
    user = (await client.get(f"/api/v1/admin/users/{r.json()['id']}", headers=admin.headers)).json()
    assert user["roles"] == ["department_staff"] and user["scopes"][0]["department_code"] == "civil_affairs"
    r = await create("19833300003", grant)
    assert r.status_code == 422 and "所属部门" in r.json()["error"]["message"]
    r = await create("19833300004", grant | {"department_code": "nowhere"})
    assert r.status_code == 422 and "nowhere" in r.json()["error"]["message"]
