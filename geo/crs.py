"""Chinese map-SDK coordinate systems → WGS-84 (docs/domain.md, "Coordinates").

AMap and Tencent report GCJ-02; Baidu reports BD-09 (GCJ-02 plus another offset).
Both are 100-700 m off WGS-84, enough to route a report to the wrong village.

The GCJ-02 forward formula is the published one (as in googollee/eviltransform);
its inverse has no closed form, so we iterate the forward function to a fixed point,
which converges to well under a millimetre in a few steps.
"""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np

from geo.exceptions import PointOffEarth, UnknownCRS

_A = 6378245.0  # Krasovsky 1940 semi-major axis, as used by GCJ-02
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = math.pi * 3000.0 / 180.0  # BD-09's constant


class CRS(StrEnum):
    wgs84 = "wgs84"
    gcj02 = "gcj02"
    bd09 = "bd09"


def parse_crs(value: str) -> CRS:
    try:
        return CRS(value.lower())
    except ValueError:
        raise UnknownCRS(
            f"不认识的坐标系“{value}”：请用 wgs84（GPS）、gcj02（高德、腾讯地图）或 bd09（百度地图）",
            crs=value,
        ) from None


def out_of_china(lon: float, lat: float) -> bool:
    """GCJ-02 leaves coordinates outside this box unshifted."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _delta(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 105.0, lat - 35.0
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    d_lat += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    d_lat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    d_lat += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    d_lon += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    d_lon += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    d_lon += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return d_lon, d_lat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if out_of_china(lon, lat):
        return lon, lat
    d_lon, d_lat = _delta(lon, lat)
    return lon + d_lon, lat + d_lat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Invert by fixed-point iteration: find w with wgs84_to_gcj02(w) == (lon, lat)."""
    if out_of_china(lon, lat):
        return lon, lat
    w_lon, w_lat = lon, lat
    for _ in range(30):
        g_lon, g_lat = wgs84_to_gcj02(w_lon, w_lat)
        e_lon, e_lat = g_lon - lon, g_lat - lat
        w_lon, w_lat = w_lon - e_lon, w_lat - e_lat
        if abs(e_lon) < 1e-12 and abs(e_lat) < 1e-12:
            break
    return w_lon, w_lat


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.cos(theta), z * math.sin(theta)


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def to_wgs84(lon: float, lat: float, crs: CRS | str) -> tuple[float, float]:
    """Convert a point reported in `crs` to WGS-84 (EPSG:4326)."""
    crs = parse_crs(crs) if isinstance(crs, str) else crs
    if crs is CRS.wgs84:
        return lon, lat
    if crs is CRS.gcj02:
        out = gcj02_to_wgs84(lon, lat)
    else:
        out = gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))
    # BD-09's offset moves a point at the edge of the map off it (-180, -90 becomes
    # -180.0065, -90.006), which PostGIS cannot transform.
    if not (math.isfinite(out[0]) and math.isfinite(out[1]) and -180 <= out[0] <= 180 and -90 <= out[1] <= 90):
        raise PointOffEarth(
            f"坐标 ({lon}, {lat}) 按 {crs.value} 换算成 WGS-84 后为 ({out[0]:.6f}, {out[1]:.6f})，不在地球上"
            "（经度须在 -180 到 180、纬度在 -90 到 90 之间）；请检查坐标系参数 crs 是否选对",
            lon=lon,
            lat=lat,
            crs=crs.value,
        )
    return out


def _delta_many(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_delta` on arrays, term for term (a boundary file has millions of vertices)."""
    x, y = lon - 105.0, lat - 35.0
    pi = np.pi
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    d_lat += (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    d_lat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    d_lat += (160.0 * np.sin(y / 12.0 * pi) + 320 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    d_lon += (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    d_lon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    d_lon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * pi
    magic = 1 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * pi)
    return d_lon, d_lat


def gcj02_to_wgs84_many(coords: np.ndarray) -> np.ndarray:
    """`gcj02_to_wgs84` for an (n, 2) array of lon/lat, by the same fixed-point iteration."""
    coords = np.asarray(coords, dtype=float)
    lon, lat = coords[:, 0], coords[:, 1]

    def in_china(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x >= 72.004) & (x <= 137.8347) & (y >= 0.8293) & (y <= 55.8271)

    inside = in_china(lon, lat)
    w_lon, w_lat = lon.copy(), lat.copy()
    for _ in range(30):
        d_lon, d_lat = _delta_many(w_lon, w_lat)
        shifted = in_china(w_lon, w_lat)  # as wgs84_to_gcj02 leaves points outside China alone
        e_lon = w_lon + np.where(shifted, d_lon, 0.0) - lon
        e_lat = w_lat + np.where(shifted, d_lat, 0.0) - lat
        w_lon, w_lat = w_lon - e_lon, w_lat - e_lat
        if np.all(np.abs(e_lon[inside]) < 1e-12) and np.all(np.abs(e_lat[inside]) < 1e-12):
            break
    return np.column_stack((np.where(inside, w_lon, lon), np.where(inside, w_lat, lat)))
