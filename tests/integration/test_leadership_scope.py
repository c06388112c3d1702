"""The leadership mechanisms' common ground: a hard case's owning leader and unit (包案),
and who else may read a case because of it: the owning department's staff, and
discipline inspection for every case at the county centre's tier."""

from __future__ import annotations

import pytest

from app.accounts import service as accounts
from app.settings import get_settings
from grid.cases import repository as case_sql
from grid.cases import service as cases
from grid.cases.ledger import verify
from grid.db import fetch_all, fetch_one, fetch_value
from grid.exceptions import InvalidInput
from grid.leadership import departments
from grid.leadership.ownership import Unit, own_case
from tests.integration.test_cases import KEYS, SIGNER, T0, actor_for, household_report, submit

MIZHI = ("610827",)  # the demo county: every case read names the reader's counties


async def _leader(db, phone: str = "19955500001") -> int:
    user_id, _ = await accounts.create_user(
        conn=db, settings=get_settings(), county_code="610827", phone=phone, name="包案领导甲", password=None,
        grants=[accounts.GrantIn(role="leader", node_code="610827")], actor=None, ip=None,
    )  # fmt: skip
    return int(await fetch_value(db, "SELECT person_id FROM user_account WHERE id = %(u)s", {"u": user_id}))


async def _case(db, county) -> int:
    household, report = household_report(county)
    out = await submit(db, await actor_for(db, household.code), report)
    return int(out.case["id"])


async def test_a_case_owned_by_a_leader_and_a_department(db, loaded_county):
    case_id, leader = await _case(db, loaded_county), await _leader(db)
    await own_case(conn=db, case_id=case_id, by_person_id=leader, leader_person_id=leader,
                   unit=Unit(department_code="housing"), now=T0, signer=SIGNER)  # fmt: skip
    row = await fetch_one(db, "SELECT hard, owner_leader_person_id FROM case_file WHERE id = %(c)s", {"c": case_id})
    assert row == {"hard": True, "owner_leader_person_id": leader}
    units = await fetch_all(db, "SELECT part, d.code FROM case_unit u JOIN department d ON d.id = u.department_id"
                                " WHERE case_id = %(c)s", {"c": case_id})  # fmt: skip
    assert units == [{"part": "owner", "code": "housing"}]
    events = [cases.stored_event(e) for e in await case_sql.events(db, case_id=case_id)]
    assert events[-1].event.action == "take_ownership" and verify(events, KEYS).valid
    inbox = await fetch_all(db, "SELECT kind FROM notification WHERE person_id = %(p)s AND case_id = %(c)s",
                            {"p": leader, "c": case_id})  # fmt: skip
    assert inbox == [{"kind": "take_ownership"}]

    # The owning leader now reads it; the housing bureau's staff do, the civil-affairs bureau's do not.
    housing = await departments.by_code(conn=db, county_code="610827", code="housing")
    civil = await departments.by_code(conn=db, county_code="610827", code="civil_affairs")
    assert await case_sql.case_brief(db, case_id=case_id, person_id=leader, read_paths=(), counties=MIZHI) is not None
    assert await case_sql.case_brief(db, case_id=case_id, person_id=0, read_paths=(), counties=MIZHI,
                                     department_ids=(housing["id"],)) is not None  # fmt: skip
    assert await case_sql.case_brief(db, case_id=case_id, person_id=0, read_paths=(), counties=MIZHI,
                                     department_ids=(civil["id"],)) is None  # fmt: skip


async def test_the_owner_must_be_a_leader_and_the_unit_must_exist(db, loaded_county):
    case_id, leader = await _case(db, loaded_county), await _leader(db)
    chief = (await actor_for(db, next(n for n in loaded_county.nodes if n.level == "village").code)).person_id
    with pytest.raises(InvalidInput, match="包案领导"):
        await own_case(conn=db, case_id=case_id, by_person_id=leader, leader_person_id=chief,
                       unit=Unit(department_code="housing"), now=T0, signer=SIGNER)  # fmt: skip
    with pytest.raises(InvalidInput, match="没有编码为“nowhere”的部门"):
        await own_case(conn=db, case_id=case_id, by_person_id=leader, leader_person_id=leader,
                       unit=Unit(department_code="nowhere"), now=T0, signer=SIGNER)  # fmt: skip
    with pytest.raises(InvalidInput, match="二选一"):
        Unit()
    assert await fetch_value(db, "SELECT hard FROM case_file WHERE id = %(c)s", {"c": case_id}) is False


async def test_discipline_inspection_reads_only_county_tier_cases(db, loaded_county):
    case_id = await _case(db, loaded_county)
    assert (
        await case_sql.case_brief(db, case_id=case_id, person_id=0, read_paths=(), counties=MIZHI, supervises=True)
        is None
    )
    await db.execute("UPDATE case_file SET tier = 'county_center' WHERE id = %(c)s", {"c": case_id})
    assert (
        await case_sql.case_brief(db, case_id=case_id, person_id=0, read_paths=(), counties=MIZHI, supervises=True)
        is not None
    )
    assert await case_sql.case_brief(db, case_id=case_id, person_id=0, read_paths=(), counties=MIZHI) is None


async def test_department_staff_accounts_name_their_department(db):
    settings = get_settings()
    with pytest.raises(Exception, match="须指定所属部门"):
        await accounts.create_user(conn=db, settings=settings, county_code="610827", phone="19955500002", name="甲",
                                   password=None, grants=[accounts.GrantIn(role="department_staff", node_code="610827")],
                                   actor=None, ip=None)  # fmt: skip
    user_id, _ = await accounts.create_user(
        conn=db, settings=settings, county_code="610827", phone="19955500003", name="乙", password=None,
        grants=[accounts.GrantIn(role="department_staff", node_code="610827", department_code="civil_affairs")],
        actor=None, ip=None,
    )  # fmt: skip
    principal = await accounts.principal(conn=db, user_id=user_id)
    civil = await departments.by_code(conn=db, county_code="610827", code="civil_affairs")
    assert principal.department_ids == (civil["id"],) and principal.scopes == ()
