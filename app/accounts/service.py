"""Use cases of accounts: log in, rotate, log out, who is asking, admin, audit.

Keyword-only, the connection first. Each use case is one transaction, and some
commit on their failure path on purpose: a failed login must still count against
the limit, and a detected token reuse must still revoke the family.

Password hashing (argon2id) is slow on purpose: it runs in a thread, so the event
loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
    WeakPassword,
)
from app.accounts.scope import Principal, ScopeNode, grant_problem
from app.settings import Settings
from grid.cases.enums import Tier
from grid.db import Conn, Row
from grid.exceptions import InvalidInput, NodeNotFound
from grid.glossary import role_name
from grid.leadership import departments
from grid.repository import nodes as node_sql
from grid.repository import roster as roster_sql

PHONE_RE = re.compile(r"^1\d{10}$")
WRONG_LOGIN = "手机号或密码不正确"


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
    department_code: str | None = None  # department_staff only: the department they work for


def _now() -> datetime:
    return datetime.now(UTC)


async def _issue(*, conn: Conn, settings: Settings, user_id: int, county_code: str, family_id: uuid.UUID) -> Tokens:
    access, expires_in = security.issue_access_token(settings=settings, user_id=user_id)
    refresh, refresh_hash = security.new_refresh_token()
    expires_at = _now() + timedelta(days=settings.refresh_token_days)
    await repo.insert_refresh_token(
        conn,
        user_id=user_id,
        county_code=county_code,
        family_id=family_id,
        token_hash=refresh_hash,
        expires_at=expires_at,
    )
    return Tokens(access_token=access, expires_in=expires_in, refresh_token=refresh, refresh_expires_at=expires_at)


async def record(
    *, conn: Conn, county_code: str, actor_user_id: int | None, action: str, target: str | None,
    ip: str | None, details: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """One audit row, in the caller's transaction."""
    await repo.insert_audit(
        conn, county_code=county_code, actor_user_id=actor_user_id, action=action, target=target, ip=ip,
        details=details or {},
    )  # fmt: skip


def audited_read(caller: Principal, *, action: str, key: str) -> repo.AuditedRead | None:
    """How a read of personal data by `caller` is audited in the read's own statement;
    None when nothing personal can be shown to them (an admin only). Department staff,
    supervisors and reception have no node scope but read cases' parties all the same."""
    if not caller.scopes and caller.roles <= {"admin"}:
        return None
    return repo.AuditedRead(county_code=caller.county_code, actor_user_id=caller.user_id, action=action, key=key,
                            ip=caller.ip)  # fmt: skip


class Rooms:
    """The members of each mediation room, from the mediator grants (grid.cases.service.Rooms)."""

    async def members(self, conn: Conn, *, tier: Tier, node_id: int) -> list[int]:
        return await repo.mediators(conn, tier=tier.value, node_id=node_id)


ROOMS = Rooms()


# --- logging in and out ---------------------------------------------------------


def throttle_keys(*, phone: str, ip: str | None) -> dict[str, str]:
    """The login throttle's keys (hashed: nothing typed is stored in clear): the phone and
    address together, the phone from anywhere, the address whatever the phone."""
    return {
        "pair": security.hash_key("pair", f"{phone}|{ip or '-'}"),
        "phone": security.hash_key("phone", phone),
        "ip": security.hash_key("ip", ip or "-"),
    }


def throttle_seconds(settings: Settings, kind: str, failures: int) -> float:
    """How long the key must wait after its `failures`-th failure in a row (0: not at all)."""
    if kind == "pair":  # this phone from this address: a lockout, doubling
        return security.lockout_seconds(failures=failures, threshold=settings.login_max_failures_pair,
                                        base=settings.login_lockout_seconds)  # fmt: skip
    if kind == "phone":  # this phone from anywhere: a short cool-down, never a lockout
        return security.lockout_seconds(failures=failures, threshold=settings.login_slow_after_failures_phone,
                                        base=1, cap=settings.login_slowdown_max_seconds)  # fmt: skip
    # this address: until the count has leaked back under the limit
    over = failures - settings.login_max_failures_ip + 1
    return over * settings.login_ip_leak_seconds if over > 0 else 0.0


