"""Phones and the live inbox: device tokens, and the inbox as Server-Sent Events."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.sse import EventSourceResponse, format_sse_event
from pydantic import BaseModel, Field

from app import push, schemas
from app.deps import CallerDep, SessionDep, SettingsDep
from app.inputs import BIGINT_MAX
from app.listen import InboxBell
from grid.cases import repository as case_sql

router = APIRouter(prefix="/api/v1", tags=["push"])
ERRORS: dict[int | str, dict[str, Any]] = {c: {"model": schemas.ErrorOut} for c in (401, 403, 422, 503)}


class DeviceIn(BaseModel):
    # FCM tokens are about 160 characters; the cap keeps them well inside a btree index entry.
    token: str = Field(min_length=8, max_length=1024, description="the FCM registration token of this app install")
    platform: Literal["android", "ios", "web"]
    app_version: str | None = Field(default=None, max_length=32)


@router.post("/me/devices", status_code=204, responses=ERRORS, response_class=Response)
async def register_device(body: DeviceIn, caller: CallerDep, conn: SessionDep, settings: SettingsDep) -> Response:
    """Ring this phone for my notifications. Call it after each login and token refresh;
    a token last registered by someone else moves to me."""
    await push.register_device(conn, person_id=caller.person_id, county_code=caller.county_code, token=body.token,
                               platform=body.platform, app_version=body.app_version,
                               now=datetime.now(UTC))  # fmt: skip
    return Response(status_code=204)


@router.delete("/me/devices/{token}", status_code=204, responses=ERRORS, response_class=Response)
async def forget_device(token: str, caller: CallerDep, conn: SessionDep) -> Response:
    """Stop ringing this phone (on logout). Someone else's token, or an unknown one, is left alone."""
    await push.forget_device(conn, person_id=caller.person_id, token=token)
    return Response(status_code=204)


# Not `response_class=EventSourceResponse`: FastAPI takes that to mean a generator endpoint
# and iterates this coroutine (TypeError, an empty 200). The content type is documented here.
@router.get("/me/inbox/stream", responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}},
            response_class=Response)  # fmt: skip
async def inbox_stream(
    request: Request,
    caller: CallerDep,
    conn: SessionDep,
    settings: SettingsDep,
    after: Annotated[
        int | None, Query(ge=0, le=BIGINT_MAX, description="the last id seen; default: only new ones")
    ] = None,
    last_event_id: Annotated[int | None, Header(ge=0)] = None,
    max_s: Annotated[float, Query(gt=0, le=300, description="close after this long; EventSource reconnects")] = 55,
) -> EventSourceResponse:
    """My new notifications as Server-Sent Events (`event: notification`, `id:` = the
    notification id). The stream wakes when a notification for me is committed (NOTIFY),
    and looks anyway every WUZHANG_INBOX_POLL_S. It holds no database connection while it
    waits, and closes after `max_s` (below common proxy idle limits); EventSource
    reconnects by itself and sends Last-Event-ID, so nothing is missed."""
    pid = caller.person_id
    start = last_event_id if last_event_id is not None else after
    cursor = (
        start if start is not None else await case_sql.inbox_last_id(conn, county=caller.county_code, person_id=pid)
    )
    db, bell = request.app.state.db, request.app.state.inbox

    async def events() -> AsyncIterator[bytes]:
        nonlocal cursor
        ring = bell.subscribe(pid)
        try:
            yield format_sse_event(comment="inbox", retry=2000)
            deadline = time.monotonic() + max_s
            while (left := deadline - time.monotonic()) > 0 and not await request.is_disconnected():
                ring.clear()  # before looking: a notification committed meanwhile rings again
                async with db.connection() as c:
                    rows = await case_sql.inbox_after(c, county=caller.county_code, person_id=pid, after=cursor)
                for row in rows:
                    cursor = row["id"]
                    yield format_sse_event(event="notification", id=str(row["id"]),
                                           data_str=schemas.InboxItem(**row).model_dump_json())  # fmt: skip
                await _wait(ring, bell, left, settings.inbox_poll_s)
            yield format_sse_event(comment="bye")
        finally:
            bell.unsubscribe(pid, ring)

    return EventSourceResponse(events(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _wait(ring: asyncio.Event, bell: InboxBell, left: float, poll_s: float) -> None:
    """Until the next ring, or the next look without one (every second while NOTIFY is down)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ring.wait(), min(left, poll_s if bell.live else 1.0))
