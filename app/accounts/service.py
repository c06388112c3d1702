"""Use cases of accounts: log in, rotate, log out, who is asking, admin, audit.

Keyword-only, session first. Each use case commits once at its end, and some
commit on their failure path on purpose: a failed login must still count
against the limit, and a detected token reuse must still revoke the family.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from app.accounts import repository as repo
from app.accounts import security
from app.accounts.exceptions import (
    AccountConflict,
    InvalidCredentials,
    InvalidGrant,
    InvalidRefreshToken,
    NotAuthenticated,
    TooManyAttempts,
    UserNotFound,
)
from app.accounts.scope import Principal, ScopeNode, grant_problem
from app.settings import Settings
from grid import repository as grid_repository
from grid.exceptions import InvalidInput, NodeNotFound

PHONE_RE = re.compile(r"^1\d{10}$")
WRONG_LOGIN = "the phone number or the password is wrong"


@dataclass(frozen=True)
class Tokens:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_at: datetime
    token_type: str = "bearer"


@dataclass(frozen=True)
class GrantIn:
    role: str
    node_code: str
    tier: str | None = None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _issue(*, session: Session, settings: Settings, user_id: int, family_id: uuid.UUID) -> Tokens:
    access, expires_in = security.issue_access_token(settings=settings, user_id=user_id)
    refresh, refresh_hash = security.new_refresh_token()
    expires_at = _now() + timedelta(days=settings.refresh_token_days)
    repo.insert_refresh_token(
        session, user_id=user_id, family_id=family_id, token_hash=refresh_hash, expires_at=expires_at
    )
    return Tokens(access_token=access, expires_in=expires_in, refresh_token=refresh, refresh_expires_at=expires_at)


def record(
    *, session: Session, county_code: str, actor_user_id: int | None, action: str, target: str | None,
    ip: str | None, details: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """One audit row, in the caller's transaction."""
    repo.insert_audit(
        session, county_code=county_code, actor_user_id=actor_user_id, action=action, target=target, ip=ip,
        details=details or {},
    )  # fmt: skip


