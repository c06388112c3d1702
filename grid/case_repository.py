"""All SQL of cases. Functions take the session first; none commits."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

CASE_COLUMNS = """c.id, c.county_code, c.reporter_person_id, c.idempotency_key, c.request_hash, c.category,
  c.severity, c.description, c.crs, c.lon_reported, c.lat_reported, c.accuracy_m, c.floor,
  ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, c.outside_county, c.tier, c.state, c.rule_version,
  c.route_flags, c.occurred_at, c.client_recorded_at, c.reported_at, c.accept_by, c.resolve_by,
  c.deadline_no, c.warned_deadline_no, c.warn_at, c.outcome, c.agreement_text, c.failure_reason, c.satisfaction,
  c.closed_at, c.located_node_id, c.handling_node_id,
  hn.code AS handling_node_code, hn.name AS handling_node_name, hn.level AS handling_node_level,
  hn.path::text AS handling_path, ln.code AS located_node_code, ln.path::text AS located_path"""

CASE_FROM = """case_file c JOIN node hn ON hn.id = c.handling_node_id LEFT JOIN node ln ON ln.id = c.located_node_id"""


def active_rules(session: Session) -> RowMapping:
    return session.execute(text("SELECT version, rules FROM routing_rule_set WHERE active")).mappings().one()


def rules_by_version(session: Session, *, version: int) -> RowMapping:
    return session.execute(
        text("SELECT version, rules FROM routing_rule_set WHERE version = :v"), {"v": version}
    ).mappings().one()


def categories(session: Session) -> Sequence[RowMapping]:
    return session.execute(
        text("SELECT code, name_zh, name_en FROM category WHERE active ORDER BY sort, code")
    ).mappings().all()


def category_exists(session: Session, *, code: str) -> bool:
    return session.execute(text("SELECT 1 FROM category WHERE code = :c AND active"), {"c": code}).first() is not None


def find_by_key(session: Session, *, reporter_person_id: int, key: Any) -> RowMapping | None:
    return session.execute(
        text(f"SELECT {CASE_COLUMNS} FROM {CASE_FROM} WHERE c.reporter_person_id = :p AND c.idempotency_key = :k"),
        {"p": reporter_person_id, "k": key},
    ).mappings().first()


def insert_case(session: Session, *, row: dict[str, Any]) -> int | None:
    """The new case's id, or None if this reporter already used this key (a retry)."""
    return session.execute(
        text(
            """
INSERT INTO case_file (county_code, reporter_person_id, idempotency_key, request_hash, category, severity,
  description, crs, lon_reported, lat_reported, accuracy_m, floor, geom, located_node_id, outside_county,
  tier, handling_node_id, state, rule_version, route_flags, occurred_at, client_recorded_at, reported_at)
VALUES (:county_code, :reporter_person_id, :idempotency_key, :request_hash, :category, :severity,
  :description, :crs, :lon_reported, :lat_reported, :accuracy_m, :floor,
  ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :located_node_id, :outside_county,
  :tier, :handling_node_id, 'reported', :rule_version, :route_flags, :occurred_at, :client_recorded_at,
  :reported_at)
ON CONFLICT (reporter_person_id, idempotency_key) DO NOTHING
RETURNING id
"""
        ),
        row,
    ).scalar()


def insert_parties(session: Session, *, case_id: int, parties: Sequence[dict[str, Any]]) -> None:
    if parties:
        session.execute(
            text("INSERT INTO case_party (case_id, name, phone, role) VALUES (:case_id, :name, :phone, :role)"),
            [{"case_id": case_id, **p} for p in parties],
        )


def get_case(session: Session, *, case_id: int, lock: bool = False) -> RowMapping | None:
    # FOR UPDATE OF c: one action at a time per case, so the ledger chain stays linear.
    suffix = " FOR UPDATE OF c" if lock else ""
    return session.execute(
        text(f"SELECT {CASE_COLUMNS} FROM {CASE_FROM} WHERE c.id = :id{suffix}"), {"id": case_id}
    ).mappings().first()


