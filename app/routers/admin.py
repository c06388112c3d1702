"""County IT: accounts and the audit log. Every action here is itself audited."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from app import policy, schemas
from app.accounts import service
from app.db import get_session
from app.routers.auth import all_grants

router = APIRouter(prefix="/api/v1", tags=["admin"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ErrorOut, "description": "not logged in"},
    403: {"model": schemas.ErrorOut, "description": "needs the admin role"},
    404: {"model": schemas.ErrorOut, "description": "no such user or node"},
}
Db = Annotated[Session, Depends(get_session)]


def _grants(grants: list[schemas.GrantIn]) -> list[service.GrantIn]:
    return [service.GrantIn(role=g.role, node_code=g.node_code, tier=g.tier) for g in grants]


CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": schemas.ErrorOut, "description": "the phone has an account already"}
}


@router.post("/admin/users", status_code=201, response_model=schemas.UserCreatedOut, responses=ERRORS | CONFLICT)
def create_user(
    body: schemas.UserCreateIn, request: Request, caller: policy.Admin, session: Db
) -> schemas.UserCreatedOut:
    """A new account, linked to the person with that phone number (created if missing)."""
    user_id, generated = service.create_user(
        session=session, settings=request.app.state.settings, county_code=caller.county_code, phone=body.phone,
        name=body.name, password=body.password, grants=_grants(body.grants), actor=caller, ip=caller.ip,
    )  # fmt: skip
    return schemas.UserCreatedOut(id=user_id, phone=body.phone, initial_password=generated)


@router.get("/admin/users", response_model=schemas.UserPage, responses=ERRORS)
def list_users(
    caller: policy.Admin,
    session: Db,
    cursor: Annotated[int | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> schemas.UserPage:
    rows, next_cursor = service.list_users(session=session, cursor=cursor, limit=limit)
    service.note(session=session, actor=caller, action="admin.user_list", target=None)
    return schemas.UserPage(items=[schemas.UserOut(**dict(r)) for r in rows], next_cursor=next_cursor)


@router.get("/admin/users/{user_id}", response_model=schemas.UserDetailOut, responses=ERRORS)
def get_user(user_id: int, caller: policy.Admin, session: Db) -> schemas.UserDetailOut:
    user, principal = service.get_user(session=session, user_id=user_id)
    service.note(session=session, actor=caller, action="admin.user_read", target=f"user:{user_id}")
    return schemas.UserDetailOut(**dict(user), roles=sorted(principal.roles), scopes=all_grants(principal))


@router.post("/admin/users/{user_id}/grants", status_code=204, responses=ERRORS)
def add_grants(user_id: int, body: list[schemas.GrantIn], caller: policy.Admin, session: Db) -> Response:
    service.add_grants(session=session, user_id=user_id, grants=_grants(body), actor=caller, ip=caller.ip)
    return Response(status_code=204)


@router.post("/admin/users/{user_id}/disable", status_code=204, responses=ERRORS)
def disable_user(user_id: int, caller: policy.Admin, session: Db) -> Response:
    """Takes effect at once: the user's access tokens stop working on their next request."""
    service.set_disabled(session=session, user_id=user_id, disabled=True, actor=caller, ip=caller.ip)
    return Response(status_code=204)


@router.post("/admin/users/{user_id}/enable", status_code=204, responses=ERRORS)
def enable_user(user_id: int, caller: policy.Admin, session: Db) -> Response:
    service.set_disabled(session=session, user_id=user_id, disabled=False, actor=caller, ip=caller.ip)
    return Response(status_code=204)


@router.post("/admin/users/{user_id}/password", response_model=schemas.PasswordResetOut, responses=ERRORS)
def reset_password(
    user_id: int, body: schemas.PasswordResetIn, request: Request, caller: policy.Admin, session: Db
) -> schemas.PasswordResetOut:
    """Set a new password (generated unless given); every login of the user ends."""
    generated = service.reset_password(session=session, settings=request.app.state.settings, user_id=user_id,
                                       password=body.password, actor=caller, ip=caller.ip)  # fmt: skip
    return schemas.PasswordResetOut(password=generated)


@router.get("/audit", response_model=schemas.AuditPage, responses=ERRORS)
def audit(
    caller: policy.Admin,
    session: Db,
    cursor: Annotated[int | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    action: Annotated[str | None, Query(max_length=64, description="e.g. read.chief_phone")] = None,
    actor: Annotated[int | None, Query(description="user id of the actor")] = None,
) -> schemas.AuditPage:
    """The audit log, newest first. Reading it is audited too."""
    rows, next_cursor = service.audit_page(session=session, cursor=cursor, limit=limit, action=action,
                                           actor_user_id=actor)  # fmt: skip
    service.note(session=session, actor=caller, action="admin.audit_read", target=None)
    return schemas.AuditPage(items=[schemas.AuditOut(**dict(r)) for r in rows], next_cursor=next_cursor)
