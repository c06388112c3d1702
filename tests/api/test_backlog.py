"""积案、双清零、零倒流 over HTTP: a backlog batch goes from a sheet to owned cases, the
cases are mediated to resolved and the batch is 清零; a resolved case reopened, or linked
to a new case from the same party, is counted as a reflow (倒流) and signed on its ledger."""

from __future__ import annotations

import io
import uuid

from openpyxl import Workbook

from grid.db import fetch_all, fetch_value
from tests.api.test_duty_visits import person_of

HEADER = ["事项", "类别", "严重程度", "所在网格编码", "包案领导手机号", "责任单位", "当事人", "当事人手机号"]
SECTIONS = ("investigation", "facts", "policy", "reasoning")


def workbook(rows) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def upload(client, account, data, label="第三批", **form):
    return await client.post("/api/v1/backlog/imports", headers=account.headers,
                             data={"label": label, "handed_down_on": "2026-11-20", **form},
                             files={"file": ("积案.xlsx", data, "application/octet-stream")})  # fmt: skip


async def resolve(client, mediator, case_id):
    """The village's harmony house mediates the case to an agreement, over HTTP."""
    for action in ("accept", "start_mediation"):
        r = await client.post(f"/api/v1/cases/{case_id}/actions", headers=mediator.headers, json={"action": action})
        assert r.status_code == 200, r.text
    for section in SECTIONS:
        r = await client.put(f"/api/v1/cases/{case_id}/sections/{section}", headers=mediator.headers,
                             json={"body": "已查明并说明"})  # fmt: skip
        assert r.status_code == 204, r.text
    r = await client.post(f"/api/v1/cases/{case_id}/actions", headers=mediator.headers,
                          json={"action": "resolve", "agreement_text": "双方达成协议"})  # fmt: skip
    assert r.status_code == 200 and r.json()["state"] == "resolved", r.text


