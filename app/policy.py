"""The one access policy: who is asking, and what they may see. Every /api/v1 route
depends on exactly one policy below; `create_app` refuses to start otherwise, and
tests/api/test_authorization_matrix.py is generated from the same route table.

- `public`: no login (logging in, rotating and revoking tokens).
- `logged_in`: any enabled account. Boundaries and names are open to every logged-in
  user; personal data inside a response is filtered by scope (the SQL shows a phone
  only under `Principal.scope_ids`, and audits it in the same statement).
- `admin`: accounts and the audit log; a missing role answers 403.
- role policies (`roles(...)`): any enabled account holding one of the roles; 403 otherwise.
  The leadership mechanisms use them (reception desks, departments, leaders); the rest of
  what a caller may touch is decided by the domain, like any case write.

A city account (市级, `Principal.read_only`) is refused every other method than a read
(403), whatever the route's policy: it reads its counties' figures and map and writes nothing.

Records outside the caller's scope answer 404, for reads and writes alike, with the
same body as a record that does not exist: nothing tells that it exists. A write on a
case the caller may read but is not responsible for answers 403 (grid.cases.service:
`can_act` for actions and the case file, `can_attach` for photos).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute

from app.accounts import security, service
from app.accounts.cache import PrincipalCache, TokenCache
from app.accounts.exceptions import Forbidden, NotAuthenticated
from app.accounts.scope import Principal
from app.db import session
from grid.glossary import role_name

API_PREFIX = "/api/v1"
# The methods that change nothing: the only ones a read-only (city) account may send.
READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Policy:
    name: str
    authenticated: bool
    roles: tuple[str, ...] = ()  # any of these; empty: any enabled account


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header (RFC 6750), if there is one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def caller_of(request: Request) -> Principal:
    """Who is asking, in one cheap step: the token's signature and expiry (checked once per
    process), then the principal from the process's cache. Only a miss reads the database,
    on a connection held for that one read: a route's policy is resolved before its own
    connection (check_routes makes sure), so a request never holds two."""
    token = bearer_token(request)
    if not token:
        raise NotAuthenticated("请先登录：在 /api/v1/auth/token 登录，再在请求头带上 Authorization: Bearer <访问令牌>")
    tokens: TokenCache = request.app.state.tokens
    claims = tokens.get(token)
    if claims is None:
        claims = security.access_claims(settings=request.app.state.settings, token=token)
        tokens.put(token, claims)
    cache: PrincipalCache = request.app.state.principals
    principal = cache.get(claims.user_id)
    if principal is None:
        generation = cache.generation
        async with request.app.state.db.connection() as conn:
            principal = await service.principal(conn=conn, user_id=claims.user_id)
        cache.put(principal, generation=generation)
    changed = principal.password_changed_at
    if changed is not None and claims.issued_at < int(changed.timestamp()):
        raise NotAuthenticated("密码已修改，这次登录已失效，请重新登录")
    return replace(principal, ip=client_ip(request))


def _declare(policy: Policy) -> Callable[..., Any]:
    """The dependency a route declares for `policy` (marked, so check_routes can find it).
    It has no sub-dependencies: each one would cost every request FastAPI's bookkeeping."""

    async def nobody() -> None:
        return None

    async def caller(request: Request) -> Principal:
        found = await caller_of(request)
        if found.read_only and request.method not in READS:
            raise Forbidden(f"没有权限：{role_name('city')}身份只能查看数据，不能修改", roles=[])
        if policy.roles and not any(found.has_role(r) for r in policy.roles):
            needed = "或".join(role_name(r) for r in policy.roles)
            raise Forbidden(f"没有权限：这需要{needed}身份", roles=list(policy.roles))
        return found

    dependency: Callable[..., Any] = caller if policy.authenticated else nobody
    dependency.__policy__ = policy  # type: ignore[attr-defined]
    dependency.__name__ = f"policy_{policy.name}"
    return dependency


public = _declare(Policy("public", authenticated=False))
logged_in = _declare(Policy("logged_in", authenticated=True))
admin = _declare(Policy("admin", authenticated=True, roles=("admin",)))


