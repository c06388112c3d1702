"""One set of words over HTTP: Chinese names beside the codes, the actions offered are
the caller's own, and times written for people are in the county's zone."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime

from app.accounts.service import ROOMS
from grid.cases import service as cases
from grid.cases.ledger import Signer
from grid.cases.workflow import allowed_actions
from tests.conftest import holder_person_id

SIGNER = Signer.from_seed(base64.b64encode(b"k" * 32).decode())


async def report(client, reporter, point, severity=2):
    lon, lat = point
    r = await client.post(
        "/api/v1/reports", headers=reporter.headers | {"Idempotency-Key": str(uuid.uuid4())},
        json={"lon": lon, "lat": lat, "category": "neighbours", "severity": severity, "description": "两家争水"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_leader_is_offered_nothing_and_a_handler_the_states_actions(client, make_account, demo_nodes):
    reporter = await make_account("chief", node_code=demo_nodes.household)
    case = await report(client, reporter, demo_nodes.points[demo_nodes.household])
    cid = case["id"]
    assert case["tier"] == "village_house" and case["allowed_actions"] == []  # the reporter does not handle it

    handler = await make_account("chief", node_code=demo_nodes.village)  # holds the case
    dispatcher = await make_account("dispatcher")  # acts on cases in the township
    leader = await make_account("leader")  # reads the whole county, acts on none
    township_chief = await make_account("chief", node_code=demo_nodes.township)  # reads, does not handle
    assigned = list(allowed_actions("assigned"))
    expected = {"handler": (handler, assigned), "dispatcher": (dispatcher, assigned), "leader": (leader, []),
                "township chief": (township_chief, []), "reporter": (reporter, [])}  # fmt: skip
    for who, (account, offered) in expected.items():
        detail = (await client.get(f"/api/v1/cases/{cid}", headers=account.headers)).json()
        assert detail["allowed_actions"] == offered, who
        listed = (await client.get("/api/v1/cases", headers=account.headers)).json()["items"]
        assert [c["allowed_actions"] for c in listed if c["id"] == cid] == [offered], who
    detail = (await client.get(f"/api/v1/cases/{cid}", headers=handler.headers)).json()
    assert detail["allowed_action_names"] == {"accept": "受理", "escalate": "上交", "return": "退回", "extend": "延期"}

    # What one is not offered, one would be refused; what one is offered, one may do.
    for account in (leader, township_chief, reporter):
        r = await client.post(f"/api/v1/cases/{cid}/actions", json={"action": "accept"}, headers=account.headers)
        assert r.status_code == 403, r.text
    r = await client.post(f"/api/v1/cases/{cid}/actions", json={"action": "accept"}, headers=handler.headers)
    assert r.status_code == 200, r.text
    assert r.json()["allowed_actions"] == list(allowed_actions("accepted"))
    assert r.json()["state_name"] == "已受理"


async def test_states_tiers_actions_and_roles_come_with_their_chinese_names(client, make_account, demo_nodes):
    reporter = await make_account("chief", node_code=demo_nodes.household)
    handler = await make_account("chief", node_code=demo_nodes.village)
    case = await report(client, reporter, demo_nodes.points[demo_nodes.household])
    cid = case["id"]
    assert (case["state"], case["state_name"], case["tier"], case["tier_name"]) == (
        "assigned", "待受理", "village_house", "和事屋")  # fmt: skip

    detail = (await client.get(f"/api/v1/cases/{cid}", headers=handler.headers)).json()
    roles = {r["role"]: r["role_name"] for r in detail["recipients"]}
    assert roles["chief"] == "五长" and roles.get("mediator", "调解员") == "调解员"

    fc = (await client.get("/api/v1/cases.geojson", headers=handler.headers)).json()
    props = next(f["properties"] for f in fc["features"] if f["id"] == cid)
    assert (props["state_name"], props["tier_name"]) == ("待受理", "和事屋")

    r = await client.post(f"/api/v1/cases/{cid}/actions", json={"action": "escalate", "note": "村里调不了"},
                          headers=handler.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["tier_name"] == "和事堂"

    events = (await client.get(f"/api/v1/cases/{cid}/ledger", headers=handler.headers)).json()["events"]
    named = [(e["action"], e["action_name"], e["from_state_name"], e["to_state_name"]) for e in events]
    assert named == [
        ("report", "上报", None, "已上报"),
        ("assign", "分派", "已上报", "待受理"),
        ("escalate", "上交", "待受理", "已上交"),
        ("assign", "分派", "已上交", "待受理"),
    ]
    # The notes the server writes itself are Chinese.
    assert re.fullmatch(r"按第 1 版分派规则的第 \d+ 条分派", events[1]["note"])
    assert events[3]["note"] == "由和事屋上交和事堂：村里调不了"

    inbox = (await client.get("/api/v1/me/inbox", headers=handler.headers)).json()["items"]
    assert any(n["title"] == "新的矛盾纠纷待处理（和事屋）" for n in inbox)


async def test_the_catalogue_names_every_state_tier_action_section_and_role(client, auth_headers):
    cat = (await client.get("/api/v1/categories", headers=await auth_headers("chief"))).json()
    assert cat["tiers"] == [{"code": "chief", "name": "五长"}, {"code": "village_house", "name": "和事屋"},
                            {"code": "township_hall", "name": "和事堂"}, {"code": "county_center", "name": "调处中心"}]  # fmt: skip
    states = {w["code"]: w["name"] for w in cat["states"]}
    assert states["assigned"] == "待受理" and states["closed"] == "已结案" and len(states) == 12
    assert states["terminated"] == "依法终结"
    actions = {w["code"]: w["name"] for w in cat["actions"]}
    assert actions["accept"] == "受理" and actions["push_unreachable"] == "提醒未送达"
    assert actions["terminate"] == "依法终结" and actions["supervise"] == "纪检监督"
    assert {w["code"]: w["name"] for w in cat["sections"]}["reasoning"] == "评理"
    assert {w["code"]: w["name"] for w in cat["roles"]}["dispatcher"] == "调度员"


async def test_the_map_page_gets_the_county_time_zone(client):
    r = await client.get("/map/config.json")
    assert r.json()["time_zone"] == "Asia/Shanghai"


async def test_the_inbox_shows_a_deadline_in_beijing_time(client, db, make_account, demo_nodes):
    """A deadline of 14:36 UTC is 22:36 in the county: the inbox says 22:36."""
    reporter_pid = await holder_person_id(db, demo_nodes.household)
    reported_at = datetime(2026, 12, 2, 14, 36, tzinfo=UTC)  # a chief has 24 h to accept
    lon, lat = demo_nodes.points[demo_nodes.household]
    out = await cases.submit_report(
        conn=db, actor=cases.Actor(person_id=reporter_pid, counties=("610827",)), key=uuid.uuid4(), now=reported_at, signer=SIGNER,
        rooms=ROOMS, county_code="610827",
        report=cases.Report(lon=lon, lat=lat, crs="wgs84", category="neighbours", severity=1, description="争吵"),
    )  # fmt: skip
    assert out.case["tier"] == "chief"
    assert out.case["accept_by"] == datetime(2026, 12, 3, 14, 36, tzinfo=UTC)
    # The warning comes in the last quarter of the 24 hours.
    swept = await cases.sweep(conn=db, now=datetime(2026, 12, 3, 9, 0, tzinfo=UTC), signer=SIGNER, rooms=ROOMS)
    assert out.case["id"] in swept.warned

    group = await make_account("chief", node_code=demo_nodes.household.rsplit("-", 1)[0])
    inbox = (await client.get("/api/v1/me/inbox", headers=group.headers)).json()["items"]
    texts = {n["kind"]: n["body"] for n in inbox if n["case_id"] == out.case["id"]}
    assert texts["assigned"].endswith("请在 12月03日 22:36 前受理"), texts
    assert texts["deadline_warning"] == f"案件 {out.case['id']} 须在 12月03日 22:36 前处理"
    assert all("14:36" not in t for t in texts.values())
    events = (await client.get(f"/api/v1/cases/{out.case['id']}/ledger", headers=group.headers)).json()["events"]
    assert events[-1]["action_name"] == "临期提醒" and events[-1]["note"] == "须在 12月03日 22:36 前受理"
