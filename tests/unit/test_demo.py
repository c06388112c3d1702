"""The synthetic county: deterministic, valid, tiling exactly, shaped on Mizhi."""

from collections import Counter, defaultdict

import numpy as np
import pytest
import shapely
from shapely import union_all

from geo import demo


@pytest.fixture(scope="module")
def county():
    return demo.generate(scale=1)


def test_same_seed_gives_the_same_county(county):
    again = demo.generate(scale=1)
    assert [n.code for n in again.nodes] == [n.code for n in county.nodes]
    assert all(
        (a.geom is None and b.geom is None) or a.geom.equals_exact(b.geom, 0)
        for a, b in zip(again.nodes[:500], county.nodes[:500], strict=True)
    )
    assert again.posts[:100] == county.posts[:100]


def test_shaped_on_mizhi(county):
    levels = Counter(n.level for n in county.nodes)
    assert levels["county"] == 1 and levels["township"] == 9
    for level in ("area", "community", "grid", "unit", "floor", "subarea", "village", "group", "household"):
        assert levels[level] > 0, level
    root = county.nodes[0]
    c = root.geom.centroid
    assert abs(c.x - 110.18) < 0.05 and abs(c.y - 37.75) < 0.05
    km2 = root.geom.area * (111.32 * np.cos(np.radians(37.75))) * 110.57
    assert 1100 < km2 < 1300
    assert 8500 <= len(county.posts) <= 10500  # "over 9,000 chiefs"
    assert len(root.geom.geoms[0].exterior.coords) > 2000  # a surveyed outline, not a box


def test_every_polygon_is_valid(county):
    geoms = [n.geom for n in county.nodes if n.geom is not None]
    assert shapely.is_valid(geoms).all()


def test_children_tile_their_parent_without_gap_or_overlap(county):
    by_code = {n.code: n for n in county.nodes}
    kids = defaultdict(list)
    for n in county.nodes:
        if n.geom is not None and n.parent_code:
            kids[n.parent_code].append(n.geom)
    checked = 0
    for parent, geoms in kids.items():
        if by_code[parent].level in ("county", "township", "area", "subarea", "community", "grid") or checked < 200:
            parent_geom = by_code[parent].geom
            assert sum(g.area for g in geoms) == pytest.approx(parent_geom.area, rel=1e-9)  # no overlap
            assert union_all(geoms).symmetric_difference(parent_geom).area < 1e-9 * parent_geom.area  # no gap
            checked += 1
    assert checked > 300


def test_floors_carry_ranges_and_no_footprint(county):
    floors = [n for n in county.nodes if n.level == "floor"]
    assert floors and all(n.geom is None and 1 <= n.floor_from <= n.floor_to for n in floors)


def test_phone_numbers_are_unique_mainland_mobiles(county):
    phones = [p.phone for p in county.posts]
    assert len(set(phones)) == len(phones)
    assert all(len(p) == 11 and p[0] == "1" and p[1] in "3456789" for p in phones)


def test_some_posts_have_a_history_of_handovers(county):
    ended = [p for p in county.posts if p.ended_at is not None]
    assert ended and all(p.ended_at > p.started_at for p in ended)


def test_scale_grows_the_leaves():
    small = demo.generate(scale=1)
    bigger = demo.generate(scale=2)
    assert len(bigger.leaf_polygons) >= 1.9 * len(small.leaf_polygons)
