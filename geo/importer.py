"""Read boundary files (GeoJSON, GeoPackage, Shapefile) into plain records in WGS-84.

Reading and reprojection only; validation and writing are the grid's business
(grid/imports.py). Coordinates are taken from the file's own CRS and never guessed:
a Shapefile without a .prj is refused. GCJ-02 is undone only when the caller says
the file is in GCJ-02, because nothing in a file can tell us so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pyogrio.raw
import shapely
from pyproj import CRS as ProjCRS
from pyproj import Transformer

from geo.crs import gcj02_to_wgs84_many
from geo.exceptions import BadBoundaryFile, MissingCRS, UnsupportedFormat

FIELDS = ("code", "name", "level", "chain", "parent_code", "floor_from", "floor_to")
# Shapefile (dBASE) field names stop at 10 characters.
ALIASES = {"parent_cod": "parent_code", "floor_fro": "floor_from"}
SUFFIXES = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".zip": "zip"}
WGS84 = ProjCRS.from_epsg(4326)
INT_LIMIT = 2**31  # PostgreSQL integer, where floor numbers are kept


@dataclass(frozen=True)
class BoundaryRecord:
    """One feature: `row` is its 1-based number in the file, for reports."""

    row: int
    code: str | None
    name: str | None
    level: str | None
    chain: str | None
    parent_code: str | None
    floor_from: int | None
    floor_to: int | None
    wkb: bytes | None  # WGS-84, as read; floors' footprints are dropped later


@dataclass(frozen=True)
class BoundaryFile:
    path: str
    driver: str
    layer: str
    crs: str  # as the file states it, e.g. "EPSG:4546"
    records: list[BoundaryRecord]


def parse_field_map(pairs: list[str] | None) -> dict[str, str]:
    """`["CODE=code", "MC=name"]` → {"CODE": "code", "MC": "name"}."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        src, sep, dst = pair.partition("=")
        if not sep or not src.strip() or dst.strip() not in FIELDS:
            raise BadBoundaryFile(
                f"--map“{pair}”应写成 原字段=目标字段（SOURCE=TARGET），目标字段为其中之一：{'、'.join(FIELDS)}",
                map=pair,
            )
        out[src.strip()] = dst.strip()
    return out


