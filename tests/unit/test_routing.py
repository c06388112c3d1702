"""The routing decision: exhaustive over category × severity × chain."""

import itertools

import pytest

from grid.cases.catalogue import CATEGORIES, SEVERITIES
from grid.cases.enums import TIER_ORDER, Tier
from grid.cases.routing import DEFAULT_RULES, RuleSet, decide, next_tier, pick_rule
from grid.locate import Holder, Link


def link(level, depth, code, *, chain=None, chief=True, deputy=False):
    holders = [Holder(depth * 10, f"{level}长", None, "chief")] if chief else []
    if deputy:
        holders.append(Holder(depth * 10 + 1, f"副{level}长", None, "deputy"))
    return Link(id=depth, code=code, name=code, level=level, chain=chain, depth=depth, chiefs=holders)


def rural(**vacant):
    levels = [
        ("household", 6),
        ("group", 5),
        ("village", 4),
        ("subarea", 3),
        ("area", 2),
        ("township", 1),
        ("county", 0),
    ]
    return [link(lv, d, f"R-{lv}", chain="rural" if d >= 2 else None, chief=lv not in vacant, deputy=lv == "village")
            for lv, d in levels]  # fmt: skip


def urban():
    levels = [("floor", 6), ("unit", 5), ("grid", 4), ("community", 3), ("area", 2), ("township", 1), ("county", 0)]
    return [link(lv, d, f"U-{lv}", chain="urban" if d >= 2 else None) for lv, d in levels]


@pytest.mark.parametrize(("category", "severity"), list(itertools.product([c.code for c in CATEGORIES], SEVERITIES)))
@pytest.mark.parametrize("chain", [rural(), urban()], ids=["rural", "urban"])
def test_every_category_and_severity_routes_to_a_holder_in_the_chain(category, severity, chain):
    route = decide(DEFAULT_RULES, category=category, severity=severity, chain=chain)
    assert route.recipients and route.recipients[0].role == "chief"
    assert route.node_code in {lk.code for lk in chain}
    assert route.rule_version == 1
    expected_level = {
        Tier.chief: {"group", "grid"}, Tier.village_house: {"village", "community"},
        Tier.township_hall: {"township"}, Tier.county_center: {"county"},
    }[route.tier]  # fmt: skip
    assert route.node.level in expected_level


def test_small_matters_stay_in_the_village_and_big_ones_in_the_township():
    chain = rural()
    assert decide(DEFAULT_RULES, category="neighbours", severity=1, chain=chain).tier is Tier.chief
    assert decide(DEFAULT_RULES, category="neighbours", severity=2, chain=chain).tier is Tier.village_house
    assert decide(DEFAULT_RULES, category="neighbours", severity=3, chain=chain).tier is Tier.township_hall
    assert decide(DEFAULT_RULES, category="neighbours", severity=4, chain=chain).tier is Tier.county_center


def test_category_rules_come_before_severity_rules():
    assert decide(DEFAULT_RULES, category="land_acquisition", severity=1, chain=rural()).tier is Tier.township_hall
    assert decide(DEFAULT_RULES, category="safety_hazard", severity=4, chain=rural()).tier is Tier.county_center
    assert pick_rule(DEFAULT_RULES, category="safety_hazard", severity=4)[0] == 0


def test_a_chief_matter_goes_to_the_group_chief_in_the_country_and_the_grid_chief_in_town():
    assert decide(DEFAULT_RULES, category="neighbours", severity=1, chain=rural()).node.level == "group"
    assert decide(DEFAULT_RULES, category="neighbours", severity=1, chain=urban()).node.level == "grid"


def test_village_house_recipients_are_the_chief_then_deputies():
    route = decide(DEFAULT_RULES, category="homestead", severity=2, chain=rural())
    assert [h.role for h in route.recipients] == ["chief", "deputy"]


def test_a_vacant_post_is_skipped_upwards_and_flagged():
    route = decide(DEFAULT_RULES, category="neighbours", severity=1, chain=rural(group=True))
    assert route.node.level == "village" and "vacant_post_skipped" in route.flags


def test_a_point_outside_the_county_is_flagged():
    route = decide(DEFAULT_RULES, category="neighbours", severity=2, chain=rural(), outside_county=True)
    assert "outside_county" in route.flags


def test_a_short_chain_still_routes_upwards():
    township_only = rural()[-2:]
    route = decide(DEFAULT_RULES, category="neighbours", severity=1, chain=township_only)
    assert route.node.level == "township" and "level_missing" in route.flags


def test_tiers_go_up_in_order_and_stop_at_the_county():
    assert [next_tier(t) for t in TIER_ORDER] == [Tier.village_house, Tier.township_hall, Tier.county_center, None]


def test_rules_round_trip_as_data():
    again = RuleSet.from_json(DEFAULT_RULES.version, DEFAULT_RULES.to_json())
    assert again == DEFAULT_RULES
