"""GET /api/v1/stats/...: scoped by the caller, clear refusals, CSV and XLSX with Chinese headers."""

from __future__ import annotations

import io
import re

from openpyxl import load_workbook


async def test_the_summary_gives_rates_with_their_numerator_and_denominator(client, make_account):
    leader = await make_account("leader")
    r = await client.get("/api/v1/stats/summary", params={"from": "2026-01-01", "to": "2026-12-31"},
                         headers=leader.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["success_rate"]) == {"value", "numerator", "denominator"}
    assert isinstance(body["received"], int) and body["period_start"] == "2026-01-01"
    # Never rolled up in this database: computed from the ledger, as of the request.
    assert body["fresh_as_of"] and (body["rolled_up_at"], body["pending_cases"]) == (None, None)


async def test_csv_is_utf8_with_a_bom_and_chinese_headers(client, make_account):
    leader = await make_account("leader")
    r = await client.get("/api/v1/stats/summary", params={"format": "csv"}, headers=leader.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "指标,数值,分子,分母"
    assert any(line.startswith("调解成功率,") for line in lines) and "attachment" in r.headers["content-disposition"]


async def test_xlsx_opens_with_openpyxl_and_has_chinese_headers(client, make_account):
    leader = await make_account("leader")
    r = await client.get("/api/v1/stats/townships", params={"format": "xlsx"}, headers=leader.headers)
    assert r.status_code == 200, r.text
    sheet = load_workbook(io.BytesIO(r.content)).active
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    assert header[:5] == ["编码", "名称", "收案数", "有调解结果数", "调解成功数"]
    assert sheet.title == "各镇街" and sheet.max_row == 1 + 9  # every township of the demo county


async def test_refusals_are_clear_and_chinese(client, make_account, demo_nodes):
    admin, dispatcher = await make_account("admin"), await make_account("dispatcher")
    r = await client.get("/api/v1/stats/summary", headers=admin.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "no_data_scope"
    r = await client.get("/api/v1/stats/summary", params={"township": demo_nodes.other_township},
                         headers=dispatcher.headers)  # fmt: skip
    assert r.status_code == 404 and "辖区" in r.json()["error"]["message"]
    for params in ({"source": "pigeon"}, {"from": "2026-05-01", "to": "2026-04-01"}, {"tier": "province"},
                   {"category": "nope"}, {"from": "yesterday"}):  # fmt: skip
        r = await client.get("/api/v1/stats/summary", params=params, headers=dispatcher.headers)
        assert r.status_code == 422, (params, r.text)
    r = await client.get("/api/v1/stats/nodes", params={"level": "floor"}, headers=dispatcher.headers)
    assert r.status_code == 422 and "层级" in r.json()["error"]["message"]


async def test_the_source_filter_counts_only_cases_from_that_source(client, make_account, db, loaded_county):
    from tests.integration.test_cases import actor_for, household_report, submit

    household, report = household_report(loaded_county)
    case_id = (await submit(db, await actor_for(db, household.code), report)).case["id"]
    leader = await make_account("leader")
    period = {"from": "2026-01-01", "to": "2026-12-31"}

    async def received(source: str) -> int:
        r = await client.get("/api/v1/stats/summary", params={**period, "source": source}, headers=leader.headers)
        assert r.status_code == 200, r.text
        return int(r.json()["received"])

    grid_before, hotline_before = await received("grid"), await received("hotline")
    await db.execute("UPDATE case_file SET source = 'hotline' WHERE id = %(c)s", {"c": case_id})
    assert (await received("grid"), await received("hotline")) == (grid_before - 1, hotline_before + 1)


async def test_the_leadership_figures_are_scoped_and_export_with_chinese_headers(client, make_account, demo_nodes):
    leader, supervisor = await make_account("leader"), await make_account("supervisor")
    params = {"from": "2026-01-01", "to": "2026-12-31"}
    r = await client.get("/api/v1/stats/leadership", params=params, headers=leader.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"visits", "ownership", "batches", "reflows", "tasks", "referrals", "closures"}
    assert set(body["tasks"]["on_time_rate"]) == {"value", "numerator", "denominator"}
    assert [c["channel_name"] for c in body["closures"]["items"]] == ["诉讼", "仲裁", "行政复议"]
    assert [d["done"] for d in body["ownership"]["duties"]] == [0, 1, 2, 3, 4, 5]
    # The words a page shows with them (the dashboard's 领导工作), every one Chinese.
    names = body["names"]
    assert names["title"] == "领导工作" and names["sections"]["tasks"] == "督办落实"
    assert names["figures"]["on_time_rate"] == "按期办结率" and names["figures"]["hard_open"] == "尚未办结"
    assert all(re.search(r"[\u4e00-\u9fff]", n) for n in names["figures"].values()), names
    # Discipline inspection reads the county's, as it reads the task queue and the batches.
    r = await client.get("/api/v1/stats/leadership", params=params, headers=supervisor.headers)
    assert r.status_code == 200 and r.json()["tasks"] == body["tasks"]

    r = await client.get("/api/v1/stats/leadership", params={**params, "format": "csv"}, headers=leader.headers)
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "分项,对象,指标,数值,分子,分母"
    assert any(line.startswith("督办落实,,按期办结率,") for line in lines)
    assert any(line.startswith("依法终结情况,合计,依法终结数,") for line in lines)
    r = await client.get("/api/v1/stats/leadership", params={**params, "format": "xlsx"}, headers=leader.headers)
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet.title == "领导机制"
    assert [c.value for c in next(sheet.iter_rows(max_row=1))] == ["分项", "对象", "指标", "数值", "分子", "分母"]

    admin, dispatcher = await make_account("admin"), await make_account("dispatcher")
    r = await client.get("/api/v1/stats/leadership", headers=admin.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "no_data_scope"
    r = await client.get("/api/v1/stats/leadership", params={"township": demo_nodes.other_township},
                         headers=dispatcher.headers)  # fmt: skip
    assert r.status_code == 404 and "辖区" in r.json()["error"]["message"]
    r = await client.get("/api/v1/stats/leadership", params={"from": "2026-05-01", "to": "2026-04-01"},
                         headers=dispatcher.headers)  # fmt: skip
    assert r.status_code == 422
