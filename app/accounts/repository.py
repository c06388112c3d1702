"""All SQL of accounts. Functions take the connection first; none commits.

Accounts own `user_account`, `grant`, `refresh_token`, `audit_log` and `login_throttle`:
other packages read them only through the functions here. `grant` is a reserved word
in SQL: it is always written quoted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from grid.db import Conn, Row, execute, fetch_all, fetch_one, fetch_value

# One indexed query: the user row, live grants and current posts (the caller's principal).
PRINCIPAL_SQL = """
SELECT u.id, u.county_code, u.person_id, u.phone, u.disabled_at, u.password_changed_at, pe.name,
  COALESCE((SELECT json_agg(json_build_object(
             'role', g.role, 'tier', g.tier, 'node_id', n.id, 'code', n.code, 'name', n.name,
             'level', n.level, 'path', n.path::text, 'department_id', g.department_id,
             'department_code', d.code, 'county_code', n.county_code) ORDER BY g.id)
              FROM "grant" g JOIN node n ON n.id = g.node_id LEFT JOIN department d ON d.id = g.department_id
             WHERE g.user_id = u.id AND g.revoked_at IS NULL), '[]') AS grants,
  COALESCE((SELECT json_agg(json_build_object(
             'post_id', po.id, 'post_role', po.role, 'node_id', n.id, 'code', n.code, 'name', n.name,
             'level', n.level, 'path', n.path::text) ORDER BY n.depth, n.code)
              FROM post po JOIN node n ON n.id = po.node_id
             WHERE po.person_id = u.person_id AND po.ended_at IS NULL), '[]') AS posts,
  COALESCE((SELECT r.name FROM node r WHERE r.county_code = u.county_code AND r.parent_id IS NULL
             ORDER BY r.id LIMIT 1), u.county_code) AS county_name
  FROM user_account u JOIN person pe ON pe.id = u.person_id
 WHERE u.id = %(id)s
