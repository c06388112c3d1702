"""The locate SQL picks the floor: the one of the located unit whose storey range holds
the floor asked for; where ranges overlap, the lowest code wins (not the first
inserted, not the lowest range)."""

from geo.crs import CRS
from grid import service

COUNTY_NAME = "测试县"


class NewFloor:
    def __init__(self, code, parent_code, floor_from, floor_to):
        self.code, self.name, self.level, self.parent_code = code, f"测试{code}", "floor", parent_code
        self.chain, self.geom, self.floor_from, self.floor_to = "urban", None, floor_from, floor_to


async def test_overlapping_floor_ranges_pick_the_lowest_code(db, loaded_county):
    floors = [n for n in loaded_county.nodes if n.level == "floor"]
    unit = next(n for n in loaded_county.nodes if n.level == "unit" and any(f.parent_code == n.code for f in floors))
    top = max(f.floor_to for f in floors)  # above every storey of the demo's buildings
    low, high = top + 10, top + 20
    # The higher code is inserted first and has the lower range: neither insertion order
    # nor range order would pick the lower code.
    await service.create_node(conn=db, county_code="610827", node=NewFloor(f"{unit.code}-F99", unit.code, low, high))
    await service.create_node(conn=db, county_code="610827", node=NewFloor(f"{unit.code}-F98", unit.code, low + 5,
                                                                           high + 5))  # fmt: skip
    p = unit.geom.point_on_surface()

    async def located(floor):
        found = await service.locate(
            conn=db, lon=p.x, lat=p.y, crs=CRS.wgs84, floor=floor, counties=("610827",), county_name=COUNTY_NAME
        )
        loc = found.location
        assert loc.chain[1].code == unit.code and loc.warnings == []
        return loc.node.code

    assert await located(low + 5) == f"{unit.code}-F98"  # in both ranges
    assert await located(high) == f"{unit.code}-F98"  # in both ranges
    assert await located(low) == f"{unit.code}-F99"  # in the higher code's range only
    assert await located(high + 5) == f"{unit.code}-F98"  # in the lower code's range only
