"""The quarterly report (grid/stats/report.py): GET /api/v1/stats/report and
`wuzhang stats report`, as XLSX (read back with openpyxl) and PDF (read back with
pdftotext), on cases driven through the real use cases at chosen times."""

from __future__ import annotations

import io
import shutil
import sys
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from grid.exceptions import InvalidInput
from grid.stats.report import Quarter
from tests.api.test_demo_accounts import cli_env, run_cli
from tests.integration.test_stats import County, path_of

BEIJING = ZoneInfo("Asia/Shanghai")
QUARTER = {"quarter": "2031Q3"}
PERIOD = {"from": "2031-07-01", "to": "2031-09-30"}
needs_pdftotext = pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils (pdftotext) is missing")


def test_a_quarter_is_three_county_months_and_a_bad_one_is_refused_in_chinese():
    assert (Quarter.parse("2026Q3").period.start, Quarter.parse("2026q3").period.end) == (date(2026, 7, 1),
                                                                                          date(2026, 9, 30))  # fmt: skip
    assert Quarter.parse("2024Q1").period.end == date(2024, 3, 31) and Quarter.parse("2026Q4").period.end == date(
        2026, 12, 31
    )
    assert Quarter.parse("2026Q3").title == "2026年第三季度（2026-07-01至2026-09-30）"
    for bad in ("2026Q5", "2026-Q3", "Q3", "26Q1", ""):
        with pytest.raises(InvalidInput, match="例如 2026Q3"):
            Quarter.parse(bad)


@pytest.fixture
async def quarter_cases(db, loaded_county, demo_nodes):
    """Q3 2031 in the county: two settled, one failed; one reported at 23:30 Beijing time on
    30 September (15:30 UTC: in the quarter), one at 00:30 on 1 October (16:30 UTC on 30
    September: the next quarter's)."""
    county = County(db, loaded_county, demo_nodes, await path_of(db, demo_nodes.county))
    t = datetime(2031, 7, 1, 0, 30, tzinfo=BEIJING).astimezone(UTC)  # 16:30 UTC on 30 June: in July
    ids = [await county.report(600 + i, at=t + timedelta(days=i)) for i in range(3)]
    for cid in ids:
        await county.step(cid, "accept", t + timedelta(days=5))
        await county.step(cid, "start_mediation", t + timedelta(days=5))
    await county.step(ids[0], "resolve", t + timedelta(days=6), agreement_text="赔偿")
    await county.step(ids[1], "resolve", t + timedelta(days=40), agreement_text="赔偿")
    await county.step(ids[2], "fail", t + timedelta(days=41), note="未达成")
    await county.report(610, at=datetime(2031, 9, 30, 23, 30, tzinfo=BEIJING))
    await county.report(611, at=datetime(2031, 10, 1, 0, 30, tzinfo=BEIJING))
    return county


async def test_the_xlsx_has_a_chinese_sheet_per_view_with_the_apis_figures(client, make_account, quarter_cases):
    leader = await make_account("leader")
    summary = (await client.get("/api/v1/stats/summary", params=PERIOD, headers=leader.headers)).json()
    assert (summary["received"], summary["success_rate"]["numerator"], summary["success_rate"]["denominator"]) == (
        4, 2, 3)  # fmt: skip
    r = await client.get("/api/v1/stats/report", params={**QUARTER, "format": "xlsx"}, headers=leader.headers)
    assert r.status_code == 200, r.text
    assert "attachment" in r.headers["content-disposition"] and "2031Q3" in r.headers["content-disposition"]
    book = load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == ["总体指标", "各层级", "各镇街", "各类别", "逐月", "超期情况", "领导机制"]
    rows = list(book["总体指标"].iter_rows(values_only=True))
    assert "2031年第三季度（2031-07-01至2031-09-30）" in rows[0]
    assert rows[2][:4] == ("指标", "数值", "分子", "分母")
    figures = {row[0]: row[1:] for row in rows[3:]}
    assert figures["收案数"][0] == summary["received"]
    assert figures["调解成功率"] == (summary["success_rate"]["value"], 2, 3)
    assert figures["统计起始日"][0] == "2031-07-01" and figures["统计截止日"][0] == "2031-09-30"
    months = list(book["逐月"].iter_rows(values_only=True))
    assert months[2][:3] == ("月份", "收案数", "有调解结果数")
    # County months: the 23:30 report on 30 September is September's; the report at 00:30
    # on 1 July (UTC's 30 June) is July's.
    assert [(m[0], m[1]) for m in months[3:]] == [("2031-07", 3), ("2031-08", 0), ("2031-09", 1)]
    assert [c for c in next(book["各镇街"].iter_rows(min_row=3, max_row=3, values_only=True))][:3] == (
        ["编码", "名称", "收案数"])  # fmt: skip
    lateness = list(book["超期情况"].iter_rows(min_row=3, values_only=True))
    assert lateness[0][:2] == ("指标", "数值") and lateness[1][:2] == ("曾超期案件数", summary["late_cases"])
    assert ("层级名称", "超期次数", "曾超期案件数") in [r[:3] for r in lateness]


