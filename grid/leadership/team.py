"""五位一体: a township hall's mediation team (township and village cadres, the police
station, the judicial office, a legal adviser, social workers, deputies), and the work
group (工作组) a hall chooses from it when it starts mediating a case. The ledger step of
`start_mediation` names the group (grid.cases.service.act_once)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from grid.cases.enums import Tier
from grid.cases.exceptions import MissingFields, NotResponsible
from grid.db import Conn, Row
from grid.exceptions import InvalidInput, NodeNotFound
from grid.glossary import TEAM_MEMBER_KIND_NAMES, WORK_GROUP, action_name, role_name, tier_name, word
from grid.leadership import repository as repo
from grid.leadership.refusals import NotFound


async def hall(conn: Conn, *, code: str) -> Row:
    node = await repo.hall_node(conn, code=code)
    if node is None:
        raise NodeNotFound(f"没有编码为“{code}”的乡镇（街道）；{tier_name(Tier.township_hall)}设在乡镇一级", code=code)
    return node


async def members(*, conn: Conn, code: str) -> tuple[Row, list[Row]]:
    """The township and its team, active members first."""
    node = await hall(conn, code=code)
    return node, await repo.team(conn, node_id=node["id"])


def _may_edit(node: Row, editors: Collection[int]) -> None:
    if node["id"] not in editors:
        raise NotResponsible(
            f"只有{node['name']}的{role_name('dispatcher')}和{tier_name(Tier.township_hall)}的"
            f"{role_name('mediator')}可以编辑{tier_name(Tier.township_hall)}团队",
            code=node["code"],
        )  # fmt: skip


async def add_member(
    *, conn: Conn, code: str, editors: Collection[int], name: str, phone: str | None, kind: str, person_id: int,
    now: datetime,
) -> Row:  # fmt: skip
    """`editors`: the townships where the caller dispatches or sits in the hall."""
    async with conn.transaction():
        node = await hall(conn, code=code)
        _may_edit(node, editors)
        return await repo.insert_member(conn, row={"node_id": node["id"], "county_code": node["county_code"], "name": name, "phone": phone, "kind": kind,
                                                   "created_by": person_id, "created_at": now})  # fmt: skip


async def edit_member(
    *, conn: Conn, code: str, editors: Collection[int], member_id: int, values: dict[str, Any]
) -> Row:
    """A member's name, phone, kind, or leaving the team (active false: kept for the cases it mediated)."""
    async with conn.transaction():
        node = await hall(conn, code=code)
        _may_edit(node, editors)
        if await repo.member(conn, member_id=member_id, node_id=node["id"]) is None:
            raise NotFound(f"{node['name']}的团队里没有编号为 {member_id} 的成员", member_id=member_id, code=code)
        return await repo.update_member(conn, member_id=member_id, values=values)


async def choose_work_group(conn: Conn, *, case: Row, member_ids: Sequence[int] | None) -> list[Row]:
    """The work group for `start_mediation`: at a township hall with a team, one or more
    of its active members (required); elsewhere none may be named."""
    if case["tier"] != Tier.township_hall:
        if member_ids:
            raise InvalidInput(f"{WORK_GROUP}只在{tier_name(Tier.township_hall)}{action_name('start_mediation')}时选择",
                               work_group=list(member_ids))  # fmt: skip
        return []
    node_id = case["handling_node_id"]
    if not member_ids:
        if await repo.has_team(conn, node_id=node_id):
            raise MissingFields(
                f"{tier_name(Tier.township_hall)}{action_name('start_mediation')}须选择{WORK_GROUP}（work_group）："
                f"团队成员的编号，见 GET /api/v1/grid/nodes/{case['handling_node_code']}/team",
                missing=["work_group"],
            )  # fmt: skip
        return []
    chosen = await repo.active_members(conn, node_id=node_id, ids=sorted(set(member_ids)))
    unknown = sorted(set(member_ids) - {m["id"] for m in chosen})
    if unknown:
        team = await repo.team(conn, node_id=node_id, active_only=True)
        listed = "、".join(f"{m['id']}（{m['name']}，{word(TEAM_MEMBER_KIND_NAMES, m['kind'])}）" for m in team)
        raise InvalidInput(
            f"{WORK_GROUP}成员须是{case['handling_node_name']}{tier_name(Tier.township_hall)}团队的在册成员；"
            f"编号 {'、'.join(map(str, unknown))} 不是。可选：{listed or '无'}",
            work_group=list(member_ids), unknown=unknown, allowed=[m["id"] for m in team],
        )  # fmt: skip
    return chosen
