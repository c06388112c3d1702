"""All SQL of the leadership mechanisms. Functions take the connection first; none commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


# --- 坐班接访: the duty roster and walk-in visits ----------------------------------------

_DUTY_COLUMNS = """d.day, d.leader_person_id, pe.name AS leader_name, d.body, d.note, d.updated_at"""


async def upsert_duty_days(conn: Conn, *, county_code: str, rows: Sequence[dict[str, Any]], person_id: int | None,
                           at: Any) -> None:  # fmt: skip
    """Each row {day, leader_person_id, body, note}: that day's duty leader, replacing any earlier one."""
    await execute_many(
        conn,
        """
INSERT INTO duty_day (county_code, day, leader_person_id, body, note, updated_by, updated_at)
VALUES (%(county_code)s, %(day)s, %(leader_person_id)s, %(body)s, %(note)s, %(person_id)s, %(at)s)
ON CONFLICT (county_code, day)
DO UPDATE SET leader_person_id = EXCLUDED.leader_person_id, body = EXCLUDED.body, note = EXCLUDED.note,
              updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at
""",
        [{"county_code": county_code, "person_id": person_id, "at": at, "note": None, **r} for r in rows],
    )


async def delete_duty_day(conn: Conn, *, county_code: str, day: Any) -> bool:
    return bool(await fetch_value(
        conn, "WITH d AS (DELETE FROM duty_day WHERE county_code = %(c)s AND day = %(day)s RETURNING 1)"
              " SELECT count(*) FROM d", {"c": county_code, "day": day},
    ))  # fmt: skip


async def duty_days(conn: Conn, *, county_code: str, first: Any, last: Any) -> list[Row]:
    return await fetch_all(
        conn,
        f"""
SELECT {_DUTY_COLUMNS} FROM duty_day d JOIN person pe ON pe.id = d.leader_person_id
 WHERE d.county_code = %(c)s AND d.day BETWEEN %(first)s AND %(last)s
 ORDER BY d.day
""",
        {"c": county_code, "first": first, "last": last},
    )


async def leaders_by_phone(conn: Conn, *, phones: Sequence[str]) -> dict[str, Row]:
    """{phone: {id, name}} of the enabled accounts among `phones` that hold a live leader grant."""
    rows = await fetch_all(
        conn,
        """
SELECT DISTINCT u.phone, pe.id, pe.name FROM user_account u
  JOIN person pe ON pe.id = u.person_id
  JOIN "grant" g ON g.user_id = u.id AND g.role = 'leader' AND g.revoked_at IS NULL
 WHERE u.phone = ANY (%(phones)s::text[]) AND u.disabled_at IS NULL
""",
        {"phones": list(phones)},
    )
    return {r["phone"]: r for r in rows}


async def node_point(conn: Conn, *, code: str) -> Row | None:
    """A live node with a footprint, and a point inside it (where a visit about it is placed)."""
    return await fetch_one(
        conn,
        """
SELECT id, code, name, ST_X(p) AS lon, ST_Y(p) AS lat
  FROM (SELECT id, code, name, ST_PointOnSurface(geom) AS p FROM node
         WHERE code = %(code)s AND retired_at IS NULL AND geom IS NOT NULL) n
""",
        {"code": code},
    )


async def insert_visit(conn: Conn, *, case_id: int, county_code: str, visited_on: Any, leader_person_id: int) -> None:
    await execute(
        conn,
        "INSERT INTO case_visit (case_id, county_code, visited_on, leader_person_id)"
        " VALUES (%(case_id)s, %(county_code)s, %(visited_on)s, %(leader)s)",
        {"case_id": case_id, "county_code": county_code, "visited_on": visited_on, "leader": leader_person_id},
    )


async def visit_of(conn: Conn, *, case_id: int) -> Row | None:
    return await fetch_one(conn, "SELECT * FROM case_visit WHERE case_id = %(c)s", {"c": case_id})


async def decide_visit(conn: Conn, *, case_id: int, decision: str, at: Any) -> None:
    await execute(
        conn, "UPDATE case_visit SET decision = %(d)s, decided_at = %(at)s WHERE case_id = %(c)s",
        {"c": case_id, "d": decision, "at": at},
    )  # fmt: skip


async def department_staff(conn: Conn, *, department_id: int) -> list[int]:
    """Person ids of the enabled accounts working for the department (department_staff grants)."""
    rows = await fetch_all(
        conn,
        """
SELECT DISTINCT u.person_id FROM user_account u
  JOIN "grant" g ON g.user_id = u.id AND g.role = 'department_staff' AND g.revoked_at IS NULL
 WHERE g.department_id = %(d)s AND u.disabled_at IS NULL AND u.person_id IS NOT NULL
 ORDER BY u.person_id
""",
        {"d": department_id},
    )
    return [r["person_id"] for r in rows]


# Resolved: settled and not come back (a resolved case awaits only its return visit), or
# ended lawfully; a reopened one is open again.
ENDED_STATES = ("resolved", "return_visit", "closed", "terminated")


