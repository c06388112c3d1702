"""Roster import: per-row errors with row numbers, good rows imported, strict mode, handovers."""

from __future__ import annotations

import csv
from datetime import date

import pytest
from openpyxl import Workbook, load_workbook

from grid.db import fetch_all, fetch_one, fetch_value
from grid.roster import export_roster, import_roster, read_roster, write_error_workbook


async def _leaf_codes(db, n):
    rows = await fetch_all(db, "SELECT code FROM node WHERE level IN ('household', 'floor', 'unit') ORDER BY code LIMIT %(n)s",
                           {"n": n})  # fmt: skip
    return [r["code"] for r in rows]


async def _posts_count(db):
    row = await fetch_one(db, "SELECT count(*) AS total, count(*) FILTER (WHERE ended_at IS NULL) AS current FROM post")
    return row["total"], row["current"]


def _write_xlsx(path, rows):
    book = Workbook(write_only=True)
    sheet = book.create_sheet("名册")
    sheet.append(["节点编码", "职务", "姓名", "手机号", "任职日期"])
    for r in rows:
        sheet.append(r)
    book.save(path)
    return path


@pytest.fixture(scope="module")
def big_roster(tmp_path_factory, loaded_county):
    """9,000 deputy rows on real nodes, with 3 bad rows at known places (file rows 102, 4502, 9001)."""
    codes = [n.code for n in loaded_county.nodes][:9000]
    rows = [[code, "副", f"测试{i}", f"139{i:08d}", date(2025, 3, 1)] for i, code in enumerate(codes)]
    rows[100][0] = "NO-SUCH-NODE"  # file row 102 (the header is row 1)
    rows[4500][3] = "1234567"  # file row 4502
    rows[8998] = [codes[8997], "长", "第二个", "13900000001", date(2025, 3, 1)]  # row 9000 names a chief...
    rows[8999] = [codes[8997], "长", "第三个", "13900000002", date(2025, 3, 1)]  # ...row 9001 a second one
    return _write_xlsx(tmp_path_factory.mktemp("roster") / "roster.xlsx", rows)


async def test_9000_rows_with_3_bad_ones_report_exactly_those_and_import_the_rest(db, big_roster, tmp_path):
    rows = read_roster(big_roster)
    assert len(rows) == 9000
    before = await _posts_count(db)
    report = await import_roster(conn=db, county_code="610827", rows=rows, source="roster.xlsx")
    assert [(e.row, e.node_code) for e in report.errors] == [
        (102, "NO-SUCH-NODE"), (4502, rows[4500].values["node_code"]), (9001, rows[8999].values["node_code"]),
    ]  # fmt: skip
    reasons = [e.reason for e in report.errors]
    assert "unknown node" in reasons[0] and "malformed mobile" in reasons[1] and "second chief" in reasons[2]
    assert report.imported == 8997 and report.handovers == 1
    after = await _posts_count(db)
    assert after[0] - before[0] == 8997 + 0 and after[1] - before[1] == 8996  # one chief handed over

    out = tmp_path / "errors.xlsx"
    write_error_workbook(rows, report.errors, out)
    sheet = load_workbook(out, read_only=True).worksheets[0]
    marked = [(i, r[-1]) for i, r in enumerate(sheet.iter_rows(values_only=True), start=1) if i > 1 and r[-1]]
    assert [i for i, _ in marked] == [102, 4502, 9001]


async def test_strict_imports_none_when_any_row_is_bad(db, big_roster):
    before = await _posts_count(db)
    report = await import_roster(conn=db, county_code="610827", rows=read_roster(big_roster), source="r", strict=True)
    assert len(report.errors) == 3 and report.imported == 0
    assert await _posts_count(db) == before


async def test_a_new_chief_is_a_handover_and_the_same_file_twice_changes_nothing(db, tmp_path):
    (code,) = await _leaf_codes(db, 1)
    old = await fetch_value(db, "SELECT pe.name FROM post po JOIN person pe ON pe.id = po.person_id JOIN node n ON n.id = po.node_id "
                                "WHERE n.code = %(c)s AND po.role = 'chief' AND po.ended_at IS NULL", {"c": code})  # fmt: skip
    path = tmp_path / "r.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([["node_code", "role", "name", "phone", "start_date"],
                                  [code, "chief", "新组长", "13711112222", "2026-01-05"]])  # fmt: skip
    first = await import_roster(conn=db, county_code="610827", rows=read_roster(path), source="r.csv")
    assert first.ok and first.handovers == 1
    history = await fetch_all(db, "SELECT pe.name, po.ended_at IS NULL AS current FROM post po JOIN person pe ON pe.id = po.person_id "
                                  "JOIN node n ON n.id = po.node_id WHERE n.code = %(c)s AND po.role = 'chief' "
                                  "ORDER BY po.started_at", {"c": code})  # fmt: skip
    assert [(h["name"], h["current"]) for h in history][-2:] == [(old, False), ("新组长", True)]
    again = await import_roster(conn=db, county_code="610827", rows=read_roster(path), source="r.csv")
    assert again.ok and (again.imported, again.unchanged) == (0, 1)


async def test_an_exported_roster_imports_again_unchanged(db, tmp_path):
    village = await fetch_value(db, "SELECT code FROM node WHERE level = 'village' ORDER BY code LIMIT 1")
    path = tmp_path / "village.xlsx"
    count = await export_roster(conn=db, code=village, path=path)
    current = await fetch_value(db, "SELECT count(*) FROM post po JOIN node n ON n.id = po.node_id JOIN node v ON n.path <@ v.path "
                                    "WHERE v.code = %(c)s AND po.ended_at IS NULL", {"c": village})  # fmt: skip
    assert count == current > 20
    report = await import_roster(conn=db, county_code="610827", rows=read_roster(path), source=path.name)
    assert report.ok and (report.imported, report.unchanged) == (0, count)
