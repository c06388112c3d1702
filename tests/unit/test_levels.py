import pytest

from grid.levels import (
    LEVEL_CODES,
    RURAL_CHAIN,
    URBAN_CHAIN,
    allowed_child_levels,
    child_chain,
    child_error,
    level_info,
)


def test_both_chains_have_five_levels_with_chinese_names():
    assert [lv.code for lv in URBAN_CHAIN] == ["area", "community", "grid", "unit", "floor"]
    assert [lv.code for lv in RURAL_CHAIN] == ["area", "subarea", "village", "group", "household"]
    assert level_info("household").name_zh == "中心户"
    assert level_info("unit").chief_zh == "单元长"
    assert level_info("area", "rural").name_zh == "片区"


def test_village_under_community_is_refused_with_a_reason():
    problem = child_error(parent_level="community", parent_chain="urban", child_level="village", child_chain=None)
    assert problem is not None
    assert "村（village）不能放在城区社区（community）下面" in problem and "网格（grid）" in problem


@pytest.mark.parametrize(
    ("parent", "child"),
    [
        (("county", None), ("township", None)),
        (("township", None), ("area", "urban")),
        (("township", None), ("area", "rural")),
        (("area", "urban"), ("community", "urban")),
        (("grid", "urban"), ("unit", "urban")),
        (("unit", "urban"), ("floor", "urban")),
        (("area", "rural"), ("subarea", "rural")),
        (("village", "rural"), ("group", "rural")),
        (("group", "rural"), ("household", "rural")),
    ],
)
def test_each_step_down_a_chain_is_allowed(parent, child):
    assert (
        child_error(parent_level=parent[0], parent_chain=parent[1], child_level=child[0], child_chain=child[1]) is None
    )


@pytest.mark.parametrize(
    ("parent", "child"),
    [
        ((None, None), ("township", None)),  # only a county stands alone
        (("county", None), ("area", "rural")),  # skipping the township
        (("township", None), ("area", None)),  # an area must say its chain
        (("area", "rural"), ("community", "urban")),  # chain switch below area
        (("area", "urban"), ("subarea", "rural")),
        (("floor", "urban"), ("floor", "urban")),  # leaves have no children
        (("household", "rural"), ("household", "rural")),
        (("grid", "urban"), ("floor", "urban")),  # a floor belongs to a unit
    ],
)
def test_wrong_order_or_chain_is_refused(parent, child):
    assert child_error(parent_level=parent[0], parent_chain=parent[1], child_level=child[0], child_chain=child[1])


def test_chain_is_declared_at_area_and_inherited_below():
    assert child_chain(parent_chain=None, child_level="area", declared="urban") == "urban"
    assert child_chain(parent_chain="rural", child_level="village", declared=None) == "rural"
    assert child_chain(parent_chain=None, child_level="township", declared="rural") is None


def test_every_level_but_the_leaves_has_exactly_one_child_level():
    for level in LEVEL_CODES:
        for chain in (None, "urban", "rural"):
            kids = allowed_child_levels(level, chain)
            assert len(kids) <= 1
    assert allowed_child_levels("floor", "urban") == ()
