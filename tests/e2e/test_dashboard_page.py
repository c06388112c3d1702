"""The leaders' dashboard (/dashboard) in a real browser: Debian's Chromium driven by
Playwright, against the real app served by uvicorn in its own process, on a database with
a generated year of cases (grid.cases.history, through the real use cases), one case
reported today, and this year's leadership records (the demo's duty roster, backlog batch
with its 包案 and referrals, the demo meetings' supervised tasks, a walk-in visit today).

What a county leader would notice: the tiles say what the stats API says, for this year by
default (the county's year, whatever the browser's zone) and for any period asked; the
charts are drawn; the township league lists every township; the backlog panel lists the
batch; a grid's link opens the map on that grid; the 领导工作 section shows exactly the
leadership figures the API gives for the period and township asked (a township's dispatcher:
their township's), and hides with its reason when they are refused; every word is Chinese,
every time the county's; and the page asks nothing of any other host.
"""

from __future__ import annotations

import base64
import re
import uuid
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
from grid.glossary import FIGURE_NAMES, LEADERSHIP_WORK
from grid.leadership import demo as leadership_demo
from grid.leadership import meetings
from grid.leadership import repository as leadership_sql
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
RECEPTION = "19100000007"  # registers a walk-in visit for today's duty leader
ADMIN = "19100000006"  # no data scope: the figures answer 403
DISPATCHER = "19100000001"  # 银州街道's dispatcher: that township's figures
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


@pytest.fixture
async def leadership_records(year_of_cases: str) -> tuple[str, str]:
    """This year's leadership records, through the real use cases (committed); answers the
    database and a village for a walk-in visit."""
    now = datetime.now(UTC)
    signer = Signer.from_seed(base64.b64encode(b"k" * 32).decode())
    async with await connect(libpq_url(year_of_cases)) as conn:
        loaded = await leadership_demo.ensure(conn=conn, county_code="610827", now=now, signer=signer, rooms=ROOMS)
        assert loaded is not None and loaded.batch_cases > 0
        assert await meetings.ensure_demo(conn=conn, county_code="610827", now=now)
        places = await leadership_sql.demo_places(conn, county_code="610827")
    return year_of_cases, places[0]["code"]


# What the 领导工作 section shows: per part, per figure (data-key), its values in order.
SHOWN = """() => Object.fromEntries([...document.querySelectorAll('#l-parts .part')].map(part => {
  const out = {};
  part.querySelectorAll('[data-key]').forEach(e => {
    (out[e.dataset.key] = out[e.dataset.key] || []).push((e.querySelector('b') || e).textContent);
  });
  return [part.id.slice(2), out];
}))"""


def _shown(lead: dict) -> dict[str, dict[str, list[str]]]:
    """The section as the API's answer says it must read: tables end with their total."""

    def column(rows: list[dict], total: dict, key: str) -> list[str]:
        return [f"{r[key]:.2f}" if key == "amount" else str(r[key]) for r in [*rows, total]]

    v, o, b, t = lead["visits"], lead["ownership"], lead["batches"], lead["tasks"]
    batch = {
        "batch_total": "total",
        "batch_resolved": "resolved",
        "batch_open": "open",
        "batch_owned": "owned",
        "reflows": "reflows",
    }
    batches = {k: [str(x[f]) for x in b["items"]] + [str(sum(x[f] for x in b["items"]))] for k, f in batch.items()}
    referrals = lead["referrals"]
    return {
        "visits": {
            k: column(v["items"], v, k)
            for k in ("visits", "settle", "route", "unit", "own", "undecided", "resolved_later")
        },
        "ownership": {
            k: [str(o["open" if k == "hard_open" else k])]
            for k in (
                "hard",
                "owned",
                "unowned",
                "case_closed",
                "complaint_withdrawn",
                "heart_settled",
                "closed_otherwise",
                "terminated",
                "hard_open",
            )
        },
        "batches": {
            "batches": [str(b["batches"])],
            "batches_cleared": [str(b["batches_cleared"])],
            **batches,
            "cleared": [FIGURE_NAMES["yes" if x["cleared"] else "no"] for x in b["items"]] + [""],
        },
        "reflows": {k: [str(lead["reflows"][k])] for k in ("reflows", "reopen", "linked")},
        "tasks": {
            **{
                k: [str(t["due" if k == "tasks_due" else k])]
                for k in ("tasks_due", "done", "on_time", "late", "open", "overdue")
            },
            "on_time_rate": [_pct(t["on_time_rate"])],
        },
        "referrals": {
            k: column(referrals["types"], referrals, k) for k in ("referred", "approved", "declined", "amount")
        },
        "closures": {"lawful_closures": column(lead["closures"]["items"], lead["closures"], "lawful_closures")},
    }


