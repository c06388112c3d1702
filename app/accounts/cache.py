"""The callers' principals, kept in each server process between requests.

A request costs the principal (grants and posts) one database read only on a miss.
Every process drops an entry the moment its user, a grant, a post or the person
changes: triggers send `NOTIFY wuzhang_principal` (migration 0107) and app.listen
calls `drop`. While the listening connection is down, notifications could be missed,
so the cache is not used at all (`live` is False) and every request reads fresh; when
it is back, everything cached before is forgotten.

A read that raced with a change cannot pin a stale entry: `put` stores only if no
drop happened since the read began (`generation`).
"""

from __future__ import annotations

import time
from collections import OrderedDict

from app.accounts.scope import Principal
from app.accounts.security import AccessClaims


class PrincipalCache:
    def __init__(self, *, max_entries: int = 20000, ttl_s: float = 300.0) -> None:
        self.max_entries, self.ttl_s = max_entries, ttl_s
        self._by_user: OrderedDict[int, tuple[float, Principal]] = OrderedDict()
        self._user_of_person: dict[int, int] = {}  # one account per person
        self.generation = 0  # bumped by every drop
        self.live = False  # set by app.listen while notifications can arrive

    def get(self, user_id: int) -> Principal | None:
        if not self.live:
            return None
        found = self._by_user.get(user_id)
        if found is None:
            return None
        stored_at, principal = found
        if time.monotonic() - stored_at > self.ttl_s:
            del self._by_user[user_id]
            return None
        self._by_user.move_to_end(user_id)
        return principal

    def put(self, principal: Principal, *, generation: int) -> None:
        """Keep `principal`, read when `generation` was current, unless anything was dropped since."""
        if not self.live or generation != self.generation or self.max_entries <= 0:
            return
        self._by_user[principal.user_id] = (time.monotonic(), principal)
        self._by_user.move_to_end(principal.user_id)
        self._user_of_person[principal.person_id] = principal.user_id
        while len(self._by_user) > self.max_entries:
            _, (_, evicted) = self._by_user.popitem(last=False)
            self._user_of_person.pop(evicted.person_id, None)

    def drop(self, payload: str) -> None:
        """`user:<id>`, `person:<id>` or `all` (a node changed: names and paths in scopes)."""
        self.generation += 1
        kind, _, value = payload.partition(":")
        if kind == "user" and value.isdigit():
            self._by_user.pop(int(value), None)
        elif kind == "person" and value.isdigit():
            user_id = self._user_of_person.pop(int(value), None)
            if user_id is not None:
                self._by_user.pop(user_id, None)
        else:
            self._by_user.clear()
            self._user_of_person.clear()

    def set_live(self, live: bool) -> None:
        self.generation += 1
        self._by_user.clear()
        self._user_of_person.clear()
        self.live = live


class TokenCache:
    """Access tokens this process has verified already, with their claims.

    Checking a JWT costs PyJWT about 0.1 ms (its base64 and JSON checks run in Python),
    which would be most of a cached request's time; a token seen before costs one dict
    lookup and an expiry check. Entries are only tokens whose signature was verified,
    so nothing unsigned can be planted; whether the user may still act is the
    principal's business (PrincipalCache), not the token's.
    """

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self._claims: OrderedDict[str, AccessClaims] = OrderedDict()

    def get(self, token: str) -> AccessClaims | None:
        claims = self._claims.get(token)
        if claims is None:
            return None
        if claims.expires_at <= time.time():
            del self._claims[token]
            return None
        return claims

    def put(self, token: str, claims: AccessClaims) -> None:
        if self.max_entries <= 0:
            return
        self._claims[token] = claims
        while len(self._claims) > self.max_entries:
            self._claims.popitem(last=False)
