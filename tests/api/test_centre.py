"""The county centre over HTTP (issue 12, sections 5 to 7): lawful closure (依法终结) ends a
case that failed at the centre instead of looping; joint handling by departments; discipline
inspection's notes; the township hall's team (五位一体) and a case's work group; referrals
of a party to social assistance (社会救助) and 民政局's outcome. Every step on the ledger."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from app.accounts.service import ROOMS
from app.settings import get_settings
from grid.cases import service as cases
from grid.db import fetch_one


async def report(client, chief, demo_nodes, *, severity: int, household: str | None = None) -> dict:
    lon, lat = demo_nodes.points[household or demo_nodes.household]
    r = await client.post("/api/v1/reports", headers=chief.headers | {"Idempotency-Key": str(uuid.uuid4())},
                          json={"lon": lon, "lat": lat, "crs": "wgs84", "category": "neighbours", "severity": severity,
                                "description": "宅基地边界纠纷",
                                "parties": [{"name": "李四", "phone": "13800000002", "role": "申请人"},
                                            {"name": "王五", "phone": "13800000003", "role": "被申请人"}]})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


async def act(client, who, case_id, action, **fields):
    return await client.post(f"/api/v1/cases/{case_id}/actions", headers=who.headers, json={"action": action, **fields})


async def ledger_ok(client, who, case_id) -> list[dict]:
    verdict = (await client.get(f"/api/v1/cases/{case_id}/ledger/verify", headers=who.headers)).json()
    assert verdict["valid"], verdict
    return (await client.get(f"/api/v1/cases/{case_id}/ledger", headers=who.headers)).json()["events"]


async def at_centre(client, make_account, demo_nodes) -> tuple[dict, object, object]:
    """A severity-4 case, routed to the county centre; the reporter and a centre mediator."""
    reporter = await make_account("chief", node_code=demo_nodes.household)
    case = await report(client, reporter, demo_nodes, severity=4)
    assert case["tier"] == "county_center"
    return case, reporter, await make_account("mediator_county_center")


# --- 依法终结 --------------------------------------------------------------------------------


async def test_a_case_that_fails_at_the_centre_is_closed_lawfully_and_no_longer_loops(
    client, make_account, demo_nodes, db
):
    case, reporter, mediator = await at_centre(client, make_account, demo_nodes)
    cid = case["id"]
    for action in ("accept", "start_mediation"):
        assert (await act(client, mediator, cid, action)).status_code == 200
    failed = (await act(client, mediator, cid, "fail", note="双方对边界各执一词")).json()
    # The mediator is offered the lawful closure, not an escalation to nowhere; each offered step succeeds.
    assert failed["allowed_actions"] == ["terminate"] and failed["allowed_action_names"] == {"terminate": "依法终结"}
    r = await act(client, mediator, cid, "escalate", note="再上交")
    assert r.status_code == 409 and r.json()["error"]["code"] == "illegal_transition"
    assert "最后一级" in r.json()["error"]["message"] and "依法终结" in r.json()["error"]["message"]
    r = await act(client, mediator, cid, "terminate", note="调解不成")
    assert r.status_code == 422 and r.json()["error"]["details"]["missing"] == ["channel"]
    # The county's chief holds the case too, but the lawful closure is the centre's mediators' decision.
    county_chief = await make_account("chief", node_code=demo_nodes.county)
    seen = (await client.get(f"/api/v1/cases/{cid}", headers=county_chief.headers)).json()
    assert seen["allowed_actions"] == []
    r = await act(client, county_chief, cid, "terminate", note="x", channel="litigation")
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_responsible"

    r = await act(client, mediator, cid, "terminate", note="双方分歧在于土地确权，引导申请行政复议",
                  channel="administrative_review")  # fmt: skip
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["state"], done["state_name"], done["allowed_actions"]) == ("terminated", "依法终结", [])
    assert (done["closure_channel"], done["closure_channel_name"]) == ("administrative_review", "行政复议")
    assert done["closure_reason"].startswith("双方分歧")
    events = await ledger_ok(client, mediator, cid)
    last = events[-1]
    assert (last["action"], last["action_name"], last["to_state"]) == ("terminate", "依法终结", "terminated")
    assert last["details"]["channel"] == "administrative_review"
    # The reporter is told, in Chinese, where the matter went (the parties have no accounts: the reporter tells them).
    inbox = (await client.get("/api/v1/me/inbox", headers=reporter.headers)).json()["items"]
    assert any(n["kind"] == "terminate" and "依法终结" in n["body"] for n in inbox), inbox
    # The worker leaves it alone: a closed matter is late for nothing.
    later = datetime.now(UTC) + timedelta(days=60)
    swept = await cases.sweep(conn=db, now=later, signer=get_settings().ledger_signer(), rooms=ROOMS)
    assert cid not in swept.escalated + swept.reminded + swept.warned
    assert (await fetch_one(db, "SELECT state FROM case_file WHERE id = %(c)s", {"c": cid}))["state"] == "terminated"


async def test_lawful_closure_is_refused_below_the_centre(client, make_account, demo_nodes):
    reporter = await make_account("chief", node_code=demo_nodes.household)
    case = await report(client, reporter, demo_nodes, severity=2)
    house = await make_account("mediator_village_house")
    for action in ("accept", "start_mediation"):
        await act(client, house, case["id"], action)
    failed = (await act(client, house, case["id"], "fail", note="未成")).json()
    assert "terminate" not in failed["allowed_actions"] and "escalate" in failed["allowed_actions"]
    r = await act(client, house, case["id"], "terminate", note="x", channel="litigation")
    assert r.status_code == 409 and "escalate" in r.json()["error"]["details"]["allowed"]


# --- 联合办理 and 纪检监督 ----------------------------------------------------------------------


async def test_the_centre_assigns_co_handling_departments_and_each_marks_its_own_part_done(
    client, make_account, demo_nodes
):
    case, _, mediator = await at_centre(client, make_account, demo_nodes)
    cid = case["id"]
    justice = await make_account("department_staff", department_code="justice")
    housing = await make_account("department_staff", department_code="housing")
    assert (await client.get(f"/api/v1/cases/{cid}", headers=justice.headers)).status_code == 404
    r = await client.post(f"/api/v1/cases/{cid}/joint", headers=mediator.headers,
                          json={"department_code": "justice", "task": "出具法律意见"})  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["joint_units"] == [{"department_code": "justice", "department_name": "司法局",
                                        "task": "出具法律意见", "done_at": None, "done_note": None}]  # fmt: skip
    r = await client.post(f"/api/v1/cases/{cid}/joint", headers=mediator.headers,
                          json={"department_code": "housing", "task": "核查房屋权属"})  # fmt: skip
    assert r.status_code == 201
    again = await client.post(f"/api/v1/cases/{cid}/joint", headers=mediator.headers,
                              json={"department_code": "justice", "task": "再来"})  # fmt: skip
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_recorded"
    unknown = await client.post(f"/api/v1/cases/{cid}/joint", headers=mediator.headers,
                                json={"department_code": "nasa", "task": "x"})  # fmt: skip
    assert unknown.status_code == 422 and "司法局（justice）" in unknown.json()["error"]["message"]
    # The department's staff now read the case and are told in their inbox.
    assert (await client.get(f"/api/v1/cases/{cid}", headers=justice.headers)).status_code == 200
    inbox = (await client.get("/api/v1/me/inbox", headers=justice.headers)).json()["items"]
    assert [n["kind"] for n in inbox] == ["joint_assign"]
    # Each marks only its own part done.
    r = await client.post(f"/api/v1/cases/{cid}/joint/housing/done", headers=justice.headers, json={"note": "完成"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_responsible"
    r = await client.post(f"/api/v1/cases/{cid}/joint/justice/done", headers=justice.headers,
                          json={"note": "法律意见已送达"})  # fmt: skip
    assert r.status_code == 200, r.text
    units = {u["department_code"]: u for u in r.json()["joint_units"]}
    assert units["justice"]["done_note"] == "法律意见已送达" and units["justice"]["done_at"] is not None
    assert units["housing"]["done_at"] is None
    r = await client.post(f"/api/v1/cases/{cid}/joint/justice/done", headers=justice.headers, json={"note": "再次"})
    assert r.status_code == 409
    # A department that is no unit of the case cannot read it, so cannot write to it either.
    petition = await make_account("department_staff")
    r = await client.post(f"/api/v1/cases/{cid}/joint/petition/done", headers=petition.headers, json={"note": "x"})
    assert r.status_code == 404
    actions = [e["action"] for e in await ledger_ok(client, mediator, cid)]
    assert actions[-3:] == ["joint_assign", "joint_assign", "joint_done"]
    assert housing.role == "department_staff"


async def test_joint_handling_is_the_centres_own(client, make_account, demo_nodes):
    reporter = await make_account("chief", node_code=demo_nodes.household)
    case = await report(client, reporter, demo_nodes, severity=2)
    centre = await make_account(
        "mediator_county_center"
    )  # reads and acts county-wide, but joint handling is at the centre
    r = await client.post(f"/api/v1/cases/{case['id']}/joint", headers=centre.headers,
                          json={"department_code": "justice", "task": "x"})  # fmt: skip
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_at_county_center"
    house = await make_account("mediator_village_house")
    r = await client.post(f"/api/v1/cases/{case['id']}/joint", headers=house.headers,
                          json={"department_code": "justice", "task": "x"})  # fmt: skip
    assert r.status_code == 409  # not at the centre, whoever asks


async def test_discipline_inspection_writes_signed_notes_on_the_centres_cases_only(client, make_account, demo_nodes):
    case, reporter, mediator = await at_centre(client, make_account, demo_nodes)
    supervisor = await make_account("supervisor")
    queue = (await client.get("/api/v1/supervision/cases", headers=supervisor.headers)).json()["items"]
    assert case["id"] in [c["id"] for c in queue] and {c["tier"] for c in queue} == {"county_center"}
    r = await client.post(f"/api/v1/cases/{case['id']}/supervision", headers=supervisor.headers,
                          json={"note": "请于三日内报告化解进展"})  # fmt: skip
    assert r.status_code == 204, r.text
    last = (await ledger_ok(client, supervisor, case["id"]))[-1]
    assert (last["action"], last["action_name"], last["note"]) == ("supervise", "纪检监督", "请于三日内报告化解进展")
    # Readers who are not supervisors: 403; a supervisor on a case below the centre: 404, as if it did not exist.
    r = await client.post(f"/api/v1/cases/{case['id']}/supervision", headers=mediator.headers, json={"note": "x"})
    assert r.status_code == 403
    low = await report(client, reporter, demo_nodes, severity=2)
    r = await client.post(f"/api/v1/cases/{low['id']}/supervision", headers=supervisor.headers, json={"note": "x"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "case_not_found"


# --- 五位一体 and the work group ----------------------------------------------------------------


async def test_the_halls_team_is_edited_by_its_township_and_mediates_as_a_work_group(
    client, make_account, demo_nodes, db
):
    dispatcher = await make_account("dispatcher")
    hall = await make_account("mediator_township_hall")
    url = f"/api/v1/grid/nodes/{demo_nodes.township}/team"
    added = []
    for name, kind in (("赵镇长", "cadre"), ("钱警官", "police"), ("孙律师", "legal_adviser")):
        r = await client.post(
            url, headers=dispatcher.headers, json={"name": name, "phone": "13900000001", "kind": kind}
        )
        assert r.status_code == 201, r.text
        added.append(r.json())
    assert added[1]["kind_name"] == "派出所干警"
    other = await make_account("dispatcher", node_code=demo_nodes.other_township)
    r = await client.post(url, headers=other.headers, json={"name": "外人", "kind": "cadre"})
    assert r.status_code == 403
    chief = await make_account("chief", node_code=demo_nodes.household)
    assert (await client.post(url, headers=chief.headers, json={"name": "x", "kind": "cadre"})).status_code == 403
    r = await client.patch(f"{url}/{added[2]['id']}", headers=hall.headers, json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    assert (await client.patch(f"/api/v1/grid/nodes/{demo_nodes.other_township}/team/{added[0]['id']}",
                               headers=other.headers, json={"active": False})).status_code == 404  # fmt: skip
    # Phones only inside the reader's scope.
    team = (await client.get(url, headers=hall.headers)).json()
    assert [m["phone"] for m in team["members"]] == ["13900000001"] * 3
    assert {k["code"]: k["name"] for k in team["kinds"]}["deputy"] == "两代表一委员"
    assert {m["phone"] for m in (await client.get(url, headers=other.headers)).json()["members"]} == {None}

    # A township-hall case: its mediation starts with a work group chosen from the active team.
    case = await report(client, chief, demo_nodes, severity=3)
    assert case["tier"] == "township_hall"
    assert (await act(client, hall, case["id"], "accept")).status_code == 200
    r = await act(client, hall, case["id"], "start_mediation")
    assert r.status_code == 422 and r.json()["error"]["details"]["missing"] == ["work_group"]
    r = await act(client, hall, case["id"], "start_mediation", work_group=[added[0]["id"], added[2]["id"]])
    assert r.status_code == 422 and r.json()["error"]["details"]["unknown"] == [added[2]["id"]]  # left the team
    r = await act(client, hall, case["id"], "start_mediation", work_group=[added[0]["id"], added[1]["id"]])
    assert r.status_code == 200, r.text
    assert [(m["name"], m["kind_name"]) for m in r.json()["work_group"]] == [
        ("赵镇长", "镇村干部"),
        ("钱警官", "派出所干警"),
    ]
    last = (await ledger_ok(client, hall, case["id"]))[-1]
    assert last["action"] == "start_mediation"
    assert [(m["name"], m["kind"]) for m in last["details"]["work_group"]] == [
        ("赵镇长", "cadre"),
        ("钱警官", "police"),
    ]


# --- 社会救助 --------------------------------------------------------------------------------


async def test_a_party_is_referred_to_assistance_and_the_civil_affairs_bureau_records_the_outcome(
    client, make_account, demo_nodes
):
    case, _, mediator = await at_centre(client, make_account, demo_nodes)
    cid = case["id"]
    civil = await make_account("department_staff", department_code="civil_affairs")
    petition = await make_account("department_staff")
    r = await client.post(f"/api/v1/cases/{cid}/referrals", headers=mediator.headers,
                          json={"party": "9", "type": "medical"})  # fmt: skip
    assert r.status_code == 422 and "李四" in r.json()["error"]["message"]
    r = await client.post(f"/api/v1/cases/{cid}/referrals", headers=mediator.headers,
                          json={"party": "2", "type": "medical", "note": "因病致贫"})  # fmt: skip
    assert r.status_code == 201, r.text
    referral = r.json()
    assert (referral["party_name"], referral["type_name"], referral["group_name"]) == ("王五", "医疗救助", "专项救助")
    r = await client.post(f"/api/v1/cases/{cid}/referrals", headers=mediator.headers,
                          json={"party": "李四", "type": "subsistence"})  # fmt: skip
    assert r.status_code == 201
    # 民政局's task list; its staff read the case and were told; another department's staff are refused.
    tasks = (await client.get("/api/v1/referrals", params={"state": "open"}, headers=civil.headers)).json()["items"]
    assert {t["id"] for t in tasks} >= {referral["id"]}
    assert (await client.get(f"/api/v1/cases/{cid}", headers=civil.headers)).status_code == 200
    inbox = (await client.get("/api/v1/me/inbox", headers=civil.headers)).json()["items"]
    assert [n["kind"] for n in inbox] == ["refer_assistance", "refer_assistance"]
    assert all("王五" not in n["body"] and "李四" not in n["body"] for n in inbox)  # no party's name in a push
    assert (await client.get("/api/v1/referrals", headers=petition.headers)).status_code == 403
    r = await client.post(f"/api/v1/referrals/{referral['id']}/outcome", headers=petition.headers,
                          json={"outcome": "approved"})  # fmt: skip
    assert r.status_code == 403

    r = await client.post(f"/api/v1/referrals/{referral['id']}/outcome", headers=civil.headers,
                          json={"outcome": "approved", "amount": 1200.5, "note": "按医疗救助标准"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert (r.json()["outcome_name"], r.json()["amount"]) == ("已批准", 1200.5)
    again = await client.post(f"/api/v1/referrals/{referral['id']}/outcome", headers=civil.headers,
                              json={"outcome": "declined"})  # fmt: skip
    assert again.status_code == 409
    assert (await client.post("/api/v1/referrals/987654321/outcome", headers=civil.headers,
                              json={"outcome": "declined"})).status_code == 404  # fmt: skip
    open_now = (await client.get("/api/v1/referrals", params={"state": "open"}, headers=civil.headers)).json()
    assert referral["id"] not in {t["id"] for t in open_now["items"]}

    actions = [e["action"] for e in await ledger_ok(client, mediator, cid)]
    assert actions[-3:] == ["refer_assistance", "refer_assistance", "assistance_outcome"]
    leader = await make_account("leader")
    summary = (await client.get("/api/v1/referrals/summary", headers=leader.headers)).json()
    medical = next(t for t in summary["types"] if t["type"] == "medical")
    assert (medical["referred"], medical["approved"], medical["amount"]) == (1, 1, 1200.5)
    assert [t["type"] for t in summary["types"]][:2] == ["subsistence", "destitute"]
    assert summary["referred"] == 2 and summary["approved"] == 1