async def login(*, conn: Conn, settings: Settings, phone: str, password: str, ip: str | None) -> Tokens:
    """Phone + password to tokens; the same error, after the same work, whether the phone is
    unknown, the password wrong or the account disabled."""
    phone = phone.strip()
    keys = throttle_keys(phone=phone, ip=ip)
    locked = await repo.seconds_locked(conn, key_hashes=list(keys.values()))
    if locked is not None:
        wait = max(1, int(locked) + 1)
        raise TooManyAttempts(f"登录失败次数过多，请 {wait} 秒后再试（或请管理员重置密码）", retry_after=wait)
    passwords = security.passwords(settings)
    user = await repo.user_by_phone(conn, phone=phone)
    ok = await asyncio.to_thread(passwords.verify, user["password_hash"] if user else None, password)
    # A demo account left in a production database: its password is published in README.md.
    demo_refused = ok and settings.env == "production" and security.is_demo_password(password)
    if not ok or user is None or user["disabled_at"] is not None or demo_refused:
        async with conn.transaction():
            for kind, key in keys.items():
                failures = await repo.count_failure(
                    conn, key_hash=key, kind=kind, leak_s=settings.login_ip_leak_seconds if kind == "ip" else None
                )
                seconds = throttle_seconds(settings, kind, failures)
                if seconds:
                    await repo.lock(conn, key_hash=key, seconds=seconds)
            await record(conn=conn, county_code=user["county_code"] if user else settings.county_code,
                         actor_user_id=None, action="auth.login_demo_refused" if demo_refused else "auth.login_failed",
                         target=f"user:{user['id']}" if user else None, ip=ip)  # fmt: skip
        raise InvalidCredentials(WRONG_LOGIN)
    new_hash = None
    if passwords.needs_rehash(user["password_hash"]):
        new_hash = await asyncio.to_thread(passwords.hash, password)
    async with conn.transaction():
        # The address's count is left to leak away: a login of one's own must not wipe
        # out the failures one sprayed at others from the same address.
        await repo.clear_throttle(conn, key_hashes=[keys["pair"], keys["phone"]])
        if new_hash is not None:
            await repo.set_password(conn, user_id=user["id"], password_hash=new_hash, changed=False)
        tokens = await _issue(conn=conn, settings=settings, user_id=user["id"], county_code=user["county_code"],
                              family_id=uuid.uuid4())  # fmt: skip
        await record(conn=conn, county_code=user["county_code"], actor_user_id=user["id"], action="auth.login",
                     target=f"user:{user['id']}", ip=ip)  # fmt: skip
    return tokens


async def refresh(*, conn: Conn, settings: Settings, refresh_token: str, ip: str | None) -> Tokens:
    """Rotate: the presented token is spent and a new one of the same family returned.

    A token presented a second time means two parties hold it, one of them a thief;
    every token of the family is revoked, so both have to log in again.
    """
    async with conn.transaction():
        row = await repo.refresh_token_for_update(conn, token_hash=security.hash_token(refresh_token))
        if row is None:
            raise InvalidRefreshToken("这个刷新令牌无法识别，请重新登录")
        now = _now()
        if row["revoked_at"] is not None:
            raise InvalidRefreshToken("这个刷新令牌已经作废，请重新登录")
        reused = row["used_at"] is not None
        if not reused:
            if row["expires_at"] <= now:
                raise InvalidRefreshToken("这个刷新令牌已过期，请重新登录")
            user = await repo.get_user(conn, user_id=row["user_id"])
            if user is not None and user["disabled_at"] is None:
                await repo.mark_refresh_token_used(conn, token_id=row["id"], at=now)
                return await _issue(conn=conn, settings=settings, user_id=row["user_id"],
                                    county_code=row["county_code"], family_id=row["family_id"])  # fmt: skip
        # A reused token, or one of a disabled user: the whole family goes (committed, then refused).
        revoked = await repo.revoke_family(conn, family_id=row["family_id"], at=now)
        if reused:
            await record(conn=conn, county_code=settings.county_code, actor_user_id=row["user_id"],
                         action="auth.refresh_reused", target=f"user:{row['user_id']}", ip=ip,
                         details={"family_id": str(row["family_id"]), "revoked": revoked})  # fmt: skip
    if reused:
        raise InvalidRefreshToken(
            "这个刷新令牌已经用过一次（可能被他人盗用）：为安全起见，这次登录的所有会话都已关闭，请重新登录"
        )
    raise InvalidRefreshToken("这个刷新令牌已经作废，请重新登录")


