"""Boundary import: the tiny county, safe re-import, the bad-file corpus, CGCS2000."""

from __future__ import annotations

import math

import pytest
import shapely

from geo.exceptions import MissingCRS
from geo.importer import read_boundaries
from grid.db import fetch_one, fetch_value
from grid.imports import check_stored, import_boundaries
from grid.repository import staging
from tests.boundary_files import M_PER_DEG_LAT, M_PER_DEG_LON, feature, mbox, replace, tiny_county, write

GRID_TABLES = ("node", "node_piece", "person", "post")


async def checksum(db) -> str:
    """md5 of every row of the grid tables in id order: byte-for-byte unchanged or not."""
    parts = [
        await fetch_value(db, f"SELECT md5(COALESCE(string_agg(md5(t::text), '' ORDER BY t.id), '')) FROM {table} t")
        for table in GRID_TABLES
    ]
    return ":".join(parts)


async def run_import(db, path, **kw):
    """One import in a transaction of its own (a savepoint here), as its callers run it; the
    savepoint is kept whatever the report says, so a refused import must itself write nothing.
    The tiny county (999000) is a county of its own beside the demo's: its imports name it."""
    boundary = read_boundaries(path)
    async with db.transaction():
        return await import_boundaries(conn=db, county_code="999000", records=boundary.records, source=path.name,
                                       crs=boundary.crs, **kw)  # fmt: skip


async def check_grid(db, code):
    async with db.transaction():
        return await check_stored(conn=db, code=code)


async def test_tiny_county_imports_and_the_same_file_again_changes_nothing(db, tmp_path):
    path = write(tmp_path / "tiny.gpkg", tiny_county())
    first = await run_import(db, path)
    assert first.ok, first.problems
    assert (first.inserted, first.updated, first.warnings) == (15, 0, [])
    floor = await fetch_one(db, "SELECT geom, floor_from, floor_to, chain FROM node WHERE code = 'F1'")
    # A floor keeps no footprint of its own.
    assert floor == {"geom": None, "floor_from": 1, "floor_to": 6, "chain": "urban"}
    before = await checksum(db)
    again = await run_import(db, path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 15)
    assert await checksum(db) == before


async def test_a_changed_polygon_is_updated_and_a_dropped_node_is_reported_then_retired_on_request(db, tmp_path):
    await run_import(db, write(tmp_path / "a.geojson", tiny_county()))
    changed = replace(tiny_county(), "H1", geometry=mbox(0, 0, 250, 490))
    changed = [f for f in changed if f["code"] != "H2"]
    report = await run_import(db, write(tmp_path / "b.geojson", changed))
    assert report.ok and report.updated == 1
    missing = [p for p in report.problems if p.check == "missing_from_file"]
    assert [p.code for p in missing] == ["H2"]
    gap = [p for p in report.problems if p.check == "gap"]
    assert [p.code for p in gap] == ["G1"] and gap[0].details["share"] == pytest.approx(0.51, abs=0.01)
    assert await fetch_value(db, "SELECT retired_at FROM node WHERE code = 'H2'") is None
    report = await run_import(db, tmp_path / "b.geojson", retire_missing=True)
    assert report.retired == 1
    assert await fetch_value(db, "SELECT retired_at IS NOT NULL FROM node WHERE code = 'H2'") is True


async def test_a_dry_run_counts_but_writes_nothing(db, tmp_path):
    before = await checksum(db)
    report = await run_import(db, write(tmp_path / "tiny.geojson", tiny_county()), dry_run=True)
    assert report.ok and report.inserted == 15 and not report.written
    assert await checksum(db) == before


def _bowtie():
    a, b = mbox(0, 0, 250, 500).geoms[0].exterior.coords[0], mbox(0, 0, 250, 500).geoms[0].exterior.coords[2]
    c, d = mbox(0, 0, 250, 500).geoms[0].exterior.coords[1], mbox(0, 0, 250, 500).geoms[0].exterior.coords[3]
    return shapely.Polygon([a, b, c, d, a])  # corners crossed: a self-intersecting "bow tie"


BAD_FILES = {
    "self_intersecting": (lambda f: replace(f, "H1", geometry=_bowtie()), "invalid_geometry", "H1"),
    "child_5m_outside": (lambda f: replace(f, "G2", geometry=mbox(0, 500, 500, 1005)), "outside_parent", "G2"),
    "overlapping_siblings": (lambda f: replace(f, "G1", geometry=mbox(0, 0, 500, 520)), "sibling_overlap", "G1"),
    "unknown_parent": (lambda f: replace(f, "H2", parent_code="NOPE"), "unknown_parent", "H2"),
    "duplicate_code": (lambda f: replace(f, "H2", code="H1"), "duplicate_code", "H1"),
    "not_a_polygon": (lambda f: replace(f, "H2", geometry=shapely.Point(111.3, 37.7)), "geometry_type", "H2"),
    "wrong_chain": (lambda f: replace(f, "V2", chain="urban"), "hierarchy", "V2"),
    "village_under_community": (
        lambda f: [*f, feature("V9", "village", "CM", mbox(1000, 0, 1100, 100))], "hierarchy", "V9"),
}  # fmt: skip


async def test_each_bad_file_is_refused_naming_the_code_and_nothing_changes(db, tmp_path):
    await run_import(db, write(tmp_path / "good.geojson", tiny_county()))  # a stored version to protect
    before = await checksum(db)
    for case, (mutate, check, code) in sorted(BAD_FILES.items()):
        suffix = ".gpkg" if case == "duplicate_code" else ".geojson"
        report = await run_import(db, write(tmp_path / f"{case}{suffix}", mutate(tiny_county())))
        assert not report.ok and not report.written, case
        assert (check, code) in {(p.check, p.code) for p in report.errors}, (case, report.errors)
        assert any(code in p.message for p in report.errors), case
        assert all(p.lon is not None and p.lat is not None for p in report.errors), case  # where to look
        assert await checksum(db) == before, case


