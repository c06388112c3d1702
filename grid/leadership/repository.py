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
    conn: Conn, *, case_id: int, county_code: str, department_id: int | None, node_id: int | None,
    person_id: int | None, at: Any,
) -> None:  # fmt: skip
    """The case's one owning unit (责任单位), replacing any earlier one."""
    await execute(
        conn,
        """
INSERT INTO case_unit (case_id, county_code, part, department_id, node_id, created_by, created_at)
VALUES (%(case_id)s, %(cc)s, 'owner', %(department_id)s, %(node_id)s, %(person_id)s, %(at)s)
ON CONFLICT (case_id, county_code) WHERE part = 'owner'
DO UPDATE SET department_id = EXCLUDED.department_id, node_id = EXCLUDED.node_id,
              created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at
""",
        {
            "case_id": case_id,
            "cc": county_code,
            "department_id": department_id,
            "node_id": node_id,
            "person_id": person_id,
            "at": at,
        },
    )


# --- 联席会议 and 督办 (grid/leadership/meetings.py) ----------------------------------------
# Read rule: a meeting is read by those whose scope covers its node (`read_paths`, ltree
# paths of the caller's scope nodes) and by discipline inspection (`supervises`); a task
# also by its owner: the person, the department's staff, or those whose scope covers the
# owning township.

_MEETING_READABLE = "(mn.path <@ %(read_paths)s::ltree[] OR %(supervises)s)"
_TASK_READABLE = f"""({_MEETING_READABLE}
  OR t.owner_person_id = %(person_id)s
  OR t.owner_department_id = ANY(%(department_ids)s::bigint[])
  OR tn.path <@ %(read_paths)s::ltree[])"""

# A task's state on the county day `today`: done, overdue (past its due day), or open.
_TASK_STATE = "CASE WHEN t.done_at IS NOT NULL THEN 'done' WHEN t.due_on < %(today)s THEN 'overdue' ELSE 'open' END"

TASK_COLUMNS = f"""t.id, t.meeting_id, t.parent_id, t.title, t.due_on, t.case_ids, t.created_at, t.done_at,
  t.done_note, t.reminded_at, t.escalated_at, t.owner_department_id, t.owner_node_id, t.owner_person_id,
  {_TASK_STATE} AS state,
  CASE WHEN t.owner_department_id IS NOT NULL THEN 'department'
       WHEN t.owner_node_id IS NOT NULL THEN 'township' ELSE 'person' END AS owner_kind,
  coalesce(d.code, tn.code, t.owner_person_id::text) AS owner_code,
  coalesce(d.name, tn.name, op.name) AS owner_name,
  m.level AS meeting_level, m.held_on AS meeting_held_on, m.title AS meeting_title, mn.code AS meeting_node_code,
  m.chair_person_id, m.county_code"""

_TASK_FROM = """meeting_task t
  JOIN meeting m ON m.id = t.meeting_id
  JOIN node mn ON mn.id = m.node_id
  LEFT JOIN department d ON d.id = t.owner_department_id
  LEFT JOIN node tn ON tn.id = t.owner_node_id
  LEFT JOIN person op ON op.id = t.owner_person_id"""

MEETING_COLUMNS = """m.id, m.county_code, m.level, m.held_on, m.title, m.chair_person_id, ch.name AS chair_name,
  m.attendees, m.agenda_case_ids, m.agenda_topics, m.minutes, m.created_by, m.created_at,
  mn.id AS node_id, mn.code AS node_code, mn.name AS node_name"""

_MEETING_FROM = "meeting m JOIN node mn ON mn.id = m.node_id JOIN person ch ON ch.id = m.chair_person_id"


def _scope(
    read_paths: Sequence[str], department_ids: Sequence[int], person_id: int, supervises: bool
) -> dict[str, Any]:
    return {"read_paths": list(read_paths), "department_ids": list(department_ids), "person_id": person_id,
            "supervises": supervises}  # fmt: skip


async def meeting_node(conn: Conn, *, code: str) -> Row | None:
    """A live county or township node, where meetings are held."""
    return await fetch_one(
        conn,
        "SELECT id, code, name, level, county_code, path::text AS path FROM node"
        " WHERE code = %(code)s AND level IN ('county', 'township') AND retired_at IS NULL",
        {"code": code},
    )


