"""The one access policy: who is asking, and what they may see. Every /api/v1 route
depends on exactly one policy below; `create_app` refuses to start otherwise, and
tests/api/test_authorization_matrix.py is generated from the same route table.

- `public`: no login (logging in, rotating and revoking tokens).
- `logged_in`: any enabled account. Boundaries and names are open to every logged-in
  user; personal data inside a response is filtered by scope (`phone_visible`).
- `admin`: accounts and the audit log; a missing role answers 403.

Records outside the caller's scope: reads answer 404 (`ensure_readable`), so nothing
tells that the record exists; writes answer 403 (`ensure_writable`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from app.accounts import security, service
from app.accounts.exceptions import Forbidden, NotAuthenticated, OutOfScope
from app.accounts.scope import Principal, covers
from app.db import get_session

API_PREFIX = "/api/v1"
bearer = OAuth2PasswordBearer(tokenUrl=f"{API_PREFIX}/auth/token", auto_error=False)


@dataclass(frozen=True)
class Policy:
    name: str
    authenticated: bool
    role: str | None = None


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _declare(policy: Policy) -> Callable[..., Any]:
    if not policy.authenticated:

        def dependency() -> None:
            return None

    else:

        def dependency(
            request: Request,
            session: Annotated[Session, Depends(get_session)],
            token: Annotated[str | None, Depends(bearer)],
        ) -> Principal:
            if not token:
                raise NotAuthenticated(
                    "log in first: send 'Authorization: Bearer <access token>' from /api/v1/auth/token"
                )
            settings = request.app.state.settings
            user_id = security.user_id_from_access_token(settings=settings, token=token)
            caller = service.principal(session=session, user_id=user_id, ip=client_ip(request))
            if policy.role and not caller.has_role(policy.role):
                raise Forbidden(f"this needs the {policy.role} role", role=policy.role)
            return caller

    dependency.__policy__ = policy  # type: ignore[attr-defined]
    dependency.__name__ = f"policy_{policy.name}"
    return dependency


public = _declare(Policy("public", authenticated=False))
logged_in = _declare(Policy("logged_in", authenticated=True))
admin = _declare(Policy("admin", authenticated=True, role="admin"))

LoggedIn = Annotated[Principal, Depends(logged_in)]
Admin = Annotated[Principal, Depends(admin)]
PUBLIC = [Depends(public)]


def phone_visible(caller: Principal, lineage_codes: Iterable[str]) -> bool:
    """Chiefs' phone numbers are personal data: shown only inside the caller's scope."""
    return covers(caller.scopes, lineage_codes)


def ensure_readable(caller: Principal, lineage_codes: Iterable[str], what: str) -> None:
    if not covers(caller.scopes, lineage_codes):
        raise OutOfScope(f"no {what} found")


def ensure_writable(caller: Principal, lineage_codes: Iterable[str], what: str) -> None:
    if not covers(caller.scopes, lineage_codes):
        raise Forbidden(f"this {what} is outside your area")


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
    """Refuse to build an app with an API route that declares no policy."""
    missing = [f"{sorted(r.methods)} {r.path}" for r in api_routes(app) if policy_of(r) is None]
    if missing:
        raise RuntimeError("routes without exactly one access policy (see app/policy.py): " + ", ".join(missing))
