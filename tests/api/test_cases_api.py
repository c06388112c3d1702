"""Cases through HTTP, as the phone app and the township's web page use them."""
import uuid

from geo.crs import wgs84_to_gcj02


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


def test_full_path_from_a_floor_chiefs_report_to_a_closed_case_with_a_verified_ledger(client, make_account, loaded_county):
    floor, unit, (lon, lat) = floor_and_point(loaded_county)
    community_code = unit.code.rsplit("-", 2)[0]
    township_code = unit.code.split("-")[0]
    reporter = make_account("chief", node_code=floor.code)
    community = make_account("chief", node_code=community_code)
    township = make_account("chief", node_code=township_code)

    r = client.post("/api/v1/reports", json=report_body(lon, lat),
                    headers=reporter.headers | {"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["located_node"] == floor.code
    assert case["tier"] == "village_house" and case["handling_node"] == community_code
    cid = case["id"]

    def act(who, action, **fields):
        res = client.post(f"/api/v1/cases/{cid}/actions", json={"action": action, **fields}, headers=who.headers)
        assert res.status_code == 200, (action, res.text)
        return res.json()

    tasks = client.get("/api/v1/me/tasks", headers=community.headers).json()["items"]
    assert cid in [t["id"] for t in tasks]
    act(community, "accept")
    act(community, "start_mediation", note="约双方到社区调解")
    act(community, "fail", note="赔偿金额谈不拢")
    up = act(community, "escalate", note="提交镇和事堂")
    assert up["tier"] == "township_hall" and up["handling_node"] == township_code and up["state"] == "assigned"
    assert client.post(f"/api/v1/cases/{cid}/actions", json={"action": "accept"}, headers=community.headers).status_code == 403
    act(township, "accept")
    act(township, "start_mediation")
    act(township, "resolve", agreement_text="楼上修缮防水并赔偿800元")
    act(township, "return_visit", note="回访：已修好", satisfaction=4)
    closed = act(township, "close")
    assert closed["state"] == "closed" and closed["satisfaction"] == 4

    ledger = client.get(f"/api/v1/cases/{cid}/ledger", headers=township.headers).json()["events"]
    assert [e["action"] for e in ledger] == ["report", "assign", "accept", "start_mediation", "fail", "escalate",
                                             "assign", "accept", "start_mediation", "resolve", "return_visit", "close"]  # fmt: skip
    who = {e["action"] + str(e["seq"]): e["actor_person_id"] for e in ledger}
    person = lambda acc: client.get("/api/v1/me", headers=acc.headers).json()["person_id"]  # noqa: E731
    assert who["report1"] == person(reporter) and who["assign2"] is None  # the server routed it
    assert who["accept3"] == person(community) and who["accept8"] == person(township)
    assert all(e["actor"] for e in ledger if e["actor_person_id"] is not None)
    assert client.get(f"/api/v1/cases/{cid}/ledger/verify", headers=reporter.headers).json() == {
        "valid": True, "first_bad_event": None}


def test_a_retry_returns_the_same_case_and_a_changed_body_is_409(client, make_account, loaded_county):
    floor, _, (lon, lat) = floor_and_point(loaded_county)
    reporter = make_account("chief", node_code=floor.code)
    headers = reporter.headers | {"Idempotency-Key": str(uuid.uuid4())}
    first = client.post("/api/v1/reports", json=report_body(lon, lat), headers=headers)
    again = client.post("/api/v1/reports", json=report_body(lon, lat), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() | {"overdue": None} == again.json() | {"overdue": None}
    other = client.post("/api/v1/reports", json=report_body(lon, lat, severity=3), headers=headers)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_bad_reports_get_a_clear_4xx_and_write_nothing(client, make_account, loaded_county, db):
    from sqlalchemy import text

    floor, _, (lon, lat) = floor_and_point(loaded_county)
    h = make_account("chief", node_code=floor.code).headers
    before = db.execute(text("SELECT count(*) FROM case_file")).scalar()
    key = lambda: {"Idempotency-Key": str(uuid.uuid4())}  # noqa: E731
    cases = [
        (client.post("/api/v1/reports", content=b"{not json", headers=h | key() | {"Content-Type": "application/json"}), 422),
        (client.post("/api/v1/reports", json=report_body(lon, lat), headers=h), 422),  # no Idempotency-Key
        (client.post("/api/v1/reports", json=report_body(lon, lat), headers=h | {"Idempotency-Key": "abc"}), 422),
        (client.post("/api/v1/reports", json=report_body(lon, lat, severity=9), headers=h | key()), 422),
        (client.post("/api/v1/reports", json=report_body(lon, lat, category="alien"), headers=h | key()), 422),
        (client.post("/api/v1/reports", json=report_body("x", lat), headers=h | key()), 422),
        (client.post("/api/v1/reports", json=report_body(lon, lat, parties=[{"name": "甲", "phone": "123", "role": "x"}]),
                     headers=h | key()), 422),  # fmt: skip
        (client.post("/api/v1/reports", json=report_body(lon, lat, occurred_at="2026-03-01T09:00:00"), headers=h | key()), 422),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]["message"]
    assert cases[0][0].json()["error"]["message"].startswith("request body: not valid JSON")
    assert db.execute(text("SELECT count(*) FROM case_file")).scalar() == before


def test_an_illegal_action_is_409_naming_what_is_possible(client, make_account, loaded_county):
    floor, unit, (lon, lat) = floor_and_point(loaded_county)
    reporter = make_account("chief", node_code=floor.code)
    community = make_account("chief", node_code=unit.code.rsplit("-", 2)[0])
    cid = client.post("/api/v1/reports", json=report_body(lon, lat),
                      headers=reporter.headers | {"Idempotency-Key": str(uuid.uuid4())}).json()["id"]  # fmt: skip
    r = client.post(f"/api/v1/cases/{cid}/actions", json={"action": "close"}, headers=community.headers)
    assert r.status_code == 409
    assert r.json()["error"]["details"]["allowed"] == ["accept", "escalate", "return", "extend"]
    r = client.post(f"/api/v1/cases/{cid}/actions", json={"action": "return", "note": "不归我们"}, headers=community.headers)
    assert r.status_code == 422 and "next_recipient" in r.json()["error"]["message"]


def test_photos_are_checked_by_content_capped_and_hashed(client, make_account, loaded_county, settings):
    floor, _, (lon, lat) = floor_and_point(loaded_county)
    reporter = make_account("chief", node_code=floor.code)
    cid = client.post("/api/v1/reports", json=report_body(lon, lat),
                      headers=reporter.headers | {"Idempotency-Key": str(uuid.uuid4())}).json()["id"]  # fmt: skip
    png = b"\x89PNG\r\n\x1a\n" + bytes(100)
    ok = client.post(f"/api/v1/reports/{cid}/attachments", files={"file": ("p.png", png, "image/png")},
                     headers=reporter.headers)  # fmt: skip
    assert ok.status_code == 201 and ok.json()["content_type"] == "image/png"
    fake = client.post(f"/api/v1/reports/{cid}/attachments", files={"file": ("p.jpg", b"MZ\x90\x00 not an image", "image/jpeg")},
                       headers=reporter.headers)  # fmt: skip
    assert fake.status_code == 415
    big = client.post(f"/api/v1/reports/{cid}/attachments",
                      files={"file": ("b.png", png + bytes(settings.attachment_max_bytes), "image/png")},
                      headers=reporter.headers)  # fmt: skip
    assert big.status_code == 413 and "MB" in big.json()["error"]["message"]
    ledger = client.get(f"/api/v1/cases/{cid}/ledger", headers=reporter.headers).json()["events"]
    assert ledger[-1]["action"] == "attach" and ledger[-1]["attachment_hashes"] == [ok.json()["sha256"]]


def test_reading_a_case_with_parties_is_audited_and_the_catalogue_is_listed(client, make_account, loaded_county, db):
    from sqlalchemy import text

    floor, _, (lon, lat) = floor_and_point(loaded_county)
    reporter = make_account("chief", node_code=floor.code)
    cid = client.post("/api/v1/reports", json=report_body(lon, lat),
                      headers=reporter.headers | {"Idempotency-Key": str(uuid.uuid4())}).json()["id"]  # fmt: skip
    client.get(f"/api/v1/cases/{cid}", headers=reporter.headers)
    audited = db.execute(text("SELECT count(*) FROM audit_log WHERE action = 'read.case_parties' AND target = :t"),
                         {"t": f"case:{cid}"}).scalar()  # fmt: skip
    assert audited >= 2  # the report's answer and the read
    cat = client.get("/api/v1/categories", headers=reporter.headers).json()
    assert {c["name_zh"] for c in cat["categories"]} >= {"邻里纠纷", "宅基地", "征地拆迁"}
    assert [s["level"] for s in cat["severities"]] == [1, 2, 3, 4]