"""


async def principal_row(conn: Conn, *, user_id: int) -> Row | None:
    return await fetch_one(conn, PRINCIPAL_SQL, {"id": user_id})


async def user_by_phone(conn: Conn, *, phone: str) -> Row | None:
    return await fetch_one(
        conn,
        "SELECT id, county_code, password_hash, disabled_at FROM user_account WHERE phone = %(phone)s",
        {"phone": phone},
    )


_USER_COLUMNS = "u.id, u.phone, u.person_id, pe.name, u.disabled_at, u.created_at"


async def live_users_by_phone(conn: Conn, *, phones: Sequence[str]) -> list[Row]:
    """Accounts not disabled among these phones, with their password hashes."""
    return await fetch_all(
        conn,
        "SELECT id, phone, password_hash FROM user_account WHERE phone = ANY(%(p)s) AND disabled_at IS NULL"
        " ORDER BY phone",
        {"p": list(phones)},
    )


async def get_user(conn: Conn, *, user_id: int, county_code: str | None = None) -> Row | None:
    """A user; with `county_code` (an admin's), only one of that county."""
    county = "" if county_code is None else " AND u.county_code = %(cc)s"
    return await fetch_one(
        conn,
        f"SELECT {_USER_COLUMNS} FROM user_account u JOIN person pe ON pe.id = u.person_id WHERE u.id = %(id)s{county}",
        {"id": user_id, "cc": county_code},
    )


async def list_users(conn: Conn, *, county_code: str, after_id: int | None, limit: int) -> list[Row]:
    after = "" if after_id is None else " AND u.id > %(after_id)s"
    return await fetch_all(
        conn,
        f"""
SELECT {_USER_COLUMNS}
  FROM user_account u JOIN person pe ON pe.id = u.person_id
 WHERE u.county_code = %(cc)s{after}
 ORDER BY u.id LIMIT %(limit)s
""",
        {"after_id": after_id, "limit": limit, "cc": county_code},
    )


async def insert_user(conn: Conn, *, county_code: str, person_id: int, phone: str, password_hash: str) -> int:
    return int(
        await fetch_value(
            conn,
            """
INSERT INTO user_account (county_code, person_id, phone, password_hash)
VALUES (%(cc)s, %(person_id)s, %(phone)s, %(hash)s) RETURNING id
""",
            {"cc": county_code, "person_id": person_id, "phone": phone, "hash": password_hash},
        )
    )


async def set_disabled(conn: Conn, *, user_id: int, at: datetime | None) -> None:
    await execute(conn, "UPDATE user_account SET disabled_at = %(at)s WHERE id = %(id)s", {"id": user_id, "at": at})


async def set_password(conn: Conn, *, user_id: int, password_hash: str, changed: bool = True) -> None:
    """A new password (`changed`: access tokens issued before it stop working), or the
    same password hashed again with newer parameters (not `changed`)."""
    since = ", password_changed_at = now()" if changed else ""
    await execute(
        conn,
        f"UPDATE user_account SET password_hash = %(hash)s{since} WHERE id = %(id)s",
        {"id": user_id, "hash": password_hash},
    )


async def post_holders_without_account(conn: Conn, *, code: str) -> list[Row]:
    """People holding a current post under `code` (itself included) who cannot log in yet."""
    return await fetch_all(
        conn,
        """
SELECT DISTINCT ON (pe.id) pe.id AS person_id, pe.name, pe.phone, n.code AS node_code, po.role
  FROM node root
  JOIN node n ON n.path <@ root.path
  JOIN post po ON po.node_id = n.id AND po.ended_at IS NULL
  JOIN person pe ON pe.id = po.person_id
 WHERE root.code = %(code)s AND pe.phone IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM user_account u WHERE u.person_id = pe.id OR u.phone = pe.phone)
 ORDER BY pe.id, n.depth
""",
        {"code": code},
    )


async def insert_grant(
    conn: Conn, *, county_code: str, user_id: int, role: str, tier: str | None, node_id: int,
    department_id: int | None = None,
) -> None:  # fmt: skip
    """Idempotent: granting a live grant again changes nothing. `county_code` is the
    node's county: the grant lives with its node (a city account's grants lie in several)."""
    await execute(
        conn,
        """
INSERT INTO "grant" (county_code, user_id, role, tier, node_id, department_id)
VALUES (%(cc)s, %(user_id)s, %(role)s, %(tier)s, %(node_id)s, %(department_id)s)
ON CONFLICT (user_id, role, node_id, county_code) WHERE revoked_at IS NULL DO NOTHING
""",
        {"cc": county_code, "user_id": user_id, "role": role, "tier": tier, "node_id": node_id,
         "department_id": department_id},
    )  # fmt: skip


async def mediators(conn: Conn, *, tier: str, node_id: int) -> list[int]:
    """People granted the mediator role for this tier on this node (the room's members)."""
    rows = await fetch_all(
        conn,
        """
SELECT DISTINCT u.person_id FROM "grant" g JOIN user_account u ON u.id = g.user_id
 WHERE g.role = 'mediator' AND g.tier = %(tier)s AND g.node_id = %(node_id)s
   AND g.revoked_at IS NULL AND u.disabled_at IS NULL
 ORDER BY u.person_id
""",
        {"tier": tier, "node_id": node_id},
    )
    return [r["person_id"] for r in rows]


# --- refresh tokens -------------------------------------------------------------


async def insert_refresh_token(
    conn: Conn, *, user_id: int, county_code: str, family_id: uuid.UUID, token_hash: str, expires_at: datetime
) -> None:
    await execute(
        conn,
        """
INSERT INTO refresh_token (user_id, county_code, family_id, token_hash, expires_at)
VALUES (%(user_id)s, %(cc)s, %(family_id)s, %(hash)s, %(expires_at)s)
""",
        {"user_id": user_id, "cc": county_code, "family_id": family_id, "hash": token_hash, "expires_at": expires_at},
    )


async def refresh_token_for_update(conn: Conn, *, token_hash: str) -> Row | None:
    """Locks the row, so two concurrent uses of one token are serialised: the second is a reuse."""
    return await fetch_one(
        conn,
        """
SELECT id, user_id, county_code, family_id, expires_at, used_at, revoked_at FROM refresh_token
 WHERE token_hash = %(hash)s FOR UPDATE
""",
        {"hash": token_hash},
    )


async def mark_refresh_token_used(conn: Conn, *, token_id: int, at: datetime) -> None:
    await execute(conn, "UPDATE refresh_token SET used_at = %(at)s WHERE id = %(id)s", {"id": token_id, "at": at})


async def revoke_family(conn: Conn, *, family_id: uuid.UUID, at: datetime) -> int:
    return await execute(
        conn,
        "UPDATE refresh_token SET revoked_at = %(at)s WHERE family_id = %(f)s AND revoked_at IS NULL",
        {"f": family_id, "at": at},
    )


async def revoke_user_refresh_tokens(conn: Conn, *, user_id: int, at: datetime) -> int:
    return await execute(
        conn,
        "UPDATE refresh_token SET revoked_at = %(at)s WHERE user_id = %(u)s AND revoked_at IS NULL",
        {"u": user_id, "at": at},
    )


# --- audit ----------------------------------------------------------------------


async def insert_audit(
    conn: Conn, *, county_code: str, actor_user_id: int | None, action: str, target: str | None,
    ip: str | None, details: dict[str, Any],
) -> None:  # fmt: skip
    await execute(
        conn,
        """
INSERT INTO audit_log (county_code, actor_user_id, action, target, ip, details)
VALUES (%(cc)s, %(actor)s, %(action)s, %(target)s, %(ip)s, %(details)s::jsonb)
""",
        {"cc": county_code, "actor": actor_user_id, "action": action, "target": target, "ip": ip,
         "details": json.dumps(details, ensure_ascii=False, default=str)},
    )  # fmt: skip


@dataclass(frozen=True)
class AuditedRead:
    """A read of personal data and its audit row in one statement (grid.db.ReadAudit).

    The read's rows carry `audit_target` and `audit_item`; the audit row gets the
    target of the first row and `{key: [every item that is not NULL]}` as details, and
    is written only when there is such an item. A data-modifying CTE runs to completion
    whether or not the outer query reads it, and in the same transaction as the read.
    """

    county_code: str
    actor_user_id: int
    action: str
    key: str  # the details' key, e.g. "phones"
    ip: str | None = None
    params: Mapping[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", {
            "audit_county": self.county_code, "audit_actor": self.actor_user_id, "audit_action": self.action,
            "audit_ip": self.ip, "audit_key": self.key,
        })  # fmt: skip

    def wrap(self, query: str) -> str:
        return _audited(query)


