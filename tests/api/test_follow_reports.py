"""Chiefs follow their own reports (issue 14, section 4): `GET /api/v1/me/reports`, and
the inbox notices a step sends to the reporter and to the holders a case leaves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from app.accounts.service import ROOMS
from grid.cases import service as cases
from tests.api.test_cases_api import floor_and_point, report_body


async def report(client, who, lon, lat):
    r = await client.post("/api/v1/reports", json=report_body(lon, lat),
                          headers=who.headers | {"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


async def act(client, who, cid, action, **fields):
    r = await client.post(f"/api/v1/cases/{cid}/actions", json={"action": action, **fields}, headers=who.headers)
    assert r.status_code == 200, (action, r.text)
    return r.json()


async def notices(client, who, cid):
    """The person's inbox notices about case `cid`, oldest first."""
    items = (await client.get("/api/v1/me/inbox", headers=who.headers)).json()["items"]
    return [i for i in reversed(items) if i["case_id"] == cid]


def names(case):
    return "、".join(r["name"] for r in case["recipients"])


async def test_my_reports_are_mine_newest_first_a_page_at_a_time_with_who_holds_each(
    client, make_account, loaded_county
):
    floor, unit, (lon, lat) = floor_and_point(loaded_county)
    community_code = unit.code.rsplit("-", 2)[0]
    reporter = await make_account("chief", node_code=floor.code)
    community = await make_account("chief", node_code=community_code)
    mine = [await report(client, reporter, lon, lat) for _ in range(3)]
    theirs = await report(client, community, lon, lat)  # someone else's report is not in my list
    accepted = await act(client, community, mine[0]["id"], "accept")

    first = await client.get("/api/v1/me/reports?limit=2", headers=reporter.headers)
    assert first.status_code == 200, first.text
    assert [i["id"] for i in first.json()["items"]] == [mine[2]["id"], mine[1]["id"]]
    assert first.json()["next_cursor"] == mine[1]["id"]
    second = (await client.get(f"/api/v1/me/reports?limit=2&cursor={mine[1]['id']}", headers=reporter.headers)).json()
    assert [i["id"] for i in second["items"]] == [mine[0]["id"]] and second["next_cursor"] is None

    item = second["items"][0]
    assert (item["state"], item["tier"]) == ("accepted", "village_house")
    assert item["handling_node"] == community_code and item["handling_node_name"] == accepted["handling_node_name"]
    assert [r["name"] for r in item["recipients"]] == [r["name"] for r in accepted["recipients"]]
    assert item["recipients"] and item["recipients"][0]["role"] == "chief"
    assert item["last_action"] == "accept" and item["last_step_at"] >= item["reported_at"]
    fresh = first.json()["items"][0]
    assert fresh["last_action"] == "assign" and fresh["state"] == "assigned"
    theirs_listed = (await client.get("/api/v1/me/reports", headers=community.headers)).json()["items"]
    assert [i["id"] for i in theirs_listed] == [theirs["id"]]
    bad = await client.get("/api/v1/me/reports?cursor=abc", headers=reporter.headers)
    assert bad.status_code == 422 and bad.json()["error"]["message"]


