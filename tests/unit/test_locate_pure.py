from grid.locate import build_location, choose_floor, group_rows


def row(id, code, level, depth, *, chain="urban", is_floor=False, floor_from=None, floor_to=None,
        person_id=None, role=None, name=None):  # fmt: skip
    return {
        "id": id, "code": code, "name": f"n{code}", "level": level, "chain": chain, "depth": depth,
        "floor_from": floor_from, "floor_to": floor_to, "is_floor": is_floor,
        "person_id": person_id, "person_name": name, "phone": None, "role": role,
    }  # fmt: skip


UNIT_CHAIN = [
    row(6, "U", "unit", 5, person_id=60, role="chief", name="单元长"),
    row(5, "G", "grid", 4), row(4, "C", "community", 3), row(3, "A", "area", 2),
    row(2, "T", "township", 1, chain=None), row(1, "X", "county", 0, chain=None),
]  # fmt: skip
FLOORS = [
    row(8, "U-F2", "floor", 6, is_floor=True, floor_from=7, floor_to=12, person_id=80, role="chief", name="七楼"),
    row(7, "U-F1", "floor", 6, is_floor=True, floor_from=1, floor_to=6, person_id=70, role="chief", name="一楼"),
]


def test_floor_in_range_becomes_the_deepest_node():
    loc = build_location(UNIT_CHAIN + FLOORS, floor=9)
    assert loc.node.code == "U-F2"
    assert [lk.level for lk in loc.chain] == ["floor", "unit", "grid", "community", "area", "township", "county"]
    assert loc.chain[0].chiefs[0].name == "七楼"
    assert loc.warnings == []


def test_without_floor_the_unit_is_the_deepest():
    loc = build_location(UNIT_CHAIN, floor=None)
    assert loc.node.code == "U" and len(loc.chain) == 6


def test_floor_outside_every_range_falls_back_to_the_unit_with_a_warning():
    loc = build_location(UNIT_CHAIN + FLOORS, floor=30)
    assert loc.node.code == "U"
    assert "30" in loc.warnings[0] and "1-6" in loc.warnings[0]


def test_floor_in_a_rural_household_is_ignored_with_a_warning():
    rows = [row(9, "H", "household", 6, chain="rural"), row(1, "X", "county", 0, chain=None)]
    loc = build_location(rows, floor=3)
    assert loc.node.code == "H" and "no floors" in loc.warnings[0]


def test_no_rows_means_nothing_covers_the_point():
    assert build_location([], floor=None) is None


def test_overlapping_floor_ranges_pick_the_lowest_code():
    _, floors = group_rows([
        row(7, "B", "floor", 6, is_floor=True, floor_from=1, floor_to=6),
        row(8, "A", "floor", 6, is_floor=True, floor_from=5, floor_to=9),
    ])  # fmt: skip
    assert choose_floor(floors, 5).code == "A"
    assert choose_floor(floors, 2).code == "B"


def test_chief_comes_before_deputy_and_both_are_listed():
    rows = [
        row(4, "V", "village", 4, chain="rural", person_id=1, role="chief", name="村长"),
        row(4, "V", "village", 4, chain="rural", person_id=2, role="deputy", name="副村长"),
    ]
    loc = build_location(rows, floor=None)
    assert [(h.name, h.role) for h in loc.node.chiefs] == [("村长", "chief"), ("副村长", "deputy")]
