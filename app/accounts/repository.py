"""All SQL of accounts. Functions take the session first; none commits.

`grant` is a reserved word in SQL: it is always written quoted here.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

# One indexed query per request: the user row, live grants and current posts.
_PRINCIPAL_SQL = text(
    """
SELECT u.id, u.county_code, u.person_id, u.phone, u.disabled_at, pe.name,
  COALESCE((SELECT json_agg(json_build_object(
             'role', g.role, 'tier', g.tier, 'node_id', n.id, 'code', n.code, 'name', n.name,
             'level', n.level, 'path', n.path::text) ORDER BY g.id)
              FROM "grant" g JOIN node n ON n.id = g.node_id
             WHERE g.user_id = u.id AND g.revoked_at IS NULL), '[]') AS grants,
  COALESCE((SELECT json_agg(json_build_object(
             'post_id', po.id, 'post_role', po.role, 'node_id', n.id, 'code', n.code, 'name', n.name,
             'level', n.level, 'path', n.path::text) ORDER BY n.depth, n.code)
              FROM post po JOIN node n ON n.id = po.node_id
             WHERE po.person_id = u.person_id AND po.ended_at IS NULL), '[]') AS posts
  FROM user_account u JOIN person pe ON pe.id = u.person_id
 WHERE u.id = :id
"""
)


def principal_row(session: Session, *, user_id: int) -> RowMapping | None:
    return session.execute(_PRINCIPAL_SQL, {"id": user_id}).mappings().first()


def person_id_by_phone(session: Session, *, phone: str) -> int | None:
    return session.execute(text("SELECT id FROM person WHERE phone = :phone"), {"phone": phone}).scalar()


def user_by_phone(session: Session, *, phone: str) -> RowMapping | None:
    return (
        session.execute(
            text("SELECT id, password_hash, disabled_at FROM user_account WHERE phone = :phone"), {"phone": phone}
        )
        .mappings()
        .first()
    )


def get_user(session: Session, *, user_id: int) -> RowMapping | None:
    return (
        session.execute(
            text(
                """
SELECT u.id, u.phone, u.person_id, pe.name, u.disabled_at, u.created_at
  FROM user_account u JOIN person pe ON pe.id = u.person_id WHERE u.id = :id
"""
            ),
            {"id": user_id},
        )
        .mappings()
        .first()
    )


def list_users(session: Session, *, after_id: int | None, limit: int) -> Sequence[RowMapping]:
    return (
        session.execute(
            text(
                """
SELECT u.id, u.phone, u.person_id, pe.name, u.disabled_at, u.created_at
  FROM user_account u JOIN person pe ON pe.id = u.person_id
 WHERE CAST(:after_id AS bigint) IS NULL OR u.id > :after_id
 ORDER BY u.id LIMIT :limit
"""
            ),
            {"after_id": after_id, "limit": limit},
        )
        .mappings()
        .all()
    )


def insert_user(session: Session, *, county_code: str, person_id: int, phone: str, password_hash: str) -> int:
    return session.execute(
        text(
            """
INSERT INTO user_account (county_code, person_id, phone, password_hash)
VALUES (:cc, :person_id, :phone, :hash) RETURNING id
"""
        ),
        {"cc": county_code, "person_id": person_id, "phone": phone, "hash": password_hash},
    ).scalar_one()


def set_disabled(session: Session, *, user_id: int, at: datetime | None) -> None:
    session.execute(text("UPDATE user_account SET disabled_at = :at WHERE id = :id"), {"id": user_id, "at": at})


def set_password(session: Session, *, user_id: int, password_hash: str) -> None:
    session.execute(
        text("UPDATE user_account SET password_hash = :hash, password_changed_at = now() WHERE id = :id"),
        {"id": user_id, "hash": password_hash},
    )


def post_holders_without_account(session: Session, *, code: str) -> Sequence[RowMapping]:
    """People holding a current post under `code` (itself included) who cannot log in yet."""
    return (
        session.execute(
            text(
                """
SELECT DISTINCT ON (pe.id) pe.id AS person_id, pe.name, pe.phone, n.code AS node_code, po.role
  FROM node root
  JOIN node n ON n.path <@ root.path
  JOIN post po ON po.node_id = n.id AND po.ended_at IS NULL
  JOIN person pe ON pe.id = po.person_id
 WHERE root.code = :code AND pe.phone IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM user_account u WHERE u.person_id = pe.id OR u.phone = pe.phone)
 ORDER BY pe.id, n.depth
"""
            ),
            {"code": code},
        )
        .mappings()
        .all()
    )


def node_brief(session: Session, *, code: str) -> RowMapping | None:
    return (
        session.execute(text("SELECT id, code, name, level, path::text AS path FROM node WHERE code = :code"),
                        {"code": code})  # fmt: skip
        .mappings()
        .first()
    )


def insert_grant(
    session: Session, *, county_code: str, user_id: int, role: str, tier: str | None, node_id: int
) -> None:
    """Idempotent: granting a live grant again changes nothing."""
    session.execute(
        text(
            """
