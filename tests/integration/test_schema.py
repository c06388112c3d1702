"""What the database itself enforces: hierarchy, one current chief, paths, pieces."""

import itertools
from datetime import UTC, datetime

import psycopg
import pytest
from shapely import box

from grid import service
from grid.db import fetch_all, fetch_one, fetch_value
from grid.exceptions import HierarchyError, PostConflict
from grid.levels import LEVEL_CODES, RURAL_CHAIN, URBAN_CHAIN, child_error
from grid.repository import nodes as node_sql
from grid.repository import roster as roster_sql


async def test_database_rule_agrees_with_the_domain_rule_for_every_pair(db):
    # Every state a parent can be in, against every child a file could ask for.
    parents = [(None, None), ("county", None), ("township", None)]
    parents += [(lv.code, "urban") for lv in URBAN_CHAIN] + [(lv.code, "rural") for lv in RURAL_CHAIN]
    children = itertools.product(LEVEL_CODES, (None, "urban", "rural"))
    for (p_level, p_chain), (c_level, c_chain) in itertools.product(parents, children):
        domain_ok = (
            child_error(parent_level=p_level, parent_chain=p_chain, child_level=c_level, child_chain=c_chain) is None
        )
        # The trigger lets a child below area inherit its parent's chain before checking.
        inherited = p_chain if c_chain is None and c_level not in ("county", "township", "area") else c_chain
        db_ok = await fetch_value(
            db,
            "SELECT node_level_allowed(%(pl)s, %(pc)s, %(cl)s, %(cc)s)",
            {"pl": p_level, "pc": p_chain, "cl": c_level, "cc": inherited},
        )
        assert bool(db_ok) == domain_ok, (p_level, p_chain, c_level, c_chain)


class NewNode:
    def __init__(self, code, level, parent_code, chain=None, geom=None, floor_from=None, floor_to=None):
        self.code, self.name, self.level, self.parent_code = code, f"测试{code}", level, parent_code
        self.chain, self.geom, self.floor_from, self.floor_to = chain, geom, floor_from, floor_to


async def _some(db, level):
    row = await fetch_one(
        db,
        "SELECT code, id, path::text AS path, depth, chain FROM node WHERE level = %(l)s ORDER BY code LIMIT 1",
        {"l": level},
    )
    assert row is not None, level
    return row


async def test_a_village_under_a_community_is_refused_by_the_service_and_the_database(db):
    community = await _some(db, "community")
    with pytest.raises(HierarchyError, match="村属于农村链，不属于城区链"):
        await service.create_node(conn=db, county_code="610827",
                                  node=NewNode("X-V1", "village", community["code"], geom=box(110, 37, 110.001, 37.001)))  # fmt: skip
    # The trigger refuses it even when the domain check is skipped.
    with pytest.raises(psycopg.Error, match="cannot sit under"):
        async with db.transaction():
            await node_sql.insert_node(db, row={
                "county_code": "610827", "code": "X-V2", "name": "x", "level": "village", "chain": "rural",
                "parent_code": community["code"], "wkb": box(110, 37, 110.001, 37.001).wkb,
                "floor_from": None, "floor_to": None,
            })  # fmt: skip
    assert await fetch_value(db, "SELECT count(*) FROM node WHERE code IN ('X-V1', 'X-V2')") == 0


async def test_path_and_depth_and_chain_follow_the_parent(db):
    village = await _some(db, "village")
    node_id = await service.create_node(
        conn=db,
        county_code="610827",
        node=NewNode("X-Z9", "group", village["code"], geom=box(110, 37, 110.001, 37.001)),
    )
    row = await fetch_one(db, "SELECT path::text AS path, depth, chain FROM node WHERE id = %(id)s", {"id": node_id})
    assert row["path"] == f"{village['path']}.{node_id}"
    assert row["depth"] == village["depth"] + 1 == 5
    assert row["chain"] == "rural"


async def test_subtree_query_is_by_path(db):
    township = await _some(db, "township")
    count = await fetch_value(db, "SELECT count(*) FROM node n, node t WHERE t.code = %(c)s AND n.path <@ t.path",
                              {"c": township["code"]})  # fmt: skip
    by_code = await fetch_value(db, "SELECT count(*) FROM node WHERE code LIKE %(p)s", {"p": township["code"] + "%"})
    assert count == by_code > 500


