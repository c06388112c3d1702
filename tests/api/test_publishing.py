"""六公开 enforced and published, and a mediation agreement anyone can verify (issue 14,
sections 2 and 3), through HTTP against a real PostGIS. The PDFs are read back with
Debian's poppler-utils (pdftotext, pdftoppm) and their QR codes with zbar-tools (zbarimg)."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.accounts.service import ROOMS
from app.main import create_app
from app.settings import libpq_url
from grid.cases import publishing
from grid.cases import service as cases
from grid.cases.sections import DEFAULT_RULES, Requirements, rules_from_json, rules_to_json
from grid.db import connect, fetch_all, fetch_value
from tests.conftest import SharedConnection, app_url, asgi_client, settings_for_tests
from tests.integration.test_cases import actor_for, household_report

FOUR = ("investigation", "facts", "policy", "reasoning")
# What the mediator writes, with the parties' names and phone numbers in it, as people do.
TEXTS = {
    "investigation": "走访张三、李四两户及邻居王大爷，张三电话13800000001，李四留的是 139 1234 5678。",
    "facts": "张三家排水沟改道后，雨水流入李四家院子，双方多次争吵。",
    "policy": "《民法典》第二百九十条：不动产权利人应当为相邻权利人用水、排水提供必要的便利。",
    "reasoning": "排水沟改道未与邻居商量，张三应当恢复或另修排水设施；李四也应克制。",
    "disposition": "无处罚。",
    "return_visit": "回访：排水沟已修好，双方满意。座机 0912-5551234。",
}
PHONES = ("13800000001", "139 1234 5678", "13912345678", "0912-5551234", "5551234")

needs_poppler = pytest.mark.skipif(not (shutil.which("pdftotext") and shutil.which("pdftoppm")),
                                   reason="poppler-utils is not installed: scripts/dev.sh deps installs it")  # fmt: skip
needs_zbar = pytest.mark.skipif(not shutil.which("zbarimg"),
                                reason="zbar-tools is not installed: scripts/dev.sh deps installs it")  # fmt: skip


@pytest.fixture
async def case(client, make_account, loaded_county, db):
    """A household chief's report (parties 张三 with his mobile, 李四), handled by the
    village's 和事屋; the village chief accepts it and starts mediating."""
    household, _ = household_report(loaded_county, 320)
    village = household.code.rsplit("-", 2)[0]
    reporter = await make_account("chief", node_code=household.code)
    chief = await make_account("chief", node_code=village)
    p = household.geom.point_on_surface()
    r = await client.post("/api/v1/reports", headers=reporter.headers | {"Idempotency-Key": str(uuid.uuid4())},
                          json={"lon": p.x, "lat": p.y, "crs": "wgs84", "category": "neighbours", "severity": 2,
                                "description": "两家因排水沟争吵，张三 13800000001",
                                "parties": [{"name": "张三", "phone": "13800000001", "role": "申请人"},
                                            {"name": "李四", "phone": "13912345678", "role": "被申请人"}]})  # fmt: skip
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert r.json()["tier"] == "village_house" and r.json()["handling_node"] == village
    for action in ("accept", "start_mediation"):
        assert (await act(client, chief, cid, action)).status_code == 200
    return {"id": cid, "chief": chief.headers, "reporter": reporter.headers}


async def act(client, who, cid, action, **fields):
    headers = who.headers if hasattr(who, "headers") else who
    return await client.post(f"/api/v1/cases/{cid}/actions", json={"action": action, **fields}, headers=headers)


async def file(client, headers, cid, *sections):
    for s in sections:
        r = await client.put(f"/api/v1/cases/{cid}/sections/{s}", json={"body": TEXTS[s]}, headers=headers)
        assert r.status_code == 204, r.text


async def events(db, cid):
    return await fetch_value(db, "SELECT count(*) FROM case_event WHERE case_id = %(c)s", {"c": cid})


async def settle(client, case):
    """Resolved, visited and closed, with the six sections filed."""
    await file(client, case["chief"], case["id"], *FOUR, "disposition")
    assert (await act(client, case["chief"], case["id"], "resolve", agreement_text="恢复排水沟")).status_code == 200
    r = await act(client, case["chief"], case["id"], "return_visit", note=TEXTS["return_visit"], satisfaction=5)
    assert r.status_code == 200
    assert (await act(client, case["chief"], case["id"], "close")).status_code == 200


