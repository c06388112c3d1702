"""Logging in (OAuth2 password flow), rotating and revoking tokens, and who am I."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from app import policy, schemas
from app.accounts import service
from app.accounts.scope import Principal, ScopeNode
from app.deps import CallerDep, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["auth"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ErrorOut, "description": "wrong phone or password, or a bad token"},
    429: {"model": schemas.ErrorOut, "description": "too many failed logins; see Retry-After"},
    503: {"model": schemas.ErrorOut, "description": "the database is unreachable; see Retry-After"},
}


def _tokens(t: service.Tokens, response: Response) -> schemas.TokenOut:
    # RFC 6749 5.1: responses carrying tokens must not be cached by browsers or proxies.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return schemas.TokenOut(access_token=t.access_token, expires_in=t.expires_in, refresh_token=t.refresh_token,
                            refresh_expires_at=t.refresh_expires_at)  # fmt: skip


@router.post("/auth/token", responses=ERRORS, dependencies=policy.PUBLIC)
async def token(
    request: Request,
    response: Response,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    conn: SessionDep,
    settings: SettingsDep,
) -> schemas.TokenOut:
    """Log in: `username` is the phone number. Returns a short-lived access token and a refresh token."""
    tokens = await service.login(conn=conn, settings=settings, phone=form.username, password=form.password,
                                 ip=policy.client_ip(request))  # fmt: skip
    return _tokens(tokens, response)


@router.post("/auth/refresh", responses=ERRORS, dependencies=policy.PUBLIC)
async def refresh(
    request: Request, response: Response, body: schemas.RefreshIn, conn: SessionDep, settings: SettingsDep
) -> schemas.TokenOut:
    """Spend a refresh token for a new pair. Presenting a spent token again ends the whole login."""
    tokens = await service.refresh(conn=conn, settings=settings, refresh_token=body.refresh_token,
                                   ip=policy.client_ip(request))  # fmt: skip
    return _tokens(tokens, response)


@router.post("/auth/logout", status_code=204, dependencies=policy.PUBLIC, response_class=Response)
async def logout(request: Request, body: schemas.RefreshIn, conn: SessionDep, settings: SettingsDep) -> Response:
    """End the login the refresh token belongs to (its access tokens run out within minutes)."""
    await service.logout(conn=conn, settings=settings, refresh_token=body.refresh_token, ip=policy.client_ip(request))
    return Response(status_code=204)


def scope_out(s: ScopeNode) -> schemas.ScopeOut:
    return schemas.ScopeOut(role=s.role, tier=s.tier, node=schemas.NodeRef(code=s.code, name=s.name, level=s.level),  # type: ignore[arg-type]
                            department_code=s.department_code)  # fmt: skip


def all_grants(p: Principal) -> list[schemas.ScopeOut]:
    return [scope_out(s) for s in p.posts + p.grants]


@router.get("/me", responses=ERRORS)
async def me(caller: CallerDep) -> schemas.MeOut:
    """Who I am: roles, the nodes they cover, and the posts I hold now."""
    return schemas.MeOut(
        user_id=caller.user_id, person_id=caller.person_id, name=caller.name, phone=caller.phone,
        roles=sorted(caller.roles),
        scopes=all_grants(caller),
        posts=[schemas.PostHeld(post_id=p.post_id or 0, role=p.post_role or "chief",  # type: ignore[arg-type]
                                node=schemas.NodeRef(code=p.code, name=p.name, level=p.level))
               for p in caller.posts],
    )  # fmt: skip