INSERT INTO "grant" (county_code, user_id, role, tier, node_id)
VALUES (:cc, :user_id, :role, :tier, :node_id)
ON CONFLICT (user_id, role, node_id) WHERE revoked_at IS NULL DO NOTHING
"""
        ),
        {"cc": county_code, "user_id": user_id, "role": role, "tier": tier, "node_id": node_id},
    )


# --- refresh tokens -------------------------------------------------------------


def insert_refresh_token(
    session: Session, *, user_id: int, family_id: uuid.UUID, token_hash: str, expires_at: datetime
) -> None:
    session.execute(
        text(
            """
INSERT INTO refresh_token (user_id, family_id, token_hash, expires_at)
VALUES (:user_id, :family_id, :hash, :expires_at)
"""
        ),
        {"user_id": user_id, "family_id": family_id, "hash": token_hash, "expires_at": expires_at},
    )


def refresh_token_for_update(session: Session, *, token_hash: str) -> RowMapping | None:
    """Locks the row, so two concurrent uses of one token are serialised: the second is a reuse."""
    return (
        session.execute(
            text(
                """
SELECT id, user_id, family_id, expires_at, used_at, revoked_at FROM refresh_token
 WHERE token_hash = :hash FOR UPDATE
"""
            ),
            {"hash": token_hash},
        )
        .mappings()
        .first()
    )


def mark_refresh_token_used(session: Session, *, token_id: int, at: datetime) -> None:
    session.execute(text("UPDATE refresh_token SET used_at = :at WHERE id = :id"), {"id": token_id, "at": at})


def revoke_family(session: Session, *, family_id: uuid.UUID, at: datetime) -> int:
    return session.execute(
        text("UPDATE refresh_token SET revoked_at = :at WHERE family_id = :f AND revoked_at IS NULL"),
        {"f": family_id, "at": at},
    ).rowcount


def revoke_user_refresh_tokens(session: Session, *, user_id: int, at: datetime) -> int:
    return session.execute(
        text("UPDATE refresh_token SET revoked_at = :at WHERE user_id = :u AND revoked_at IS NULL"),
        {"u": user_id, "at": at},
    ).rowcount


# --- audit ----------------------------------------------------------------------


def insert_audit(
    session: Session, *, county_code: str, actor_user_id: int | None, action: str, target: str | None,
    ip: str | None, details: dict[str, Any],
) -> int:  # fmt: skip
    return session.execute(
        text(
            """
INSERT INTO audit_log (county_code, actor_user_id, action, target, ip, details)
VALUES (:cc, :actor, :action, :target, :ip, CAST(:details AS jsonb)) RETURNING id
"""
        ),
        {"cc": county_code, "actor": actor_user_id, "action": action, "target": target, "ip": ip,
         "details": json.dumps(details, ensure_ascii=False, default=str)},
    ).scalar_one()  # fmt: skip


def audit_page(
    session: Session, *, before_id: int | None, limit: int, action: str | None, actor_user_id: int | None
) -> Sequence[RowMapping]:
    """Newest first, keyset-paginated on the id."""
    return (
        session.execute(
            text(
                """
SELECT a.id, a.at, a.actor_user_id, u.phone AS actor_phone, a.action, a.target, a.ip, a.details
  FROM audit_log a LEFT JOIN user_account u ON u.id = a.actor_user_id
 WHERE (CAST(:before AS bigint) IS NULL OR a.id < :before)
   AND (CAST(:action AS text) IS NULL OR a.action = :action)
   AND (CAST(:actor AS bigint) IS NULL OR a.actor_user_id = :actor)
 ORDER BY a.id DESC LIMIT :limit
"""
            ),
            {"before": before_id, "limit": limit, "action": action, "actor": actor_user_id},
        )
        .mappings()
        .all()
    )


# --- login throttle -------------------------------------------------------------


def locked_until(session: Session, *, key_hashes: Sequence[str]) -> datetime | None:
    """The latest lock still in force among the keys, if any."""
    return session.execute(
        text("SELECT max(locked_until) FROM login_throttle WHERE key_hash = ANY(:keys) AND locked_until > now()"),
        {"keys": list(key_hashes)},
    ).scalar()


def count_failure(session: Session, *, key_hash: str, kind: str) -> int:
    """One more failure on the key; returns the failures in a row so far."""
    return session.execute(
        text(
            """
INSERT INTO login_throttle (key_hash, kind, failures, last_failed_at) VALUES (:key, :kind, 1, now())
ON CONFLICT (key_hash) DO UPDATE SET last_failed_at = now(),
  -- a day without failures starts the count again
  failures = CASE WHEN login_throttle.last_failed_at < now() - interval '1 day' THEN 1
                  ELSE login_throttle.failures + 1 END
RETURNING failures
"""
        ),
        {"key": key_hash, "kind": kind},
    ).scalar_one()


def lock(session: Session, *, key_hash: str, seconds: int) -> None:
    session.execute(
        text("UPDATE login_throttle SET locked_until = now() + make_interval(secs => :s) WHERE key_hash = :key"),
        {"key": key_hash, "s": seconds},
    )


def clear_throttle(session: Session, *, key_hash: str) -> None:
    session.execute(text("DELETE FROM login_throttle WHERE key_hash = :key"), {"key": key_hash})