async def person_names(conn: Conn, *, person_ids: Sequence[int]) -> dict[int, str]:
    rows = await fetch_all(conn, "SELECT id, name FROM person WHERE id = ANY(%(ids)s)", {"ids": list(person_ids)})
    return {r["id"]: r["name"] for r in rows}


async def person_of_township(conn: Conn, *, person_id: int, township_path: str) -> bool:
    """The person holds a live post, or a live grant, on a node inside the township."""
    found = await fetch_one(
        conn,
        """
SELECT 1 FROM post po JOIN node n ON n.id = po.node_id
 WHERE po.person_id = %(pid)s AND po.ended_at IS NULL AND n.path <@ %(path)s::ltree
UNION ALL
SELECT 1 FROM user_account u JOIN "grant" g ON g.user_id = u.id AND g.revoked_at IS NULL
  JOIN node n ON n.id = g.node_id
 WHERE u.person_id = %(pid)s AND u.disabled_at IS NULL AND n.path <@ %(path)s::ltree
LIMIT 1
""",
        {"pid": person_id, "path": township_path},
    )
    return found is not None


async def insert_meeting(conn: Conn, *, row: dict[str, Any]) -> int:
    found = await fetch_one(
        conn,
        """
INSERT INTO meeting (county_code, level, node_id, held_on, title, chair_person_id, attendees, agenda_case_ids,
  agenda_topics, minutes, created_by, created_at)
VALUES (%(county_code)s, %(level)s, %(node_id)s, %(held_on)s, %(title)s, %(chair_person_id)s, %(attendees)s,
  %(agenda_case_ids)s, %(agenda_topics)s, %(minutes)s, %(created_by)s, %(created_at)s)
RETURNING id
""",
        row,
    )
    assert found is not None
    return int(found["id"])


async def insert_task(conn: Conn, *, row: dict[str, Any]) -> int:
    found = await fetch_one(
        conn,
        """
INSERT INTO meeting_task (meeting_id, county_code, parent_id, title, owner_department_id, owner_node_id,
  owner_person_id, due_on, case_ids, created_by, created_at)
VALUES (%(meeting_id)s, %(county_code)s, %(parent_id)s, %(title)s, %(owner_department_id)s, %(owner_node_id)s, %(owner_person_id)s,
  %(due_on)s, %(case_ids)s, %(created_by)s, %(created_at)s)
RETURNING id
""",
        row,
    )
    assert found is not None
    return int(found["id"])


async def meeting_locked(conn: Conn, *, meeting_id: int) -> Row | None:
    """The meeting with its node, locked (tasks are added under it one writer at a time)."""
    return await fetch_one(
        conn,
        f"SELECT {MEETING_COLUMNS}, mn.path::text AS node_path FROM {_MEETING_FROM}"
        " WHERE m.id = %(id)s FOR UPDATE OF m",
        {"id": meeting_id},
    )


async def meeting(
    conn: Conn, *, county_code: str, meeting_id: int, read_paths: Sequence[str], department_ids: Sequence[int],
    person_id: int, supervises: bool,
) -> Row | None:  # fmt: skip
    """The meeting, if the caller (of `county_code`) may read it."""
    return await fetch_one(
        conn,
        f"SELECT {MEETING_COLUMNS} FROM {_MEETING_FROM}"
        f" WHERE m.county_code = %(county_code)s AND m.id = %(id)s AND {_MEETING_READABLE}",
        {"county_code": county_code, "id": meeting_id, **_scope(read_paths, department_ids, person_id, supervises)},
    )


async def meetings(
    conn: Conn, *, county_code: str, level: str | None, node_code: str | None, read_paths: Sequence[str],
    department_ids: Sequence[int], person_id: int, supervises: bool, limit: int,
) -> list[Row]:  # fmt: skip
    """Meetings the caller may read, newest first."""
    filters = "".join(
        [" AND m.level = %(level)s" if level else "", " AND mn.code = %(node_code)s" if node_code else ""]
    )
    return await fetch_all(
        conn,
        f"SELECT {MEETING_COLUMNS} FROM {_MEETING_FROM}"
        f" WHERE m.county_code = %(county_code)s AND {_MEETING_READABLE}{filters}"
        " ORDER BY m.held_on DESC, m.id DESC LIMIT %(limit)s",
        {"county_code": county_code, "level": level, "node_code": node_code, "limit": limit,
         **_scope(read_paths, department_ids, person_id, supervises)},
    )  # fmt: skip