@needs_pdftotext
async def test_the_pdf_carries_the_quarters_figures_in_beijing_time(client, make_account, quarter_cases, tmp_path):
    # A case that failed at the county centre in August and was closed lawfully: a leadership figure.
    t = datetime(2031, 8, 3, 1, 0, tzinfo=UTC)
    cid = await quarter_cases.report(612, at=t, severity=4)
    for action in ("accept", "start_mediation"):
        await quarter_cases.step(cid, action, t + timedelta(hours=1))
    await quarter_cases.step(cid, "fail", t + timedelta(hours=2), note="未达成")
    await quarter_cases.step(cid, "terminate", t + timedelta(hours=3), note="引导仲裁", channel="arbitration")
    leader = await make_account("leader")
    figures = (await client.get("/api/v1/stats/leadership", params=PERIOD, headers=leader.headers)).json()
    assert figures["closures"]["lawful_closures"] == 1
    summary = (await client.get("/api/v1/stats/summary", params=PERIOD, headers=leader.headers)).json()
    before = datetime.now(UTC)
    r = await client.get("/api/v1/stats/report", params=QUARTER, headers=leader.headers)
    after = datetime.now(UTC)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf", r.text[:300]
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(r.content)
    done = await run_cli(["pdftotext", "-layout", str(pdf), "-"], check=True)
    text = done.stdout
    flat = "".join(text.split())
    assert "米脂县矛盾纠纷调处工作季度报告" in flat and "2031年第三季度（2031-07-01至2031-09-30）" in flat
    rate = summary["success_rate"]
    assert f"收案数{summary['received']}" in flat
    assert f"调解成功率{rate['value'] * 100:.2f}%（{rate['numerator']}/{rate['denominator']}）" in flat
    assert f"有调解结果数{summary['concluded']}" in flat and f"调解成功数{summary['succeeded']}" in flat
    # The time it was made, in the county's zone (not UTC's).
    made = {f"生成时间：{t.astimezone(BEIJING):%Y年%m月%d日%H:%M}" for t in (before, after)}
    assert any(m in flat for m in made), (made, flat[:300])
    assert "2031-09" in flat and "2031-10" not in flat  # the months are the county's
    assert "七、领导机制" in flat and "依法终结数1" in flat and "按期办结率" in flat


async def test_the_report_is_scoped_and_refuses_clearly(client, make_account, demo_nodes, quarter_cases):
    dispatcher, admin = await make_account("dispatcher"), await make_account("admin")
    r = await client.get("/api/v1/stats/report", params={**QUARTER, "township": demo_nodes.other_township},
                         headers=dispatcher.headers)  # fmt: skip
    assert r.status_code == 404 and "辖区" in r.json()["error"]["message"]
    r = await client.get("/api/v1/stats/report", params={"quarter": "2031Q5"}, headers=dispatcher.headers)
    assert r.status_code == 422 and "2026Q3" in r.json()["error"]["message"]
    r = await client.get("/api/v1/stats/report", params={**QUARTER, "format": "doc"}, headers=dispatcher.headers)
    assert r.status_code == 422
    assert (await client.get("/api/v1/stats/report", params=QUARTER, headers=admin.headers)).status_code == 403
    # A township's dispatcher gets their township's report, named after it.
    r = await client.get("/api/v1/stats/report", params={**QUARTER, "format": "xlsx"}, headers=dispatcher.headers)
    book = load_workbook(io.BytesIO(r.content))
    townships = list(book["各镇街"].iter_rows(min_row=4, values_only=True))
    assert [t[0] for t in townships] == [demo_nodes.township]
    assert str(next(book["总体指标"].iter_rows(values_only=True))[0]).endswith("矛盾纠纷调处工作季度报告")


async def test_the_command_writes_the_file_and_refuses_a_bad_quarter(fresh_database, demo_nodes, tmp_path):
    env = cli_env(fresh_database)
    out = tmp_path / "q.xlsx"
    cmd = [sys.executable, "-m", "app.cli", "stats", "report", "--quarter", "2026Q3", "--out", str(out),
           "--township", demo_nodes.township]  # fmt: skip
    done = await run_cli(cmd, env=env)
    assert done.returncode == 0, done.stderr
    assert "已写入" in done.stderr and "收案 0 件" in done.stderr
    book = load_workbook(out)
    assert book.sheetnames[0] == "总体指标" and "2026年第三季度" in str(book["总体指标"]["B1"].value)
    pdf = tmp_path / "q.pdf"
    done = await run_cli([*cmd[:-4], "--out", str(pdf)], env=env)
    assert done.returncode == 0 and pdf.read_bytes().startswith(b"%PDF-"), done.stderr
    done = await run_cli([sys.executable, "-m", "app.cli", "stats", "report", "--quarter", "2026-3"], env=env)
    assert done.returncode == 2 and "例如 2026Q3" in done.stderr, done.stderr