def note(
    *, session: Session, actor: Principal, action: str, target: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Audit something the caller just did or read, and commit: the use case of a read."""
    record(session=session, county_code=actor.county_code, actor_user_id=actor.user_id, action=action,
           target=target, ip=actor.ip, details=details)  # fmt: skip
    session.commit()


# --- logging in and out ---------------------------------------------------------


def login(*, session: Session, settings: Settings, phone: str, password: str, ip: str | None) -> Tokens:
    """Phone + password to tokens; the same error whether the phone is unknown or the password wrong."""
    phone = phone.strip()
    keys = {"phone": security.hash_key("phone", phone), "ip": security.hash_key("ip", ip or "-")}
    until = repo.locked_until(session, key_hashes=list(keys.values()))
    if until is not None:
        wait = max(1, int((until - _now()).total_seconds()) + 1)
        raise TooManyAttempts(f"too many failed logins; try again in {wait} seconds", retry_after=wait)
    passwords = security.Passwords(settings)
    user = repo.user_by_phone(session, phone=phone)
    ok = passwords.verify(user["password_hash"] if user else None, password)
    if not ok or user is None or user["disabled_at"] is not None:
        thresholds = {"phone": settings.login_max_failures_phone, "ip": settings.login_max_failures_ip}
        for kind, key in keys.items():
            failures = repo.count_failure(session, key_hash=key, kind=kind)
            seconds = security.lockout_seconds(
                failures=failures, threshold=thresholds[kind], base=settings.login_lockout_seconds
            )
            if seconds:
                repo.lock(session, key_hash=key, seconds=seconds)
        record(session=session, county_code=settings.county_code, actor_user_id=None, action="auth.login_failed",
               target=f"user:{user['id']}" if user else None, ip=ip)  # fmt: skip
        session.commit()
        raise InvalidCredentials(WRONG_LOGIN)
    repo.clear_throttle(session, key_hash=keys["phone"])
    if passwords.needs_rehash(user["password_hash"]):
        repo.set_password(session, user_id=user["id"], password_hash=passwords.hash(password))
    tokens = _issue(session=session, settings=settings, user_id=user["id"], family_id=uuid.uuid4())
    record(session=session, county_code=settings.county_code, actor_user_id=user["id"], action="auth.login",
           target=f"user:{user['id']}", ip=ip)  # fmt: skip
    session.commit()
    return tokens


def refresh(*, session: Session, settings: Settings, refresh_token: str, ip: str | None) -> Tokens:
    """Rotate: the presented token is spent and a new one of the same family returned.

    A token presented a second time means two parties hold it, one of them a thief;
    every token of the family is revoked, so both have to log in again.
    """
    row = repo.refresh_token_for_update(session, token_hash=security.hash_token(refresh_token))
    if row is None:
        raise InvalidRefreshToken("this refresh token is not known; log in again")
    now = _now()
    if row["revoked_at"] is not None:
        raise InvalidRefreshToken("this refresh token has been revoked; log in again")
    if row["used_at"] is not None:
        revoked = repo.revoke_family(session, family_id=row["family_id"], at=now)
        record(session=session, county_code=settings.county_code, actor_user_id=row["user_id"],
               action="auth.refresh_reused", target=f"user:{row['user_id']}", ip=ip,
               details={"family_id": str(row["family_id"]), "revoked": revoked})  # fmt: skip
        session.commit()
        raise InvalidRefreshToken(
            "this refresh token was already used once; every session of this login has been closed "
            "as a precaution. Log in again."
        )
    if row["expires_at"] <= now:
        raise InvalidRefreshToken("this refresh token has expired; log in again")
    user = repo.get_user(session, user_id=row["user_id"])
    if user is None or user["disabled_at"] is not None:
        repo.revoke_family(session, family_id=row["family_id"], at=now)
        session.commit()
        raise InvalidRefreshToken("this refresh token has been revoked; log in again")
    repo.mark_refresh_token_used(session, token_id=row["id"], at=now)
    tokens = _issue(session=session, settings=settings, user_id=row["user_id"], family_id=row["family_id"])
    session.commit()
    return tokens


def logout(*, session: Session, settings: Settings, refresh_token: str, ip: str | None) -> None:
    """Revoke the login the refresh token belongs to. Unknown tokens are ignored quietly."""
    row = repo.refresh_token_for_update(session, token_hash=security.hash_token(refresh_token))
    if row is None:
        return
    repo.revoke_family(session, family_id=row["family_id"], at=_now())
    record(session=session, county_code=settings.county_code, actor_user_id=row["user_id"], action="auth.logout",
           target=f"user:{row['user_id']}", ip=ip)  # fmt: skip
    session.commit()


def principal(*, session: Session, user_id: int, ip: str | None = None) -> Principal:
    """Who is asking, read fresh on every request so a disabled user is out at once."""
    row = repo.principal_row(session, user_id=user_id)
    if row is None or row["disabled_at"] is not None:
        raise NotAuthenticated("this account is disabled or no longer exists")
    return principal_from_row(row, ip=ip)


def principal_from_row(row: RowMapping | dict[str, Any], *, ip: str | None = None) -> Principal:
    grants = tuple(
        ScopeNode(role=g["role"], tier=g["tier"], node_id=g["node_id"], code=g["code"], name=g["name"],
                  level=g["level"], path=g["path"])
        for g in row["grants"]
    )  # fmt: skip
    posts = tuple(
        ScopeNode(role="chief", node_id=p["node_id"], code=p["code"], name=p["name"], level=p["level"],
                  path=p["path"], post_id=p["post_id"], post_role=p["post_role"])
        for p in row["posts"]
    )  # fmt: skip
    return Principal(user_id=row["id"], county_code=row["county_code"], person_id=row["person_id"],
                     name=row["name"], phone=row["phone"], grants=grants, posts=posts, ip=ip)  # fmt: skip


# --- administration -------------------------------------------------------------


def create_user(
    *, session: Session, settings: Settings, county_code: str, phone: str, name: str, password: str | None,
    grants: Sequence[GrantIn], actor: Principal | None, ip: str | None,
) -> tuple[int, str | None]:  # fmt: skip
    """A new account, linked to the person with that phone (made if missing).

    Returns the user id and, if no password was given, the generated one: it is
    shown once and only its hash is stored.
    """
    phone = phone.strip()
    if not PHONE_RE.match(phone):
        raise InvalidInput(f"{phone!r} is not a mainland mobile number (11 digits starting with 1)", phone=phone)
    if password is not None and len(password) < 10:
        raise InvalidInput("a password needs at least 10 characters")
    if repo.user_by_phone(session, phone=phone) is not None:
        raise AccountConflict(f"an account with the phone {phone} exists already", phone=phone)
    resolved = _resolve_grants(session, grants)
    person_id = repo.person_id_by_phone(session, phone=phone) or grid_repository.upsert_person(
        session, county_code=county_code, name=name, phone=phone
    )
    generated = None if password is not None else security.new_password()
    password_hash = security.Passwords(settings).hash(password if password is not None else generated or "")
    user_id = repo.insert_user(
        session, county_code=county_code, person_id=person_id, phone=phone, password_hash=password_hash
    )
    for g, node in resolved:
        repo.insert_grant(
            session, county_code=county_code, user_id=user_id, role=g.role, tier=g.tier, node_id=node["id"]
        )
    record(session=session, county_code=county_code, actor_user_id=actor.user_id if actor else None,
           action="admin.user_create", target=f"user:{user_id}", ip=ip,
           details={"phone": phone, "grants": [g.__dict__ for g in grants]})  # fmt: skip
    session.commit()
    return user_id, generated


@dataclass(frozen=True)
class NewAccount:
    user_id: int
    phone: str
    name: str
    node_code: str
    password: str  # the initial password: handed over once, only its hash is kept


def create_accounts_for_posts(
    *, session: Session, settings: Settings, county_code: str, node_code: str, actor: Principal | None,
    ip: str | None,
) -> tuple[list[NewAccount], list[str]]:  # fmt: skip
    """Accounts for everyone holding a post under `node_code` who has none yet, each with
    a generated password. Returns (new accounts, phones skipped as not mobile numbers)."""
    if repo.node_brief(session, code=node_code) is None:
        raise NodeNotFound(f"no node has the code {node_code!r}", code=node_code)
    passwords = security.Passwords(settings)
    made, skipped = [], []
    for holder in repo.post_holders_without_account(session, code=node_code):
        if not PHONE_RE.match(holder["phone"]):
            skipped.append(holder["phone"])
            continue
        password = security.new_password()
        user_id = repo.insert_user(session, county_code=county_code, person_id=holder["person_id"],
                                   phone=holder["phone"], password_hash=passwords.hash(password))  # fmt: skip
        made.append(NewAccount(user_id, holder["phone"], holder["name"], holder["node_code"], password))
    record(session=session, county_code=county_code, actor_user_id=actor.user_id if actor else None,
           action="admin.accounts_for_posts", target=f"node:{node_code}", ip=ip,
           details={"created": len(made), "skipped": len(skipped)})  # fmt: skip
    session.commit()
    return made, skipped


def _resolve_grants(session: Session, grants: Sequence[GrantIn]) -> list[tuple[GrantIn, RowMapping]]:
    resolved = []
    for g in grants:
        node = repo.node_brief(session, code=g.node_code)
        if node is None:
            raise NodeNotFound(f"no node has the code {g.node_code!r}", code=g.node_code)
        problem = grant_problem(role=g.role, tier=g.tier, node_level=node["level"])
        if problem:
            raise InvalidGrant(problem, role=g.role, tier=g.tier, node_code=g.node_code)
        resolved.append((g, node))
    return resolved


def add_grants(
    *, session: Session, user_id: int, grants: Sequence[GrantIn], actor: Principal, ip: str | None
) -> None:
    user = _user(session, user_id)
    for g, node in _resolve_grants(session, grants):
        repo.insert_grant(
            session, county_code=actor.county_code, user_id=user["id"], role=g.role, tier=g.tier, node_id=node["id"]
        )
    record(session=session, county_code=actor.county_code, actor_user_id=actor.user_id, action="admin.grant_add",
           target=f"user:{user_id}", ip=ip, details={"grants": [g.__dict__ for g in grants]})  # fmt: skip
    session.commit()


def set_disabled(*, session: Session, user_id: int, disabled: bool, actor: Principal, ip: str | None) -> None:
    """Disabling takes effect at once: tokens are checked against the user row on every request."""
    _user(session, user_id)
    now = _now()
    repo.set_disabled(session, user_id=user_id, at=now if disabled else None)
    if disabled:
        repo.revoke_user_refresh_tokens(session, user_id=user_id, at=now)
    record(session=session, county_code=actor.county_code, actor_user_id=actor.user_id,
           action="admin.user_disable" if disabled else "admin.user_enable", target=f"user:{user_id}",
           ip=ip)  # fmt: skip
    session.commit()


def reset_password(
    *, session: Session, settings: Settings, user_id: int, password: str | None, actor: Principal, ip: str | None
) -> str | None:
    """A new password (generated unless given, shown once); every login of the user ends."""
    _user(session, user_id)
    if password is not None and len(password) < 10:
        raise InvalidInput("a password needs at least 10 characters")
    generated = None if password is not None else security.new_password()
    repo.set_password(
        session, user_id=user_id, password_hash=security.Passwords(settings).hash(password or generated or "")
    )
    repo.revoke_user_refresh_tokens(session, user_id=user_id, at=_now())
    record(session=session, county_code=actor.county_code, actor_user_id=actor.user_id,
           action="admin.password_reset", target=f"user:{user_id}", ip=ip)  # fmt: skip
    session.commit()
    return generated


def _user(session: Session, user_id: int) -> RowMapping:
    user = repo.get_user(session, user_id=user_id)
    if user is None:
        raise UserNotFound(f"no user has the id {user_id}", user_id=user_id)
    return user


def get_user(*, session: Session, user_id: int) -> tuple[RowMapping, Principal]:
    user = _user(session, user_id)
    row = repo.principal_row(session, user_id=user_id)
    assert row is not None
    return user, principal_from_row(row)


def list_users(*, session: Session, cursor: int | None, limit: int) -> tuple[Sequence[RowMapping], int | None]:
    rows = repo.list_users(session, after_id=cursor, limit=limit + 1)
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1]["id"]
    return rows, None


def audit_page(
    *, session: Session, cursor: int | None, limit: int, action: str | None, actor_user_id: int | None
) -> tuple[Sequence[RowMapping], int | None]:
    """Newest first; the cursor is the id of the last row of the previous page."""
    rows = repo.audit_page(session, before_id=cursor, limit=limit + 1, action=action, actor_user_id=actor_user_id)
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1]["id"]
    return rows, None
