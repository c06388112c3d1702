"""All SQL of the grid package. Functions take the session first; none commits."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

NODE_COLUMNS = """n.id, n.code, n.name, n.level, n.chain, n.depth, n.floor_from, n.floor_to,
                  n.retired_at, p.code AS parent_code"""

# Deepest covering node first; ties on shared edges go to the lowest code.
# Pieces are small (<= 255 vertices), so the county outline never costs a full test.
_LOCATE_SQL = text(
    """
WITH hit AS (
  SELECT node_id FROM node_piece
   WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
   ORDER BY depth DESC, code
   LIMIT 1
), deepest AS (
  SELECT n.id, n.path FROM node n JOIN hit ON n.id = hit.node_id
), members AS (
  SELECT a.id, false AS is_floor
    FROM deepest d JOIN node a ON a.id = ANY (string_to_array(ltree2text(d.path), '.')::bigint[])
  UNION ALL
  SELECT f.id, true
    FROM deepest d JOIN node f ON f.parent_id = d.id
   WHERE :with_floors AND f.level = 'floor' AND f.retired_at IS NULL
)
SELECT n.id, n.code, n.name, n.level, n.chain, n.depth, n.floor_from, n.floor_to, m.is_floor,
       po.role, po.person_id, pe.name AS person_name, pe.phone
  FROM members m
  JOIN node n ON n.id = m.id
  LEFT JOIN post po ON po.node_id = n.id AND po.ended_at IS NULL
  LEFT JOIN person pe ON pe.id = po.person_id
 ORDER BY n.depth DESC, n.code, po.role, po.started_at
"""
)


def locate_rows(session: Session, *, lon: float, lat: float, with_floors: bool) -> Sequence[RowMapping]:
    """The chain above the deepest node covering the point, with current posts.

    Rows come deepest first; floors of the deepest node are included on request.
    No rows means no node covers the point.
    """
    return session.execute(_LOCATE_SQL, {"lon": lon, "lat": lat, "with_floors": with_floors}).mappings().all()


def get_node(session: Session, *, code: str) -> RowMapping | None:
    # A floor has no footprint of its own: it shows its unit's.
    return (
        session.execute(
            text(
                f"""
SELECT {NODE_COLUMNS}, ST_AsGeoJSON(COALESCE(n.geom, p.geom), 15) AS geometry,
       (SELECT array_agg(a.code ORDER BY a.depth) FROM node a
         WHERE a.id = ANY (string_to_array(ltree2text(n.path), '.')::bigint[])) AS path_codes
  FROM node n LEFT JOIN node p ON p.id = n.parent_id
 WHERE n.code = :code
"""
            ),
            {"code": code},
        )
        .mappings()
        .first()
    )


def node_id_by_code(session: Session, *, code: str) -> int | None:
    return session.execute(text("SELECT id FROM node WHERE code = :code"), {"code": code}).scalar()


def children(session: Session, *, code: str) -> Sequence[RowMapping]:
    return (
        session.execute(
            text(
                f"""
SELECT {NODE_COLUMNS} FROM node n JOIN node p ON p.id = n.parent_id
 WHERE p.code = :code AND n.retired_at IS NULL
 ORDER BY n.code
"""
            ),
            {"code": code},
        )
        .mappings()
        .all()
    )


def list_nodes(
    session: Session,
    *,
    level: str | None,
    parent_code: str | None,
    bbox: tuple[float, float, float, float] | None,
    after_code: str | None,
    limit: int,
) -> Sequence[RowMapping]:
    """A page of nodes in code order (keyset pagination on the unique code)."""
    where = ["n.retired_at IS NULL"]
    params: dict[str, Any] = {"limit": limit}
    if level:
        where.append("n.level = :level")
        params["level"] = level
    if parent_code:
        where.append("p.code = :parent_code")
        params["parent_code"] = parent_code
    if bbox:
        where.append("COALESCE(n.geom, p.geom) && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)")
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    if after_code:
        where.append("n.code > :after_code")
        params["after_code"] = after_code
    sql = f"""
SELECT {NODE_COLUMNS} FROM node n LEFT JOIN node p ON p.id = n.parent_id
 WHERE {' AND '.join(where)}
 ORDER BY n.code
 LIMIT :limit
"""
    return session.execute(text(sql), params).mappings().all()


def node_posts(session: Session, *, node_id: int) -> Sequence[RowMapping]:
    return (
        session.execute(
            text(
                """
SELECT po.id, po.role, po.person_id, pe.name, pe.phone, po.started_at, po.ended_at
  FROM post po JOIN person pe ON pe.id = po.person_id
 WHERE po.node_id = :node_id
 ORDER BY po.ended_at IS NOT NULL, po.ended_at DESC, po.role, po.started_at
"""
            ),
            {"node_id": node_id},
        )
        .mappings()
        .all()
    )


def county_loaded(session: Session, *, code: str) -> bool:
    return session.execute(text("SELECT 1 FROM node WHERE code = :code"), {"code": code}).first() is not None


_INSERT_NODE = """
INSERT INTO node (county_code, code, name, level, chain, parent_id, geom, floor_from, floor_to)
VALUES (:county_code, :code, :name, :level, :chain,
        (SELECT id FROM node WHERE code = :parent_code),
        ST_Multi(ST_GeomFromWKB(:wkb, 4326)), :floor_from, :floor_to)