def parties(session: Session, *, case_id: int) -> Sequence[RowMapping]:
    return session.execute(
        text("SELECT name, phone, role FROM case_party WHERE case_id = :id ORDER BY id"), {"id": case_id}
    ).mappings().all()


def recipients(session: Session, *, case_id: int) -> Sequence[RowMapping]:
    return session.execute(
        text(
            """
SELECT r.person_id, pe.name, r.role FROM case_recipient r JOIN person pe ON pe.id = r.person_id
 WHERE r.case_id = :id AND r.active ORDER BY r.role, r.id
"""
        ),
        {"id": case_id},
    ).mappings().all()


def is_recipient(session: Session, *, case_id: int, person_id: int) -> bool:
    return session.execute(
        text("SELECT 1 FROM case_recipient WHERE case_id = :c AND person_id = :p AND active"),
        {"c": case_id, "p": person_id},
    ).first() is not None


def replace_recipients(
    session: Session, *, case_id: int, recipients: Sequence[tuple[int, str]], at: datetime
) -> None:
    session.execute(text("UPDATE case_recipient SET active = false WHERE case_id = :c AND active"), {"c": case_id})
    if recipients:
        session.execute(
            text(
                "INSERT INTO case_recipient (case_id, person_id, role, assigned_at) VALUES (:c, :p, :r, :at)"
            ),
            [{"c": case_id, "p": p, "r": r, "at": at} for p, r in recipients],
        )


def update_case(session: Session, *, case_id: int, values: dict[str, Any]) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    session.execute(text(f"UPDATE case_file SET {sets}, updated_at = now() WHERE id = :id"), {**values, "id": case_id})


def last_event(session: Session, *, case_id: int) -> RowMapping | None:
    return session.execute(
        text("SELECT seq, hash FROM case_event WHERE case_id = :c ORDER BY seq DESC LIMIT 1"), {"c": case_id}
    ).mappings().first()


def insert_event(session: Session, *, row: dict[str, Any]) -> None:
    session.execute(
        text(
            """
INSERT INTO case_event (case_id, seq, actor_person_id, action, from_state, to_state, note, attachment_hashes,
  body, prev_hash, hash, signature, created_at)
VALUES (:case_id, :seq, :actor_person_id, :action, :from_state, :to_state, :note, :attachment_hashes,
  CAST(:body AS jsonb), :prev_hash, :hash, :signature, :created_at)
"""
        ),
        row,
    )


def events(session: Session, *, case_id: int) -> Sequence[RowMapping]:
    return session.execute(
        text(
            """
SELECT e.id, e.seq, e.actor_person_id, pe.name AS actor_name, e.action, e.from_state, e.to_state, e.note,
       e.attachment_hashes, e.body, e.prev_hash, e.hash, e.signature, e.created_at
  FROM case_event e LEFT JOIN person pe ON pe.id = e.actor_person_id
 WHERE e.case_id = :c ORDER BY e.seq
"""
        ),
        {"c": case_id},
    ).mappings().all()