async def logout(*, conn: Conn, settings: Settings, refresh_token: str, ip: str | None) -> None:
    """Revoke the login the refresh token belongs to. Unknown tokens are ignored quietly."""
    async with conn.transaction():
        row = await repo.refresh_token_for_update(conn, token_hash=security.hash_token(refresh_token))
        if row is None:
            return
        await repo.revoke_family(conn, family_id=row["family_id"], at=_now())
        await record(conn=conn, county_code=settings.county_code, actor_user_id=row["user_id"],
                     action="auth.logout", target=f"user:{row['user_id']}", ip=ip)  # fmt: skip


async def principal(*, conn: Conn, user_id: int) -> Principal:
    """Who is asking, read fresh (app.accounts.cache keeps it between requests)."""
    row = await repo.principal_row(conn, user_id=user_id)
    if row is None or row["disabled_at"] is not None:
        raise NotAuthenticated("这个账号已停用或已不存在；如有疑问请联系管理员")
    return principal_from_row(row)


def principal_from_row(row: Row | dict[str, Any]) -> Principal:
    grants = tuple(
        ScopeNode(role=g["role"], tier=g["tier"], node_id=g["node_id"], code=g["code"], name=g["name"],
                  level=g["level"], path=g["path"], department_id=g.get("department_id"),
                  department_code=g.get("department_code"), county_code=g.get("county_code") or row["county_code"])
        for g in row["grants"]
    )  # fmt: skip
    posts = tuple(
        ScopeNode(role="chief", node_id=p["node_id"], code=p["code"], name=p["name"], level=p["level"],
                  path=p["path"], post_id=p["post_id"], post_role=p["post_role"])
        for p in row["posts"]
    )  # fmt: skip
    return Principal(user_id=row["id"], county_code=row["county_code"], person_id=row["person_id"],
                     name=row["name"], phone=row["phone"], grants=grants, posts=posts,
                     county_name=row.get("county_name") or row["county_code"],
                     password_changed_at=row.get("password_changed_at"))  # fmt: skip


# --- administration -------------------------------------------------------------


def check_password(settings: Settings, password: str, *, user_inputs: Sequence[str]) -> None:
    """WeakPassword (422, saying why in Chinese) unless `password` is hard enough to guess."""
    problem = security.password_problem(password, min_score=settings.password_min_score, user_inputs=user_inputs)
    if problem:
        raise WeakPassword(problem, field="password")


async def create_user(
    *, conn: Conn, settings: Settings, county_code: str, phone: str, name: str, password: str | None,
    grants: Sequence[GrantIn], actor: Principal | None, ip: str | None, demo: bool = False,
) -> tuple[int, str | None]:  # fmt: skip
    """A new account, linked to the person with that phone (made if missing).

    Returns the user id and, if no password was given, the generated one: it is
    shown once and only its hash is stored. A given password must not be easy to guess;
    only the demo accounts (`demo=True`, never in production) keep their published one.
    """
    phone = phone.strip()
    if not PHONE_RE.match(phone):
        raise InvalidInput(f"“{phone}”不是有效的手机号：应为 1 开头的 11 位数字", phone=phone)
    if password is not None and not demo:
        check_password(settings, password, user_inputs=[phone, name])
    generated = None if password is not None else security.new_password()
    password_hash = await asyncio.to_thread(security.passwords(settings).hash, password or generated or "")
    async with conn.transaction():
        if await repo.user_by_phone(conn, phone=phone) is not None:
            raise AccountConflict(f"手机号 {phone} 已经有账号了，不能重复创建", phone=phone)
        resolved = await _resolve_grants(conn, grants, county_code=county_code, city=actor is None)
        person_id = await roster_sql.person_by_phone(conn, phone=phone) or await roster_sql.upsert_person(
            conn, county_code=county_code, name=name, phone=phone
        )
        user_id = await repo.insert_user(
            conn, county_code=county_code, person_id=person_id, phone=phone, password_hash=password_hash
        )
        for g, node, department_id in resolved:
            await repo.insert_grant(conn, county_code=node["county_code"], user_id=user_id, role=g.role,
                                    tier=g.tier, node_id=node["id"], department_id=department_id)  # fmt: skip
        await record(conn=conn, county_code=county_code, actor_user_id=actor.user_id if actor else None,
                     action="admin.user_create", target=f"user:{user_id}", ip=ip,
                     details={"phone": phone, "grants": [g.__dict__ for g in grants]})  # fmt: skip
    return user_id, generated