async def test_where_a_problem_is_comes_as_a_point(db, tmp_path):
    report = await run_import(db, write(tmp_path / "x.geojson", BAD_FILES["child_5m_outside"][0](tiny_county())))
    (problem,) = [p for p in report.errors if p.check == "outside_parent"]
    assert problem.details["distance_m"] == pytest.approx(5, abs=0.1)
    assert 1000 < (problem.lat - 37.7) * M_PER_DEG_LAT < 1006  # on the north edge, where it sticks out


async def test_within_the_tolerance_is_not_an_error_and_the_tolerance_is_configurable(db, tmp_path):
    path = write(tmp_path / "x.geojson", replace(tiny_county(), "G2", geometry=mbox(0, 500, 500, 1000.5)))
    assert (await run_import(db, path, dry_run=True)).ok
    strict = await run_import(db, path, dry_run=True, tolerance_m=0.1)
    assert [p.code for p in strict.errors] == ["G2"]


async def test_make_valid_repairs_and_says_what_changed(db, tmp_path):
    path = write(tmp_path / "x.geojson", BAD_FILES["self_intersecting"][0](tiny_county()))
    report = await run_import(db, path, make_valid=True)
    repaired = [p for p in report.problems if p.check == "repaired_geometry"]
    assert [p.code for p in repaired] == ["H1"] and "Self-intersection" in repaired[0].message
    assert report.ok and report.written
    assert await fetch_value(db, "SELECT ST_IsValid(geom) FROM node WHERE code = 'H1'") is True


async def test_a_shapefile_without_prj_is_refused_and_nothing_changes(db, tmp_path):
    before = await checksum(db)
    path = write(tmp_path / "noprj.shp", tiny_county(), crs=None)
    with pytest.raises(MissingCRS, match=r"\.prj"):
        await run_import(db, path)
    assert await checksum(db) == before


async def test_a_cgcs2000_gauss_kruger_shapefile_lands_within_10_cm_of_the_original(db, tmp_path):
    original = tiny_county()
    path = write(tmp_path / "cgcs2000.shp", original, crs="EPSG:4546")
    assert read_boundaries(path).crs == "EPSG:4546"
    report = await run_import(db, path)
    assert report.ok, report.problems
    worst = 0.0
    for f in original:
        if f["geometry"] is None:
            continue
        stored = shapely.from_wkb(
            await fetch_value(db, "SELECT ST_AsBinary(geom) FROM node WHERE code = %(c)s", {"c": f["code"]})
        )
        # Shapefiles store rings clockwise; normalise both so vertices pair up.
        a = shapely.get_coordinates(shapely.normalize(stored))
        b = shapely.get_coordinates(shapely.normalize(f["geometry"]))
        assert a.shape == b.shape
        dx, dy = (a[:, 0] - b[:, 0]) * M_PER_DEG_LON, (a[:, 1] - b[:, 1]) * M_PER_DEG_LAT
        worst = max(worst, float(max(math.hypot(x, y) for x, y in zip(dx, dy, strict=True))))
    assert worst < 0.1


async def test_check_finds_a_stored_child_sticking_out(db, tmp_path):
    await run_import(db, write(tmp_path / "t.geojson", tiny_county()))
    assert (await check_grid(db, "999000")).ok
    await db.execute("UPDATE node SET geom = ST_GeomFromWKB(%(g)s, 4326) WHERE code = 'G2'",
                     {"g": mbox(0, 500, 500, 1005).wkb})  # fmt: skip
    report = await check_grid(db, "999000")
    assert [(p.check, p.code, p.row) for p in report.errors] == [("outside_parent", "G2", None)]


async def test_an_overlap_cannot_hide_a_gap_of_the_same_area(db, tmp_path):
    shifted = replace(tiny_county(), "H1", geometry=mbox(20, 0, 270, 500))  # 20 m east, over H2
    report = await run_import(db, write(tmp_path / "x.geojson", shifted), dry_run=True)
    assert [(p.check, p.code) for p in report.problems] == [("sibling_overlap", "H1"), ("gap", "G1")]
    gap = report.problems[1]
    assert gap.details["width_m"] == pytest.approx(20, abs=0.5)
    assert gap.details["share"] == pytest.approx(0.04, abs=0.001)
    assert (gap.lon - 111.3) * M_PER_DEG_LON < 20  # in the strip H1 left behind


async def test_a_write_the_database_refuses_is_reported_and_leaves_nothing(db, tmp_path, monkeypatch):
    path = write(tmp_path / "t.geojson", tiny_county())
    before = await checksum(db)
    real = staging.upsert_from_stage

    async def upsert_then_fail(conn, **kw):
        await real(conn, **kw)
        await conn.execute("SELECT 1 / 0")  # stands in for a trigger or constraint the checks do not cover

    monkeypatch.setattr(staging, "upsert_from_stage", upsert_then_fail)
    report = await run_import(db, path)
    assert [p.check for p in report.errors] == ["database"] and "division by zero" in report.errors[0].message
    assert not report.written and report.inserted == 0
    assert await checksum(db) == before


async def test_a_code_longer_than_the_column_is_an_error_not_a_crash(db, tmp_path):
    report = await run_import(
        db, write(tmp_path / "t.geojson", replace(tiny_county(), "H2", code="H" * 65)), dry_run=True
    )
    assert [(p.check, p.row) for p in report.errors] == [("code_too_long", 10)]
