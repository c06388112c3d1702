"""Cases through HTTP, as the phone app and the township's web page use them."""

import uuid

from geo.crs import wgs84_to_gcj02
from grid.db import fetch_value
from tests import photos

SIX = ("investigation", "facts", "policy", "reasoning", "disposition", "return_visit")


def floor_and_point(county):
    floor = next(n for n in county.nodes if n.level == "floor" and n.floor_from <= 2 <= n.floor_to)
    unit = next(n for n in county.nodes if n.code == floor.parent_code)
    p = unit.geom.point_on_surface()
    return floor, unit, wgs84_to_gcj02(p.x, p.y)


def report_body(lon, lat, **kw):
    body = {"lon": lon, "lat": lat, "crs": "gcj02", "floor": 2, "category": "neighbours", "severity": 2,
            "description": "楼上漏水，邻里争执", "accuracy_m": 8,
            "parties": [{"name": "王五", "phone": "13912345678", "role": "申请人"}]}  # fmt: skip
    return body | kw


async def test_full_path_from_a_floor_chiefs_report_to_a_closed_case_with_a_verified_ledger(
    client, make_account, loaded_county
):
    floor, unit, (lon, lat) = floor_and_point(loaded_county)
    community_code = unit.code.rsplit("-", 2)[0]
    township_code = unit.code.split("-")[0]
    reporter = await make_account("chief", node_code=floor.code)
    community = await make_account("chief", node_code=community_code)
    township = await make_account("chief", node_code=township_code)

    r = await client.post("/api/v1/reports", json=report_body(lon, lat),
                    headers=reporter.headers | {"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["located_node"] == floor.code
    assert case["tier"] == "village_house" and case["handling_node"] == community_code
    cid = case["id"]

    async def act(who, action, **fields):
        res = await client.post(f"/api/v1/cases/{cid}/actions", json={"action": action, **fields}, headers=who.headers)
        assert res.status_code == 200, (action, res.text)
        return res.json()

    tasks = (await client.get("/api/v1/me/tasks", headers=community.headers)).json()["items"]
    assert cid in [t["id"] for t in tasks]
    await act(community, "accept")
    await act(community, "start_mediation", note="约双方到社区调解")
    await act(community, "fail", note="赔偿金额谈不拢")
    up = await act(community, "escalate", note="提交镇里调解")
    assert up["tier"] == "township_hall" and up["handling_node"] == township_code and up["state"] == "assigned"
    assert (
        await client.post(f"/api/v1/cases/{cid}/actions", json={"action": "accept"}, headers=community.headers)
    ).status_code == 403
    await act(township, "accept")
    await act(township, "start_mediation")
    for section in SIX[:5]:  # 六公开: resolve and close wait for them (grid/cases/sections.py)
        res = await client.put(f"/api/v1/cases/{cid}/sections/{section}", json={"body": f"{section}：已核实"},
                               headers=township.headers)  # fmt: skip
        assert res.status_code == 204, res.text
    await act(township, "resolve", agreement_text="楼上修缮防水并赔偿800元")
    await act(township, "return_visit", note="回访：已修好", satisfaction=4)
    closed = await act(township, "close")
    assert closed["state"] == "closed" and closed["satisfaction"] == 4

    ledger = (await client.get(f"/api/v1/cases/{cid}/ledger", headers=township.headers)).json()["events"]
    assert [e["action"] for e in ledger] == ["report", "assign", "accept", "start_mediation", "fail", "escalate",
                                             "assign", "accept", "start_mediation",
                                             *[f"file_{s}" for s in SIX[:5]], "resolve", "return_visit", "close"]  # fmt: skip
    who = {e["action"] + str(e["seq"]): e["actor_person_id"] for e in ledger}

    async def person(acc):
        return (await client.get("/api/v1/me", headers=acc.headers)).json()["person_id"]

    assert who["report1"] == await person(reporter) and who["assign2"] is None  # the server routed it
    assert who["accept3"] == await person(community) and who["accept8"] == await person(township)
    assert all(e["actor"] for e in ledger if e["actor_person_id"] is not None)
    assert all(e["seal"] == 2 and e["key_id"] == ledger[0]["key_id"] for e in ledger)
    verdict = (await client.get(f"/api/v1/cases/{cid}/ledger/verify", headers=reporter.headers)).json()
    assert verdict | {"message": ""} == {
        "valid": True, "first_bad_event": None, "first_bad_seq": None, "problem": None, "message": "",
        "events": 17, "sealed_body_only": 0, "key_ids": [ledger[0]["key_id"]],
    }  # fmt: skip
    assert verdict["message"] == "台账完整：共 17 步，每一步的哈希与签名均有效"


async def test_a_retry_returns_the_same_case_and_a_changed_body_is_409(client, make_account, loaded_county):
    floor, _, (lon, lat) = floor_and_point(loaded_county)
    reporter = await make_account("chief", node_code=floor.code)
    headers = reporter.headers | {"Idempotency-Key": str(uuid.uuid4())}
    first = await client.post("/api/v1/reports", json=report_body(lon, lat), headers=headers)
    again = await client.post("/api/v1/reports", json=report_body(lon, lat), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() | {"overdue": None} == again.json() | {"overdue": None}
    other = await client.post("/api/v1/reports", json=report_body(lon, lat, severity=3), headers=headers)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"


async def test_bad_reports_get_a_clear_4xx_and_write_nothing(client, make_account, loaded_county, db):
    floor, _, (lon, lat) = floor_and_point(loaded_county)
    h = (await make_account("chief", node_code=floor.code)).headers
    before = await fetch_value(db, "SELECT count(*) FROM case_file")
    key = lambda: {"Idempotency-Key": str(uuid.uuid4())}  # noqa: E731
    cases = [
        (
            await client.post(
                "/api/v1/reports", content=b"{not json", headers=h | key() | {"Content-Type": "application/json"}
            ),
            422,
        ),
        (await client.post("/api/v1/reports", json=report_body(lon, lat), headers=h), 422),  # no Idempotency-Key
        (await client.post("/api/v1/reports", json=report_body(lon, lat), headers=h | {"Idempotency-Key": "abc"}), 422),
        (await client.post("/api/v1/reports", json=report_body(lon, lat, severity=9), headers=h | key()), 422),
        (await client.post("/api/v1/reports", json=report_body(lon, lat, category="alien"), headers=h | key()), 422),
        (await client.post("/api/v1/reports", json=report_body("x", lat), headers=h | key()), 422),
        (
            await client.post(
                "/api/v1/reports",
                json=report_body(lon, lat, parties=[{"name": "甲", "phone": "123", "role": "x"}]),
                headers=h | key(),
            ),
            422,
        ),
        (
            await client.post(
                "/api/v1/reports", json=report_body(lon, lat, occurred_at="2026-03-01T09:00:00"), headers=h | key()
            ),
            422,
        ),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]["message"]
    assert cases[0][0].json()["error"]["message"].startswith("请求内容不是有效的 JSON")
    assert await fetch_value(db, "SELECT count(*) FROM case_file") == before


async def test_an_illegal_action_is_409_naming_what_is_possible(client, make_account, loaded_county):
    floor, unit, (lon, lat) = floor_and_point(loaded_county)
    reporter = await make_account("chief", node_code=floor.code)
    community = await make_account("chief", node_code=unit.code.rsplit("-", 2)[0])
    cid = (await client.post("/api/v1/reports", json=report_body(lon, lat),
                      headers=reporter.headers | {"Idempotency-Key": str(uuid.uuid4())})).json()["id"]  # fmt: skip
    r = await client.post(f"/api/v1/cases/{cid}/actions", json={"action": "close"}, headers=community.headers)
    assert r.status_code == 409
    assert r.json()["error"]["details"]["allowed"] == ["accept", "escalate", "return", "extend"]
    r = await client.post(
        f"/api/v1/cases/{cid}/actions", json={"action": "return", "note": "不归我们"}, headers=community.headers
    )
    assert r.status_code == 422 and "next_recipient" in r.json()["error"]["message"]


async def test_photos_are_checked_by_content_capped_and_hashed(client, make_account, loaded_county, settings):
    floor, _, (lon, lat) = floor_and_point(loaded_county)
    reporter = await make_account("chief", node_code=floor.code)
    cid = (await client.post("/api/v1/reports", json=report_body(lon, lat),
                      headers=reporter.headers | {"Idempotency-Key": str(uuid.uuid4())})).json()["id"]  # fmt: skip
    png = photos.png()
    ok = await client.post(f"/api/v1/reports/{cid}/attachments", files={"file": ("p.png", png, "image/png")},
                     headers=reporter.headers)  # fmt: skip
    assert ok.status_code == 201 and ok.json()["content_type"] == "image/png"
    fake = await client.post(f"/api/v1/reports/{cid}/attachments", files={"file": ("p.jpg", b"MZ\x90\x00 not an image", "image/jpeg")},
                       headers=reporter.headers)  # fmt: skip
    assert fake.status_code == 415
    big = await client.post(f"/api/v1/reports/{cid}/attachments",
                      files={"file": ("b.png", png + bytes(settings.attachment_max_bytes), "image/png")},
                      headers=reporter.headers)  # fmt: skip
    assert big.status_code == 413 and "MB" in big.json()["error"]["message"]
    ledger = (await client.get(f"/api/v1/cases/{cid}/ledger", headers=reporter.headers)).json()["events"]
    assert ledger[-1]["action"] == "attach" and ledger[-1]["attachment_hashes"] == [ok.json()["sha256"]]


async def test_reading_a_case_with_parties_is_audited_and_the_catalogue_is_listed(
    client, make_account, loaded_county, db
):
    floor, _, (lon, lat) = floor_and_point(loaded_county)
    reporter = await make_account("chief", node_code=floor.code)
    cid = (await client.post("/api/v1/reports", json=report_body(lon, lat),
                      headers=reporter.headers | {"Idempotency-Key": str(uuid.uuid4())})).json()["id"]  # fmt: skip
    await client.get(f"/api/v1/cases/{cid}", headers=reporter.headers)
    audited = await fetch_value(
        db, "SELECT count(*) FROM audit_log WHERE action = 'read.case_parties' AND target = %(t)s", {"t": f"case:{cid}"}
    )
    assert audited >= 2  # the report's answer and the read
    cat = (await client.get("/api/v1/categories", headers=reporter.headers)).json()
    assert {c["name_zh"] for c in cat["categories"]} >= {"邻里纠纷", "宅基地", "征地拆迁"}
    assert [s["level"] for s in cat["severities"]] == [1, 2, 3, 4]