@dataclass(frozen=True)
class NewAccount:
    user_id: int
    phone: str
    name: str
    node_code: str
    password: str  # the initial password: handed over once, only its hash is kept


async def create_accounts_for_posts(
    *, conn: Conn, settings: Settings, county_code: str, node_code: str, actor: Principal | None,
    ip: str | None,
) -> tuple[list[NewAccount], list[str]]:  # fmt: skip
    """Accounts for everyone holding a post under `node_code` who has none yet, each with
    a generated password. Returns (new accounts, phones skipped as not mobile numbers)."""
    if await node_sql.node_brief(conn, code=node_code, counties=(county_code,)) is None:
        raise NodeNotFound(f"没有编码为“{node_code}”的网格节点，请核对编码", code=node_code)
    passwords = security.passwords(settings)
    made, skipped = [], []
    async with conn.transaction():
        for holder in await repo.post_holders_without_account(conn, code=node_code):
            if not PHONE_RE.match(holder["phone"]):
                skipped.append(holder["phone"])
                continue
            password = security.new_password()
            password_hash = await asyncio.to_thread(passwords.hash, password)
            user_id = await repo.insert_user(conn, county_code=county_code, person_id=holder["person_id"],
                                             phone=holder["phone"], password_hash=password_hash)  # fmt: skip
            made.append(NewAccount(user_id, holder["phone"], holder["name"], holder["node_code"], password))
        await record(conn=conn, county_code=county_code, actor_user_id=actor.user_id if actor else None,
                     action="admin.accounts_for_posts", target=f"node:{node_code}", ip=ip,
                     details={"created": len(made), "skipped": len(skipped)})  # fmt: skip
    return made, skipped


async def _resolve_grants(
    conn: Conn, grants: Sequence[GrantIn], *, county_code: str, city: bool = False
) -> list[tuple[GrantIn, Row, int | None]]:
    """Each grant with its node (in the county) and, for department staff, its department's
    id. The city role, on any county's root, only when `city` (the CLI: a county's admin
    administers their own county, not the city's view of others)."""
    resolved = []
    for g in grants:
        if g.role == "city" and not city:
            raise InvalidGrant(f"{role_name('city')}身份只能由部署的管理员用命令行授予（wuzhang user city）",
                               role=g.role, node_code=g.node_code)  # fmt: skip
        counties = None if g.role == "city" else (county_code,)
        node = await node_sql.node_brief(conn, code=g.node_code, counties=counties)
        if node is None:
            raise NodeNotFound(f"没有编码为“{g.node_code}”的网格节点，请核对编码", code=g.node_code)
        problem = grant_problem(role=g.role, tier=g.tier, node_level=node["level"], department=g.department_code)
        if problem:
            raise InvalidGrant(problem, role=g.role, tier=g.tier, node_code=g.node_code)
        department_id = None
        if g.department_code is not None:
            department = await departments.by_code(conn=conn, county_code=county_code, code=g.department_code)
            department_id = department["id"]
        resolved.append((g, node, department_id))
    return resolved


async def add_grants(*, conn: Conn, user_id: int, grants: Sequence[GrantIn], actor: Principal, ip: str | None) -> None:
    async with conn.transaction():
        user = await _user(conn, user_id, actor.county_code)
        for g, node, department_id in await _resolve_grants(conn, grants, county_code=actor.county_code):
            await repo.insert_grant(conn, county_code=node["county_code"], user_id=user["id"], role=g.role,
                                    tier=g.tier, node_id=node["id"], department_id=department_id)  # fmt: skip
        await record(conn=conn, county_code=actor.county_code, actor_user_id=actor.user_id,
                     action="admin.grant_add", target=f"user:{user_id}", ip=ip,
                     details={"grants": [g.__dict__ for g in grants]})  # fmt: skip


