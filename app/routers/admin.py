"""County IT: accounts and the audit log. Every action here is itself audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app import schemas
from app.accounts import service
from app.deps import AdminDep, SessionDep, SettingsDep
from app.inputs import Id
from app.routers.auth import all_grants

router = APIRouter(prefix="/api/v1", tags=["admin"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ErrorOut, "description": "not logged in"},
    403: {"model": schemas.ErrorOut, "description": "needs the admin role"},
    404: {"model": schemas.ErrorOut, "description": "no such user or node"},
    503: {"model": schemas.ErrorOut, "description": "the database is unreachable; see Retry-After"},
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": schemas.ErrorOut, "description": "the phone has an account already"}
}


def _grants(grants: list[schemas.GrantIn]) -> list[service.GrantIn]:
    return [
        service.GrantIn(role=g.role, node_code=g.node_code, tier=g.tier, department_code=g.department_code)
        for g in grants
    ]


@router.post("/admin/users", status_code=201, responses=ERRORS | CONFLICT)
async def create_user(
    body: schemas.UserCreateIn, caller: AdminDep, conn: SessionDep, settings: SettingsDep
) -> schemas.UserCreatedOut:
    """A new account, linked to the person with that phone number (created if missing)."""
    user_id, generated = await service.create_user(
        conn=conn, settings=settings, county_code=caller.county_code, phone=body.phone, name=body.name,
        password=body.password, grants=_grants(body.grants), actor=caller, ip=caller.ip,
    )  # fmt: skip
    return schemas.UserCreatedOut(id=user_id, phone=body.phone, initial_password=generated)


@router.get("/admin/users", responses=ERRORS)
async def list_users(
    caller: AdminDep,
    conn: SessionDep,
    cursor: Annotated[Id | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> schemas.UserPage:
    rows, next_cursor = await service.list_users(conn=conn, cursor=cursor, limit=limit, actor=caller)
    return schemas.UserPage(items=[schemas.UserOut(**r) for r in rows], next_cursor=next_cursor)


@router.get("/admin/users/{user_id}", responses=ERRORS)
async def get_user(user_id: Id, caller: AdminDep, conn: SessionDep) -> schemas.UserDetailOut:
    user, principal = await service.get_user(conn=conn, user_id=user_id, actor=caller)
    return schemas.UserDetailOut(**user, roles=sorted(principal.roles), scopes=all_grants(principal))


@router.post("/admin/users/{user_id}/grants", status_code=204, responses=ERRORS, response_class=Response)
async def add_grants(user_id: Id, body: list[schemas.GrantIn], caller: AdminDep, conn: SessionDep) -> Response:
    await service.add_grants(conn=conn, user_id=user_id, grants=_grants(body), actor=caller, ip=caller.ip)
    return Response(status_code=204)


@router.post("/admin/users/{user_id}/disable", status_code=204, responses=ERRORS, response_class=Response)
async def disable_user(user_id: Id, caller: AdminDep, conn: SessionDep) -> Response:
    """Takes effect at once: every server process refuses the user's access tokens on their next request."""
    await service.set_disabled(conn=conn, user_id=user_id, disabled=True, actor=caller, ip=caller.ip)
    return Response(status_code=204)


@router.post("/admin/users/{user_id}/enable", status_code=204, responses=ERRORS, response_class=Response)
async def enable_user(user_id: Id, caller: AdminDep, conn: SessionDep) -> Response:
    await service.set_disabled(conn=conn, user_id=user_id, disabled=False, actor=caller, ip=caller.ip)
    return Response(status_code=204)


@router.post("/admin/users/{user_id}/password", responses=ERRORS)
async def reset_password(
    user_id: Id, body: schemas.PasswordResetIn, caller: AdminDep, conn: SessionDep, settings: SettingsDep
) -> schemas.PasswordResetOut:
    """Set a new password (generated unless given); every login of the user ends, access tokens included."""
    generated = await service.reset_password(conn=conn, settings=settings, user_id=user_id, password=body.password,
                                             actor=caller, ip=caller.ip)  # fmt: skip
    return schemas.PasswordResetOut(password=generated)


@router.get("/audit", responses=ERRORS)
async def audit(
    caller: AdminDep,
    conn: SessionDep,
    cursor: Annotated[Id | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    action: Annotated[str | None, Query(max_length=64, description="e.g. read.chief_phone")] = None,
    actor: Annotated[Id | None, Query(description="user id of the actor")] = None,
) -> schemas.AuditPage:
    """The audit log, newest first. Reading it is audited too."""
    rows, next_cursor = await service.audit_page(conn=conn, cursor=cursor, limit=limit, action=action,
                                                 actor_user_id=actor, actor=caller)  # fmt: skip
    return schemas.AuditPage(items=[schemas.AuditOut(**r) for r in rows], next_cursor=next_cursor)
