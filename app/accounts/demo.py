"""Demo accounts for the demo county: a chief on every level of both chains, a
dispatcher, a mediator per tier, a leader and an admin; for the leadership mechanisms a
reception desk, three departments' staff, a discipline-inspection supervisor and five
named county leaders (grid/leadership/demo.py); all with one shared password.

Created idempotently by `wuzhang demo load` (so by `make run`), never in production.
README.md lists them; tests/api/test_demo_accounts.py checks the README against this.
Production refuses to start while one of them still has the published password
(`still_demo`), and `wuzhang users disable-demo` disables those (`disable`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout

from app.accounts import repository as repo
from app.accounts import security, service
from app.settings import Settings
from geo.demo import SUIDE
from grid.db import Conn
from grid.glossary import LEADER_BODY_NAMES, role_name, tier_name
from grid.leadership import demo as leadership_demo
from grid.leadership import departments
from grid.leadership.departments import STANDARD as DEPARTMENTS
from grid.levels import Chain, level_info
from grid.repository import nodes as node_sql

log = logging.getLogger("wuzhang.accounts")

DEMO_PASSWORD = security.DEMO_PASSWORD

# Both chains have an area chief (片长): the title says which.
CHAIN_TITLES = {"urban": "城区", "rural": "农村"}


def chief_title(chain: str, level: str) -> str:
    """The chief's title as the county says it, e.g. 楼层长, 城区片长."""
    title = level_info(level, Chain(chain)).chief_zh
    return CHAIN_TITLES[chain] + title if level == "area" else title


@dataclass(frozen=True)
class DemoAccount:
    title: str  # the role as the county says it, as the README shows it
    node_code: str
    node_name: str
    phone: str
    name: str
    grant: service.GrantIn | None  # None for chiefs: their post is their grant


async def plan(conn: Conn, county_code: str) -> list[DemoAccount]:
    """Which accounts the demo county gets; empty if it is not loaded."""
    urban = await node_sql.first_leaf_lineage(conn, level="floor", county_code=county_code)
    rural = await node_sql.first_leaf_lineage(conn, level="household", county_code=county_code)
    if not urban or not rural:
        return []
    accounts = [
        DemoAccount(chief_title(n["chain"], n["level"]), n["code"], n["name"], n["phone"], n["person_name"], None)
        for n in urban[::-1] + rural[::-1]  # top down: area chief first
        if n["chain"] is not None and n["phone"]
    ]
    by_level = {n["level"]: n for n in rural}
    village, township, county = by_level["village"], by_level["township"], by_level["county"]

    def staff(title: str, node: dict, number: int, role: str, tier: str | None = None) -> DemoAccount:
        return DemoAccount(title, node["code"], node["name"], f"1910000{number:04d}", f"演示{title}",
                           service.GrantIn(role=role, node_code=node["code"], tier=tier))  # fmt: skip

    def mediator(tier: str) -> str:
        return tier_name(tier) + role_name("mediator")

    def department_staff(code: str, phone: str) -> DemoAccount:
        title = dict(DEPARTMENTS)[code] + "工作人员"
        return DemoAccount(title, county["code"], county["name"], phone, f"演示{title}",
                           service.GrantIn(role="department_staff", node_code=county["code"], department_code=code))  # fmt: skip

    def leader(lead: leadership_demo.DemoLeader) -> DemoAccount:  # named: the duty roster shows who
        return DemoAccount(LEADER_BODY_NAMES[lead.body] + role_name("leader"), county["code"], county["name"],
                           lead.phone, lead.name, service.GrantIn(role="leader", node_code=county["code"]))  # fmt: skip

    return [
        *accounts,
        staff(role_name("dispatcher"), township, 1, "dispatcher"),
        staff(mediator("village_house"), village, 2, "mediator", "village_house"),
        staff(mediator("township_hall"), township, 3, "mediator", "township_hall"),
        staff(mediator("county_center"), county, 4, "mediator", "county_center"),
        staff(level_info("county").name_zh + role_name("leader"), county, 5, "leader"),
        staff(role_name("admin"), county, 6, "admin"),
        staff(role_name("reception"), county, 7, "reception"),
        *(department_staff(code, phone) for code, phone in leadership_demo.STAFF_PHONES.items()),
        staff(role_name("supervisor"), county, 11, "supervisor"),
        *(leader(lead) for lead in leadership_demo.LEADERS),
    ]


async def ensure(*, conn: Conn, settings: Settings, county_code: str) -> tuple[list[DemoAccount], int]:
    """Create the demo accounts that do not exist yet; returns (all of them, how many were new).
    Some work for a department, so the county's standard departments are made first where
    missing (a county loaded without `wuzhang demo load`, as the benchmarks load theirs)."""
    await departments.ensure_standard(conn=conn, county_code=county_code)
    accounts, created = await plan(conn, county_code), 0
    for a in accounts:
        if await repo.user_by_phone(conn, phone=a.phone) is not None:
            continue
        await service.create_user(
            conn=conn, settings=settings, county_code=county_code, phone=a.phone, name=a.name,
            password=DEMO_PASSWORD, grants=[a.grant] if a.grant else [], actor=None, ip=None, demo=True,
        )  # fmt: skip
        created += 1
    return accounts, created


# The staff accounts' phones (plan's `staff`); chiefs' phones come from the loaded county.
STAFF_PHONES = tuple(f"1910000{n:04d}" for n in range(1, 17))
# The demo's second county (geo.demo.SUIDE) gets a few accounts, and the city (市级) one
# account that reads both counties (docs/counties.md).
SECOND_PHONES = ("19200000001", "19200000002", "19200000003")
CITY_PHONE = "19100000017"