_wrapped: dict[str, str] = {}


def _audited(query: str) -> str:
    """The audited form of a read; built once per query text, so it is prepared like any other."""
    found = _wrapped.get(query)
    if found is None:
        found = _wrapped[query] = f"""
WITH shown AS MATERIALIZED ({query}),
audit AS (
  INSERT INTO audit_log (county_code, actor_user_id, action, target, ip, details)
  SELECT %(audit_county)s, %(audit_actor)s, %(audit_action)s, min(audit_target), %(audit_ip)s,
         jsonb_build_object(%(audit_key)s::text, jsonb_agg(audit_item))
    FROM shown WHERE audit_item IS NOT NULL
  HAVING count(*) > 0
)
SELECT * FROM shown
"""
    return found


async def audit_page(
    conn: Conn, *, county_code: str, before_id: int | None, limit: int, action: str | None,
    actor_user_id: int | None,
) -> list[Row]:  # fmt: skip
    """The county's, newest first, keyset-paginated on the id. Only the filters given are in
    the SQL, so each combination gets a plan that fits it."""
    where = ["a.county_code = %(cc)s"] + [cond for cond, value in (("a.id < %(before)s", before_id), ("a.action = %(action)s", action),
                                      ("a.actor_user_id = %(actor)s", actor_user_id)) if value is not None]  # fmt: skip
    return await fetch_all(
        conn,
        f"""
SELECT a.id, a.at, a.actor_user_id, u.phone AS actor_phone, a.action, a.target, a.ip, a.details
  FROM audit_log a LEFT JOIN user_account u ON u.id = a.actor_user_id
 WHERE {" AND ".join(where)}
 ORDER BY a.id DESC LIMIT %(limit)s
""",
        {"before": before_id, "limit": limit, "action": action, "actor": actor_user_id, "cc": county_code},
    )


# --- login throttle -------------------------------------------------------------


async def seconds_locked(conn: Conn, *, key_hashes: Sequence[str]) -> float | None:
    """Seconds until the latest lock still in force among the keys ends (the database's
    clock, which set it), or None."""
    return await fetch_value(
        conn,
        "SELECT extract(epoch FROM max(locked_until) - now())::float8 FROM login_throttle"
        " WHERE key_hash = ANY(%(keys)s) AND locked_until > now()",
        {"keys": list(key_hashes)},
    )


async def count_failure(conn: Conn, *, key_hash: str, kind: str, leak_s: float | None = None) -> int:
    """One more failure on the key; returns its count. The count starts again after a day
    without failures; with `leak_s`, it also drops by one for every `leak_s` seconds since the
    last failure (so occasional typos behind a shared address never add up). The update
    reads the time from EXCLUDED, not now(): Citus takes only immutable functions there."""
    return int(
        await fetch_value(
            conn,
            """
INSERT INTO login_throttle (key_hash, kind, failures, last_failed_at) VALUES (%(key)s, %(kind)s, 1, now())
ON CONFLICT (key_hash) DO UPDATE SET last_failed_at = EXCLUDED.last_failed_at,
  failures = CASE WHEN extract(epoch FROM EXCLUDED.last_failed_at - login_throttle.last_failed_at) > 86400 THEN 1
                  WHEN %(leak)s::float8 IS NULL THEN login_throttle.failures + 1
                  ELSE greatest(login_throttle.failures - floor(
                         extract(epoch FROM EXCLUDED.last_failed_at - login_throttle.last_failed_at)
                         / %(leak)s::float8)::int, 0) + 1
             END
RETURNING failures
""",
            {"key": key_hash, "kind": kind, "leak": leak_s},
        )
    )


async def lock(conn: Conn, *, key_hash: str, seconds: float) -> None:
    await execute(
        conn,
        "UPDATE login_throttle SET locked_until = now() + make_interval(secs => %(s)s) WHERE key_hash = %(key)s",
        {"key": key_hash, "s": seconds},
    )


async def clear_throttle(conn: Conn, *, key_hashes: Sequence[str]) -> None:
    await execute(conn, "DELETE FROM login_throttle WHERE key_hash = ANY(%(keys)s)", {"keys": list(key_hashes)})