async def visit_figures(conn: Conn, *, county_code: str, first: Any, last: Any) -> list[Row]:
    """Per duty leader: visits received on days in [first, last], each decision's count, the
    visits still undecided, and those not settled on the spot but resolved since."""
    return await fetch_all(
        conn,
        """
SELECT v.leader_person_id, pe.name AS leader_name, count(*) AS visits,
       count(*) FILTER (WHERE v.decision = 'settle') AS settle,
       count(*) FILTER (WHERE v.decision = 'route') AS route,
       count(*) FILTER (WHERE v.decision = 'unit') AS unit,
       count(*) FILTER (WHERE v.decision = 'own') AS own,
       count(*) FILTER (WHERE v.decision IS NULL) AS undecided,
       count(*) FILTER (WHERE v.decision <> 'settle' AND c.state = ANY (%(ended)s::text[])) AS resolved_later
  FROM case_visit v JOIN case_file c ON c.id = v.case_id JOIN person pe ON pe.id = v.leader_person_id
 WHERE v.county_code = %(c)s AND v.visited_on BETWEEN %(first)s AND %(last)s
 GROUP BY v.leader_person_id, pe.name
 ORDER BY count(*) DESC, v.leader_person_id
""",
        {"c": county_code, "first": first, "last": last, "ended": list(ENDED_STATES)},
    )


# --- 积案、双清零、零倒流: backlog batches and reflows -------------------------------------


async def batch_id_by_label(conn: Conn, *, county_code: str, label: str) -> int | None:
    value = await fetch_value(conn, "SELECT id FROM backlog_batch WHERE county_code = %(c)s AND label = %(l)s",
                              {"c": county_code, "l": label})  # fmt: skip
    return None if value is None else int(value)


async def insert_batch(conn: Conn, *, county_code: str, label: str, handed_down_on: Any, person_id: int | None,
                       at: Any) -> int:  # fmt: skip
    return int(await fetch_value(
        conn,
        "INSERT INTO backlog_batch (county_code, label, handed_down_on, created_by, created_at)"
        " VALUES (%(c)s, %(l)s, %(d)s, %(p)s, %(at)s) RETURNING id",
        {"c": county_code, "l": label, "d": handed_down_on, "p": person_id, "at": at},
    ))  # fmt: skip


async def set_case_batch(conn: Conn, *, case_id: int, batch_id: int) -> None:
    await execute(conn, "UPDATE case_file SET source = 'handed_down', batch_id = %(b)s WHERE id = %(c)s",
                  {"b": batch_id, "c": case_id})  # fmt: skip


# A batch's progress: its cases, how many ended (ENDED_STATES), owned, and reflows counted.
_BATCH_PROGRESS = """
SELECT b.id, b.label, b.handed_down_on, b.created_at,
       count(c.id) AS total,
       count(c.id) FILTER (WHERE c.state = ANY (%(ended)s::text[])) AS resolved,
       count(c.id) FILTER (WHERE c.owner_leader_person_id IS NOT NULL) AS owned,
       (SELECT count(*) FROM case_reflow r JOIN case_file rc ON rc.id = r.case_id WHERE rc.batch_id = b.id)
         AS reflows
  FROM backlog_batch b LEFT JOIN case_file c ON c.batch_id = b.id
 WHERE b.county_code = %(county)s AND (%(id)s::bigint IS NULL OR b.id = %(id)s::bigint)
 GROUP BY b.id
 ORDER BY b.handed_down_on DESC NULLS LAST, b.id DESC
"""


async def batches(conn: Conn, *, county_code: str, batch_id: int | None = None) -> list[Row]:
    return await fetch_all(conn, _BATCH_PROGRESS, {"county": county_code, "id": batch_id,
                                                   "ended": list(ENDED_STATES)})  # fmt: skip


async def batch_cases(conn: Conn, *, batch_id: int) -> list[Row]:
    """The batch's cases: where each stands, who owns it, how often it came back."""
    return await fetch_all(
        conn,
        """
SELECT c.id, c.state, c.hard_outcome, c.owner_leader_person_id, pe.name AS owner_leader_name,
       (SELECT count(*) FROM case_reflow r WHERE r.case_id = c.id) AS reflows
  FROM case_file c LEFT JOIN person pe ON pe.id = c.owner_leader_person_id
 WHERE c.batch_id = %(b)s
 ORDER BY c.id
""",
        {"b": batch_id},
    )


async def insert_reflow(conn: Conn, *, case_id: int, kind: str, new_case_id: int | None, person_id: int | None,
                        note: str | None, at: Any) -> None:  # fmt: skip
    await execute(
        conn,
        "INSERT INTO case_reflow (case_id, kind, new_case_id, person_id, note, created_at)"
        " VALUES (%(c)s, %(k)s, %(n)s, %(p)s, %(note)s, %(at)s)",
        {"c": case_id, "k": kind, "n": new_case_id, "p": person_id, "note": note, "at": at},
    )


async def reflow_linked(conn: Conn, *, case_id: int, new_case_id: int) -> bool:
    return bool(await fetch_value(
        conn, "SELECT EXISTS (SELECT 1 FROM case_reflow WHERE case_id = %(c)s AND new_case_id = %(n)s)",
        {"c": case_id, "n": new_case_id},
    ))  # fmt: skip


async def reflow_count(conn: Conn, *, case_id: int) -> int:
    return int(await fetch_value(conn, "SELECT count(*) FROM case_reflow WHERE case_id = %(c)s", {"c": case_id}))
