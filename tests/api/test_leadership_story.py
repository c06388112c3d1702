"""Issue 12's first story over HTTP, in one piece: a walk-in visit on a duty day becomes a
case held by the day's duty leader; the leader takes it as 包案, ticks the five duties and
concludes it 事心双结; every step is on the ledger, and the ledger verifies."""

from __future__ import annotations

from tests.api.test_duty_visits import on_duty, register
from tests.api.test_ownership_api import DUTIES, SIX


async def test_a_visit_becomes_a_hard_case_the_duty_leader_owns_and_concludes_heart_settled(
    client, db, make_account, demo_nodes
):
    leader, leader_pid = await on_duty(client, db, make_account)
    reception = await make_account("reception")
    r = await register(client, reception, demo_nodes)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]

    seen = (await client.get(f"/api/v1/cases/{cid}", headers=leader.headers)).json()
    assert (seen["source"], seen["source_name"]) == ("visit", "来访") and "take_ownership" in seen["allowed_actions"]
    r = await client.post(f"/api/v1/visits/{cid}/decision", headers=leader.headers,
                          json={"action": "take_ownership", "department_code": "housing", "note": "本人包案"})  # fmt: skip
    assert r.status_code == 200, r.text
    owned = (await client.get(f"/api/v1/cases/{cid}", headers=leader.headers)).json()
    assert owned["hard"] is True and owned["owner_leader"]["person_id"] == leader_pid
    assert "conclude" in owned["allowed_actions"]

    for i, duty in enumerate(DUTIES, 1):
        r = await client.post(f"/api/v1/cases/{cid}/duties/{duty}", json={"note": f"第{i}项已落实"},
                              headers=leader.headers)  # fmt: skip
        assert r.status_code == 200 and r.json()["done"] == i, r.text
    for section in SIX:
        r = await client.put(f"/api/v1/cases/{cid}/sections/{section}", json={"body": f"{section}：已核实"},
                             headers=leader.headers)  # fmt: skip
        assert r.status_code == 204, r.text
    r = await client.post(f"/api/v1/cases/{cid}/actions", headers=leader.headers,
                          json={"action": "conclude", "note": "当面化解，心结已解", "hard_outcome": "heart_settled"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "closed" and r.json()["hard_outcome_name"] == "事心双结"

    ledger = (await client.get(f"/api/v1/cases/{cid}/ledger", headers=leader.headers)).json()["events"]
    assert [e["action"] for e in ledger] == [
        "register_visit", "assign", "take_ownership", *["five_duty"] * 5, *[f"file_{s}" for s in SIX], "conclude",
    ]  # fmt: skip
    assert all(e["actor_person_id"] == leader_pid for e in ledger[2:])
    verdict = (await client.get(f"/api/v1/cases/{cid}/ledger/verify", headers=leader.headers)).json()
    assert verdict["valid"] is True and verdict["events"] == len(ledger)
