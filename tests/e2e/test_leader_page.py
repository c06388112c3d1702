"""The leader's desk (/leader) in a real browser: Debian's Chromium driven by Playwright,
against the real app served by uvicorn in its own process, on a committed database with
the demo county and accounts, where the county leader owns a hard case with two of its
five duties ticked, is on reception duty today, and a meeting's tasks are overdue; and a
backlog batch the dashboard's panel must report.

What a county leader would notice: today's duty leader by name and body, on the county's
date (the browser is in New York); their 包案 list with each case's category, state, 2/5
of the five duties and owning unit, linked to the map; the overdue tasks with their due
day and days overdue; every word Chinese; the link to the dashboard, whose backlog panel
shows the batch as the API counts it; and no request to any other host.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.accounts.service import ROOMS
from app.settings import libpq_url
from grid.cases.ledger import Signer
from grid.db import connect
from grid.leadership import backlog, meetings
from grid.leadership import demo as leadership_demo
from grid.leadership import repository as leadership_sql
from grid.leadership.sheets import SheetRow
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

e2e_database = map_page.e2e_database
chief_point = map_page.chief_point

LEADER = "19100000005"  # README, "Demo accounts": 演示县领导
CENTRE_MEDIATOR = "19100000004"  # marks a case at the county centre hard (包案)
ADMIN = "19100000006"  # keeps the duty roster (as the petition office may)
BATCH_LEADER = leadership_demo.LEADERS[0].phone  # 王志刚 owns the batch: the leader's own list stays one case
BEIJING = ZoneInfo("Asia/Shanghai")
PASSWORD = "wuzhang-demo"


@pytest.fixture
async def leadership_records(e2e_database: str) -> str:
    """Overdue tasks (the demo meetings, held two quarters ago) and a backlog batch of two
    cases owned by another leader, committed through the real use cases."""
    now = datetime.now(UTC)
    signer = Signer.from_seed(base64.b64encode(b"k" * 32).decode())
    async with await connect(libpq_url(e2e_database)) as conn:
        assert await meetings.ensure_demo(conn=conn, county_code="610827", now=now - timedelta(days=200))
        places = await leadership_sql.demo_places(conn, county_code="610827")
        people = await leadership_sql.people_by_phone(conn, phones=[leadership_demo.STAFF_PHONES["petition"]])
        rows = [SheetRow(i + 2, {"description": f"浏览器测试积案{i + 1}", "category": "land_acquisition", "severity": "3",
                                 "place": p["code"], "leader_phone": BATCH_LEADER, "unit": "natural_resources"})
                for i, p in enumerate(places[:2])]  # fmt: skip
        done = await backlog.import_batch(conn=conn, county_code="610827", label="第三批", handed_down_on=None,
                                          rows=rows, source="test", by_person_id=people[leadership_demo.STAFF_PHONES["petition"]]["id"],
                                          now=now, signer=signer, rooms=ROOMS)  # fmt: skip
        assert done.ok and done.imported == 2, done.errors
    return e2e_database


def _login(base: str, phone: str) -> dict[str, str]:
    r = httpx.post(base + "/api/v1/auth/token", data={"username": phone, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _county_today() -> date:
    return datetime.now(BEIJING).date()


def test_a_county_leader_sees_today_s_duty_their_cases_and_overdue_tasks(leadership_records, chief_point, tmp_path):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: scripts/dev.sh deps installs Debian's chromium"
    requests: list[str] = []
    errors: list[str] = []
    failed: list[str] = []
    with uvicorn_app(leadership_records, "e2e-leader-server.log") as base:
        # A hard case at the county centre, owned by the leader with 住建局, two duties ticked.
        chief = _login(base, HOUSEHOLD_CHIEF)["Authorization"].split()[1]
        case_id = _report(base, chief, *chief_point, severity=4)
        leader = _login(base, LEADER)
        me = httpx.get(base + "/api/v1/me", headers=leader).json()
        r = httpx.post(f"{base}/api/v1/cases/{case_id}/ownership", headers=_login(base, CENTRE_MEDIATOR),
                       json={"leader_person_id": me["person_id"], "unit": {"department_code": "housing"}})  # fmt: skip
        assert r.status_code == 200, r.text
        for duty in ("know", "educate"):
            r = httpx.post(f"{base}/api/v1/cases/{case_id}/duties/{duty}", headers=leader, json={"note": "已落实"})
            assert r.status_code in (200, 201), r.text
        # Today (the county's day) the leader is on reception duty for 县政府.
        r = httpx.put(f"{base}/api/v1/duty/{_county_today().isoformat()}", headers=_login(base, ADMIN),
                      json={"leader_person_id": me["person_id"], "body": "government"})  # fmt: skip
        assert r.status_code == 200, r.text
        # What the API says the page must show.
        owned = httpx.get(base + "/api/v1/me/owned", headers=leader).json()["items"]
        assert [(o["id"], o["duties_done"]) for o in owned] == [(case_id, 2)]
        overdue = httpx.get(base + "/api/v1/tasks", params={"state": "overdue"}, headers=leader).json()["items"]
        assert len(overdue) >= 1
        batches = httpx.get(base + "/api/v1/backlog/batches", headers=leader).json()
        assert [(b["label"], b["total"]) for b in batches] == [("第三批", 2)]

        with sync_playwright() as p:
            browser = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True,
                viewport={"width": 1300, "height": 900}, locale="zh-CN",
                timezone_id="America/New_York",  # not the county's zone: its day is often another
            )  # fmt: skip
            try:
                page = browser.new_page()
                page.on("request", lambda req: requests.append(req.url))
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("console", lambda m: m.type == "error" and errors.append(m.text))
                page.on("response", lambda r: r.status >= 400 and failed.append(r.url))
                page.add_init_script(CSP_WATCH)
                landing = page.goto(base + "/leader")
                assert landing is not None and "script-src 'self';" in landing.headers["content-security-policy"]
                page.fill("input[name=username]", LEADER)
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_function("() => window.wzl && window.wzl.loads >= 1", timeout=30000)

                # Today's duty leader: the leader's own name and body, on the county's date.
                today = _county_today()
                assert page.text_content("#duty-name") == me["name"] == "演示县领导"
                assert page.text_content("#duty-body") == "县政府"
                assert page.text_content("#duty-day").startswith(f"{today.year}年{today.month:02d}月{today.day:02d}日")

                # My 包案: the case with its category, state, 2/5, unit and a link to the map.
                rows = page.locator("#owned tbody tr")
                assert rows.count() == 1
                row = rows.nth(0)
                cells = [row.locator("td").nth(i).inner_text() for i in range(7)]
                o = owned[0]
                assert cells[0].startswith(str(case_id))
                assert cells[1:] == [o["category_name"], o["state_name"], "2/5", "—", "住建局", o["handling_node_name"]]
                assert o["category_name"] == "邻里纠纷"
                assert row.locator("a").get_attribute("href") == f"/map?node={o['handling_node']}"

                # Overdue tasks: each with its owner, due day and days overdue (the county's today).
                task_rows = page.locator("#tasks tbody tr")
                assert task_rows.count() == len(overdue)
                for i, t in enumerate(overdue):
                    text = task_rows.nth(i).inner_text()
                    late = (today - date.fromisoformat(t["due_on"])).days
                    assert t["title"] in text and t["owner"]["name"] in text and t["due_on"] in text, text
                    assert f"逾期 {late} 天" in text and late > 0, text

                # Every word on the page is Chinese (digits, dates and signs aside).
                text = page.inner_text("#app")
                assert re.findall(r"[A-Za-z]{2,}", text) == [], re.findall(r"[A-Za-z]{2,}", text)
                ARTIFACTS.mkdir(exist_ok=True)
                shot = page.screenshot(path=str(ARTIFACTS / "leader.png"), full_page=True)
                assert len(shot) > 30_000, "the leader's page looks empty"
                assert page.evaluate("window.cspViolations") == []

                # The dashboard, one click away, shows the batch as the API counts it.
                page.click("#top a[href='/dashboard']")
                page.wait_for_function("() => window.wzd && window.wzd.loads >= 1", timeout=30000)
                b = batches[0]
                panel = page.text_content("#batches")
                assert panel == f"{b['label']}：{b['resolved']} / {b['total']}" + (
                    "（已清零）" if b["cleared"] else ""
                ), panel
                assert page.evaluate("document.querySelector('#batches progress').max") == b["total"]
                assert page.evaluate("window.cspViolations") == []
            finally:
                browser.close()

    assert failed == [] and errors == [], (failed, errors)
    app_host = urlsplit(base).netloc
    outside = [u for u in requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")
               and urlsplit(u).netloc != app_host]  # fmt: skip
    assert requests and not outside, outside
    assert {urlsplit(u).hostname for u in requests if urlsplit(u).scheme.startswith("http")} == {"127.0.0.1"}
