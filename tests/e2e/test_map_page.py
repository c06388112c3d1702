"""The dispatcher's map in a real browser: Debian's Chromium driven by Playwright, against
the real app served by uvicorn in its own process, on a database of its own.

What a dispatcher would notice: logging in lands on the township with its polygons
drawn; labels keep their digits (glyphs served by the app); a case opens with its chain
and ledger, ringed on the map, its details scrolled into view; the queue's filters filter
the markers too, and an empty result says so; a return picks its recipient from the
case's own chain; a case reported through the API shows up on the map by the page's own
polling, without a reload; and the page asks nothing of any other host.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.accounts import demo as demo_accounts
from app.settings import PROJECT_ROOT, libpq_url
from geo import demo
from grid.db import connect, fetch_one
from tests.conftest import TEST_JWT_SECRET, app_url, settings_for_tests

CHROMIUM = "/usr/bin/chromium"
# As in the machine notes: without the background-networking flags Chromium calls home.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  # WebGL on the CPU, since there is no GPU: MapLibre draws with it.
                  "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]  # fmt: skip
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
DISPATCHER = "19100000001"  # README, "Demo accounts": the township's dispatcher
HOUSEHOLD_CHIEF = "18233761763"  # README: central household chief in that township
# A queue long enough that a case's details open below the fold of a short window.
QUEUE_CASES = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def e2e_database(fresh_database: str) -> str:
    """A database of the test's own with the demo county and the demo accounts, committed:
    the server in the other process sees only committed data."""
    async with await connect(libpq_url(fresh_database)) as conn:
        _, created = await demo_accounts.ensure(  # test settings: cheap password hashing
            conn=conn, settings=settings_for_tests(fresh_database), county_code=demo.COUNTY_CODE
        )
    assert created > 0
    return fresh_database


# Collects what the Content-Security-Policy refused, before any script of the page runs.
CSP_WATCH = """
window.cspViolations = [];
document.addEventListener('securitypolicyviolation',
  e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


@contextmanager
def uvicorn_app(database_url: str, log_name: str, **env: str) -> Iterator[str]:
    """The app served by uvicorn on a free port, as the app role; yields its base URL."""
    port = _free_port()
    environ = {**os.environ, "DATABASE_URL": app_url(database_url), "WUZHANG_JWT_SECRET": TEST_JWT_SECRET,
               "WUZHANG_MAP_BASEMAP_URL": "", "WUZHANG_LEDGER_KEY": base64.b64encode(b"k" * 32).decode(), **env}  # fmt: skip
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / log_name
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            cwd=PROJECT_ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(150):  # bounded: up to about 30 s for the app to come up
                try:
                    if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None, log_path.read_text()[-2000:]
                time.sleep(0.2)
            else:
                raise AssertionError("the app did not become ready: " + log_path.read_text()[-2000:])
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def live_app(e2e_database) -> Iterator[str]:
    with uvicorn_app(e2e_database, "e2e-server.log") as base:
        yield base


@pytest.fixture
async def chief_point(e2e_database: str) -> tuple[float, float]:
    """A point inside the household whose chief reports (their deepest post's node)."""
    async with await connect(libpq_url(e2e_database)) as conn:
        row = await fetch_one(
            conn,
            "SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM (SELECT ST_PointOnSurface(n.geom) AS p FROM node n"
            " JOIN post po ON po.node_id = n.id JOIN person pe ON pe.id = po.person_id"
            " WHERE pe.phone = %(ph)s AND po.ended_at IS NULL ORDER BY n.depth DESC LIMIT 1) q",
            {"ph": HOUSEHOLD_CHIEF},
        )
    assert row is not None
    return row["lon"], row["lat"]


def _report(base: str, token: str, lon: float, lat: float, severity: int) -> int:
    r = httpx.post(base + "/api/v1/reports", headers={"Authorization": f"Bearer {token}",
                                                      "Idempotency-Key": str(uuid.uuid4())},
                   json={"lon": lon, "lat": lat, "category": "neighbours", "severity": severity,
                         "description": "浏览器测试：邻里纠纷"}, timeout=10)  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_a_dispatcher_sees_the_township_opens_a_case_and_a_new_case_appears_live(live_app, chief_point, tmp_path):
    # A plain (not async) test: Playwright's sync API refuses to run inside a running event loop.
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: scripts/dev.sh deps installs Debian's chromium"
    base = live_app
    login = httpx.post(base + "/api/v1/auth/token", data={"username": HOUSEHOLD_CHIEF, "password": "wuzhang-demo"})
    assert login.status_code == 200, login.text
    chief = login.json()["access_token"]
    lon, lat = chief_point
    first = _report(base, chief, lon, lat, severity=2)
    for i in range(QUEUE_CASES - 1):  # newer, so above the first in the queue
        _report(base, chief, lon + (i + 1) * 1e-6, lat, severity=1)
    dispatcher = httpx.post(base + "/api/v1/auth/token", data={"username": DISPATCHER, "password": "wuzhang-demo"})
    assert dispatcher.status_code == 200, dispatcher.text
    as_dispatcher = {"Authorization": f"Bearer {dispatcher.json()['access_token']}"}

    requests: list[str] = []
    glyphs: dict[str, tuple[int, int]] = {}  # url: (status, body size)
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True,
            viewport={"width": 1280, "height": 800}, timezone_id="America/New_York",  # not the county's zone
        )  # fmt: skip
        try:
            page = browser.new_page()
            page.on("request", lambda req: requests.append(req.url))
            page.on("response", lambda r: "/fonts/" in r.url and glyphs.update({r.url: (r.status, len(r.body()))}))
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.add_init_script(CSP_WATCH)
            landing = page.goto(base + "/map")
            assert landing is not None and "script-src 'self';" in landing.headers["content-security-policy"]
            page.fill("input[name=username]", DISPATCHER)
            page.fill("input[name=password]", "wuzhang-demo")
            page.click("button[type=submit]")

            # Lands on the township: its name in the panel, its polygons drawn on the canvas.
            # Predicates are functions, not strings: the page's CSP forbids eval, which a string needs.
            page.wait_for_function("() => window.wz.polls >= 1 && window.wz.map.loaded()", timeout=20000)
            assert page.text_content("#scope-name") == "银州街道"
            page.wait_for_function(
                "() => window.wz.map.queryRenderedFeatures({layers: ['grid-fill']}).length > 0", timeout=15000
            )
            drawn = page.evaluate("window.wz.map.queryRenderedFeatures({layers: ['grid-fill']}).length")
            assert drawn > 0
            # The canvas is not blank: a picture of an empty canvas compresses to almost nothing.
            page.wait_for_timeout(300)  # let the labels settle before the picture
            ARTIFACTS.mkdir(exist_ok=True)
            shot = page.locator("#map").screenshot(path=str(ARTIFACTS / "map-landing.png"))
            assert len(shot) > 10_000, "the map canvas looks empty"

            # Close in, unit labels keep their digits: the label layer shows a name with a
            # digit, and that digit was drawn from the app's glyphs (not left out, nor
            # drawn by the browser as MapLibre does when a glyph range fails).
            page.evaluate(f"window.wz.map.jumpTo({{center: [{lon}, {lat}], zoom: 16.5}})")
            digit_label = """() => {
                const m = window.wz.map;
                const f = m.queryRenderedFeatures({layers: ['grid-label']}).find(f => /[0-9]/.test(f.properties.name));
                if (!f || !m.loaded()) return null;
                const entry = m.style.glyphManager.entries['DejaVu Sans Book'];
                const g = entry && entry.glyphs[f.properties.name.match(/[0-9]/)[0].charCodeAt(0)];
                return g ? {name: f.properties.name, local: !!g.metrics.isDoubleResolution, w: g.bitmap.width} : null;
            }"""
            page.wait_for_function(digit_label, timeout=15000)
            label = page.evaluate(digit_label)
            assert not label["local"] and label["w"] > 0, label
            assert glyphs and all(status == 200 for status, _ in glyphs.values()), glyphs
            latin = [u for u in glyphs if u.endswith("/0-255.pbf")]
            assert latin and glyphs[latin[0]][1] > 10_000, glyphs  # real glyphs, not an empty set
            page.wait_for_timeout(300)
            page.locator("#map").screenshot(path=str(ARTIFACTS / "map-labels.png"))

            # The queue's filters filter the markers; an empty result says so.
            page.select_option("#f-state", "mediating")  # no case is being mediated yet
            page.wait_for_function("() => window.wz.map.querySourceFeatures('cases').length === 0", timeout=10000)
            assert page.text_content("#queue-empty") == "没有符合条件的案件"
            assert page.locator("#queue li[data-case-id]").count() == 0
            page.screenshot(path=str(ARTIFACTS / "map-filter-empty.png"))
            page.select_option("#f-state", "")
            page.wait_for_function(
                f"() => window.wz.map.querySourceFeatures('cases').some(f => f.properties.id === {first})",
                timeout=10000,
            )
            assert page.locator("#queue li[data-case-id]").count() == QUEUE_CASES

            # Opens the first case, at the foot of a long queue in a short window: details
            # with its chain and ledger, scrolled into view, and the case ringed on the map.
            page.set_viewport_size({"width": 1280, "height": 480})
            page.click(f"#queue li[data-case-id='{first}']")
            page.wait_for_selector("#case-ledger tr", timeout=10000)
            assert f"#{first}" in page.text_content("#case-title")
            assert page.locator("#case-chain tr").count() >= 5  # household up to the county
            assert "上报" in page.text_content("#case-ledger") or page.locator("#case-ledger tr").count() >= 2
            assert page.locator("#detail .actions button").count() >= 1
            in_view = page.evaluate("""() => {
                const panel = document.getElementById('panel').getBoundingClientRect();
                const title = document.getElementById('case-title').getBoundingClientRect();
                return title.top >= panel.top && title.bottom <= panel.bottom;
            }""")
            assert in_view, "the case's details opened out of sight"
            page.wait_for_function(
                f"() => window.wz.map.queryRenderedFeatures({{layers: ['case-selected']}}).some(f => f.properties.id === {first})"
                f" && !window.wz.map.isMoving()",
                timeout=15000,
            )
            ringed = page.evaluate("window.wz.map.queryRenderedFeatures({layers: ['case-selected']})"
                                   ".map(f => f.properties.id)")  # fmt: skip
            assert set(ringed) == {first}, ringed
            page.screenshot(path=str(ARTIFACTS / "map-selected.png"))
            page.set_viewport_size({"width": 1280, "height": 800})

            # 退回: the recipient is picked from a list of the case's own chain below its
            # handling node (the case file's return_choices), not typed in.
            case = httpx.get(f"{base}/api/v1/cases/{first}", headers=as_dispatcher).json()
            assert len(case["return_choices"]) >= 2, case  # household and group, below the village
            page.click("#detail .actions button[data-action='return']")
            page.wait_for_selector("#return-dialog[open]", timeout=5000)
            offered = page.eval_on_selector_all("#return-to option", "os => os.map(o => [o.value, o.textContent])")
            assert [v for v, _ in offered] == case["return_choices"], offered
            names = {n["code"]: n["name"] for n in case["return_choice_nodes"]}
            assert all(names[v] in text for v, text in offered), offered
            page.screenshot(path=str(ARTIFACTS / "map-return-picker.png"))
            target = case["return_choices"][-1]
            page.select_option("#return-to", target)
            page.click("#return-ok")  # without a reason: asked for one, nothing sent
            assert page.text_content("#return-error") == "请填写退回理由"
            page.fill("#return-note", "浏览器测试：应由下级先处理")
            page.click("#return-ok")
            page.wait_for_function(
                f"() => document.getElementById('case-title') && document.querySelector('#detail table')"
                f" && document.querySelector('#detail table').textContent.includes({names[target]!r})",
                timeout=10000,
            )
            after = httpx.get(f"{base}/api/v1/cases/{first}", headers=as_dispatcher).json()
            assert (after["handling_node"], after["state"]) == (target, "assigned"), after
            # Names from the server's glossary; times in the county's zone, not the browser's.
            case = httpx.get(f"{base}/api/v1/cases/{first}", headers={"Authorization": f"Bearer {chief}"}).json()
            reported = datetime.fromisoformat(case["reported_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
            assert reported.strftime("%Y-%m-%d %H:%M") in page.text_content("#detail")
            assert "和事屋" in page.text_content("#detail") and "分派" in page.text_content("#case-ledger")
            assert page.text_content("#who") == "演示调度员（调度员）"

            # A case reported through the API now appears without a reload, brought by the
            # page's own polling (every 3 s).
            page.evaluate("window.wzNotReloaded = true")  # a reload would lose it
            polls = page.evaluate("window.wz.polls")
            second = _report(base, chief, lon + 0.00001, lat, severity=4)
            page.wait_for_function(
                f"() => window.wz.features.some(f => f.id === {second})"
                f" && window.wz.map.querySourceFeatures('cases').some(f => f.properties.id === {second})",
                timeout=30000,
            )
            page.wait_for_selector(f"#queue li[data-case-id='{second}']", timeout=10000)
            assert page.locator("#queue-empty").count() == 0
            assert page.evaluate("window.wzNotReloaded === true"), "the page was reloaded"
            assert page.evaluate("window.wz.polls") > polls
            page.wait_for_timeout(500)  # let the marker paint before the picture
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "map-dispatcher.png"))
            assert not errors, errors
            # The page's Content-Security-Policy let everything it needs through.
            assert page.evaluate("window.cspViolations") == []
        finally:
            browser.close()

    # Nothing from any host but the app (blob: and data: URLs are the page's own).
    app_host = urlsplit(base).netloc
    outside = [u for u in requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")
               and urlsplit(u).netloc != app_host]  # fmt: skip
    assert requests and not outside, outside
    assert any("/tiles/grid/" in u for u in requests) and any("/static/vendor/maplibre-gl/" in u for u in requests)
    assert any("/map/fonts/" in u for u in requests)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_api_pages_render_from_the_apps_own_files(live_app, path, tmp_path):
    """/docs and /redoc draw the operations with every request going to the app: anything
    for another host is aborted, and nothing may have been; their CSP refuses nothing."""
    from playwright.sync_api import sync_playwright

    base = live_app
    app_host = urlsplit(base).netloc
    aborted: list[str] = []
    seen: list[str] = []

    def only_the_app(route) -> None:  # type: ignore[no-untyped-def]
        url = route.request.url
        seen.append(url)
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).netloc != app_host:
            aborted.append(url)
            route.abort()
        else:
            route.continue_()

    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True,
            viewport={"width": 1280, "height": 800},
        )  # fmt: skip
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.route("**/*", only_the_app)
            page.add_init_script(CSP_WATCH)
            page.goto(base + path)
            # An operation of the API, drawn by the page's own script from /openapi.json.
            selector = ".opblock-summary-path" if path == "/docs" else "[data-section-id^='tag/']"
            page.wait_for_selector(selector, timeout=30000)
            assert "/api/v1/grid/locate" in page.content()
            page.wait_for_timeout(500)  # late requests (fonts, workers) show up too
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"api-page{path.replace('/', '-')}.png"))
            violations = page.evaluate("window.cspViolations")
        finally:
            browser.close()
    assert not aborted, aborted
    assert any(u.endswith("/openapi.json") for u in seen) and any("/static/vendor/" in u for u in seen), seen
    # Redoc's sidebar always asks for its maker's logo from cdn.redoc.ly: the CSP refuses
    # it before any request leaves (so nothing was aborted), and Redoc then hides the image.
    expected = ["img-src https://cdn.redoc.ly/redoc/logo-mini.svg"] if path == "/redoc" else []
    assert violations == expected, violations
    assert not errors, errors
