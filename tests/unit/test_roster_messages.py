"""The roster's row reasons and its error workbook, as the county's staff read them:
Chinese headers the import reads back, and a Chinese reason on each bad row."""

from __future__ import annotations

from datetime import date

from openpyxl import Workbook, load_workbook

from grid.roster import check_rows, read_roster, write_error_workbook
from tests.chinese import assert_chinese, english_run

GOOD = ["610827001-U1", "副", "甲", "13800000011", date(2026, 2, 1)]
BAD = {  # one fault per row, each a reason of its own
    "缺少节点编码": ["", "副", "乙", "13800000012", date(2026, 2, 1)],
    "没有编码为“NO-SUCH”的网格节点": ["NO-SUCH", "副", "丙", "13800000013", date(2026, 2, 1)],
    "职务“组员”无法识别": ["610827001-U1", "组员", "丁", "13800000014", date(2026, 2, 1)],
    "缺少姓名": ["610827001-U1", "副", "", "13800000015", date(2026, 2, 1)],
    "手机号“12345”格式不对": ["610827001-U1", "副", "戊", "12345", date(2026, 2, 1)],
    "任职日期“去年”不是日期": ["610827001-U1", "副", "己", "13800000016", "去年"],
    "第 9 行已填了一个": ["610827001-U2", "长", "辛", "13800000018", date(2026, 2, 1)],
}
FIRST_CHIEF_OF_U2 = ["610827001-U2", "长", "庚", "13800000017", date(2026, 2, 1)]


def test_every_row_reason_and_the_error_workbook_are_in_chinese(tmp_path):
    source = tmp_path / "名册.xlsx"
    book = Workbook()
    sheet = book.active
    sheet.append(["节点编码", "职务", "姓名", "手机号", "任职日期"])
    for row in [GOOD, *list(BAD.values())[:-1], FIRST_CHIEF_OF_U2, list(BAD.values())[-1]]:
        sheet.append(row)
    book.save(source)
    rows = read_roster(source)
    posts, errors = check_rows(rows, known_codes={"610827001-U1", "610827001-U2"})
    assert [p.row for p in posts] == [2, 9]
    assert [e.row for e in errors] == [3, 4, 5, 6, 7, 8, 10]
    for error, phrase in zip(errors, BAD, strict=True):
        assert phrase in error.reason, (error.row, error.reason)
        assert_chinese(error.reason, error.row)

    out = tmp_path / "errors.xlsx"
    write_error_workbook(rows, errors, out)
    sheet = load_workbook(out, read_only=True).worksheets[0]
    table = list(sheet.iter_rows(values_only=True))
    assert table[0] == ("节点编码", "职务", "姓名", "手机号", "任职日期", "错误原因")
    reasons = {i: r[-1] for i, r in enumerate(table, start=1) if i > 1 and r[-1]}
    assert sorted(reasons) == [e.row for e in errors]
    assert all(english_run(reason) is None for reason in reasons.values()), reasons
    # The staff fix the marked rows in this very file and import it again: its headers read back.
    again = read_roster(out)
    assert [r.values["node_code"] for r in again] == [r.values["node_code"] for r in rows]
