"""GCJ-02 and BD-09 → WGS-84 against published conversion pairs."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geo.crs import CRS, bd09_to_gcj02, gcj02_to_bd09, gcj02_to_wgs84, parse_crs, to_wgs84, wgs84_to_gcj02
from geo.exceptions import UnknownCRS

# (wgs lon, wgs lat, gcj lon, gcj lat): the reference pairs of googollee/eviltransform's tests.
GCJ_PAIRS = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),  # Shanghai
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),  # Shenzhen
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),  # Beijing
]
# (bd lon, bd lat, gcj lon, gcj lat): Baidu's own published example (Tiananmen area).
BD_PAIRS = [(116.43351, 39.90851, 116.42703, 39.90245)]


def metres(lon1, lat1, lon2, lat2):
    k = math.pi / 180
    x = (lon2 - lon1) * k * math.cos((lat1 + lat2) / 2 * k)
    return 6371000 * math.hypot(x, (lat2 - lat1) * k)


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), GCJ_PAIRS)
def test_wgs84_to_gcj02_matches_published_pairs(wlon, wlat, glon, glat):
    lon, lat = wgs84_to_gcj02(wlon, wlat)
    assert lon == pytest.approx(glon, abs=1e-9) and lat == pytest.approx(glat, abs=1e-9)


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), GCJ_PAIRS)
def test_gcj02_to_wgs84_recovers_the_gps_point_within_a_centimetre(wlon, wlat, glon, glat):
    lon, lat = to_wgs84(glon, glat, CRS.gcj02)
    assert metres(lon, lat, wlon, wlat) < 0.01


@pytest.mark.parametrize(("blon", "blat", "glon", "glat"), BD_PAIRS)
def test_bd09_matches_baidus_published_pair(blon, blat, glon, glat):
    lon, lat = bd09_to_gcj02(blon, blat)
    assert metres(lon, lat, glon, glat) < 2  # the pair is published to 5 decimals (~1 m)
    lon, lat = gcj02_to_bd09(glon, glat)
    assert metres(lon, lat, blon, blat) < 2


def test_the_offset_in_mizhi_is_hundreds_of_metres_so_conversion_matters():
    glon, glat = wgs84_to_gcj02(110.18, 37.75)
    assert 100 < metres(110.18, 37.75, glon, glat) < 700
    assert 100 < metres(110.18, 37.75, *to_wgs84(110.18, 37.75, "bd09")) < 1500


def test_points_outside_china_are_not_shifted():
    assert to_wgs84(-104.9903, 39.7392, "gcj02") == (-104.9903, 39.7392)  # Denver


@given(st.floats(73.5, 135.0), st.floats(18.0, 53.5))
def test_gcj02_round_trip_is_sub_millimetre(lon, lat):
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert metres(lon, lat, *back) < 0.001


def test_unknown_crs_names_the_accepted_ones():
    with pytest.raises(UnknownCRS, match="gcj02"):
        parse_crs("mars")


@given(st.lists(st.tuples(st.floats(70, 140), st.floats(0, 56)), min_size=1, max_size=50))
def test_the_array_inverse_agrees_with_the_scalar_one(points):
    import numpy as np

    from geo.crs import gcj02_to_wgs84_many

    many = gcj02_to_wgs84_many(np.array(points))
    for (lon, lat), (m_lon, m_lat) in zip(points, many, strict=True):
        s_lon, s_lat = gcj02_to_wgs84(lon, lat)
        assert m_lon == pytest.approx(s_lon, abs=1e-10) and m_lat == pytest.approx(s_lat, abs=1e-10)