# --- 1. required sections before resolve and close -------------------------------------


async def test_resolve_and_close_are_refused_until_the_required_sections_are_filed(client, case, db):
    cid, chief = case["id"], case["chief"]
    before = await events(db, cid)
    r = await act(client, chief, cid, "resolve", agreement_text="恢复排水沟")
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "sections_missing" and error["details"]["missing"] == list(FOUR)
    assert "调查、事实、政策、评理" in error["message"] and "PUT /api/v1/cases" in error["message"]
    assert await events(db, cid) == before  # nothing written
    await file(client, chief, cid, "investigation", "facts")
    r = await act(client, chief, cid, "resolve")
    assert r.status_code == 409 and r.json()["error"]["details"]["missing"] == ["policy", "reasoning"]
    await file(client, chief, cid, "policy", "reasoning")
    assert (await act(client, chief, cid, "resolve", agreement_text="恢复排水沟")).status_code == 200
    assert (await act(client, chief, cid, "return_visit", satisfaction=4)).status_code == 200  # no note: no 回访
    r = await act(client, chief, cid, "close")
    assert r.status_code == 409
    assert r.json()["error"]["details"]["missing"] == ["disposition", "return_visit"]
    assert "处罚、回访" in r.json()["error"]["message"]
    assert (await client.get(f"/api/v1/cases/{cid}", headers=chief)).json()["state"] == "return_visit"
    await file(client, chief, cid, "disposition", "return_visit")
    assert (await act(client, chief, cid, "close")).json()["state"] == "closed"


async def test_the_table_is_a_setting(client, case, db, settings):
    """WUZHANG_REQUIRED_SECTIONS replaces the table; a wrong one stops the start."""
    only_facts = '[{"action": "resolve", "sections": ["facts"]}]'
    app = create_app(settings.model_copy(update={"required_sections": only_facts}))
    app.state.db = SharedConnection(db)
    async with asgi_client(app) as other:
        r = await act(other, case["chief"], case["id"], "resolve")
        assert r.status_code == 409 and r.json()["error"]["details"]["missing"] == ["facts"]
        await file(other, case["chief"], case["id"], "facts")
        assert (await act(other, case["chief"], case["id"], "resolve")).status_code == 200
    assert rules_from_json(rules_to_json(DEFAULT_RULES)) == DEFAULT_RULES
    with pytest.raises(ValueError, match="unknown section 'fact'"):
        settings_for_tests("postgresql://x/y", WUZHANG_REQUIRED_SECTIONS='[{"action": "close", "sections": ["fact"]}]')
    chief_close = Requirements().missing(action="close", tier="chief", outcome="agreement", filed=["facts"])
    assert [s.value for s in chief_close] == ["reasoning", "return_visit"]


# --- 2. frozen after close ------------------------------------------------------------------


async def test_sections_are_frozen_after_close_and_reopen_unfreezes_them(client, case, db):
    cid, chief = case["id"], case["chief"]
    await settle(client, case)
    before = await events(db, cid)
    r = await client.put(f"/api/v1/cases/{cid}/sections/facts", json={"body": "改过的事实"}, headers=chief)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "case_closed" and "重新开启" in r.json()["error"]["message"]
    body = await fetch_value(
        db, "SELECT body FROM case_section WHERE case_id = %(c)s AND section = 'facts'", {"c": cid}
    )
    assert body == TEXTS["facts"] and await events(db, cid) == before
    assert (await act(client, chief, cid, "reopen", note="李四说水又流进来了")).status_code == 200
    r = await client.put(f"/api/v1/cases/{cid}/sections/facts", json={"body": "改过的事实"}, headers=chief)
    assert r.status_code == 204


# --- 3. the public notice ------------------------------------------------------------------


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / f"{uuid.uuid4().hex}.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