def insert_notifications(session: Session, *, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(
            text(
                """
INSERT INTO notification (county_code, person_id, case_id, kind, title, body, dedupe_key, created_at,
  next_attempt_at)
VALUES (:county_code, :person_id, :case_id, :kind, :title, :body, :dedupe_key, :created_at, :created_at)
ON CONFLICT (dedupe_key) DO NOTHING
"""
            ),
            rows,
        )


def inbox(session: Session, *, person_id: int, after: int | None, limit: int) -> Sequence[RowMapping]:
    return session.execute(
        text(
            """
SELECT id, case_id, kind, title, body, created_at, read_at FROM notification
 WHERE person_id = :p AND (CAST(:after AS bigint) IS NULL OR id < :after)
 ORDER BY id DESC LIMIT :limit
"""
        ),
        {"p": person_id, "after": after, "limit": limit},
    ).mappings().all()


def mark_read(session: Session, *, person_id: int, ids: Sequence[int], at: datetime) -> int:
    return session.execute(
        text("UPDATE notification SET read_at = :at WHERE person_id = :p AND id = ANY(:ids) AND read_at IS NULL"),
        {"p": person_id, "ids": list(ids), "at": at},
    ).rowcount


def list_cases(session: Session, *, where: list[str], params: dict[str, Any], limit: int) -> Sequence[RowMapping]:
    sql = f"SELECT {CASE_COLUMNS} FROM {CASE_FROM} WHERE {' AND '.join(where) or 'true'} ORDER BY c.id DESC LIMIT :limit"
    return session.execute(text(sql), {**params, "limit": limit}).mappings().all()


def due_for_escalation(session: Session, *, now: datetime, batch: int) -> Sequence[int]:
    """Cases past a deadline, locked; a second worker skips them rather than waiting."""
    return session.execute(
        text(
            """
SELECT id FROM case_file
 WHERE (state IN ('reported', 'assigned', 'escalated', 'returned', 'reopened') AND accept_by <= :now)
    OR (state IN ('accepted', 'mediating', 'failed') AND resolve_by <= :now)
 ORDER BY id
 LIMIT :batch
 FOR UPDATE SKIP LOCKED
"""
        ),
        {"now": now, "batch": batch},
    ).scalars().all()


def due_for_warning(session: Session, *, now: datetime, batch: int) -> Sequence[int]:
    """Open cases inside their warning window, not yet warned for this deadline; locked."""
    return session.execute(
        text(
            """
SELECT id FROM case_file
 WHERE warned_deadline_no < deadline_no AND warn_at <= :now
   AND state IN ('assigned', 'accepted', 'mediating')
 ORDER BY id
 LIMIT :batch
 FOR UPDATE SKIP LOCKED
"""
        ),
        {"now": now, "batch": batch},
    ).scalars().all()


def insert_attachment(session: Session, *, row: dict[str, Any]) -> int | None:
    return session.execute(
        text(
            """
INSERT INTO attachment (case_id, sha256, content_type, size, path, uploaded_by, created_at)
VALUES (:case_id, :sha256, :content_type, :size, :path, :uploaded_by, :created_at)
ON CONFLICT (case_id, sha256) DO NOTHING RETURNING id
"""
        ),
        row,
    ).scalar()


def upsert_section(session: Session, *, case_id: int, section: str, body: str, person_id: int, at: datetime) -> None:
    session.execute(
        text(
            """
INSERT INTO case_section (case_id, section, body, updated_by, updated_at) VALUES (:c, :s, :b, :p, :at)
ON CONFLICT (case_id, section) DO UPDATE SET body = EXCLUDED.body, updated_by = EXCLUDED.updated_by,
  updated_at = EXCLUDED.updated_at
"""
        ),
        {"c": case_id, "s": section, "b": body, "p": person_id, "at": at},
    )


def sections(session: Session, *, case_id: int) -> Sequence[RowMapping]:
    return session.execute(
        text("SELECT section, body, updated_by, updated_at FROM case_section WHERE case_id = :c"), {"c": case_id}
    ).mappings().all()


def mediators(session: Session, *, tier: str, node_id: int) -> Sequence[int]:
    """People granted the mediator role for this tier on this node (the room's members)."""
    return session.execute(
        text(
            """
SELECT DISTINCT u.person_id FROM "grant" g JOIN user_account u ON u.id = g.user_id
 WHERE g.role = 'mediator' AND g.tier = :tier AND g.node_id = :node_id
   AND g.revoked_at IS NULL AND u.disabled_at IS NULL
 ORDER BY u.person_id
"""
        ),
        {"tier": tier, "node_id": node_id},
    ).scalars().all()