async def set_disabled(*, conn: Conn, user_id: int, disabled: bool, actor: Principal, ip: str | None) -> None:
    """Disabling takes effect at once: every process drops the user's cached principal
    (app.accounts.cache, through LISTEN/NOTIFY), and the next request reads the user row."""
    async with conn.transaction():
        await _user(conn, user_id, actor.county_code)
        now = _now()
        await repo.set_disabled(conn, user_id=user_id, at=now if disabled else None)
        if disabled:
            await repo.revoke_user_refresh_tokens(conn, user_id=user_id, at=now)
        await record(conn=conn, county_code=actor.county_code, actor_user_id=actor.user_id,
                     action="admin.user_disable" if disabled else "admin.user_enable", target=f"user:{user_id}",
                     ip=ip)  # fmt: skip


async def reset_password(
    *, conn: Conn, settings: Settings, user_id: int, password: str | None, actor: Principal, ip: str | None
) -> str | None:
    """A new password (generated unless given, shown once); every login of the user ends,
    access tokens included: a token issued before the change is refused."""
    if password is not None:
        user = await _user(conn, user_id, actor.county_code)
        check_password(settings, password, user_inputs=[user["phone"], user["name"]])
    generated = None if password is not None else security.new_password()
    password_hash = await asyncio.to_thread(security.passwords(settings).hash, password or generated or "")
    async with conn.transaction():
        await _user(conn, user_id, actor.county_code)
        await repo.set_password(conn, user_id=user_id, password_hash=password_hash)
        await repo.revoke_user_refresh_tokens(conn, user_id=user_id, at=_now())
        await record(conn=conn, county_code=actor.county_code, actor_user_id=actor.user_id,
                     action="admin.password_reset", target=f"user:{user_id}", ip=ip)  # fmt: skip
    return generated


async def _user(conn: Conn, user_id: int, county_code: str) -> Row:
    """A user of the admin's county; one of another county is not found, as one that does not exist."""
    user = await repo.get_user(conn, user_id=user_id, county_code=county_code)
    if user is None:
        raise UserNotFound(f"没有编号为 {user_id} 的用户", user_id=user_id)
    return user


async def get_user(*, conn: Conn, user_id: int, actor: Principal) -> tuple[Row, Principal]:
    """A user and their roles, for an admin; the read is audited."""
    async with conn.transaction():
        user = await _user(conn, user_id, actor.county_code)
        row = await repo.principal_row(conn, user_id=user_id)
        await record(conn=conn, county_code=actor.county_code, actor_user_id=actor.user_id, action="admin.user_read",
                     target=f"user:{user_id}", ip=actor.ip)  # fmt: skip
    assert row is not None
    return user, principal_from_row(row)


async def list_users(*, conn: Conn, cursor: int | None, limit: int, actor: Principal) -> tuple[list[Row], int | None]:
    async with conn.transaction():
        rows = await repo.list_users(conn, county_code=actor.county_code, after_id=cursor, limit=limit + 1)
        await record(conn=conn, county_code=actor.county_code, actor_user_id=actor.user_id, action="admin.user_list",
                     target=None, ip=actor.ip)  # fmt: skip
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1]["id"]
    return rows, None


async def audit_page(
    *, conn: Conn, cursor: int | None, limit: int, action: str | None, actor_user_id: int | None, actor: Principal
) -> tuple[list[Row], int | None]:
    """Newest first; the cursor is the id of the last row of the previous page. Reading it is audited too."""
    async with conn.transaction():
        rows = await repo.audit_page(conn, county_code=actor.county_code, before_id=cursor, limit=limit + 1, action=action,
                                     actor_user_id=actor_user_id)  # fmt: skip
        await record(conn=conn, county_code=actor.county_code, actor_user_id=actor.user_id, action="admin.audit_read",
                     target=None, ip=actor.ip)  # fmt: skip
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1]["id"]
    return rows, None


async def note(*, conn: Conn, actor: Principal, action: str, target: str | None = None,
               details: dict[str, Any] | None = None) -> None:  # fmt: skip
    """Audit something the caller just did (its own transaction)."""
    await record(conn=conn, county_code=actor.county_code, actor_user_id=actor.user_id, action=action,
                 target=target, ip=actor.ip, details=details)  # fmt: skip
