"""Round trip: the demo county → GeoPackage → an empty database → GeoPackage, unchanged."""
from __future__ import annotations

import numpy as np
import pyogrio.raw
import shapely
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from geo.importer import read_boundaries
from grid import service
from grid.imports import import_boundaries
from tests.conftest import create_database, drop_database, migrate


def _read(path):
    meta, _, geoms, data = pyogrio.raw.read(str(path))
    fields = list(meta["fields"])
    rows = {}
    for i, wkb in enumerate(geoms):
        # Integer columns with NULLs come back as floats with NaN.
        props = {f: None if isinstance(v, float) and v != v else v for f, v in ((f, data[j][i]) for j, f in enumerate(fields))}
        rows[props["code"]] = (props, shapely.from_wkb(wkb) if wkb is not None else None)
    return rows


def test_demo_county_survives_gpkg_export_import_export(db, tmp_path):
    first = tmp_path / "first.gpkg"
    exported = service.export_gpkg(session=db, code="610827", path=first)
    url = create_database("wuzhang_roundtrip")
    try:
        migrate(url)
        engine = create_engine(url)
        with Session(engine) as session:
            boundary = read_boundaries(first)
            report = import_boundaries(session=session, county_code="610827", records=boundary.records,
                                       source=first.name, crs=boundary.crs)  # fmt: skip
            assert report.ok, report.errors[:5]
            assert report.warnings == [] and report.inserted == exported
            session.commit()
        second = tmp_path / "second.gpkg"
        with Session(engine) as session:
            assert session.execute(text("SELECT count(*) FROM node")).scalar() == exported
            service.export_gpkg(session=session, code="610827", path=second)
        engine.dispose()
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