async def batch_of(client, account, batch_id):
    r = await client.get(f"/api/v1/backlog/batches/{batch_id}", headers=account.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_batch_goes_from_a_sheet_to_cleared_and_a_reopened_case_is_a_reflow(
    client, db, make_account, demo_nodes
):
    office, leader = await make_account("department_staff"), await make_account("leader")
    v, t = demo_nodes.village, demo_nodes.township
    rows = [["宅基地边界纠纷", "neighbours", 2, v, leader.phone, "自然资源局", "张某", "13900000001"],
            ["拖欠工资", "neighbours", 2, v, leader.phone, "human_resources", None, None],
            ["邻里噪音", "neighbours", 2, v, leader.phone, t, None, None]]  # fmt: skip

    # A row without a valid owner is an error, and one bad row means nothing is written.
    bad = [*rows, ["无人包案", "neighbours", 2, v, "13000000000", "不存在的单位", None, None],
           ["", "no_such", 9, "no-node", leader.phone, "housing", None, "123"]]  # fmt: skip
    r = await upload(client, office, workbook(bad))
    assert r.status_code == 422, r.text
    errors = r.json()["error"]["details"]["report"]["errors"]
    assert [e["row"] for e in errors] == [5, 6]
    assert "包案领导" in errors[0]["reason"] and "不存在的单位" in errors[0]["reason"]
    assert all(w in errors[1]["reason"] for w in ("缺少事项", "no_such", "严重程度", "no-node", "123"))
    assert await fetch_value(db, "SELECT count(*) FROM backlog_batch") == 0
    assert await fetch_value(db, "SELECT count(*) FROM case_file WHERE source = 'handed_down'") == 0
    civil = await make_account("department_staff", department_code="civil_affairs")
    assert (await upload(client, civil, workbook(rows))).status_code == 403
    r = await upload(client, office, workbook(rows), dry_run="true")
    assert r.status_code == 200 and r.json()["imported"] == 0 and r.json()["batch_id"] is None

    r = await upload(client, office, workbook(rows))
    assert r.status_code == 200, r.text
    out = r.json()
    batch_id, ids = out["batch_id"], out["case_ids"]
    assert out["imported"] == 3 and len(ids) == 3
    assert (await upload(client, office, workbook(rows))).status_code == 422  # the same label twice
    stored = await fetch_all(db, "SELECT source, batch_id, hard, owner_leader_person_id FROM case_file"
                                 " WHERE id = ANY(%(ids)s) ORDER BY id", {"ids": ids})  # fmt: skip
    pid = await person_of(db, leader)
    assert stored == [{"source": "handed_down", "batch_id": batch_id, "hard": True, "owner_leader_person_id": pid}] * 3
    units = await fetch_all(db, "SELECT d.code AS department, n.code AS township FROM case_unit u"
                                " LEFT JOIN department d ON d.id = u.department_id LEFT JOIN node n ON n.id = u.node_id"
                                " WHERE u.case_id = ANY(%(ids)s) AND u.part = 'owner' ORDER BY u.case_id",
                            {"ids": ids})  # fmt: skip
    assert units == [
        {"department": "natural_resources", "township": None},
        {"department": "human_resources", "township": None},
        {"department": None, "township": t},
    ]
    parties = await fetch_all(db, "SELECT name, phone FROM case_party WHERE case_id = %(c)s", {"c": ids[0]})
    assert parties == [{"name": "张某", "phone": "13900000001"}]

    viewer = await make_account("leader")
    batch = await batch_of(client, viewer, batch_id)
    assert (batch["label"], batch["total"], batch["resolved"], batch["owned"], batch["cleared"]) == \
        ("第三批", 3, 0, 3, False)  # fmt: skip

    mediator = await make_account("mediator_village_house")
    for case_id in ids:
        await resolve(client, mediator, case_id)
    batch = await batch_of(client, viewer, batch_id)
    assert (batch["resolved"], batch["open"], batch["cleared"], batch["reflows"]) == (3, 0, True, 0)
    listed = (await client.get("/api/v1/backlog/batches", headers=office.headers)).json()
    assert [(b["id"], b["cleared"]) for b in listed] == [(batch_id, True)]

    # The resident says the first is not settled: reopened, it is a reflow, and the batch is open again.
    r = await client.post(f"/api/v1/cases/{ids[0]}/actions", headers=mediator.headers,
                          json={"action": "reopen", "note": "当事人反映问题仍未解决"})  # fmt: skip
    assert r.status_code == 200, r.text
    batch = await batch_of(client, viewer, batch_id)
    assert (batch["resolved"], batch["cleared"], batch["reflows"]) == (2, False, 1)
    assert [c["reflows"] for c in batch["cases"]] == [1, 0, 0]
    ledger = (await client.get(f"/api/v1/cases/{ids[0]}/ledger", headers=viewer.headers)).json()["events"]
    actions = [e["action"] for e in ledger]
    assert actions[:3] == ["report", "assign", "take_ownership"]
    assert actions[-3:] == ["reopen", "reflow", "assign"] and ledger[-2]["action_name"] == "倒流"
    verdict = (await client.get(f"/api/v1/cases/{ids[0]}/ledger/verify", headers=viewer.headers)).json()
    assert verdict["valid"], verdict

    # A new report from the same party on the same matter, linked by the mediator: a second reflow.
    chief = await make_account("chief", node_code=demo_nodes.village)
    lon, lat = demo_nodes.points[demo_nodes.household]
    r = await client.post("/api/v1/reports", headers={**chief.headers, "Idempotency-Key": str(uuid.uuid4())},
                          json={"lon": lon, "lat": lat, "category": "neighbours", "severity": 2,
                                "description": "又来反映拖欠工资"})  # fmt: skip
    assert r.status_code == 201, r.text
    new_id = r.json()["id"]
    r = await client.post(f"/api/v1/cases/{new_id}/reflow", headers=mediator.headers,
                          json={"earlier_case_id": ids[1], "note": "同一当事人、同一事项"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json() == {"case_id": ids[1], "new_case_id": new_id, "reflows": 1}
    again = await client.post(f"/api/v1/cases/{new_id}/reflow", headers=mediator.headers,
                              json={"earlier_case_id": ids[1], "note": "重复关联"})  # fmt: skip
    assert again.status_code == 409
    # Only a resolved backlog case can come back: the reopened one is open, the new report is no backlog case.
    for earlier in (ids[0], new_id):
        r = await client.post(f"/api/v1/cases/{ids[2]}/reflow", headers=mediator.headers,
                              json={"earlier_case_id": earlier, "note": "不成立"})  # fmt: skip
        assert r.status_code in (409, 422), r.text
    batch = await batch_of(client, viewer, batch_id)
    assert batch["reflows"] == 2
    verdict = (await client.get(f"/api/v1/cases/{ids[1]}/ledger/verify", headers=viewer.headers)).json()
    assert verdict["valid"], verdict
    assert await fetch_value(db, "SELECT count(*) FROM case_reflow WHERE case_id = %(c)s", {"c": ids[1]}) == 1


async def test_a_batch_that_does_not_exist_is_404(client, make_account):
    r = await client.get("/api/v1/backlog/batches/999999", headers=(await make_account("leader")).headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "batch_not_found"
