"""The case detail of the dispatcher's map shows a report's photos: Debian's Chromium
driven by Playwright against the real app in its own process (as tests/e2e/test_map_page.py).

What a dispatcher would notice: opening a case shows each photo's thumbnail, when it was
taken, where, and how far from the report's point; a photo taken elsewhere is flagged.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e import test_map_page as map_page
from tests.e2e.test_map_page import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, CSP_WATCH, DISPATCHER, HOUSEHOLD_CHIEF
from tests.photos import jpeg

# The map test's own fixtures: a database with the demo county and accounts, a chief's point.
e2e_database = map_page.e2e_database
chief_point = map_page.chief_point


@pytest.fixture
def photo_app(e2e_database, tmp_path) -> Iterator[str]:
    """The app served by uvicorn, with a media folder of the test's own."""
    with map_page.uvicorn_app(e2e_database, "e2e-photos-server.log", WUZHANG_MEDIA_DIR=str(tmp_path / "media")) as base:
        yield base


def test_the_case_detail_shows_the_photos_thumbnail_time_and_distance(photo_app, chief_point, tmp_path):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: scripts/dev.sh deps installs Debian's chromium"
    base = photo_app
    login = httpx.post(base + "/api/v1/auth/token", data={"username": HOUSEHOLD_CHIEF, "password": "wuzhang-demo"})
    assert login.status_code == 200, login.text
    chief = {"Authorization": f"Bearer {login.json()['access_token']}"}
    lon, lat = chief_point
    r = httpx.post(base + "/api/v1/reports", headers=chief | {"Idempotency-Key": str(uuid.uuid4())},
                   json={"lon": lon, "lat": lat, "category": "neighbours", "severity": 2,
                         "description": "浏览器测试：带照片的案件"}, timeout=10)  # fmt: skip
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    # Taken about 1 km north of where it was reported: the page must flag it.
    photo = jpeg(lon=lon, lat=lat + 0.009, taken="2026:12:01 09:30:00", offset="+08:00", size=(1200, 900))
    up = httpx.post(base + f"/api/v1/reports/{cid}/attachments", headers=chief,
                    files={"file": ("p.jpg", photo, "image/jpeg")}, timeout=30)  # fmt: skip
    assert up.status_code == 201, up.text
    aid = up.json()["id"]

    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True,
            viewport={"width": 1280, "height": 900},
        )  # fmt: skip
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.add_init_script(CSP_WATCH)
            page.goto(base + "/map")
            page.fill("input[name=username]", DISPATCHER)
            page.fill("input[name=password]", "wuzhang-demo")
            page.click("button[type=submit]")
            page.wait_for_selector(f"#queue li[data-case-id='{cid}']", timeout=30000)
            page.click(f"#queue li[data-case-id='{cid}']")

            # The thumbnail was fetched with the token and drawn from an object URL.
            img = f"#case-photos img[data-attachment-id='{aid}']"
            page.wait_for_function(
                f'() => {{ const i = document.querySelector("{img}"); return i && i.complete && i.naturalWidth > 0; }}',
                timeout=15000,
            )
            assert page.get_attribute(img, "src").startswith("blob:")
            assert page.evaluate(f'document.querySelector("{img}").naturalWidth') == 320
            text = page.text_content("#case-photos")
            assert "拍摄时间" in text and "距上报位置" in text and "上报位置" in text
            assert "不在上报地点" in text  # about 1 km away
            assert "拍摄时间 2026-12-01 09:30" in text  # the county's clock, though the browser runs in UTC
            page.wait_for_timeout(300)
            ARTIFACTS.mkdir(exist_ok=True)
            shot = page.locator("#detail").screenshot(path=str(ARTIFACTS / "map-case-photos.png"))
            assert len(shot) > 5_000

            # A click swaps in the photo itself (also without its EXIF, fetched the same way).
            page.click(img)
            page.wait_for_function(f'() => document.querySelector("{img}").naturalWidth === 1200', timeout=15000)
            assert not errors, errors
            assert page.evaluate("window.cspViolations") == []
        finally:
            browser.close()
