"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from grid.db import fetch_value

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the migrations' head."""
    expected = request.app.state.schema_head
    try:
        async with request.app.state.db.connection() as conn:
            current = await fetch_value(conn, "SELECT version_num FROM alembic_version")
    except Exception as exc:  # readiness reports, it does not raise
        return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503,
                            headers={"Retry-After": "5"})  # fmt: skip
    if current != expected:
        return JSONResponse(
            {"status": "migrating", "schema": current, "expected": expected,
             "hint": "run: .venv/bin/alembic upgrade head"},
            status_code=503,
        )  # fmt: skip
    # Whether this process hears the database's change notifications: while it does not,
    # its caches are bypassed (every request reads afresh), so it is still correct.
    return JSONResponse({"status": "ok", "schema": current, "listening": request.app.state.principals.live})