def _dataset_path(path: Path, name: str) -> str:
    """A zipped Shapefile is read in place through GDAL's /vsizip/."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UnsupportedFormat(
            f"{name}：不支持这种文件格式（{suffix or '没有扩展名'}）；请用 .geojson、.gpkg、.shp，"
            "或把 Shapefile 打包成 .zip",
            file=name,
        )
    if not path.exists():
        raise BadBoundaryFile(f"{path} 不存在，请检查路径", file=str(path))
    if suffix == ".zip":
        import zipfile

        try:
            names = zipfile.ZipFile(path).namelist()
        except zipfile.BadZipFile:
            raise UnsupportedFormat(f"{name} 不是有效的 zip 压缩包", file=name) from None
        shps = [n for n in names if n.lower().endswith(".shp")]
        if len(shps) != 1:
            raise UnsupportedFormat(
                f"{name} 里应恰好有一个 .shp（连同 .shx、.dbf 和 .prj），现在有 {len(shps)} 个",
                file=name,
            )
        return f"/vsizip/{path}/{shps[0]}"
    return str(path)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a numeric code column: 610827.0 is the code "610827"
    text = str(value).strip()
    return text or None


def _int(value: Any, field: str, row: int, name: str) -> int | None:
    text = _text(value)
    if text is None:
        return None
    try:
        number = int(float(text))
    except ValueError:
        raise BadBoundaryFile(f"{name}：第 {row} 个要素的 {field}“{text}”不是整数", row=row,
                              field=field) from None  # fmt: skip
    except OverflowError:  # inf
        number = INT_LIMIT
    if abs(number) >= INT_LIMIT:  # an integer column holds no more
        raise BadBoundaryFile(f"{name}：第 {row} 个要素的 {field} 值 {text} 超出范围（须是 ±2147483647 以内的整数）",
                              row=row, field=field)  # fmt: skip
    return number


def read_boundaries(
    path: str | Path,
    *,
    field_map: Mapping[str, str] | None = None,
    from_gcj02: bool = False,
    layer: str | None = None,
    name: str | None = None,
) -> BoundaryFile:
    """The features of `path`, reprojected to WGS-84, fields renamed by `field_map`.

    `name` is what messages call the file (an upload's own name, not where the server
    keeps it); the file's name by default."""
    path = Path(path)
    name = name or path.name
    source = _dataset_path(path, name)
    try:
        layers = pyogrio.list_layers(source)
        layer = layer or str(layers[0][0])
        meta, _, geoms, field_data = pyogrio.raw.read(source, layer=layer, force_2d=True)
    except pyogrio.errors.DataSourceError as exc:
        raise BadBoundaryFile(
            f"{name}：无法读取这个文件，请确认它完整且格式正确（{_hide(exc, path, name)}）", file=name
        ) from None
    except pyogrio.errors.DataLayerError as exc:
        raise BadBoundaryFile(f"{name}：没有名为“{layer}”的图层（{_hide(exc, path, name)}）", file=name) from None
    driver = meta.get("driver") or SUFFIXES[path.suffix.lower()]
    if len(geoms) == 0:
        raise BadBoundaryFile(f"{name}（图层“{layer}”）里没有任何要素", file=name, layer=layer)
    if not meta.get("crs"):
        hint = "（缺少 .prj 文件）" if driver == "ESRI Shapefile" else ""
        raise MissingCRS(
            f"{name} 没有写明坐标系{hint}。坐标系不能靠猜：请补上测绘单位交付的 .prj 文件，或重新导出带坐标系的文件。",
            file=name,
        )
    crs = ProjCRS.from_user_input(meta["crs"])
    names = [ALIASES.get(str(f).lower(), str(f).lower()) for f in meta["fields"]]
    if field_map:
        lowered = {k.lower(): v for k, v in field_map.items()}
        names = [lowered.get(str(f).lower(), n) for f, n in zip(meta["fields"], names, strict=False)]
    columns = {n: data for n, data in zip(names, field_data, strict=False) if n in FIELDS}
    for required in ("code", "level"):
        if required not in columns:
            raise BadBoundaryFile(
                f"{name} 没有“{required}”字段（现有字段：{'、'.join(map(str, meta['fields']))}）；"
                f"请用 --map 原字段={required} 指定哪一列是它",
                file=name,
            )
    shapes = shapely.from_wkb(geoms)
    shapes = _to_wgs84(shapes, crs)
    off = _off_globe(shapes)
    if off:
        rows = [i + 1 for i in off]
        raise BadBoundaryFile(
            f"{name}：第 {rows[0]} 个要素的坐标按 {_crs_name(crs)} 换算后不在地球上"
            f"（共 {len(rows)} 个要素如此：{', '.join(map(str, rows[:20]))}）；请检查坐标和文件声明的坐标系",
            file=name, row=rows[0], rows=rows[:100], crs=_crs_name(crs),
        )  # fmt: skip
    if from_gcj02:
        shapes = shapely.transform(shapes, gcj02_to_wgs84_many)
    wkbs = shapely.to_wkb(shapes)
    n = len(geoms)
    get = lambda name, i: columns[name][i] if name in columns else None  # noqa: E731
    records = [
        BoundaryRecord(
            row=i + 1,
            code=_text(get("code", i)),
            name=_text(get("name", i)),
            level=(_text(get("level", i)) or "").lower() or None,
            chain=(_text(get("chain", i)) or "").lower() or None,
            parent_code=_text(get("parent_code", i)),
            floor_from=_int(get("floor_from", i), "floor_from", i + 1, name),
            floor_to=_int(get("floor_to", i), "floor_to", i + 1, name),
            wkb=wkbs[i],
        )
        for i in range(n)
    ]
    return BoundaryFile(path=str(path), driver=driver, layer=layer, crs=_crs_name(crs), records=records)


def _hide(exc: Exception, path: Path, name: str) -> str:
    """GDAL's message with the file's place on the server replaced by its name."""
    text = str(exc)
    for where in (f"/vsizip/{path}", str(path), str(path.parent)):
        text = text.replace(where, name)
    return text


def _off_globe(shapes: np.ndarray) -> list[int]:
    """Indexes of the shapes with a coordinate that is not a finite longitude and latitude."""
    bounds = shapely.bounds(shapes)  # NaN for a missing or empty geometry
    present = ~shapely.is_missing(shapes) & ~shapely.is_empty(shapes)
    lon_ok = (bounds[:, 0] >= -180) & (bounds[:, 2] <= 180)  # NaN and inf compare false
    lat_ok = (bounds[:, 1] >= -90) & (bounds[:, 3] <= 90)
    return [int(i) for i in np.flatnonzero(present & ~(lon_ok & lat_ok))]


def _crs_name(crs: ProjCRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


def _to_wgs84(shapes: np.ndarray, crs: ProjCRS) -> np.ndarray:
    if crs.equals(WGS84, ignore_axis_order=True):
        return shapes  # untouched, so a WGS-84 file round-trips bit for bit
    transformer = Transformer.from_crs(crs, WGS84, always_xy=True)

    def fn(coords: np.ndarray) -> np.ndarray:
        # A point PROJ cannot convert becomes inf; read_boundaries names its feature.
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack((x, y))

    return shapely.transform(shapes, fn)
