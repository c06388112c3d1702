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