async def tasks(
    conn: Conn, *, county_code: str, today: Any, read_paths: Sequence[str], department_ids: Sequence[int],
    person_id: int, supervises: bool, state: str | None = None, meeting_id: int | None = None,
    task_id: int | None = None, parent_id: int | None = None, owner: dict[str, Any] | None = None,
    limit: int = 500,
) -> list[Row]:  # fmt: skip
    """Tasks the caller may read: overdue first (oldest due first), then open, then done."""
    filters = [f" AND {_TASK_STATE} = %(state)s" if state else ""]
    filters += [f" AND t.{col} = %({col})s" for col, value in (("meeting_id", meeting_id), ("id", task_id),
                                                              ("parent_id", parent_id)) if value is not None]  # fmt: skip
    for col in owner or {}:
        filters.append(f" AND t.{col} = %({col})s")
    return await fetch_all(
        conn,
        f"""
SELECT {TASK_COLUMNS} FROM {_TASK_FROM}
 WHERE m.county_code = %(county_code)s AND {_TASK_READABLE}{"".join(filters)}
 ORDER BY CASE {_TASK_STATE} WHEN 'overdue' THEN 0 WHEN 'open' THEN 1 ELSE 2 END, t.due_on, t.id
 LIMIT %(limit)s
""",
        {"county_code": county_code, "today": today, "state": state, "meeting_id": meeting_id, "id": task_id,
         "parent_id": parent_id, "limit": limit, **(owner or {}),
         **_scope(read_paths, department_ids, person_id, supervises)},
    )  # fmt: skip


async def task_locked(conn: Conn, *, task_id: int, today: Any) -> Row | None:
    """The task with its meeting and owner, locked for a progress note or its completion."""
    return await fetch_one(
        conn,
        f"SELECT {TASK_COLUMNS}, mn.path::text AS meeting_node_path, tn.path::text AS owner_node_path"
        f" FROM {_TASK_FROM} WHERE t.id = %(id)s FOR UPDATE OF t",
        {"id": task_id, "today": today},
    )


async def task_notes(conn: Conn, *, task_ids: Sequence[int]) -> list[Row]:
    return await fetch_all(
        conn,
        """
SELECT tn.id, tn.task_id, tn.person_id, p.name AS person_name, tn.note, tn.created_at
  FROM meeting_task_note tn JOIN person p ON p.id = tn.person_id
 WHERE tn.task_id = ANY(%(ids)s) ORDER BY tn.id
""",
        {"ids": list(task_ids)},
    )


async def insert_task_note(conn: Conn, *, task_id: int, county_code: str, person_id: int, note: str, at: Any) -> None:
    await execute(
        conn,
        "INSERT INTO meeting_task_note (task_id, county_code, person_id, note, created_at)"
        " VALUES (%(t)s, %(cc)s, %(p)s, %(note)s, %(at)s)",
        {"t": task_id, "cc": county_code, "p": person_id, "note": note, "at": at},
    )


async def mark_task_done(conn: Conn, *, task_id: int, person_id: int, note: str | None, at: Any) -> None:
    await execute(
        conn,
        "UPDATE meeting_task SET done_at = %(at)s, done_by = %(p)s, done_note = %(note)s"
        " WHERE id = %(t)s AND done_at IS NULL",
        {"t": task_id, "p": person_id, "note": note, "at": at},
    )


async def owner_people(conn: Conn, *, department_id: int | None, node_id: int | None) -> list[int]:
    """Who answers for a unit: the department's staff, or the township's dispatchers
    (enabled accounts, live grants)."""
    rows = await fetch_all(
        conn,
        """
SELECT DISTINCT u.person_id FROM user_account u
  JOIN "grant" g ON g.user_id = u.id AND g.revoked_at IS NULL
 WHERE u.disabled_at IS NULL
   AND ((g.role = 'department_staff' AND g.department_id = %(d)s) OR (g.role = 'dispatcher' AND g.node_id = %(n)s))
 ORDER BY u.person_id
""",
        {"d": department_id, "n": node_id},
    )
    return [r["person_id"] for r in rows]


