"""All SQL of the leadership mechanisms. Functions take the connection first; none commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grid.cases.repository import CASE_FROM
from grid.db import Conn, Row, execute, execute_many, fetch_all, fetch_one, fetch_value

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
        "SELECT id, code, name, path::text AS path FROM node"
        " WHERE code = %(code)s AND level = 'township' AND retired_at IS NULL",
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


# --- 包案 (the owners' work): departments edited, leaders listed, the five duties, my hard cases ---


async def insert_department(conn: Conn, *, county_code: str, code: str, name: str) -> Row | None:
    """The new department, or None if the county has one with this code already."""
    return await fetch_one(
        conn,
        """
INSERT INTO department (county_code, code, name, sort)
VALUES (%(county_code)s::varchar, %(code)s, %(name)s,
        (SELECT COALESCE(max(sort) + 1, 0) FROM department WHERE county_code = %(county_code)s::varchar))
ON CONFLICT (county_code, code) DO NOTHING
RETURNING code, name, active
""",
        {"county_code": county_code, "code": code, "name": name},
    )


async def update_department(
    conn: Conn, *, county_code: str, code: str, name: str | None, active: bool | None
) -> Row | None:
    """The department after the change (a None leaves that column as it is); None if unknown."""
    return await fetch_one(
        conn,
        """
UPDATE department SET name = COALESCE(%(name)s, name), active = COALESCE(%(active)s, active)
 WHERE county_code = %(county_code)s AND code = %(code)s
RETURNING code, name, active
""",
        {"county_code": county_code, "code": code, "name": name, "active": active},
    )


async def live_leaders(conn: Conn) -> list[Row]:
    """Everyone who may own a hard case (a live county-leader grant on an enabled account)."""
    return await fetch_all(
        conn,
        """
SELECT DISTINCT pe.id, pe.name FROM person pe
  JOIN user_account u ON u.person_id = pe.id AND u.disabled_at IS NULL
  JOIN "grant" g ON g.user_id = u.id AND g.role = 'leader' AND g.revoked_at IS NULL
 ORDER BY pe.id
""",
    )


async def tick_duty(conn: Conn, *, case_id: int, duty: str, note: str, person_id: int, at: Any) -> None:
    """One of the five duties ticked (again: its note, who and when replaced)."""
    await execute(
        conn,
        """
INSERT INTO case_duty (case_id, duty, note, person_id, at) VALUES (%(c)s, %(d)s, %(n)s, %(p)s, %(at)s)
ON CONFLICT (case_id, duty) DO UPDATE SET note = EXCLUDED.note, person_id = EXCLUDED.person_id, at = EXCLUDED.at
""",
        {"c": case_id, "d": duty, "n": note, "p": person_id, "at": at},
    )


async def duty_count(conn: Conn, *, case_id: int) -> int:
    return int(await fetch_value(conn, "SELECT count(*) FROM case_duty WHERE case_id = %(c)s", {"c": case_id}))


# The hard cases a person owns: as their leader, or as staff of their owning unit (a
# department, or a township where they are dispatcher or hall mediator).
_OWNED_SQL = f"""
SELECT c.id, c.state, c.tier, c.category, c.severity, c.reported_at, c.accept_by, c.resolve_by, c.hard_outcome,
       c.source, c.closed_at, hn.code AS handling_node_code, hn.name AS handling_node_name,
       c.owner_leader_person_id, lp.name AS owner_leader_name,
       c.owner_leader_person_id = %(pid)s AS as_leader,
       CASE WHEN u.department_id IS NOT NULL THEN 'department' WHEN u.node_id IS NOT NULL THEN 'township' END
         AS unit_kind,
       COALESCE(d.code, un.code) AS unit_code, COALESCE(d.name, un.name) AS unit_name,
       (SELECT count(*) FROM case_duty k WHERE k.case_id = c.id) AS duties_done
  FROM {CASE_FROM}
  LEFT JOIN person lp ON lp.id = c.owner_leader_person_id
  LEFT JOIN case_unit u ON u.case_id = c.id AND u.part = 'owner'
  LEFT JOIN department d ON d.id = u.department_id
  LEFT JOIN node un ON un.id = u.node_id
 WHERE c.hard
   AND (c.owner_leader_person_id = %(pid)s OR u.department_id = ANY (%(departments)s::bigint[])
        OR u.node_id = ANY (%(townships)s::bigint[]))
   AND (%(open_only)s IS NOT TRUE OR c.state NOT IN ('closed', 'terminated'))
   AND (%(before_id)s::bigint IS NULL OR c.id < %(before_id)s::bigint)
 ORDER BY c.id DESC
 LIMIT %(limit)s
"""


async def owned_cases(
    conn: Conn, *, person_id: int, department_ids: Sequence[int], township_ids: Sequence[int], open_only: bool,
    before_id: int | None, limit: int,
) -> list[Row]:  # fmt: skip
    return await fetch_all(
        conn,
        _OWNED_SQL,
        {"pid": person_id, "departments": list(department_ids), "townships": list(township_ids),
         "open_only": open_only, "before_id": before_id, "limit": limit},
    )  # fmt: skip