async def second_plan(conn: Conn, county_code: str) -> list[DemoAccount]:
    """A floor chief, a dispatcher, a county leader and an admin in a second county."""
    urban = await node_sql.first_leaf_lineage(conn, level="floor", county_code=county_code)
    rural = await node_sql.first_leaf_lineage(conn, level="household", county_code=county_code)
    if not urban or not rural:
        return []
    floor = urban[0]
    by_level = {n["level"]: n for n in rural}
    township, county = by_level["township"], by_level["county"]

    def staff(title: str, node: dict, phone: str, role: str) -> DemoAccount:
        return DemoAccount(title, node["code"], node["name"], phone, f"{county['name']}演示{title}",
                           service.GrantIn(role=role, node_code=node["code"]))  # fmt: skip

    dispatcher, leader, admin = SECOND_PHONES
    return [
        DemoAccount(chief_title(floor["chain"], floor["level"]), floor["code"], floor["name"], floor["phone"],
                    floor["person_name"], None),
        staff(role_name("dispatcher"), township, dispatcher, "dispatcher"),
        staff(level_info("county").name_zh + role_name("leader"), county, leader, "leader"),
        staff(role_name("admin"), county, admin, "admin"),
    ]  # fmt: skip


async def city_plan(conn: Conn, county_codes: Sequence[str]) -> DemoAccount | None:
    """The city account: 市级 on every loaded county's root; it belongs to the first county."""
    roots = [r for code in county_codes if (r := await node_sql.node_brief(conn, code=code)) is not None]
    if not roots:
        return None
    title = role_name("city")
    return DemoAccount(title, roots[0]["code"], roots[0]["name"], CITY_PHONE, f"演示{title}",
                       service.GrantIn(role="city", node_code=roots[0]["code"]))  # fmt: skip


async def ensure_second(
    *, conn: Conn, settings: Settings, county_code: str, city_counties: Sequence[str]
) -> tuple[list[DemoAccount], int]:
    """The second county's demo accounts and the city account (granted on each of
    `city_counties`), made where missing; (all of them, how many were new)."""
    await departments.ensure_standard(conn=conn, county_code=county_code)
    accounts, created = await second_plan(conn, county_code), 0
    for a in accounts:
        if await repo.user_by_phone(conn, phone=a.phone) is None:
            await service.create_user(
                conn=conn, settings=settings, county_code=county_code, phone=a.phone, name=a.name,
                password=DEMO_PASSWORD, grants=[a.grant] if a.grant else [], actor=None, ip=None, demo=True,
            )  # fmt: skip
            created += 1
    city = await city_plan(conn, city_counties)
    if city is not None:
        accounts.append(city)
        if await repo.user_by_phone(conn, phone=city.phone) is None:
            grants = [service.GrantIn(role="city", node_code=code) for code in city_counties]
            await service.create_user(
                conn=conn, settings=settings, county_code=city_counties[0], phone=city.phone, name=city.name,
                password=DEMO_PASSWORD, grants=grants, actor=None, ip=None, demo=True,
            )  # fmt: skip
            created += 1
    return accounts, created


async def still_demo(*, conn: Conn, settings: Settings) -> list[str]:
    """Phones of live accounts made by the demo loader whose password is still the published one
    (checked against the stored hash: a demo account given its own password is fine)."""
    chiefs = [*await plan(conn, settings.county_code), *await second_plan(conn, SUIDE.code)]
    phones = {*STAFF_PHONES, *SECOND_PHONES, CITY_PHONE, *(a.phone for a in chiefs)}
    rows = await repo.live_users_by_phone(conn, phones=sorted(phones))
    passwords = security.passwords(settings)

    def check() -> list[str]:
        return [r["phone"] for r in rows if passwords.verify(r["password_hash"], DEMO_PASSWORD)]

    return await asyncio.to_thread(check)


async def disable(*, conn: Conn, settings: Settings) -> list[str]:
    """Disable every account `still_demo` finds (their logins end too); returns their phones."""
    phones = await still_demo(conn=conn, settings=settings)
    now = datetime.now(UTC)
    async with conn.transaction():
        for row in await repo.live_users_by_phone(conn, phones=phones):
            await repo.set_disabled(conn, user_id=row["id"], at=now)
            await repo.revoke_user_refresh_tokens(conn, user_id=row["id"], at=now)
            await service.record(conn=conn, county_code=settings.county_code, actor_user_id=None,
                                 action="admin.demo_disable", target=f"user:{row['id']}", ip="cli")  # fmt: skip
    return phones


def refusal(phones: list[str]) -> str:
    return (
        f"WUZHANG_ENV=production, but {len(phones)} account(s) still have the published demo password "
        f"({DEMO_PASSWORD!r}): {', '.join(phones)}. Disable them with `wuzhang users disable-demo`, "
        "or give each a password of its own (POST /api/v1/admin/users/{id}/password), then start again."
    )


async def refuse_in_production(db: Any, settings: Settings) -> None:
    """At start-up in production (`db`: app.db.Database): RuntimeError, naming the accounts and
    the fix, while a demo account still has the published password. With the database out of
    reach the service starts anyway; a login with that password is refused then too."""
    try:
        async with db.connection() as conn:
            phones = await still_demo(conn=conn, settings=settings)
    except (psycopg.OperationalError, PoolTimeout):
        log.warning("could not look for demo accounts (database unreachable); their logins are refused anyway")
        return
    if phones:
        await db.close()
        raise RuntimeError(refusal(phones))
