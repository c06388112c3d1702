"""The leaders' dashboard (/dashboard) in a real browser: Debian's Chromium driven by
Playwright, against the real app served by uvicorn in its own process, on a database with
a generated year of cases (grid.cases.history, through the real use cases) and one case
reported today.

What a county leader would notice: the tiles say what the stats API says, for this year by
default (the county's year, whatever the browser's zone) and for any period asked; the
charts are drawn; the township league lists every township; the backlog panel says there
is no batch yet; a grid's link opens the map on that grid; every word is Chinese, every
time the county's; and the page asks nothing of any other host.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.accounts.service import ROOMS
from app.settings import libpq_url
from grid.cases import history
from grid.cases.ledger import Signer
from grid.db import connect
from tests.e2e import test_map_page as map_page
from tests.e2e.test_map_page import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_FLAGS,
    CSP_WATCH,
    HOUSEHOLD_CHIEF,
    _report,
    uvicorn_app,
)

# The map test's own fixtures: a database with the demo county and accounts, a chief's point.
e2e_database = map_page.e2e_database
chief_point = map_page.chief_point

LEADER = "19100000005"  # README, "Demo accounts": the county leader
BEIJING = ZoneInfo("Asia/Shanghai")
YEAR = 2023
TILES = ("#t-received", "#t-success", "#t-village", "#t-late")


@pytest.fixture
async def year_of_cases(e2e_database: str) -> str:
    """A small generated year (committed: the server in the other process sees it)."""
    async with await connect(libpq_url(e2e_database)) as conn:
        await history.generate(conn=conn, county_code="610827", year=YEAR, seed=13, now=datetime.now(UTC),
                               signer=Signer.from_seed(base64.b64encode(b"k" * 32).decode()), rooms=ROOMS,
                               cases=40)  # fmt: skip
    return e2e_database


def _pct(rate: dict) -> str:
    return "—" if rate["value"] is None else f"{rate['value'] * 100:.2f}%"


def _tiles(summary: dict) -> dict[str, str]:
    return {"#t-received": str(summary["received"]), "#t-success": _pct(summary["success_rate"]),
            "#t-village": _pct(summary["settled_in_village_rate"]), "#t-late": str(summary["still_late"])}  # fmt: skip


def _today() -> str:
    return datetime.now(BEIJING).date().isoformat()


def test_a_county_leader_reads_the_figures_and_follows_a_grid_to_the_map(year_of_cases, chief_point, tmp_path):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: scripts/dev.sh deps installs Debian's chromium"
    requests: list[str] = []
    errors: list[str] = []
    with uvicorn_app(year_of_cases, "e2e-dashboard-server.log") as base:
        chief = httpx.post(base + "/api/v1/auth/token", data={"username": HOUSEHOLD_CHIEF, "password": "wuzhang-demo"})
        assert chief.status_code == 200, chief.text
        _report(base, chief.json()["access_token"], *chief_point, severity=2)  # today's case
        login = httpx.post(base + "/api/v1/auth/token", data={"username": LEADER, "password": "wuzhang-demo"})
        leader = {"Authorization": f"Bearer {login.json()['access_token']}"}

        def stats(view: str, **params: str) -> dict:
            r = httpx.get(f"{base}/api/v1/stats/{view}", params=params, headers=leader, timeout=30)
            assert r.status_code == 200, r.text
            return r.json()

        with sync_playwright() as p:
            browser = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True,
                viewport={"width": 1400, "height": 1500}, locale="zh-CN",
                timezone_id="America/New_York",  # not the county's zone
            )  # fmt: skip
            try:
                page = browser.new_page()
                page.on("request", lambda req: requests.append(req.url))
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                # Console errors on the dashboard. Chromium logs any 4xx as one ("Failed to load
                # resource"); the only one allowed is the backlog panel's 404 (the leadership
                # records are not there yet), an answer the page expects.
                watching = [True]
                failed: list[str] = []
                page.on("response", lambda r: watching[0] and r.status >= 400 and failed.append(r.url))
                page.on("console", lambda m: watching[0] and m.type == "error" and errors.append(m.text))
                page.add_init_script(CSP_WATCH)
                landing = page.goto(base + "/dashboard")
                assert landing is not None and "script-src 'self';" in landing.headers["content-security-policy"]
                page.fill("input[name=username]", LEADER)
                page.fill("input[name=password]", "wuzhang-demo")
                page.click("button[type=submit]")

                # By default this year, in the county's calendar (the browser is in New York).
                page.wait_for_function("() => window.wzd.loads >= 1", timeout=30000)
                before = _today()
                assert page.input_value("#f-from") == before[:4] + "-01-01"
                assert page.input_value("#f-to") in {before, _today()}
                this_year = stats("summary", **{"from": page.input_value("#f-from"), "to": page.input_value("#f-to")})
                assert this_year["received"] >= 1
                assert {t: page.text_content(t) for t in TILES} == _tiles(this_year)
                assert page.text_content("#place") == "米脂县"

                # The generated year: the tiles follow the period asked for.
                page.fill("#f-from", f"{YEAR}-01-01")
                page.fill("#f-to", f"{YEAR}-12-31")
                page.click("#filters button[type=submit]")
                page.wait_for_function("() => window.wzd.loads >= 2", timeout=30000)
                period = {"from": f"{YEAR}-01-01", "to": f"{YEAR}-12-31"}
                summary = stats("summary", **period)
                assert summary["received"] >= 30 and summary["success_rate"]["denominator"] > 0, summary
                assert {t: page.text_content(t) for t in TILES} == _tiles(summary)
                rate = summary["success_rate"]
                assert f"{rate['numerator']} / {rate['denominator']}" in page.text_content("#t-success-sub")

                # Charts drawn on their canvases, with the API's figures in their series.
                for chart in ("tiers", "monthly", "categories"):
                    assert page.locator(f"#c-{chart} canvas").count() >= 1, chart
                option = page.evaluate("""() => {
                    const o = echarts.getInstanceByDom(document.getElementById('c-tiers')).getOption();
                    return [o.yAxis[0].data, o.series[0].data, o.series[1].data];
                }""")
                tiers = stats("tiers", **period)["items"]
                assert option == [[t["tier_name"] for t in tiers], [t["cases"] for t in tiers],
                                  [t["settled"] for t in tiers]]  # fmt: skip
                months = page.evaluate(
                    "() => echarts.getInstanceByDom(document.getElementById('c-monthly')).getOption().series[0].data"
                )
                assert months == [m["received"] for m in stats("monthly", **period)["items"]] and len(months) == 12
                cats = page.evaluate(
                    "() => echarts.getInstanceByDom(document.getElementById('c-categories')).getOption().series.length"
                )
                assert cats == 1

                # The league: every township of the county, busiest first.
                townships = stats("townships", **period)["items"]
                rows = page.locator("#townships tbody tr")
                assert rows.count() == len(townships) == 9
                busiest = sorted(townships, key=lambda t: (-t["received"], t["code"]))[0]
                assert busiest["name"] in rows.nth(0).text_content()
                # No backlog batch yet (the leadership records answer 404 or nothing).
                assert page.text_content("#batches") == "暂无积案批次"

                # Grids: their latest report in the county's time, linked to the map.
                nodes = stats("nodes", **period, level="grid")["items"]
                top = sorted(nodes, key=lambda n: (-n["reports"], n["code"]))[0]
                row = page.locator("#nodes tbody tr").nth(0)
                last = datetime.fromisoformat(top["last_report_at"]).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
                assert top["name"] in row.text_content() and last in row.text_content()
                link = row.locator("a")
                assert link.get_attribute("href") == f"/map?node={top['code']}"

                # Every word on the page is Chinese (digits, dates and signs aside).
                text = page.inner_text("#app")
                assert re.findall(r"[A-Za-z]{2,}", text) == [], re.findall(r"[A-Za-z]{2,}", text)
                assert len(re.findall(r"[\u4e00-\u9fff]", text)) > 100
                page.wait_for_timeout(500)  # let the charts' animations end before the picture
                ARTIFACTS.mkdir(exist_ok=True)
                shot = page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
                assert len(shot) > 50_000, "the dashboard looks empty"
                assert page.evaluate("window.cspViolations") == []

                # The grid's link opens the map on that grid (logged in already: one session).
                watching[0] = False
                link.click()
                page.wait_for_function("() => window.wz && window.wz.focus", timeout=30000)
                assert page.evaluate("window.wz.focus") == top["code"]
                assert page.text_content("#scope-name") == top["name"]
                assert page.evaluate("window.cspViolations") == []
            finally:
                browser.close()

    assert {urlsplit(u).path for u in failed} <= {"/api/v1/backlog/batches"}, failed
    assert [e for e in errors if not e.startswith("Failed to load resource")] == [], errors
    assert len(errors) <= len(failed), (errors, failed)
    app_host = urlsplit(base).netloc
    outside = [u for u in requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")
               and urlsplit(u).netloc != app_host]  # fmt: skip
    assert requests and not outside, outside
    assert any("/static/vendor/echarts/" in u for u in requests)
    assert {urlsplit(u).hostname for u in requests if urlsplit(u).scheme.startswith("http")} == {"127.0.0.1"}