async def tasks_to_remind(conn: Conn, *, today: Any, batch: int) -> list[Row]:
    """Tasks past their due day with no reminder yet, locked; a row another worker holds is skipped."""
    return await fetch_all(
        conn,
        f"""
SELECT {TASK_COLUMNS} FROM {_TASK_FROM}
 WHERE t.done_at IS NULL AND t.reminded_at IS NULL AND t.due_on < %(today)s
 ORDER BY t.due_on, t.id LIMIT %(batch)s
   FOR UPDATE OF t SKIP LOCKED
""",
        {"today": today, "batch": batch},
    )


async def tasks_to_escalate(conn: Conn, *, today: Any, escalate_before: Any, batch: int) -> list[Row]:
    """Tasks still not done whose due day lies before `escalate_before`, not escalated yet; locked."""
    return await fetch_all(
        conn,
        f"""
SELECT {TASK_COLUMNS} FROM {_TASK_FROM}
 WHERE t.done_at IS NULL AND t.escalated_at IS NULL AND t.due_on < %(before)s
 ORDER BY t.due_on, t.id LIMIT %(batch)s
   FOR UPDATE OF t SKIP LOCKED
""",
        {"today": today, "before": escalate_before, "batch": batch},
    )


async def set_task_reminded(conn: Conn, *, task_ids: Sequence[int], at: Any) -> None:
    if task_ids:
        await execute(conn, "UPDATE meeting_task SET reminded_at = %(at)s WHERE id = ANY(%(ids)s)",
                      {"ids": list(task_ids), "at": at})  # fmt: skip


async def set_task_escalated(conn: Conn, *, task_id: int, to: int, at: Any) -> None:
    await execute(conn, "UPDATE meeting_task SET escalated_at = %(at)s, escalated_to = %(to)s WHERE id = %(id)s",
                  {"id": task_id, "to": to, "at": at})  # fmt: skip


async def granted_person(conn: Conn, *, role: str, node_id: int) -> int | None:
    """The first enabled account's person with a live `role` grant on the node (the demo's recorders)."""
    found = await fetch_one(
        conn,
        """
SELECT u.person_id FROM user_account u JOIN "grant" g ON g.user_id = u.id AND g.revoked_at IS NULL
 WHERE u.disabled_at IS NULL AND g.role = %(role)s AND g.node_id = %(n)s ORDER BY u.id LIMIT 1
""",
        {"role": role, "n": node_id},
    )
    return None if found is None else int(found["person_id"])


async def county_has_meetings(conn: Conn, *, county_code: str) -> bool:
    return (
        await fetch_one(conn, "SELECT 1 FROM meeting WHERE county_code = %(c)s LIMIT 1", {"c": county_code}) is not None
    )


async def townships(conn: Conn, *, county_code: str) -> list[Row]:
    return await fetch_all(
        conn,
        "SELECT id, code, name, path::text AS path FROM node"
        " WHERE county_code = %(c)s AND level = 'township' AND retired_at IS NULL ORDER BY code",
        {"c": county_code},
    )


async def chief_inside(conn: Conn, *, path: str) -> int | None:
    """A current village chief inside the subtree (the demo's sub-task owner)."""
    found = await fetch_one(
        conn,
        """
SELECT po.person_id FROM post po JOIN node n ON n.id = po.node_id
 WHERE n.path <@ %(p)s::ltree AND n.level = 'village' AND po.role = 'chief' AND po.ended_at IS NULL
 ORDER BY n.code LIMIT 1
""",
        {"p": path},
    )
    return None if found is None else int(found["person_id"])


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