def roles(name: str, *allowed: str) -> Callable[..., Any]:
    """A policy for the accounts holding any of `allowed` (declared once, at import)."""
    return _declare(Policy(name, authenticated=True, roles=allowed))


# The leadership mechanisms' doors (grid/leadership).
reception = roles("reception", "reception")
# 联席会议: those who hold joint meetings, and discipline inspection, which reads them.
meetings = roles("meetings", "leader", "mediator", "dispatcher", "supervisor")
# 坐班接访 and 积案 (app/routers/duty.py, backlog.py): the petition office keeps the roster and
# imports batches (grid.leadership.duty.require_petition_office says which department); the
# duty leader decides on a visit; leaders, departments and supervisors read the figures;
# dispatchers and mediators link a reflow (倒流).
petition_office = roles("petition_office", "department_staff", "admin")
duty_leader = roles("duty_leader", "leader")
leadership_figures = roles("leadership_figures", "leader", "department_staff", "supervisor", "admin")
reflow = roles("reflow", "dispatcher", "mediator")
# 包案: the county centre's mediators and the petition office mark a case hard (the tier and
# the department are the domain's to check: grid.leadership.ownership.take_on).
case_ownership = roles("case_ownership", "mediator", "department_staff")
# 纪检监督; a department's own desk (joint parts, 民政局's referrals); assistance counts.
supervision = roles("supervision", "supervisor")
department_desk = roles("department_desk", "department_staff")
assistance_stats = roles("assistance_stats", "leader", "department_staff", "supervisor")

PUBLIC = [Depends(public)]


def _policies(dependant: Any) -> Iterator[Policy]:
    for dep in dependant.dependencies:
        found = getattr(dep.call, "__policy__", None)
        if found is not None:
            yield found
        yield from _policies(dep)


def policy_of(route: APIRoute) -> Policy | None:
    """The route's one declared policy; None if it has none (or, wrongly, several)."""
    found = set(_policies(route.dependant))
    return found.pop() if len(found) == 1 else None


def _flatten(routes: Iterable[Any]) -> Iterator[APIRoute]:
    for r in routes:
        if isinstance(r, APIRoute):
            yield r
        elif hasattr(r, "original_router"):  # FastAPI >= 0.13x keeps included routers nested
            yield from _flatten(r.original_router.routes)


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every /api/v1 route. Routers carry their full prefix and are included without one,
    so a route's own path and dependant are what is served."""
    return [r for r in _flatten(app.routes) if r.path.startswith(API_PREFIX)]


def check_routes(app: FastAPI) -> None:
    """Refuse to build an app with an API route that declares no policy, or that takes its
    database connection before its policy (a login read on a miss would then need a second)."""
    missing = [f"{sorted(r.methods or ())} {r.path}" for r in api_routes(app) if policy_of(r) is None]
    if missing:
        raise RuntimeError("routes without exactly one access policy (see app/policy.py): " + ", ".join(missing))
    late = []
    for r in api_routes(app):
        order = [d.call for d in r.dependant.dependencies]
        policy_at = next(i for i, call in enumerate(order) if getattr(call, "__policy__", None))
        if session in order[:policy_at]:
            late.append(f"{sorted(r.methods or ())} {r.path}")
    if late:
        raise RuntimeError("routes that take their connection before their policy; declare the caller first: "
                           + ", ".join(late))  # fmt: skip


def document_security(app: FastAPI) -> None:
    """The OpenAPI schema says which routes need a bearer token (the /docs page's Authorize
    button), without a dependency per request for it."""
    scheme = {"type": "oauth2", "flows": {"password": {"tokenUrl": f"{API_PREFIX}/auth/token", "scopes": {}}}}
    needs_login = {(r.path, m.lower()) for r in api_routes(app) if (p := policy_of(r)) and p.authenticated
                   for m in r.methods or ()}  # fmt: skip
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = scheme
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    if (path, method) in needs_login:
                        operation["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