async def test_moving_a_node_rewrites_the_paths_of_its_subtree(db):
    groups = await fetch_one(db, "SELECT g.id, g.parent_id FROM node g WHERE g.level = 'group' ORDER BY g.code LIMIT 1")
    other_village = await fetch_one(
        db,
        "SELECT id, path::text AS path FROM node WHERE level = 'village' AND id <> %(v)s ORDER BY code DESC LIMIT 1",
        {"v": groups["parent_id"]},
    )
    await db.execute(
        "UPDATE node SET parent_id = %(p)s WHERE id = %(id)s", {"p": other_village["id"], "id": groups["id"]}
    )
    paths = [
        r["path"]
        for r in await fetch_all(
            db, "SELECT path::text AS path FROM node WHERE parent_id = %(id)s", {"id": groups["id"]}
        )
    ]
    assert paths and all(p.startswith(f"{other_village['path']}.{groups['id']}.") for p in paths)


async def test_floors_have_no_polygon_and_other_levels_must(db):
    unit = await _some(db, "unit")
    with pytest.raises(HierarchyError, match="所在单元的轮廓"):
        await service.create_node(conn=db, county_code="610827",
                                  node=NewNode("X-F9", "floor", unit["code"], geom=box(110, 37, 110.001, 37.001)))  # fmt: skip
    with pytest.raises(HierarchyError, match="须有边界"):
        await service.create_node(
            conn=db, county_code="610827", node=NewNode("X-B9", "unit", (await _some(db, "grid"))["code"])
        )
    await service.create_node(conn=db, county_code="610827",
                              node=NewNode("X-F8", "floor", unit["code"], floor_from=19, floor_to=24))  # fmt: skip


async def test_the_database_allows_one_current_chief_per_node(db):
    village = await _some(db, "village")
    with pytest.raises(psycopg.IntegrityError, match="uq_post_current_chief"):
        async with db.transaction():
            person = await roster_sql.upsert_person(db, county_code="610827", name="王二", phone="13900000001")
            await roster_sql.start_post(db, county_code="610827", node_id=village["id"], person_id=person,
                                        role="chief", at=datetime.now(UTC))  # fmt: skip


async def test_a_handover_ends_the_old_post_and_keeps_the_history(db):
    village = await _some(db, "village")
    _, before = await service.posts(conn=db, code=village["code"])
    old_chief = next(p for p in before if p["role"] == "chief" and p["ended_at"] is None)
    at = datetime.now(UTC)
    await service.hand_over(conn=db, county_code="610827", node_code=village["code"], name="新村长",
                            phone="13900000002", at=at)  # fmt: skip
    _, after = await service.posts(conn=db, code=village["code"])
    current = [p for p in after if p["role"] == "chief" and p["ended_at"] is None]
    assert [p["name"] for p in current] == ["新村长"]
    ended = next(p for p in after if p["id"] == old_chief["id"])
    assert ended["ended_at"] == at and ended["name"] == old_chief["name"]
    assert len(after) == len(before) + 1


async def test_a_handover_cannot_predate_the_current_chief(db):
    village = await _some(db, "village")
    with pytest.raises(PostConflict, match="交接时间不能早于它"):
        await service.hand_over(conn=db, county_code="610827", node_code=village["code"], name="早到者",
                                phone="13900000003", at=datetime(2000, 1, 1, tzinfo=UTC))  # fmt: skip


async def test_pieces_follow_the_polygon_and_retirement(db):
    household = await _some(db, "household")

    async def pieces():
        return await fetch_value(db, "SELECT count(*) FROM node_piece WHERE node_id = %(id)s", {"id": household["id"]})

    assert await pieces() >= 1
    await db.execute("UPDATE node SET retired_at = now() WHERE id = %(id)s", {"id": household["id"]})
    assert await pieces() == 0
    await db.execute("UPDATE node SET retired_at = NULL WHERE id = %(id)s", {"id": household["id"]})
    assert await pieces() >= 1


async def test_big_outlines_are_cut_into_small_pieces(db):
    worst = await fetch_value(db, "SELECT max(ST_NPoints(geom)) FROM node_piece")
    county_points = await fetch_value(db, "SELECT ST_NPoints(geom) FROM node WHERE level = 'county'")
    assert county_points > 2000 and worst <= 256
