"""Tiles kept in each server process, and the version counters that make them stale.

Every write to `node` or `case_file` bumps a sequence and sends its new value by
`NOTIFY wuzhang_tiles` (migration 0107); app.listen hands it to `TileVersions`. A
tile is stored under the versions read before its query ran, so a tile built from a
snapshot older than a write is never served once that write's notification arrived.
A cache hit, and a 304 for a matching ETag, need no database round trip at all.
While the listening connection is down the versions cannot be trusted, so the
cache is bypassed (`live` is False) until it is back and has read the counters anew.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable


class TileVersions:
    def __init__(self) -> None:
        self.grid = 0
        self.case = 0
        self.live = False

    def bump(self, payload: str) -> None:
        """`grid:<n>` or `case:<n>`: the sequence's new value (never goes back)."""
        kind, _, value = payload.partition(":")
        n = int(value) if value.isdigit() else 0
        if kind == "grid":
            self.grid = max(self.grid + (0 if n else 1), n)
        elif kind == "case":
            self.case = max(self.case + (0 if n else 1), n)

    def reset(self, *, grid: int, case: int, live: bool) -> None:
        self.grid, self.case, self.live = grid, case, live


class TileCache:
    """A small LRU of tiles (body and ETag), entries also expiring after `ttl_s`.

    Keys carry the versions, so an import or a case change makes old entries
    unreachable; the TTL bounds the rest (overdue counts change with the clock).
    """

    def __init__(self, max_entries: int = 2048, ttl_s: float = 60.0) -> None:
        self.max_entries, self.ttl_s = max_entries, ttl_s
        self._data: OrderedDict[Hashable, tuple[float, bytes, str]] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> tuple[bytes, str] | None:
        found = self._data.get(key)
        if found is None or time.monotonic() - found[0] > self.ttl_s:
            self._data.pop(key, None)
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return found[1], found[2]

    def put(self, key: Hashable, body: bytes, tag: str) -> None:
        if self.max_entries <= 0:
            return
        self._data[key] = (time.monotonic(), body, tag)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()