def _check_leadership(page, lead: dict) -> None:
    """The section is there, titled from the glossary, and reads exactly the API's figures."""
    assert page.is_visible("#leadership") and page.is_hidden("#l-note")
    assert page.text_content("#l-title").startswith(LEADERSHIP_WORK)
    assert page.evaluate(SHOWN) == _shown(lead)
    visits = page.text_content("#l-visits")
    assert all(leader["leader_name"] in visits for leader in lead["visits"]["items"])
    assert all(b["label"] in page.text_content("#l-batches") for b in lead["batches"]["items"])


def _bearer(base: str, phone: str) -> dict[str, str]:
    r = httpx.post(base + "/api/v1/auth/token", data={"username": phone, "password": "wuzhang-demo"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _pct(rate: dict) -> str:
    return "—" if rate["value"] is None else f"{rate['value'] * 100:.2f}%"


def _tiles(summary: dict) -> dict[str, str]:
    return {"#t-received": str(summary["received"]), "#t-success": _pct(summary["success_rate"]),
            "#t-village": _pct(summary["settled_in_village_rate"]), "#t-late": str(summary["still_late"])}  # fmt: skip


def _today() -> str:
    return datetime.now(BEIJING).date().isoformat()


def test_a_county_leader_reads_the_figures_and_follows_a_grid_to_the_map(leadership_records, chief_point, tmp_path):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: scripts/dev.sh deps installs Debian's chromium"
    requests: list[str] = []
    errors: list[str] = []
    database, village = leadership_records
    with uvicorn_app(database, "e2e-dashboard-server.log") as base:
        chief = httpx.post(base + "/api/v1/auth/token", data={"username": HOUSEHOLD_CHIEF, "password": "wuzhang-demo"})
        assert chief.status_code == 200, chief.text
        _report(base, chief.json()["access_token"], *chief_point, severity=2)  # today's case
        login = httpx.post(base + "/api/v1/auth/token", data={"username": LEADER, "password": "wuzhang-demo"})
        leader = {"Authorization": f"Bearer {login.json()['access_token']}"}

        # A walk-in visit today, for today's duty leader (the demo roster starts today).
        visit = httpx.post(base + "/api/v1/visits", json={
            "visitor_name": "来访群众甲", "category": "neighbours", "severity": 2, "description": "邻居加盖房屋挡住采光",
            "node_code": village}, headers={**_bearer(base, RECEPTION), "Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
        assert visit.status_code == 201, visit.text

        def stats(view: str, as_: dict[str, str] = leader, **params: str) -> dict:
            r = httpx.get(f"{base}/api/v1/stats/{view}", params=params, headers=as_, timeout=30)
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
                # The backlog panel lists every batch (this year's demo batch, whatever the period).
                assert leadership_demo.BATCH_LABEL in page.text_content("#batches")
                # 领导工作 follows the period: in the generated year no leadership record is dated.
                lead_2023 = stats("leadership", **period)
                assert lead_2023["batches"]["batches"] == 0 and lead_2023["visits"]["visits"] == 0
                _check_leadership(page, lead_2023)

                # Grids and villages (a village's chain has no grids): the busiest, with its
                # latest report in the county's time, linked to the map.
                answers = [stats("nodes", **period, level=level) for level in ("grid", "village")]
                nodes = [n for a in answers for n in a["items"]]
                silent = sum(a["silent_count"] for a in answers)
                assert min(a["silent_count"] for a in answers) > 0  # else the sum shows no village
                words = f"{answers[0]['level_name']}和{answers[1]['level_name']} {silent} 个"
                assert words in page.text_content("#silent")
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
                assert page.evaluate("window.cspViolations") == []

                # The grid's link opens the map on that grid (logged in already: one session).
                watching[0] = False
                link.click()
                page.wait_for_function("() => window.wz && window.wz.focus", timeout=30000)
                assert page.evaluate("window.wz.focus") == top["code"]
                assert page.text_content("#scope-name") == top["name"]
                assert page.evaluate("window.cspViolations") == []

                # Back on the dashboard (the tab keeps the login): this year's 领导工作, county-wide.
                watching[0] = True
                page.goto(base + "/dashboard")
                page.wait_for_function("() => window.wzd && window.wzd.loads >= 1", timeout=30000)
                this_year = {"from": page.input_value("#f-from"), "to": page.input_value("#f-to")}
                lead = stats("leadership", **this_year)
                assert lead["visits"]["visits"] >= 1 and lead["ownership"]["hard"] >= 27, lead
                assert lead["batches"]["batches"] == 1 and lead["referrals"]["referred"] >= 2, lead
                assert lead["tasks"]["due"] >= 1, lead
                _check_leadership(page, lead)
                text = page.inner_text("#app")
                assert re.findall(r"[A-Za-z]{2,}", text) == [], re.findall(r"[A-Za-z]{2,}", text)
                page.wait_for_timeout(500)  # let the charts' animations end before the picture
                shot = page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
                assert len(shot) > 50_000, "the dashboard looks empty"

                # One township: its own share of the figures, as the API counts it for that township.
                county_batch = lead["batches"]["items"][0]["total"]
                towns = [o.get_attribute("value") for o in page.locator("#f-township option").all()[1:]]
                answers = {code: stats("leadership", **this_year, township=code) for code in towns}
                town, lead_town = next((code, a) for code, a in answers.items()
                                       if a["batches"]["items"] and a["batches"]["items"][0]["total"] < county_batch)  # fmt: skip
                page.select_option("#f-township", town)
                page.wait_for_function("() => window.wzd.loads >= 2", timeout=30000)
                _check_leadership(page, lead_town)
                assert page.evaluate("window.cspViolations") == []

                # A township's dispatcher: no township to pick, their township's figures only.
                page.click("#logout")
                page.wait_for_selector("#login-form", state="visible")
                page.fill("input[name=username]", DISPATCHER)
                page.fill("input[name=password]", "wuzhang-demo")
                page.click("button[type=submit]")
                page.wait_for_function("() => window.wzd && window.wzd.loads >= 1", timeout=30000)
                dispatcher = _bearer(base, DISPATCHER)
                own = stats("leadership", dispatcher, **this_year)
                assert 0 < own["ownership"]["hard"] < lead["ownership"]["hard"], own
                assert page.is_hidden("#f-township-label")
                _check_leadership(page, own)

                # A role the leadership figures refuse. No role has one today (their readers are
                # the other views' and more), so the browser replays the server's own 403 for
                # an account without a data scope: the section hides with its reason, the rest stays.
                refused = httpx.get(f"{base}/api/v1/stats/leadership", headers=_bearer(base, ADMIN), timeout=30)
                assert refused.status_code == 403, refused.text
                watching[0] = False  # that 403 is expected
                page.route("**/api/v1/stats/leadership?*", lambda route: route.fulfill(
                    status=403, content_type="application/json", body=refused.content))  # fmt: skip
                page.click("#filters button[type=submit]")
                page.wait_for_function("() => window.wzd.loads >= 2", timeout=30000)
                assert page.is_hidden("#leadership") and page.is_visible("#l-note")
                assert refused.json()["error"]["message"] in page.text_content("#l-note")
                assert page.text_content("#t-received") == str(stats("summary", dispatcher, **this_year)["received"])
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