async def node_point(conn: Conn, *, code: str, county_code: str) -> Row | None:
    """A live node of the county with a footprint, and a point inside it (where a visit about it is placed)."""
    return await fetch_one(
        conn,
        """
SELECT id, code, name, ST_X(p) AS lon, ST_Y(p) AS lat
  FROM (SELECT id, code, name, ST_PointOnSurface(geom) AS p FROM node
         WHERE county_code = %(cc)s AND code = %(code)s AND retired_at IS NULL AND geom IS NOT NULL) n
""",
        {"code": code, "cc": county_code},
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


# A case's place for the figures (grid/stats): its located node, or its handling node
# when it was reported outside the county; `roots` NULL means the whole county.
CASE_PLACE_FROM = ("case_file c JOIN node hn ON hn.id = c.handling_node_id"
                   " LEFT JOIN node ln ON ln.id = c.located_node_id")  # fmt: skip
IN_ROOTS = "(%(roots)s::ltree[] IS NULL OR COALESCE(ln.path, hn.path) <@ %(roots)s::ltree[])"


async def visit_figures(
    conn: Conn, *, county_code: str, first: Any, last: Any, roots: Sequence[str] | None = None
) -> list[Row]:
    """Per duty leader: visits received on days in [first, last], each decision's count, the
    visits still undecided, and those not settled on the spot but resolved since. With
    `roots` (ltree paths), only the visits whose case lies in those subtrees."""
    return await fetch_all(
        conn,
        f"""
SELECT v.leader_person_id, pe.name AS leader_name, count(*) AS visits,
       count(*) FILTER (WHERE v.decision = 'settle') AS settle,
       count(*) FILTER (WHERE v.decision = 'route') AS route,
       count(*) FILTER (WHERE v.decision = 'unit') AS unit,
       count(*) FILTER (WHERE v.decision = 'own') AS own,
       count(*) FILTER (WHERE v.decision IS NULL) AS undecided,
       count(*) FILTER (WHERE v.decision <> 'settle' AND c.state = ANY (%(ended)s::text[])) AS resolved_later
  FROM case_visit v JOIN {CASE_PLACE_FROM} ON c.id = v.case_id JOIN person pe ON pe.id = v.leader_person_id
 WHERE v.county_code = %(c)s AND v.visited_on BETWEEN %(first)s AND %(last)s AND {IN_ROOTS}
 GROUP BY v.leader_person_id, pe.name
 ORDER BY count(*) DESC, v.leader_person_id
""",
        {"c": county_code, "first": first, "last": last, "ended": list(ENDED_STATES),
         "roots": None if roots is None else list(roots)},
    )  # fmt: skip


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
# The figures (grid/stats) narrow it to the cases placed in `roots` and to the batches
# imported before `before`; a batch with none of its cases there is left out.
_BATCH_PROGRESS = f"""
SELECT b.id, b.label, b.handed_down_on, b.created_at,
       count(c.id) AS total,
       count(c.id) FILTER (WHERE c.state = ANY (%(ended)s::text[])) AS resolved,
       count(c.id) FILTER (WHERE c.owner_leader_person_id IS NOT NULL) AS owned,
       (SELECT count(*) FROM case_reflow r JOIN {CASE_PLACE_FROM} ON c.id = r.case_id
         WHERE c.batch_id = b.id AND {IN_ROOTS}) AS reflows
  FROM backlog_batch b LEFT JOIN ({CASE_PLACE_FROM}) ON c.batch_id = b.id AND {IN_ROOTS}
 WHERE b.county_code = %(county)s AND (%(id)s::bigint IS NULL OR b.id = %(id)s::bigint)
   AND (%(before)s::timestamptz IS NULL OR b.created_at < %(before)s::timestamptz)
 GROUP BY b.id, b.county_code
HAVING %(roots)s::ltree[] IS NULL OR count(c.id) > 0
 ORDER BY b.handed_down_on DESC NULLS LAST, b.id DESC
"""


async def batches(
    conn: Conn, *, county_code: str, batch_id: int | None = None, roots: Sequence[str] | None = None,
    before: Any = None,
) -> list[Row]:  # fmt: skip
    return await fetch_all(conn, _BATCH_PROGRESS, {"county": county_code, "id": batch_id, "ended": list(ENDED_STATES),
                                                   "roots": None if roots is None else list(roots),
                                                   "before": before})  # fmt: skip


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


async def insert_reflow(conn: Conn, *, case_id: int, county_code: str, kind: str, new_case_id: int | None,
                        person_id: int | None, note: str | None, at: Any) -> None:  # fmt: skip
    await execute(
        conn,
        "INSERT INTO case_reflow (case_id, county_code, kind, new_case_id, person_id, note, created_at)"
        " VALUES (%(c)s, %(cc)s, %(k)s, %(n)s, %(p)s, %(note)s, %(at)s)",
        {"c": case_id, "cc": county_code, "k": kind, "n": new_case_id, "p": person_id, "note": note, "at": at},
    )


async def reflow_linked(conn: Conn, *, case_id: int, new_case_id: int) -> bool:
    return bool(await fetch_value(
        conn, "SELECT EXISTS (SELECT 1 FROM case_reflow WHERE case_id = %(c)s AND new_case_id = %(n)s)",
        {"c": case_id, "n": new_case_id},
    ))  # fmt: skip


async def reflow_count(conn: Conn, *, case_id: int) -> int:
    return int(await fetch_value(conn, "SELECT count(*) FROM case_reflow WHERE case_id = %(c)s", {"c": case_id}))


# --- 包案 (the owners' work): departments edited, leaders listed, the five duties, my hard cases ---


async def insert_department(conn: Conn, *, county_code: str, code: str, name: str) -> Row | None:
    """The new department, or None if the county has one with this code already."""
    return await fetch_one(
        conn,
        """
INSERT INTO department (county_code, code, name, sort)
SELECT %(county_code)s::varchar, %(code)s, %(name)s,
       (SELECT COALESCE(max(sort) + 1, 0) FROM department WHERE county_code = %(county_code)s::varchar)
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


async def tick_duty(
    conn: Conn, *, case_id: int, county_code: str, duty: str, note: str, person_id: int, at: Any
) -> None:
    """One of the five duties ticked (again: its note, who and when replaced)."""
    await execute(
        conn,
        """
INSERT INTO case_duty (case_id, county_code, duty, note, person_id, at)
VALUES (%(c)s, %(cc)s, %(d)s, %(n)s, %(p)s, %(at)s)
ON CONFLICT (case_id, duty, county_code) DO UPDATE SET note = EXCLUDED.note, person_id = EXCLUDED.person_id,
  at = EXCLUDED.at
""",
        {"c": case_id, "cc": county_code, "d": duty, "n": note, "p": person_id, "at": at},
    )


async def duty_count(conn: Conn, *, case_id: int) -> int:
    return int(await fetch_value(conn, "SELECT count(*) FROM case_duty WHERE case_id = %(c)s", {"c": case_id}))


# The hard cases a person owns: as their leader, or as staff of their owning unit (a
# department, or a township where they are dispatcher or hall mediator).
_OWNED_SQL = f"""
SELECT c.id, c.state, c.tier, c.category, COALESCE(cat.name_zh, c.category) AS category_name, c.severity,
       c.reported_at, c.accept_by, c.resolve_by, c.hard_outcome,
       c.source, c.closed_at, hn.code AS handling_node_code, hn.name AS handling_node_name,
       c.owner_leader_person_id, lp.name AS owner_leader_name,
       c.owner_leader_person_id = %(pid)s AS as_leader,
       CASE WHEN u.department_id IS NOT NULL THEN 'department' WHEN u.node_id IS NOT NULL THEN 'township' END
         AS unit_kind,
       COALESCE(d.code, un.code) AS unit_code, COALESCE(d.name, un.name) AS unit_name,
       (SELECT count(*) FROM case_duty k WHERE k.case_id = c.id) AS duties_done
  FROM {CASE_FROM}
  LEFT JOIN person lp ON lp.id = c.owner_leader_person_id
  LEFT JOIN category cat ON cat.code = c.category
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


# --- the county centre: joint handling (联合办理) -------------------------------------------


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
    conn: Conn, *, case_id: int, county_code: str, department_id: int, part: str, task: str | None, person_id: int,
    at: Any,
) -> None:  # fmt: skip
    """A department joins the case in `part` ('joint' or 'referral'); once per part (a repeat is ignored)."""
    assert part in ("joint", "referral")  # each has its own unique index, named by its predicate below
    await execute(
        conn,
        f"""
INSERT INTO case_unit (case_id, county_code, part, department_id, task, created_by, created_at)
VALUES (%(c)s, %(cc)s, %(part)s, %(d)s, %(task)s, %(p)s, %(at)s)
ON CONFLICT (case_id, department_id, county_code) WHERE part = '{part}' DO NOTHING
""",
        {"c": case_id, "cc": county_code, "part": part, "d": department_id, "task": task, "p": person_id, "at": at},
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
INSERT INTO hall_member AS m (node_id, county_code, name, phone, kind, created_by, created_at)
VALUES (%(node_id)s, %(county_code)s, %(name)s, %(phone)s, %(kind)s, %(created_by)s, %(created_at)s)
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


async def replace_work_group(
    conn: Conn, *, case_id: int, county_code: str, member_ids: Sequence[int], person_id: int, at: Any
) -> None:
    """The case's work group is the one chosen last (each choice is on the ledger)."""
    await execute(conn, "DELETE FROM case_work_group WHERE case_id = %(c)s", {"c": case_id})
    await execute_many(
        conn,
        "INSERT INTO case_work_group (case_id, county_code, member_id, chosen_by, chosen_at)"
        " VALUES (%(c)s, %(cc)s, %(m)s, %(p)s, %(at)s)",
        [{"c": case_id, "cc": county_code, "m": m, "p": person_id, "at": at} for m in member_ids],
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


async def referral_counts(
    conn: Conn, *, county_code: str, roots: Sequence[str] | None = None, start: Any = None, end: Any = None
) -> list[Row]:  # fmt: skip
    """Per type: referred, approved, declined, and the yuan approved. The figures (grid/stats)
    narrow it to the referrals made in [start, end) on cases placed in `roots`."""
    return await fetch_all(
        conn,
        f"""
SELECT r.type, count(*) AS referred, count(*) FILTER (WHERE r.outcome = 'approved') AS approved,
       count(*) FILTER (WHERE r.outcome = 'declined') AS declined,
       COALESCE(sum(r.amount) FILTER (WHERE r.outcome = 'approved'), 0) AS amount
  FROM assistance_referral r JOIN {CASE_PLACE_FROM} ON c.id = r.case_id
 WHERE r.county_code = %(cc)s AND {IN_ROOTS}
   AND (%(start)s::timestamptz IS NULL OR r.referred_at >= %(start)s::timestamptz)
   AND (%(end)s::timestamptz IS NULL OR r.referred_at < %(end)s::timestamptz)
 GROUP BY r.type
""",
        {"cc": county_code, "roots": None if roots is None else list(roots), "start": start, "end": end},
    )


async def hall_node(conn: Conn, *, code: str) -> Row | None:
    """A live township (where a harmony hall sits), with its path for scope checks."""
    return await fetch_one(
        conn,
        "SELECT id, county_code, code, name, path::text AS path FROM node"
        " WHERE code = %(code)s AND level = 'township' AND retired_at IS NULL",
        {"code": code},
    )


# --- the demo county's leadership records (grid/leadership/demo.py) ------------------------


async def people_by_phone(conn: Conn, *, phones: Sequence[str]) -> dict[str, Row]:
    """{phone: {id, name}} of the enabled accounts among `phones` (the demo's actors)."""
    rows = await fetch_all(
        conn,
        """
SELECT u.phone, pe.id, pe.name FROM user_account u JOIN person pe ON pe.id = u.person_id
 WHERE u.phone = ANY (%(phones)s::text[]) AND u.disabled_at IS NULL
""",
        {"phones": list(phones)},
    )
    return {r["phone"]: r for r in rows}


async def demo_places(conn: Conn, *, county_code: str) -> list[Row]:
    """Live villages and communities with a footprint, each with its township's code."""
    return await fetch_all(
        conn,
        """
SELECT n.code, t.code AS township_code FROM node n
  JOIN node t ON t.level = 'township' AND n.path <@ t.path
 WHERE n.county_code = %(c)s AND n.level IN ('village', 'community') AND n.retired_at IS NULL
   AND n.geom IS NOT NULL
 ORDER BY t.code, n.code
""",
        {"c": county_code},
    )