async def test_the_reporter_hears_of_escalate_return_resolve_and_close_and_the_actor_hears_nothing_of_their_own(
    client, make_account, loaded_county
):
    floor, unit, (lon, lat) = floor_and_point(loaded_county)
    community_code, township_code = unit.code.rsplit("-", 2)[0], unit.code.split("-")[0]
    reporter = await make_account("chief", node_code=floor.code)
    community = await make_account("chief", node_code=community_code)
    township = await make_account("chief", node_code=township_code)
    case = await report(client, reporter, lon, lat)
    cid, community_name = case["id"], case["handling_node_name"]
    await act(client, community, cid, "accept")

    up = await act(client, community, cid, "escalate", note="双方分歧大，提交上级调解")
    told = (await notices(client, reporter, cid))[-1]
    assert (told["kind"], told["title"]) == ("escalate", "案件已上交")
    assert told["body"] == (f"您上报的案件（编号 {cid}，邻里纠纷）已上交至{up['handling_node_name']}和事堂，"
                            f"现由{names(up)}处理")  # fmt: skip

    back = await act(client, township, cid, "return", note="社区先调", next_recipient=community_code)
    told = (await notices(client, reporter, cid))[-1]
    assert (told["kind"], told["title"]) == ("return", "案件已退回")
    assert told["body"] == f"您上报的案件（编号 {cid}，邻里纠纷）已退回至{community_name}，现由{names(back)}处理"

    for section in ("investigation", "facts", "policy", "reasoning", "disposition", "return_visit"):  # 六公开
        r = await client.put(
            f"/api/v1/cases/{cid}/sections/{section}", json={"body": "已办"}, headers=community.headers
        )
        assert r.status_code == 204, r.text
    for action, fields in (("accept", {}), ("start_mediation", {}), ("resolve", {"agreement_text": "修好防水"})):
        await act(client, community, cid, action, **fields)
    told = (await notices(client, reporter, cid))[-1]
    assert (told["kind"], told["title"]) == ("resolve", "案件已调解成功")
    assert told["body"] == f"您上报的案件（编号 {cid}，邻里纠纷）已在{community_name}调解成功，现由{names(back)}处理"

    await act(client, community, cid, "return_visit", note="已修好", satisfaction=5)
    await act(client, community, cid, "close")
    told = (await notices(client, reporter, cid))[-1]
    assert (told["kind"], told["title"]) == ("close", "案件已结案")
    assert told["body"] == f"您上报的案件（编号 {cid}，邻里纠纷）已在{community_name}结案，承办人：{names(back)}"

    reporter_kinds = [n["kind"] for n in await notices(client, reporter, cid)]
    assert [k for k in reporter_kinds if k in ("escalate", "return", "resolve", "close")] == [
        "escalate", "return", "resolve", "close"]  # fmt: skip
    # The actors: the community chief escalated, resolved and closed; the township chief returned.
    assert {n["kind"] for n in await notices(client, community, cid)} & {"escalate", "resolve", "close"} == set()
    assert "return" not in {n["kind"] for n in await notices(client, township, cid)}


async def test_the_chief_whose_case_goes_up_hears_where_it_went_whoever_sent_it(
    client, make_account, loaded_county, db, settings
):
    floor, unit, (lon, lat) = floor_and_point(loaded_county)
    community_code, township_code = unit.code.rsplit("-", 2)[0], unit.code.split("-")[0]
    reporter = await make_account("chief", node_code=floor.code)
    community = await make_account("chief", node_code=community_code)
    dispatcher = await make_account("dispatcher", node_code=township_code)

    # A township dispatcher takes the community's case up: its chief is told, the dispatcher is not.
    case = await report(client, reporter, lon, lat)
    up = await act(client, dispatcher, case["id"], "escalate", note="涉及多户，镇里统一调处")
    told = [n for n in await notices(client, community, case["id"]) if n["kind"] == "escalate"]
    assert [n["body"] for n in told] == [
        f"您经手的案件（编号 {case['id']}，邻里纠纷）已上交至{up['handling_node_name']}和事堂，现由{names(up)}处理"]  # fmt: skip
    assert await notices(client, dispatcher, case["id"]) == []
    assert [n["kind"] for n in await notices(client, reporter, case["id"])] == ["escalate"]

    # Nobody accepts in time: the worker takes it up, and the chief and the reporter both hear it.
    late = await report(client, reporter, lon, lat)
    swept = await cases.sweep(conn=db, now=datetime.now(UTC) + timedelta(days=30), signer=settings.ledger_signer(),
                              rooms=ROOMS)  # fmt: skip
    assert late["id"] in swept.escalated
    assert [n["kind"] for n in await notices(client, community, late["id"])] == ["assigned", "escalate"]
    assert [n["title"] for n in await notices(client, reporter, late["id"])] == ["案件已上交"]
