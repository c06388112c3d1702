"""A tiny county drawn in metres, and writers for the boundary files the tests import.

    county 999000 ─ township 999001 ─┬─ area R1 (rural) ─ subarea S1 ─┬─ village V1 ─┬─ group G1 ─ H1, H2
                                     │                                 │              └─ group G2
                                     │                                 └─ village V2
                                     └─ area U2 (urban) ─ community CM ─ grid GR ─ unit UN ─ floor F1

It sits east of the demo county (lon 111.3), inside CGCS2000 3-degree zone CM 111E
(EPSG:4546). Every shared edge is built from the same numbers, so children tile
their parents exactly.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
import shapely
from pyproj import Transformer
from shapely import MultiPolygon, Polygon

LON0, LAT0 = 111.3, 37.7
M_PER_DEG_LON = 111_320 * math.cos(math.radians(LAT0))
M_PER_DEG_LAT = 110_574
FIELDS = ("code", "name", "level", "chain", "parent_code", "floor_from", "floor_to")


def lonlat(x: float, y: float) -> tuple[float, float]:
    return LON0 + x / M_PER_DEG_LON, LAT0 + y / M_PER_DEG_LAT


def mbox(x0: float, y0: float, x1: float, y1: float) -> MultiPolygon:
    ring = [lonlat(x0, y0), lonlat(x1, y0), lonlat(x1, y1), lonlat(x0, y1), lonlat(x0, y0)]
    return MultiPolygon([Polygon(ring)])


def feature(code: str, level: str, parent: str | None, geom: Any, chain: str | None = None, **kw: Any) -> dict:
    return {"code": code, "name": f"测试{code}", "level": level, "chain": chain, "parent_code": parent,
            "floor_from": kw.get("floor_from"), "floor_to": kw.get("floor_to"), "geometry": geom}  # fmt: skip


def tiny_county() -> list[dict]:
    t = "999001"
    return [
        feature("999000", "county", None, mbox(0, 0, 2000, 1000)),
        feature(t, "township", "999000", mbox(0, 0, 2000, 1000)),
        feature(f"{t}-R1", "area", t, mbox(0, 0, 1000, 1000), chain="rural"),
        feature(f"{t}-R1-S1", "subarea", f"{t}-R1", mbox(0, 0, 1000, 1000)),
        feature("V1", "village", f"{t}-R1-S1", mbox(0, 0, 500, 1000)),
        feature("V2", "village", f"{t}-R1-S1", mbox(500, 0, 1000, 1000)),
        feature("G1", "group", "V1", mbox(0, 0, 500, 500)),
        feature("G2", "group", "V1", mbox(0, 500, 500, 1000)),
        feature("H1", "household", "G1", mbox(0, 0, 250, 500)),
        feature("H2", "household", "G1", mbox(250, 0, 500, 500)),
        feature(f"{t}-U2", "area", t, mbox(1000, 0, 2000, 1000), chain="urban"),
        feature("CM", "community", f"{t}-U2", mbox(1000, 0, 2000, 1000)),
        feature("GR", "grid", "CM", mbox(1000, 0, 2000, 1000)),
        feature("UN", "unit", "GR", mbox(1000, 0, 2000, 1000)),
        feature("F1", "floor", "UN", None, floor_from=1, floor_to=6),
    ]


def replace(features: list[dict], which: str, **changes: Any) -> list[dict]:
    return [{**f, **changes} if f["code"] == which else f for f in features]


def write(path: Path, features: list[dict], *, crs: str | None = "EPSG:4326") -> Path:
    """Write with GDAL (GeoJSON, GPKG or Shapefile by suffix); `crs` reprojects from WGS-84."""
    driver = {".geojson": "GeoJSON", ".gpkg": "GPKG", ".shp": "ESRI Shapefile"}[path.suffix]
    geoms = np.array([f["geometry"] for f in features], dtype=object)
    if crs not in (None, "EPSG:4326"):
        tr = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        geoms = shapely.transform(geoms, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
    ints = ("floor_from", "floor_to")
    data = [
        np.array([f[k] or 0 for f in features], dtype=np.int32) if k in ints
        else np.array([f[k] for f in features], dtype=object)
        for k in FIELDS
    ]  # fmt: skip
    mask = [np.array([f[k] is None for f in features]) if k in ints else None for k in FIELDS]
    with warnings.catch_warnings():  # GDAL cuts "parent_code" to "parent_cod" in a .dbf, as it must
        warnings.simplefilter("ignore", RuntimeWarning)
        pyogrio.raw.write(
            str(path), shapely.to_wkb(geoms), data, list(FIELDS), field_mask=mask, driver=driver,
            geometry_type="MultiPolygon", crs=crs or "EPSG:4326", promote_to_multi=True,
        )  # fmt: skip
    if crs is None:  # a Shapefile delivered without its .prj
        path.with_suffix(".prj").unlink()
    return path
