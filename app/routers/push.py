"""Phones and the live inbox: device tokens, the inbox as Server-Sent Events, /metrics."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import policy, push
from app.db import get_session
from app.schemas import ErrorOut

router = APIRouter(prefix="/api/v1", tags=["push"])
ERRORS: dict[int | str, dict[str, Any]] = {c: {"model": ErrorOut} for c in (401, 403, 422)}


class DeviceIn(BaseModel):
    # FCM tokens are about 160 characters; the cap keeps them well inside a btree index entry.
    token: str = Field(min_length=8, max_length=1024, description="the FCM registration token of this app install")
    platform: Literal["android", "ios", "web"]
    app_version: str | None = Field(default=None, max_length=32)


@router.post("/me/devices", status_code=204, responses=ERRORS)
def register_device(
    body: DeviceIn, caller: policy.LoggedIn, session: Annotated[Session, Depends(get_session)], request: Request
) -> Response:
    """Ring this phone for my notifications. Call it after each login and token refresh;
    a token last registered by someone else moves to me."""
    push.register_device(session, person_id=caller.person_id, county_code=request.app.state.settings.county_code,
                         token=body.token, platform=body.platform, app_version=body.app_version,
                         now=datetime.now(timezone.utc))  # fmt: skip
    session.commit()
    return Response(status_code=204)


@router.delete("/me/devices/{token}", status_code=204, responses=ERRORS)
def forget_device(token: str, caller: policy.LoggedIn, session: Annotated[Session, Depends(get_session)]) -> Response:
    """Stop ringing this phone (on logout). Someone else's token, or an unknown one, is left alone."""
    push.forget_device(session, person_id=caller.person_id, token=token)
    session.commit()
    return Response(status_code=204)


_NEWER = text(
    "SELECT id, case_id, kind, title, body, created_at, read_at FROM notification"
    " WHERE person_id = :p AND id > :after ORDER BY id LIMIT 100"
)


@router.get("/me/inbox/stream", responses=ERRORS, response_class=StreamingResponse)
async def inbox_stream(
    caller: policy.LoggedIn,
    session: Annotated[Session, Depends(get_session)],
    request: Request,
    after: Annotated[int | None, Query(ge=0, description="the last id seen; default: only new ones")] = None,
    last_event_id: Annotated[int | None, Header(ge=0)] = None,
    max_s: Annotated[float, Query(gt=0, le=300, description="close after this long; EventSource reconnects")] = 55,
) -> StreamingResponse:
    """My new notifications as Server-Sent Events (`event: notification`, `id:` = the
    notification id), polled from the table about once a second. The stream closes after
    `max_s` (below common proxy idle limits); EventSource reconnects by itself and sends
    Last-Event-ID, so nothing is missed."""
    pid = caller.person_id

    def newer(cursor: int) -> list[dict[str, Any]]:
        rows = session.execute(_NEWER, {"p": pid, "after": cursor}).mappings().all()
        session.rollback()  # end the read transaction: the next poll must see new commits
        return [dict(r) for r in rows]

    def current_max() -> int:
        value = session.execute(text("SELECT coalesce(max(id), 0) FROM notification WHERE person_id = :p"),
                                {"p": pid}).scalar_one()  # fmt: skip
        session.rollback()
        return int(value)

    start = last_event_id if last_event_id is not None else after
    cursor = start if start is not None else await run_in_threadpool(current_max)

    async def events():
        nonlocal cursor
        yield "retry: 2000\n\n"
        deadline = time.monotonic() + max_s
        while time.monotonic() < deadline and not await request.is_disconnected():
            for row in await run_in_threadpool(newer, cursor):
                cursor = row["id"]
                yield f"id: {row['id']}\nevent: notification\ndata: {json.dumps(row, default=str, ensure_ascii=False)}\n\n"
            await asyncio.sleep(min(1.0, max(deadline - time.monotonic(), 0)))
        yield ": bye\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})  # fmt: skip
