"""All SQL of the leadership mechanisms. Functions take the connection first; none commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grid.db import Conn, Row, execute, execute_many, fetch_all, fetch_one

# --- departments ----------------------------------------------------------------------


async def insert_departments(conn: Conn, *, county_code: str, rows: Sequence[dict[str, Any]]) -> None:
    """Idempotent: a department already listed (same code) keeps its name."""
    await execute_many(
        conn,
        """
INSERT INTO department (county_code, code, name, sort) VALUES (%(county_code)s, %(code)s, %(name)s, %(sort)s)
ON CONFLICT (county_code, code) DO NOTHING
""",
        [{"county_code": county_code, **r} for r in rows],
    )


async def departments(conn: Conn, *, county_code: str, active_only: bool = True) -> list[Row]:
    return await fetch_all(
        conn,
        """
SELECT id, code, name, sort, active FROM department
 WHERE county_code = %(county_code)s AND (active OR NOT %(active_only)s)
 ORDER BY sort, code
""",
        {"county_code": county_code, "active_only": active_only},
    )


async def department_by_code(conn: Conn, *, county_code: str, code: str) -> Row | None:
    return await fetch_one(
        conn,
        "SELECT id, code, name, active FROM department WHERE county_code = %(county_code)s AND code = %(code)s",
        {"county_code": county_code, "code": code},
    )


# --- case ownership (包案) -------------------------------------------------------------


async def live_leader(conn: Conn, *, person_id: int) -> Row | None:
    """The person, if they hold a live county-leader grant on an enabled account."""
    return await fetch_one(
        conn,
        """
SELECT pe.id, pe.name FROM person pe
  JOIN user_account u ON u.person_id = pe.id AND u.disabled_at IS NULL
  JOIN "grant" g ON g.user_id = u.id AND g.role = 'leader' AND g.revoked_at IS NULL
 WHERE pe.id = %(pid)s
 LIMIT 1
""",
        {"pid": person_id},
    )


async def township_by_code(conn: Conn, *, code: str) -> Row | None:
    return await fetch_one(
        conn,
        "SELECT id, code, name FROM node WHERE code = %(code)s AND level = 'township' AND retired_at IS NULL",
        {"code": code},
    )


async def set_owner_unit(
    conn: Conn, *, case_id: int, department_id: int | None, node_id: int | None, person_id: int | None, at: Any
) -> None:
    """The case's one owning unit (责任单位), replacing any earlier one."""
    await execute(
        conn,
        """
INSERT INTO case_unit (case_id, part, department_id, node_id, created_by, created_at)
VALUES (%(case_id)s, 'owner', %(department_id)s, %(node_id)s, %(person_id)s, %(at)s)
ON CONFLICT (case_id) WHERE part = 'owner'
DO UPDATE SET department_id = EXCLUDED.department_id, node_id = EXCLUDED.node_id,
              created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at
""",
        {"case_id": case_id, "department_id": department_id, "node_id": node_id, "person_id": person_id, "at": at},
    )


# --- the county centre: joint handling (联合办理) -------------------------------------------


async def department_staff(conn: Conn, *, department_id: int) -> list[int]:
    """Person ids of the department's staff (live grants on enabled accounts)."""
    rows = await fetch_all(
        conn,
        """
SELECT DISTINCT u.person_id FROM "grant" g JOIN user_account u ON u.id = g.user_id AND u.disabled_at IS NULL
 WHERE g.role = 'department_staff' AND g.department_id = %(d)s AND g.revoked_at IS NULL
 ORDER BY u.person_id
""",
        {"d": department_id},
    )
    return [r["person_id"] for r in rows]


async def case_department_unit(conn: Conn, *, case_id: int, department_id: int, part: str) -> Row | None:
    """The department's unit of the case in `part`, locked (its completion is written next)."""
    return await fetch_one(
        conn,
        """
SELECT id, task, done_at, done_note FROM case_unit
 WHERE case_id = %(c)s AND department_id = %(d)s AND part = %(part)s
 FOR UPDATE
""",
        {"c": case_id, "d": department_id, "part": part},
    )


async def insert_department_unit(
    conn: Conn, *, case_id: int, department_id: int, part: str, task: str | None, person_id: int, at: Any
) -> None:
    """A department joins the case in `part` ('joint' or 'referral'); once per part (a repeat is ignored)."""
    assert part in ("joint", "referral")  # each has its own unique index, named by its predicate below
    await execute(
        conn,
        f"""
INSERT INTO case_unit (case_id, part, department_id, task, created_by, created_at)
VALUES (%(c)s, %(part)s, %(d)s, %(task)s, %(p)s, %(at)s)
ON CONFLICT (case_id, department_id) WHERE part = '{part}' DO NOTHING
""",
        {"c": case_id, "part": part, "d": department_id, "task": task, "p": person_id, "at": at},
    )


async def mark_unit_done(conn: Conn, *, unit_id: int, note: str, at: Any) -> None:
    await execute(
        conn,
        "UPDATE case_unit SET done_at = %(at)s, done_note = %(note)s WHERE id = %(id)s",
        {"id": unit_id, "note": note, "at": at},
    )


# --- the township hall's team (五位一体) and a case's work group ------------------------------

_MEMBER_COLUMNS = "m.id, m.node_id, m.name, m.phone, m.kind, m.active"


async def team(conn: Conn, *, node_id: int, active_only: bool = False) -> list[Row]:
    return await fetch_all(
        conn,
        f"SELECT {_MEMBER_COLUMNS} FROM hall_member m WHERE m.node_id = %(n)s AND (m.active OR NOT %(a)s)"
        " ORDER BY m.active DESC, m.id",
        {"n": node_id, "a": active_only},
    )


