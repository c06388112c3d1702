"""The pure half of locating: shaping the rows the locate SQL returns into a chain.

The SQL (grid.repository.nodes.LOCATE_SQL) picks the floor: it returns the chosen floor
as a row with `is_floor`, and, when a floor was asked for, the storey ranges of the
deepest node's floors in `floor_ranges`. Which floor wins an overlap is tested against
the database (tests/integration/test_locate_floors.py).
"""

from grid.locate import build_location, group_rows


def row(id, code, level, depth, *, chain="urban", is_floor=False, floor_from=None, floor_to=None,
        person_id=None, role=None, name=None, floor_ranges=None):  # fmt: skip
    return {
        "id": id, "code": code, "name": f"n{code}", "level": level, "chain": chain, "depth": depth,
        "floor_from": floor_from, "floor_to": floor_to, "is_floor": is_floor,
        "person_id": person_id, "person_name": name, "phone": None, "role": role, "floor_ranges": floor_ranges,
    }  # fmt: skip


def unit_chain(floor_ranges=None):
    """The unit and its ancestors, deepest first, as the SQL returns them (the unit's
    floors' ranges on the unit's row when a floor was asked for)."""
    return [
        row(6, "U", "unit", 5, person_id=60, role="chief", name="单元长", floor_ranges=floor_ranges),
        row(5, "G", "grid", 4), row(4, "C", "community", 3), row(3, "A", "area", 2),
        row(2, "T", "township", 1, chain=None), row(1, "X", "county", 0, chain=None),
    ]  # fmt: skip


RANGES = ["1-6", "7-12"]
FLOOR_7_TO_12 = row(8, "U-F2", "floor", 6, is_floor=True, floor_from=7, floor_to=12, person_id=80, role="chief",
                    name="七楼")  # fmt: skip


def test_floor_in_range_becomes_the_deepest_node():
    loc = build_location([FLOOR_7_TO_12, *unit_chain(RANGES)], floor=9)
    assert loc.node.code == "U-F2"
    assert [lk.level for lk in loc.chain] == ["floor", "unit", "grid", "community", "area", "township", "county"]
    assert loc.chain[0].chiefs[0].name == "七楼"
    assert loc.chain[1].chiefs[0].name == "单元长"
    assert loc.warnings == []


def test_group_rows_splits_off_the_chosen_floor_and_the_ranges():
    # The chosen floor may come in any position: the ancestors are ordered deepest first.
    ancestors, chosen, ranges = group_rows([*reversed(unit_chain(RANGES)), FLOOR_7_TO_12])
    assert chosen is not None and chosen.code == "U-F2" and (chosen.floor_from, chosen.floor_to) == (7, 12)
    assert [lk.code for lk in ancestors] == ["U", "G", "C", "A", "T", "X"]
    assert ranges == RANGES


def test_group_rows_without_a_floor_row_chooses_none():
    ancestors, chosen, ranges = group_rows(unit_chain())
    assert chosen is None and ranges == [] and len(ancestors) == 6


def test_without_floor_the_unit_is_the_deepest():
    loc = build_location(unit_chain(), floor=None)
    assert loc.node.code == "U" and len(loc.chain) == 6
    assert loc.warnings == []


def test_floor_outside_every_range_falls_back_to_the_unit_with_a_warning():
    loc = build_location(unit_chain(RANGES), floor=30)
    assert loc.node.code == "U" and len(loc.chain) == 6
    assert "30" in loc.warnings[0] and "1-6" in loc.warnings[0] and "7-12" in loc.warnings[0]


def test_floor_in_a_rural_household_is_ignored_with_a_warning():
    rows = [row(9, "H", "household", 6, chain="rural"), row(1, "X", "county", 0, chain=None)]
    loc = build_location(rows, floor=3)
    assert loc.node.code == "H" and "没有分楼层" in loc.warnings[0]


def test_no_rows_means_nothing_covers_the_point():
    assert build_location([], floor=None) is None
    assert build_location([], floor=3) is None


def test_chief_comes_before_deputy_and_both_are_listed():
    rows = [
        row(4, "V", "village", 4, chain="rural", person_id=2, role="deputy", name="副村长"),
        row(4, "V", "village", 4, chain="rural", person_id=1, role="chief", name="村长"),
    ]
    loc = build_location(rows, floor=None)
    assert [(h.name, h.role) for h in loc.node.chiefs] == [("村长", "chief"), ("副村长", "deputy")]