"""


def insert_node(session: Session, *, row: dict[str, Any]) -> int:
    """One node; `row` has code, name, level, chain, parent_code, county_code, wkb, floor_from, floor_to."""
    return session.execute(text(_INSERT_NODE + " RETURNING id"), row).scalar_one()


def insert_nodes(session: Session, *, rows: Iterable[dict[str, Any]]) -> None:
    """Many nodes at once, parents before children (psycopg pipelines executemany)."""
    batch = list(rows)
    if batch:
        session.execute(text(_INSERT_NODE), batch)


def upsert_person(session: Session, *, county_code: str, name: str, phone: str | None) -> int:
    """A person is known by phone number; a new name for the same phone updates it."""
    if phone is None:
        return session.execute(
            text("INSERT INTO person (county_code, name) VALUES (:cc, :name) RETURNING id"),
            {"cc": county_code, "name": name},
        ).scalar_one()
    return session.execute(
        text(
            """
INSERT INTO person (county_code, name, phone) VALUES (:cc, :name, :phone)
ON CONFLICT (phone) DO UPDATE SET name = EXCLUDED.name
RETURNING id
"""
        ),
        {"cc": county_code, "name": name, "phone": phone},
    ).scalar_one()


def insert_people_and_posts(session: Session, *, county_code: str, posts: Iterable[dict[str, Any]]) -> None:
    """Bulk load of a roster: rows with node_code, role, name, phone, started_at, ended_at."""
    rows = list(posts)
    if not rows:
        return
    session.execute(
        text("INSERT INTO person (county_code, name, phone) VALUES (:county_code, :name, :phone)"),
        [{"county_code": county_code, "name": r["name"], "phone": r["phone"]} for r in rows],
    )
    session.execute(
        text(
            """
INSERT INTO post (county_code, node_id, person_id, role, started_at, ended_at)
SELECT :county_code, n.id, pe.id, :role, :started_at, :ended_at
  FROM node n, person pe WHERE n.code = :node_code AND pe.phone = :phone
"""
        ),
        [{**r, "county_code": county_code} for r in rows],
    )


def current_post(session: Session, *, node_id: int, role: str, person_id: int | None = None) -> RowMapping | None:
    sql = "SELECT id, person_id, started_at FROM post WHERE node_id = :node_id AND role = :role AND ended_at IS NULL"
    params: dict[str, Any] = {"node_id": node_id, "role": role}
    if person_id is not None:
        sql += " AND person_id = :person_id"
        params["person_id"] = person_id
    return session.execute(text(sql + " ORDER BY started_at LIMIT 1"), params).mappings().first()


def end_post(session: Session, *, post_id: int, at: datetime) -> None:
    session.execute(text("UPDATE post SET ended_at = :at WHERE id = :id"), {"id": post_id, "at": at})


def start_post(
    session: Session, *, county_code: str, node_id: int, person_id: int, role: str, at: datetime
) -> int:
    return session.execute(
        text(
            """
INSERT INTO post (county_code, node_id, person_id, role, started_at)
VALUES (:cc, :node_id, :person_id, :role, :at) RETURNING id
"""
        ),
        {"cc": county_code, "node_id": node_id, "person_id": person_id, "role": role, "at": at},
    ).scalar_one()


def subtree_features(session: Session, *, code: str) -> Iterable[RowMapping]:
    """Every live node under `code` (itself included), parents first, geometry as GeoJSON."""
    return (
        session.execute(
            text(
                f"""
SELECT {NODE_COLUMNS}, ST_AsGeoJSON(COALESCE(n.geom, p.geom), 15) AS geometry
  FROM node root
  JOIN node n ON n.path <@ root.path
  LEFT JOIN node p ON p.id = n.parent_id
 WHERE root.code = :code AND n.retired_at IS NULL
 ORDER BY n.depth, n.code
"""
            ),
            {"code": code},
        )
        .mappings()
        .yield_per(2000)
    )


_CHAIN_OF_NODE_SQL = text(
    """
WITH members AS (
  SELECT a.id, false AS is_floor
    FROM node d JOIN node a ON a.id = ANY (string_to_array(ltree2text(d.path), '.')::bigint[])
   WHERE d.id = :node_id
)
SELECT n.id, n.code, n.name, n.level, n.chain, n.depth, n.floor_from, n.floor_to, m.is_floor,
       po.role, po.person_id, pe.name AS person_name, pe.phone
  FROM members m
  JOIN node n ON n.id = m.id
  LEFT JOIN post po ON po.node_id = n.id AND po.ended_at IS NULL
  LEFT JOIN person pe ON pe.id = po.person_id
 ORDER BY n.depth DESC, n.code, po.role, po.started_at
"""
)


def chain_of_node(session: Session, *, node_id: int) -> Sequence[RowMapping]:
    """The same rows as `locate_rows`, for a known node: itself and its ancestors."""
    return session.execute(_CHAIN_OF_NODE_SQL, {"node_id": node_id}).mappings().all()


def deepest_current_post_node(session: Session, *, person_id: int) -> int | None:
    """The deepest node the person currently holds a post on (their own place in the grid)."""
    return session.execute(
        text(
            """
SELECT n.id FROM post po JOIN node n ON n.id = po.node_id
 WHERE po.person_id = :pid AND po.ended_at IS NULL AND n.retired_at IS NULL
 ORDER BY n.depth DESC, n.code LIMIT 1
"""
        ),
        {"pid": person_id},
    ).scalar()