async def member(conn: Conn, *, member_id: int, node_id: int) -> Row | None:
    return await fetch_one(
        conn,
        f"SELECT {_MEMBER_COLUMNS} FROM hall_member m WHERE m.id = %(id)s AND m.node_id = %(n)s FOR UPDATE",
        {"id": member_id, "n": node_id},
    )


async def insert_member(conn: Conn, *, row: dict[str, Any]) -> Row:
    found = await fetch_one(
        conn,
        f"""
INSERT INTO hall_member AS m (node_id, name, phone, kind, created_by, created_at)
VALUES (%(node_id)s, %(name)s, %(phone)s, %(kind)s, %(created_by)s, %(created_at)s)
RETURNING {_MEMBER_COLUMNS}
""",
        row,
    )
    assert found is not None
    return found


async def update_member(conn: Conn, *, member_id: int, values: dict[str, Any]) -> Row:
    """`values`: some of name, phone, kind, active (column names are the code's, never the caller's)."""
    sets = ", ".join(f"{k} = %({k})s" for k in values if k in ("name", "phone", "kind", "active"))
    found = await fetch_one(
        conn,
        f"UPDATE hall_member AS m SET {sets or 'id = id'} WHERE m.id = %(id)s RETURNING {_MEMBER_COLUMNS}",
        {**values, "id": member_id},
    )
    assert found is not None
    return found


async def active_members(conn: Conn, *, node_id: int, ids: Sequence[int]) -> list[Row]:
    return await fetch_all(
        conn,
        f"SELECT {_MEMBER_COLUMNS} FROM hall_member m WHERE m.node_id = %(n)s AND m.active AND m.id = ANY(%(ids)s)"
        " ORDER BY m.id",
        {"n": node_id, "ids": list(ids)},
    )


async def has_team(conn: Conn, *, node_id: int) -> bool:
    return bool(
        await fetch_all(conn, "SELECT 1 FROM hall_member WHERE node_id = %(n)s AND active LIMIT 1", {"n": node_id})
    )


async def replace_work_group(conn: Conn, *, case_id: int, member_ids: Sequence[int], person_id: int, at: Any) -> None:
    """The case's work group is the one chosen last (each choice is on the ledger)."""
    await execute(conn, "DELETE FROM case_work_group WHERE case_id = %(c)s", {"c": case_id})
    await execute_many(
        conn,
        "INSERT INTO case_work_group (case_id, member_id, chosen_by, chosen_at) VALUES (%(c)s, %(m)s, %(p)s, %(at)s)",
        [{"c": case_id, "m": m, "p": person_id, "at": at} for m in member_ids],
    )


# --- social assistance (社会救助) ------------------------------------------------------------

_REFERRAL_COLUMNS = """r.id, r.case_id, r.party_name, r.type, r.note, r.referred_by, r.referred_at, r.outcome,
  r.amount, r.decision_note, r.decided_by, r.decided_at"""


async def insert_referral(conn: Conn, *, row: dict[str, Any]) -> int:
    found = await fetch_one(
        conn,
        """
INSERT INTO assistance_referral (county_code, case_id, party_name, type, note, referred_by, referred_at)
VALUES (%(county_code)s, %(case_id)s, %(party_name)s, %(type)s, %(note)s, %(referred_by)s, %(referred_at)s)
RETURNING id
""",
        row,
    )
    assert found is not None
    return int(found["id"])


async def referrals(conn: Conn, *, county_code: str, state: str | None, limit: int) -> list[Row]:
    """Newest first; `state`: 'open' (no outcome yet), 'decided', or None for both."""
    where = {"open": " AND r.outcome IS NULL", "decided": " AND r.outcome IS NOT NULL"}.get(state or "", "")
    return await fetch_all(
        conn,
        f"SELECT {_REFERRAL_COLUMNS} FROM assistance_referral r WHERE r.county_code = %(cc)s{where}"
        " ORDER BY r.id DESC LIMIT %(limit)s",
        {"cc": county_code, "limit": limit},
    )


async def referral_for_update(conn: Conn, *, referral_id: int, county_code: str) -> Row | None:
    return await fetch_one(
        conn,
        f"SELECT {_REFERRAL_COLUMNS} FROM assistance_referral r WHERE r.id = %(id)s AND r.county_code = %(cc)s"
        " FOR UPDATE",
        {"id": referral_id, "cc": county_code},
    )


async def decide_referral(conn: Conn, *, referral_id: int, values: dict[str, Any]) -> None:
    await execute(
        conn,
        """
UPDATE assistance_referral SET outcome = %(outcome)s, amount = %(amount)s, decision_note = %(decision_note)s,
       decided_by = %(decided_by)s, decided_at = %(decided_at)s
 WHERE id = %(id)s
""",
        {**values, "id": referral_id},
    )


async def referral_counts(conn: Conn, *, county_code: str) -> list[Row]:
    """Per type: referred, approved, declined, and the yuan approved."""
    return await fetch_all(
        conn,
        """
SELECT type, count(*) AS referred, count(*) FILTER (WHERE outcome = 'approved') AS approved,
       count(*) FILTER (WHERE outcome = 'declined') AS declined,
       COALESCE(sum(amount) FILTER (WHERE outcome = 'approved'), 0) AS amount
  FROM assistance_referral WHERE county_code = %(cc)s GROUP BY type
""",
        {"cc": county_code},
    )


async def hall_node(conn: Conn, *, code: str) -> Row | None:
    """A live township (where a harmony hall sits), with its path for scope checks."""
    return await fetch_one(
        conn,
        "SELECT id, code, name, path::text AS path FROM node"
        " WHERE code = %(code)s AND level = 'township' AND retired_at IS NULL",
        {"code": code},
    )
