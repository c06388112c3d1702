"""Photos people can see (issue 14, section 1): served without their EXIF, scoped and
audited like the case file, with when and where they were taken beside the report's point."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image
from pyproj import Geod

from grid.db import fetch_all, fetch_value
from tests.conftest import app_url, settings_for_tests
from tests.photos import XMP_MARK, heic, jpeg, png

SHANGHAI = timezone(timedelta(hours=8))


@pytest.fixture
def settings(database_url, tmp_path):
    """The app's settings with a media folder of the test's own."""
    return settings_for_tests(app_url(database_url), WUZHANG_MEDIA_DIR=str(tmp_path / "media"))


@pytest.fixture
async def case(client, make_account, demo_nodes):
    """A case reported by a household's chief at a known WGS-84 point, and who may see it."""
    reporter = await make_account("chief", node_code=demo_nodes.household)
    lon, lat = demo_nodes.points[demo_nodes.household]
    r = await client.post(
        "/api/v1/reports", headers=reporter.headers | {"Idempotency-Key": str(uuid.uuid4())},
        json={"lon": lon, "lat": lat, "category": "neighbours", "severity": 2, "description": "院墙纠纷"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return {"id": r.json()["id"], "lon": r.json()["lon"], "lat": r.json()["lat"], "reporter": reporter.headers,
            "dispatcher": (await make_account("dispatcher")).headers,
            "outsider": (await make_account("dispatcher", node_code=demo_nodes.other_township)).headers}  # fmt: skip


async def upload(client, case, data, who="reporter", name="p.jpg"):
    r = await client.post(f"/api/v1/reports/{case['id']}/attachments", headers=case[who],
                          files={"file": (name, data, "application/octet-stream")})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


def no_metadata(body: bytes) -> None:
    image = Image.open(io.BytesIO(body))
    assert image.format == "JPEG"
    assert dict(image.getexif()) == {}
    assert b"Exif\x00\x00" not in body and XMP_MARK not in body and b"GPS" not in body
    assert b"TestPhone" not in body and b"SN-0042" not in body


async def test_a_photo_is_served_without_its_exif_and_the_original_still_matches_the_ledger(client, case, settings, db):
    original = jpeg(lon=case["lon"] + 0.001, lat=case["lat"], taken="2026:12:01 09:30:00", offset="+08:00")
    assert b"Exif\x00\x00" in original and XMP_MARK in original  # what a phone sends
    sent = await upload(client, case, original)
    aid, sha = sent["id"], sent["sha256"]

    photo = await client.get(f"/api/v1/cases/{case['id']}/attachments/{aid}", headers=case["reporter"])
    assert photo.status_code == 200, photo.text
    assert photo.headers["content-type"] == "image/jpeg"
    assert photo.headers["cache-control"] == "private, no-store"
    no_metadata(photo.content)
    assert Image.open(io.BytesIO(photo.content)).size == (800, 600)

    thumb = await client.get(f"/api/v1/cases/{case['id']}/attachments/{aid}/thumbnail", headers=case["dispatcher"])
    assert thumb.status_code == 200, thumb.text
    assert thumb.headers["content-type"] == "image/jpeg"
    no_metadata(thumb.content)
    assert Image.open(io.BytesIO(thumb.content)).size == (320, 240)

    # The original is kept byte for byte, and its hash is the one the ledger signed.
    kept = (settings.media_dir / sha[:2] / sha).read_bytes()
    assert kept == original and hashlib.sha256(kept).hexdigest() == sha
    ledger = (await client.get(f"/api/v1/cases/{case['id']}/ledger", headers=case["reporter"])).json()["events"]
    assert ledger[-1]["action"] == "attach" and ledger[-1]["attachment_hashes"] == [sha]
    verdict = (await client.get(f"/api/v1/cases/{case['id']}/ledger/verify", headers=case["reporter"])).json()
    assert verdict["valid"], verdict


async def test_each_view_of_a_photo_is_audited_and_an_outsider_gets_the_case_files_404(client, case, db):
    aid = (await upload(client, case, jpeg(lon=case["lon"], lat=case["lat"])))["id"]
    base = f"/api/v1/cases/{case['id']}/attachments/{aid}"

    async def audits():
        return await fetch_all(
            db, "SELECT actor_user_id, details FROM audit_log WHERE action = 'read.case_photo' AND target = %(t)s"
            " ORDER BY id", {"t": f"case:{case['id']}"},
        )  # fmt: skip

    assert await audits() == []
    assert (await client.get(base, headers=case["dispatcher"])).status_code == 200
    assert (await client.get(base + "/thumbnail", headers=case["reporter"])).status_code == 200
    rows = await audits()
    assert [r["details"] for r in rows] == [
        {"photos": [{"case": case["id"], "attachment": aid, "variant": "photo"}]},
        {"photos": [{"case": case["id"], "attachment": aid, "variant": "thumbnail"}]},
    ]
    assert rows[0]["actor_user_id"] != rows[1]["actor_user_id"]

    # Out of scope: the very answer a read of the case file gets, and no audit row.
    case_file = await client.get(f"/api/v1/cases/{case['id']}", headers=case["outsider"])
    assert case_file.status_code == 404
    for url in (base, base + "/thumbnail"):
        r = await client.get(url, headers=case["outsider"])
        assert r.status_code == 404 and r.json() == case_file.json(), r.text
        assert "image" not in r.headers["content-type"]
    assert len(await audits()) == 2

    # In scope, but no such photo on this case.
    missing = await client.get(f"/api/v1/cases/{case['id']}/attachments/{aid + 1000}", headers=case["reporter"])
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "attachment_not_found"
    assert "照片" in missing.json()["error"]["message"]
    assert (await client.get(f"/api/v1/cases/{case['id']}/attachments/{aid}")).status_code == 401


async def test_a_photo_of_one_case_is_not_served_under_another(client, case, make_account, demo_nodes):
    aid = (await upload(client, case, png()))["id"]
    other = await client.post(
        "/api/v1/reports", headers=case["reporter"] | {"Idempotency-Key": str(uuid.uuid4())},
        json={"lon": case["lon"], "lat": case["lat"], "category": "neighbours", "severity": 1, "description": "另案"},
    )  # fmt: skip
    r = await client.get(f"/api/v1/cases/{other.json()['id']}/attachments/{aid}", headers=case["reporter"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "attachment_not_found"


async def test_a_heic_photo_gets_a_jpeg_thumbnail(client, case):
    sent = await upload(
        client, case, heic(lon=case["lon"], lat=case["lat"], taken="2026:11:30 18:05:00"), name="a.heic"
    )
    assert sent["content_type"] == "image/heic"
    assert sent["taken_lon"] == pytest.approx(case["lon"], abs=1e-6)
    thumb = await client.get(f"/api/v1/cases/{case['id']}/attachments/{sent['id']}/thumbnail",
                             headers=case["dispatcher"])  # fmt: skip
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size == (320, 240)
    no_metadata(thumb.content)
    photo = await client.get(f"/api/v1/cases/{case['id']}/attachments/{sent['id']}", headers=case["dispatcher"])
    assert Image.open(io.BytesIO(photo.content)).format == "JPEG"


async def test_the_case_file_lists_each_photos_time_place_and_distance_from_the_report(client, case):
    north = case["lat"] + 0.0027  # about 300 m north of the report's point
    await upload(client, case, jpeg(lon=case["lon"], lat=north, taken="2026:12:01 09:30:00", offset="+08:00"))
    # No offset: the camera's clock is the county's (Asia/Shanghai).
    await upload(client, case, jpeg(taken="2026:12:02 07:15:30", colour=(0, 90, 0)))
    await upload(client, case, png())  # a screenshot: no EXIF at all

    detail = await client.get(f"/api/v1/cases/{case['id']}", headers=case["dispatcher"])
    assert detail.status_code == 200, detail.text
    first, second, third = detail.json()["attachments"]

    assert first["content_type"] == "image/jpeg" and first["size"] > 0
    assert datetime.fromisoformat(first["taken_at"]) == datetime(2026, 12, 1, 9, 30, tzinfo=SHANGHAI)
    assert (first["taken_lon"], first["taken_lat"]) == (
        pytest.approx(case["lon"], abs=1e-6),
        pytest.approx(north, abs=1e-6),
    )
    expected = Geod(ellps="WGS84").inv(case["lon"], case["lat"], first["taken_lon"], first["taken_lat"])[2]
    assert 290 < expected < 310 and first["distance_m"] == pytest.approx(expected, abs=1)
    assert first["thumbnail_url"] == f"/api/v1/cases/{case['id']}/attachments/{first['id']}/thumbnail"
    assert (await client.get(first["thumbnail_url"], headers=case["dispatcher"])).status_code == 200

    assert datetime.fromisoformat(second["taken_at"]) == datetime(2026, 12, 2, 7, 15, 30, tzinfo=SHANGHAI)
    assert second["taken_lon"] is None and second["distance_m"] is None

    assert third["content_type"] == "image/png"
    assert (third["taken_at"], third["taken_lon"], third["taken_lat"], third["distance_m"]) == (None,) * 4


async def test_a_file_that_only_looks_like_a_photo_is_refused_and_nothing_is_kept(client, case, settings, db):
    for bad in (b"\xff\xd8\xff\xe0" + bytes(200), b"\x89PNG\r\n\x1a\n" + bytes(64)):
        r = await client.post(f"/api/v1/reports/{case['id']}/attachments", headers=case["reporter"],
                              files={"file": ("p.jpg", bad, "image/jpeg")})  # fmt: skip
        assert r.status_code == 415, r.text
        assert r.json()["error"]["code"] == "attachment_undecodable" and "照片" in r.json()["error"]["message"]
    assert await fetch_value(db, "SELECT count(*) FROM attachment WHERE case_id = %(c)s", {"c": case["id"]}) == 0
    assert not settings.media_dir.exists() or not any(p.is_file() for p in settings.media_dir.rglob("*"))
    ledger = (await client.get(f"/api/v1/cases/{case['id']}/ledger", headers=case["reporter"])).json()["events"]
    assert [e["action"] for e in ledger if e["action"] == "attach"] == []


async def test_a_served_copy_lost_from_disk_is_made_again_on_the_next_view(client, case, settings):
    sent = await upload(client, case, jpeg(lon=case["lon"], lat=case["lat"]))
    sha = sent["sha256"]
    for name in (f"{sha}.jpg", f"{sha}.thumb.jpg"):
        (settings.media_dir / sha[:2] / name).unlink()
    thumb = await client.get(f"/api/v1/cases/{case['id']}/attachments/{sent['id']}/thumbnail", headers=case["reporter"])
    assert thumb.status_code == 200
    no_metadata(thumb.content)
    (settings.media_dir / sha[:2] / sha).unlink()  # the original gone too: a clear 404, not a 500
    (settings.media_dir / sha[:2] / f"{sha}.jpg").unlink(missing_ok=True)
    gone = await client.get(f"/api/v1/cases/{case['id']}/attachments/{sent['id']}", headers=case["reporter"])
    assert gone.status_code == 404 and "备份" in gone.json()["error"]["message"]
