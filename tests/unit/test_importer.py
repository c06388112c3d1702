"""Reading boundary files: field renames, GCJ-02 on request only, clear refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely

from geo.crs import wgs84_to_gcj02
from geo.exceptions import BadBoundaryFile, UnsupportedFormat
from geo.importer import parse_field_map, read_boundaries
from tests.boundary_files import M_PER_DEG_LAT, tiny_county, write


def test_map_renames_source_fields(tmp_path):
    path = write(tmp_path / "t.geojson", tiny_county())
    data = json.loads(path.read_text())
    for feat in data["features"]:
        props = feat["properties"]
        props["BM"], props["JB"] = props.pop("code"), props.pop("level")
    path.write_text(json.dumps(data))
    with pytest.raises(BadBoundaryFile, match="没有“code”字段"):
        read_boundaries(path)
    records = read_boundaries(path, field_map=parse_field_map(["BM=code", "JB=level"])).records
    assert [r.code for r in records] == [f["code"] for f in tiny_county()]
    assert records[0].level == "county"
    with pytest.raises(BadBoundaryFile, match="SOURCE=TARGET"):
        parse_field_map(["BM=bianma"])


def test_gcj02_is_undone_only_when_asked(tmp_path):
    original = tiny_county()
    shifted = [
        {**f, "geometry": shapely.transform(f["geometry"], lambda c: np.array([wgs84_to_gcj02(x, y) for x, y in c]))}
        if f["geometry"] is not None else f
        for f in original
    ]  # fmt: skip
    path = write(tmp_path / "gcj.geojson", shifted)
    as_is = shapely.from_wkb(read_boundaries(path).records[0].wkb)
    undone = shapely.from_wkb(read_boundaries(path, from_gcj02=True).records[0].wkb)
    truth = original[0]["geometry"]
    assert shapely.hausdorff_distance(as_is, truth) * M_PER_DEG_LAT > 100  # GCJ-02 is hundreds of metres off
    assert shapely.hausdorff_distance(undone, truth) * M_PER_DEG_LAT < 0.01


def test_unknown_formats_and_missing_files_are_refused(tmp_path):
    with pytest.raises(UnsupportedFormat, match=r"不支持这种文件格式（\.kml）"):
        read_boundaries(tmp_path / "x.kml")
    with pytest.raises(BadBoundaryFile, match="不存在"):
        read_boundaries(tmp_path / "x.gpkg")


def test_unreadable_and_empty_files_say_so(tmp_path):
    (tmp_path / "bad.gpkg").write_bytes(b"not a geopackage")
    with pytest.raises(BadBoundaryFile, match="无法读取"):
        read_boundaries(tmp_path / "bad.gpkg")
    (tmp_path / "empty.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(BadBoundaryFile, match="没有任何要素"):
        read_boundaries(tmp_path / "empty.geojson")
