"""One connection per server process that LISTENs for changes made anywhere.

Triggers (migration 0107) send three kinds of notification, delivered when the
writing transaction commits:

- `wuzhang_principal`: a user, grant, post or person changed → drop cached principals;
- `wuzhang_tiles`: `node` or `case_file` was written → newer tile versions;
- `wuzhang_inbox`: a person got a notification → wake their open inbox streams.

So a user disabled through one process is refused by every other within the time a
notification takes (milliseconds), and no cache answer needs a database round trip.
If the connection drops, the caches stop being trusted until it is back (they would
miss notifications meanwhile), then the tile counters are read afresh and the
principals forgotten. It reconnects by itself, backing off up to `max_backoff_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

import psycopg

from app.accounts.cache import PrincipalCache
from app.tile_cache import TileVersions
from grid.db import connect, fetch_one

log = logging.getLogger("wuzhang.listen")

CHANNELS = ("wuzhang_principal", "wuzhang_tiles", "wuzhang_inbox")


class InboxBell:
    """Open inbox streams wait here for their person's next notification."""

    def __init__(self) -> None:
        self._waiting: defaultdict[int, set[asyncio.Event]] = defaultdict(set)
        self.live = False

    def subscribe(self, person_id: int) -> asyncio.Event:
        """An event set on each new notification for the person (clear it before looking)."""
        event = asyncio.Event()
        self._waiting[person_id].add(event)
        return event

    def unsubscribe(self, person_id: int, event: asyncio.Event) -> None:
        self._waiting[person_id].discard(event)
        if not self._waiting[person_id]:
            del self._waiting[person_id]

    def ring(self, payload: str) -> None:
        if payload.isdigit():
            for event in self._waiting.get(int(payload), ()):
                event.set()

    def ring_all(self) -> None:
        for events in self._waiting.values():
            for event in events:
                event.set()


class Listener:
    def __init__(
        self, url: str, *, principals: PrincipalCache, versions: TileVersions, inbox: InboxBell,
        max_backoff_s: float = 10.0,
    ) -> None:  # fmt: skip
        self.url, self.principals, self.versions, self.inbox = url, principals, versions, inbox
        self.max_backoff_s = max_backoff_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="wuzhang-listen")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._set_live(False)

    def _set_live(self, live: bool) -> None:
        self.principals.set_live(live)
        self.inbox.live = live
        if not live:
            self.versions.live = False

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                conn = await connect(self.url, application_name="wuzhang-listen")
                async with conn:
                    for channel in CHANNELS:
                        await conn.execute(f"LISTEN {channel}")
                    # Listening now: anything changed before this is in the counters we read.
                    row = await fetch_one(conn, "SELECT (SELECT last_value FROM tile_grid_version) AS grid,"
                                                " (SELECT last_value FROM tile_case_version) AS case")  # fmt: skip
                    assert row is not None
                    self.versions.reset(grid=int(row["grid"]), case=int(row["case"]), live=True)
                    self._set_live(True)
                    self.inbox.ring_all()  # streams may have missed a notification while we were away
                    backoff = 0.5
                    log.info("listening for cache invalidations")
                    async for note in conn.notifies():
                        self._dispatch(note.channel, note.payload)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                self._set_live(False)
                log.warning("listening connection lost (%s); caches bypassed, retrying in %.1f s", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    def _dispatch(self, channel: str, payload: str) -> None:
        if channel == "wuzhang_principal":
            self.principals.drop(payload)
        elif channel == "wuzhang_tiles":
            self.versions.bump(payload)
        elif channel == "wuzhang_inbox":
            self.inbox.ring(payload)