def qr_codes(pdf: bytes, tmp_path: Path) -> list[str]:
    """Every QR code on every page, as zbarimg reads it from the page drawn at 150 dpi."""
    folder = tmp_path / uuid.uuid4().hex
    folder.mkdir()
    (folder / "doc.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(folder / "doc.pdf"), str(folder / "page")], check=True)
    found = []
    for page in sorted(folder.glob("page*.png")):
        out = subprocess.run(["zbarimg", "--quiet", "--raw", str(page)], capture_output=True, text=True)
        found += [line for line in out.stdout.splitlines() if line]
    return found


def shows_no_personal_data(text: str) -> None:
    # What a reader sees: the QR code's SVG path is digits, and markup is no text.
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<svg.*?</svg>", " ", text, flags=re.S))
    squeezed = re.sub(r"\s", "", text)
    assert "张三" not in text and "李四" not in text
    assert not any(re.sub(r"\D", "", p) in re.sub(r"\D", "", squeezed) for p in PHONES[:4])
    assert not re.search(r"1[3-9]\d{9}", re.sub(r"[\s-]", "", text))


@needs_poppler
@needs_zbar
async def test_the_public_notice_masks_names_and_phones_and_its_pdf_and_qr_say_so(client, case, db, settings,
                                                                                   tmp_path):  # fmt: skip
    cid, chief = case["id"], case["chief"]
    r = await client.post(f"/api/v1/cases/{cid}/publish", headers=chief)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_publishable"  # not settled yet
    await settle(client, case)
    assert (await client.post(f"/api/v1/cases/{cid}/publish", headers=case["reporter"])).status_code == 403
    r = await client.post(f"/api/v1/cases/{cid}/publish", headers=chief)
    assert r.status_code == 201, r.text
    out = r.json()
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", out["token"])  # random, not the case id
    assert out["url"] == f"http://127.0.0.1:8000/public/notices/{out['token']}"
    ledger = (await client.get(f"/api/v1/cases/{cid}/ledger", headers=chief)).json()["events"]
    assert ledger[-1]["action"] == "publish" and ledger[-1]["details"]["sha256"] == out["sha256"]
    assert ledger[-1]["seq"] == out["seq"]

    page = await client.get(f"/public/notices/{out['token']}")  # no login
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "<script" not in page.text
    html = page.text
    for s in ("调查", "事实", "政策", "评理", "处罚", "回访"):
        assert f"<h2>{s}</h2>" in html
    assert "张*家排水沟改道后，雨水流入李*家院子" in html and "张*（申请人）" in html
    assert "（电话已隐去）" in html and "《民法典》第二百九十条" in html
    shows_no_personal_data(html)
    assert "排水沟争吵" not in html  # the report's own text (with a phone in it) is not published

    pdf = await client.get(f"/public/notices/{out['token']}.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content, tmp_path)
    assert "矛盾纠纷调处结果公示" in text and "张*家排水沟改道后" in re.sub(r"\s", "", text)
    assert "《民法典》第二百九十条" in re.sub(r"\s", "", text)
    shows_no_personal_data(text)
    assert qr_codes(pdf.content, tmp_path) == [out["url"]]
    assert (await client.get("/public/notices/" + "x" * 32)).status_code == 404
    verdict = (await client.get(f"/api/v1/cases/{cid}/ledger/verify", headers=chief)).json()
    assert verdict["valid"]


async def test_a_second_notice_marks_the_first_as_replaced(client, case):
    await settle(client, case)
    first = (await client.post(f"/api/v1/cases/{case['id']}/publish", headers=case["chief"])).json()
    second = (await client.post(f"/api/v1/cases/{case['id']}/publish", headers=case["chief"])).json()
    assert first["token"] != second["token"]
    assert "新的公示" in (await client.get(f"/public/notices/{first['token']}")).text
    assert "新的公示" not in (await client.get(f"/public/notices/{second['token']}")).text


# --- 4. the mediation agreement -------------------------------------------------------------

TERMS = {"terms": "张三于十日内将排水沟恢复原状，并赔偿李四清理费用八百元。", "performance": "现金当面交付，村调委会见证。",
         "due": "2027年1月31日前"}  # fmt: skip


@needs_poppler
@needs_zbar
async def test_the_agreement_pdf_its_qr_and_verify_page_and_the_signed_scan(client, case, db, tmp_path):
    cid, chief = case["id"], case["chief"]
    missing = await client.get(f"/api/v1/cases/{cid}/agreement.pdf", headers=chief)
    assert missing.status_code == 404 and "出具" in missing.json()["error"]["message"]
    await file(client, chief, cid, "facts")  # the agreement's dispute
    r = await client.post(f"/api/v1/cases/{cid}/agreement", json=TERMS, headers=chief)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["url"] == f"http://127.0.0.1:8000/public/verify/{out['token']}"
    ledger = (await client.get(f"/api/v1/cases/{cid}/ledger", headers=chief)).json()["events"]
    assert ledger[-1]["action"] == "agreement_issued" and ledger[-1]["details"]["sha256"] == out["sha256"]

    pdf = await client.get(out["pdf_url"], headers=chief)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = re.sub(r"\s", "", pdf_text(pdf.content, tmp_path))
    for words in ("人民调解协议书", "张三", "李四", "13800000001", "排水沟恢复原状", "现金当面交付", "2027年1月31日前",
                  "人民调解员（签名）", "申请人（签名）", "被申请人（签名）", "（印章）", out["sha256"]):  # fmt: skip
        assert words in text, words
    assert TEXTS["facts"] in text  # the dispute: the facts section
    audited = await fetch_value(db, "SELECT count(*) FROM audit_log WHERE action = 'read.case_parties'"
                                    " AND target = %(t)s", {"t": f"case:{cid}"})  # fmt: skip
    assert audited >= 1
    assert qr_codes(pdf.content, tmp_path) == [out["url"]]

    page = await client.get(f"/public/verify/{out['token']}")  # no login
    assert page.status_code == 200 and "核验结果：有效" in page.text and out["sha256"] in page.text
    assert "台账完整" in page.text and "<script" not in page.text
    assert "张" not in page.text and "李四" not in page.text and "138" not in page.text

    scan = await client.post(f"/api/v1/cases/{cid}/agreement/signed", headers=chief,
                             files={"file": ("signed.pdf", pdf.content, "application/pdf")})  # fmt: skip
    assert scan.status_code == 201, scan.text
    assert scan.json()["agreement_sha256"] == out["sha256"] and scan.json()["new"]
    ledger = (await client.get(f"/api/v1/cases/{cid}/ledger", headers=chief)).json()["events"]
    assert ledger[-1]["action"] == "agreement_signed" and ledger[-1]["attachment_hashes"] == [scan.json()["sha256"]]
    refused = await client.post(f"/api/v1/cases/{cid}/agreement/signed", headers=chief,
                                files={"file": ("x.txt", b"not a scan", "text/plain")})  # fmt: skip
    assert refused.status_code == 415


async def test_the_verify_page_says_invalid_once_the_ledger_is_tampered_with(fresh_database, loaded_county):
    """Committed (a database of the test's own), so the owner can tamper with it as a
    database superuser would: behind the append-only trigger."""
    settings = settings_for_tests(app_url(fresh_database))
    signer = settings.ledger_signer()
    async with await connect(libpq_url(app_url(fresh_database))) as conn:
        household, report = household_report(loaded_county, 321)
        reporter = await actor_for(conn, household.code)
        case = (await cases.submit_report(conn=conn, actor=reporter, key=uuid.uuid4(), report=report,
                                          now=datetime.now(UTC), signer=signer, rooms=ROOMS, county_code="610827")).case  # fmt: skip
        village = await actor_for(conn, case["handling_node_code"])
        for action in ("accept", "start_mediation"):
            await cases.act(conn=conn, actor=village, case_id=case["id"], action=action, fields={}, now=datetime.now(UTC),
                            signer=signer, rooms=ROOMS)  # fmt: skip
        issued = await publishing.issue_agreement(conn=conn, actor=village, case_id=case["id"],
                                                  terms=publishing.Terms(**TERMS), now=datetime.now(UTC), signer=signer,
                                                  county_name="米脂县")  # fmt: skip
        app = create_app(settings)
        app.state.db = SharedConnection(conn)
        async with asgi_client(app) as http:
            page = await http.get(f"/public/verify/{issued.token}")
            assert "核验结果：有效" in page.text, page.text
            async with await connect(libpq_url(fresh_database)) as owner, owner.transaction():
                await owner.execute("ALTER TABLE case_event DISABLE TRIGGER case_event_append_only")
                await owner.execute("UPDATE case_event SET note = '没有争吵' WHERE case_id = %(c)s AND seq = 1",
                                    {"c": case["id"]})  # fmt: skip
                await owner.execute("ALTER TABLE case_event ENABLE TRIGGER case_event_append_only")
            page = await http.get(f"/public/verify/{issued.token}")
            assert page.status_code == 200
            assert "核验结果：无效" in page.text and "台账校验未通过：第 1 步" in page.text
            rows = await fetch_all(conn, "SELECT sha256 FROM case_publication WHERE token = %(t)s",
                                   {"t": issued.token})  # fmt: skip
            assert rows == [{"sha256": issued.sha256}]
