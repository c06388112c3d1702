"""Round trip: the demo county → GeoPackage → an empty database → GeoPackage, unchanged."""

from __future__ import annotations

import numpy as np
import pyogrio.raw
import shapely

from app.settings import libpq_url
from geo.importer import read_boundaries
from grid import service
from grid.db import connect, fetch_value
from grid.imports import import_boundaries
from tests.conftest import create_database, drop_database, migrate


def _read(path):
    meta, _, geoms, data = pyogrio.raw.read(str(path))
    fields = list(meta["fields"])
    rows = {}
    for i, wkb in enumerate(geoms):
        # Integer columns with NULLs come back as floats with NaN.
        props = {
            f: None if isinstance(v, float) and v != v else v
            for f, v in ((f, data[j][i]) for j, f in enumerate(fields))
        }
        rows[props["code"]] = (props, shapely.from_wkb(wkb) if wkb is not None else None)
    return rows


async def test_demo_county_survives_gpkg_export_import_export(db, tmp_path):
    first = tmp_path / "first.gpkg"
    exported = await service.export_gpkg(conn=db, code="610827", path=first)
    url = create_database("wuzhang_roundtrip")
    try:
        migrate(url)
        boundary = read_boundaries(first)
        async with await connect(libpq_url(url)) as conn:
            async with conn.transaction():  # one import, one transaction, committed
                report = await import_boundaries(conn=conn, county_code="610827", records=boundary.records,
                                                 source=first.name, crs=boundary.crs)  # fmt: skip
            assert report.ok, report.errors[:5]
            assert report.warnings == [] and report.inserted == exported
        second = tmp_path / "second.gpkg"
        async with await connect(libpq_url(url)) as conn:
            assert await fetch_value(conn, "SELECT count(*) FROM node") == exported
            await service.export_gpkg(conn=conn, code="610827", path=second)
    finally:
        drop_database(url)

    a, b = _read(first), _read(second)
    assert sorted(a) == sorted(b) and len(a) == exported
    for code, (props_a, geom_a) in a.items():
        props_b, geom_b = b[code]
        for field in ("level", "parent_code", "name", "chain", "floor_from", "floor_to"):
            assert props_a[field] == props_b[field], (code, field)
        if geom_a is None:
            assert geom_b is None, code
            continue
        ca, cb = shapely.get_coordinates(geom_a), shapely.get_coordinates(geom_b)
        assert ca.shape == cb.shape, code
        assert np.abs(ca - cb).max() <= 1e-9, code
