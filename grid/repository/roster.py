"""People and their posts: who holds which post, and handovers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from grid.db import Conn, Row, execute, execute_many, fetch_all, fetch_one, fetch_value


async def upsert_person(conn: Conn, *, county_code: str, name: str, phone: str | None) -> int:
    """A person is known by phone number; a new name for the same phone updates it."""
    if phone is None:
        return int(
            await fetch_value(
                conn,
                "INSERT INTO person (county_code, name) VALUES (%(cc)s, %(name)s) RETURNING id",
                {"cc": county_code, "name": name},
            )
        )
    return int(
        await fetch_value(
            conn,
            """
INSERT INTO person (county_code, name, phone) VALUES (%(cc)s, %(name)s, %(phone)s)
ON CONFLICT (phone, county_code) DO UPDATE SET name = EXCLUDED.name
RETURNING id
""",
            {"cc": county_code, "name": name, "phone": phone},
        )
    )


async def person_by_phone(conn: Conn, *, phone: str) -> int | None:
    return await fetch_value(conn, "SELECT id FROM person WHERE phone = %(phone)s", {"phone": phone})


async def insert_people_and_posts(
    conn: Conn, *, county_code: str, posts: Iterable[dict[str, Any]], upsert_people: bool = False
) -> None:
    """Bulk load of a roster: rows with node_code, role, name, phone, started_at, ended_at.

    With `upsert_people`, a phone already known keeps its person (its name updated),
    as `upsert_person` does; each phone must then appear once in `posts`.
    """
    rows = list(posts)
    if not rows:
        return
    on_conflict = " ON CONFLICT (phone, county_code) DO UPDATE SET name = EXCLUDED.name" if upsert_people else ""
    await execute_many(
        conn,
        "INSERT INTO person (county_code, name, phone) VALUES (%(county_code)s, %(name)s, %(phone)s)" + on_conflict,
        [{"county_code": county_code, "name": r["name"], "phone": r["phone"]} for r in rows],
    )
    await execute_many(
        conn,
        """
INSERT INTO post (county_code, node_id, person_id, role, started_at, ended_at)
SELECT %(county_code)s::varchar, n.id, pe.id, %(role)s, %(started_at)s, %(ended_at)s
  FROM node n, person pe WHERE n.code = %(node_code)s AND pe.phone = %(phone)s
   AND n.county_code = %(county_code)s::varchar AND pe.county_code = n.county_code
""",
        [{**r, "county_code": county_code} for r in rows],
    )


async def current_post(conn: Conn, *, node_id: int, role: str, person_id: int | None = None) -> Row | None:
    sql = (
        "SELECT id, person_id, started_at FROM post"
        " WHERE node_id = %(node_id)s AND role = %(role)s AND ended_at IS NULL"
    )
    params: dict[str, Any] = {"node_id": node_id, "role": role}
    if person_id is not None:
        sql += " AND person_id = %(person_id)s"
        params["person_id"] = person_id
    return await fetch_one(conn, sql + " ORDER BY started_at LIMIT 1", params)


async def end_post(conn: Conn, *, post_id: int, at: datetime) -> None:
    await execute(conn, "UPDATE post SET ended_at = %(at)s WHERE id = %(id)s", {"id": post_id, "at": at})


async def start_post(conn: Conn, *, county_code: str, node_id: int, person_id: int, role: str, at: datetime) -> int:
    return int(
        await fetch_value(
            conn,
            """
INSERT INTO post (county_code, node_id, person_id, role, started_at)
VALUES (%(cc)s, %(node_id)s, %(person_id)s, %(role)s, %(at)s) RETURNING id
""",
            {"cc": county_code, "node_id": node_id, "person_id": person_id, "role": role, "at": at},
        )
    )


async def current_posts_by_code(conn: Conn, *, codes: Sequence[str]) -> list[Row]:
    """Current posts on the nodes with these codes: node_code, role, phone."""
    return await fetch_all(
        conn,
        """
SELECT n.code AS node_code, po.role, pe.phone
  FROM node n JOIN post po ON po.node_id = n.id AND po.ended_at IS NULL JOIN person pe ON pe.id = po.person_id
 WHERE n.code = ANY (%(codes)s)
""",
        {"codes": list(codes)},
    )


async def subtree_current_posts(conn: Conn, *, code: str) -> list[Row]:
    """Current posts on the live nodes under `code`: node_code, role, name, phone, started_at."""
    return await fetch_all(
        conn,
        """
SELECT n.code AS node_code, po.role, pe.name, pe.phone, po.started_at
  FROM node root
  JOIN node n ON n.path <@ root.path AND n.retired_at IS NULL
  JOIN post po ON po.node_id = n.id AND po.ended_at IS NULL
  JOIN person pe ON pe.id = po.person_id
 WHERE root.code = %(code)s
 ORDER BY n.depth, n.code, po.role, po.started_at
""",
        {"code": code},
    )
