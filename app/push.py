"""Push delivery: drain the notification outbox to phones through FCM (firebase-admin).

The notification row is the record (the inbox); push is only the doorbell. A round:
1. claim pending rows with FOR UPDATE SKIP LOCKED, bump `attempts` and push
   `next_attempt_at` a lease ahead, and commit: a worker killed mid-batch leaves rows
   that another round takes again once the lease is over (at least once; a repeat
   carries the same notification id in `data`, so the app de-duplicates);
2. send one message per (notification, device) through `send_each`, 500 at most a call;
3. record each notification's outcome in one transaction: sent, retry later
   (exponential backoff with jitter, at least Retry-After), or failed with a reason.
   Dead tokens are deleted; a person with no reachable phone makes
   `grid.cases.notify_next_up` ring the next chief up and sign it into the ledger.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from app.settings import Settings
from grid.cases import service as cases
from grid.cases.ledger import Signer
from grid.db import Conn, Row, execute, fetch_all

log = logging.getLogger("wuzhang.push")

FCM_BATCH = 500  # the most messages one send_each takes


@dataclass(frozen=True)
class Push:
    """One message to one device: nothing in it names a party (it passes through Google/Apple)."""

    notification_id: int
    token: str
    title: str
    body: str
    data: dict[str, str]
    collapse_key: str


@dataclass(frozen=True)
class Result:
    """What became of one message. `kind`: ok | dead_token | retry | auth | permanent."""

    kind: str
    error: str | None = None
    retry_after_s: float | None = None


class Sender(Protocol):
    def send(self, pushes: Sequence[Push]) -> list[Result]: ...


class LoggingSender:
    """No Firebase configured (the demo): log the doorbell and call it rung."""

    def send(self, pushes: Sequence[Push]) -> list[Result]:
        for p in pushes:
            log.info("push (logging sender) notification %s to …%s: %s", p.notification_id, p.token[-6:], p.title)
        return [Result("ok") for _ in pushes]


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "http_response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date: rare from FCM; our own backoff applies
        return None


def _names_token(exc: Exception) -> bool:
    """An INVALID_ARGUMENT is the token's fault only if a field violation names it."""
    response = getattr(exc, "http_response", None)
    try:
        details = response.json()["error"].get("details", []) if response is not None else []
    except (ValueError, KeyError, AttributeError, TypeError):
        return False
    return any(v.get("field") == "message.token" for d in details for v in d.get("fieldViolations", []))


def classify(exc: Exception | None) -> Result:
    """The FCM error codes as actions (docs/push.md lists them)."""
    from firebase_admin import exceptions, messaging

    if exc is None:
        return Result("ok")
    error = f"{type(exc).__name__}: {exc}"[:500]
    if isinstance(exc, (messaging.UnregisteredError, messaging.SenderIdMismatchError)):
        return Result("dead_token", error)
    if isinstance(exc, exceptions.InvalidArgumentError):
        return Result("dead_token" if _names_token(exc) else "permanent", error)
    if isinstance(exc, messaging.ThirdPartyAuthError):
        return Result("auth", error)  # APNs/web-push credentials: an operator's problem, the token is fine
    # QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL, timeouts, anything unknown: later.
    return Result("retry", error, _retry_after(exc))


class FcmSender:
    """The real sender: one firebase_admin App, send_each in batches of 500."""

    def __init__(self, app: Any, *, ttl_s: int) -> None:
        import requests
        from firebase_admin import _http_client, messaging

        self.app, self.ttl_s = app, ttl_s
        # urllib3 inside firebase-admin sleeps out a Retry-After (429 included) within
        # the send: one "Retry-After: 60" would stall the worker for minutes. The
        # worker owns that wait (next_attempt_at), so the library keeps only its quick
        # 500/503 retries. Private API: firebase-admin offers no transport option.
        service = messaging._get_messaging_service(app)  # built now: FCM_URL is already set
        url = urlsplit(service._fcm_url)
        retry = _http_client.DEFAULT_RETRY_CONFIG.new(respect_retry_after_header=False)
        service._client.session.mount(f"{url.scheme}://{url.netloc}", requests.adapters.HTTPAdapter(
            pool_connections=100, pool_maxsize=FCM_BATCH, max_retries=retry))  # fmt: skip

    @classmethod
    def from_settings(cls, settings: Settings) -> FcmSender:
        import firebase_admin
        from firebase_admin import credentials, messaging

        if settings.fcm_url:  # tests and drills: a fake FCM server; before the service is first built
            messaging._MessagingService.FCM_URL = settings.fcm_url
        cred = credentials.Certificate(settings.fcm_credentials)
        app = firebase_admin.initialize_app(cred, {"httpTimeout": settings.fcm_http_timeout_s},
                                            name=f"wuzhang-push-{uuid.uuid4().hex[:8]}")  # fmt: skip
        return cls(app, ttl_s=settings.push_ttl_s)

    def message(self, p: Push) -> Any:
        from firebase_admin import messaging

        ttl = timedelta(seconds=self.ttl_s)
        return messaging.Message(
            token=p.token,
            notification=messaging.Notification(title=p.title, body=p.body),
            data=p.data,
            # An alert a person must act on: high priority; one case, one slot on the lock screen.
            android=messaging.AndroidConfig(priority="high", collapse_key=p.collapse_key, ttl=ttl),
            apns=messaging.APNSConfig(headers={"apns-priority": "10", "apns-collapse-id": p.collapse_key,
                                               "apns-expiration": str(int(datetime.now().timestamp() + self.ttl_s))}),
            webpush=messaging.WebpushConfig(headers={"TTL": str(self.ttl_s), "Urgency": "high",
                                                     "Topic": p.collapse_key}),
        )  # fmt: skip

    def send(self, pushes: Sequence[Push]) -> list[Result]:
        from firebase_admin import messaging

        results: list[Result] = []
        for i in range(0, len(pushes), FCM_BATCH):
            chunk = pushes[i : i + FCM_BATCH]
            try:
                batch = messaging.send_each([self.message(p) for p in chunk], app=self.app)
            except Exception as exc:  # the whole call failed (e.g. no OAuth token): all later
                log.warning("send_each failed: %s", exc)
                results += [Result("retry", f"{type(exc).__name__}: {exc}"[:500])] * len(chunk)
                continue
            results += [classify(r.exception) for r in batch.responses]
        return results

    def close(self) -> None:
        import firebase_admin

        firebase_admin.delete_app(self.app)


def make_sender(settings: Settings) -> Sender:
    if settings.fcm_credentials:
        return FcmSender.from_settings(settings)
    log.info("WUZHANG_FCM_CREDENTIALS is not set: pushes are only logged")
    return LoggingSender()


# --- SQL ------------------------------------------------------------------------

_CLAIM = """
UPDATE notification n SET attempts = n.attempts + 1, next_attempt_at = %(lease_until)s
  FROM (SELECT id FROM notification
         WHERE delivery_state = 'pending' AND next_attempt_at <= %(now)s
         ORDER BY next_attempt_at, id LIMIT %(n)s FOR UPDATE SKIP LOCKED) c
 WHERE n.id = c.id
RETURNING n.id, n.person_id, n.case_id, n.kind, n.title, n.body, n.created_at, n.attempts
"""


async def bump(conn: Conn, name: str, by: int = 1) -> None:
    if by:
        await execute(
            conn,
            "INSERT INTO push_counter (name, value) VALUES (%(n)s, %(v)s)"
            " ON CONFLICT (name) DO UPDATE SET value = push_counter.value + EXCLUDED.value",
            {"n": name, "v": by},
        )


async def register_device(
    conn: Conn, *, person_id: int, county_code: str, token: str, platform: str, app_version: str | None,
    now: datetime,
) -> None:  # fmt: skip
    """Upsert by token: a token that reappears under another user moves to that user."""
    await execute(
        conn,
        """
INSERT INTO device (county_code, token, person_id, platform, app_version, created_at, last_seen_at)
VALUES (%(cc)s, %(token)s, %(pid)s, %(platform)s, %(v)s, %(now)s, %(now)s)
ON CONFLICT (token, county_code) DO UPDATE SET person_id = EXCLUDED.person_id, platform = EXCLUDED.platform,
  app_version = EXCLUDED.app_version, last_seen_at = EXCLUDED.last_seen_at
""",
        {"cc": county_code, "token": token, "pid": person_id, "platform": platform, "v": app_version, "now": now},
    )


async def forget_device(conn: Conn, *, person_id: int, token: str) -> int:
    return await execute(
        conn, "DELETE FROM device WHERE token = %(t)s AND person_id = %(p)s", {"t": token, "p": person_id}
    )


async def metrics_figures(conn: Conn, buckets: Sequence[float]) -> tuple[dict[str, int], list[Row], Row]:
    """(counters, notifications by delivery state, latency histogram row) for /metrics."""
    # Each bucket named: rows are dicts, and unnamed columns would all be "count" (one key).
    counts = ", ".join(
        f"count(*) FILTER (WHERE delivered_at - created_at <= make_interval(secs => {float(b)})) AS le_{i}"
        for i, b in enumerate(buckets)
    )
    async with conn.pipeline():
        counters = await conn.execute("SELECT name, value FROM push_counter")
        states = await conn.execute("SELECT delivery_state, count(*) AS n FROM notification GROUP BY 1")
        latency = await conn.execute(
            f"SELECT {counts}, count(*) AS total, coalesce(sum(extract(epoch FROM delivered_at - created_at)), 0)"
            " AS seconds FROM notification WHERE delivery_state = 'sent' AND delivered_at IS NOT NULL"
        )
        counter_rows, state_rows, hist = await counters.fetchall(), await states.fetchall(), await latency.fetchone()
    assert hist is not None
    return {r["name"]: r["value"] for r in counter_rows}, state_rows, hist


# --- one round ------------------------------------------------------------------


@dataclass
class RoundResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unreachable: int = 0
    tokens_deleted: int = 0
    latencies_s: list[float] = field(default_factory=list)


def _pushes(rows: Sequence[Row], devices: dict[int, list[str]]) -> list[Push]:
    out = []
    for n in rows:
        case = str(n["case_id"]) if n["case_id"] is not None else ""
        data = {"notification_id": str(n["id"]), "kind": n["kind"], "case_id": case,
                "link": f"wuzhang://cases/{case}" if case else "wuzhang://inbox"}  # fmt: skip
        collapse = f"case-{case}" if case else f"n-{n['id']}"
        out += [Push(n["id"], t, n["title"], n["body"], data, collapse) for t in devices.get(n["person_id"], [])]
    return out


def backoff_s(settings: Settings, attempts: int, retry_after_s: float | None) -> float:
    """Exponential with full jitter, never sooner than the server's Retry-After."""
    cap = min(settings.push_backoff_max_s, settings.push_backoff_base_s * 2 ** max(attempts - 1, 0))
    return max(random.uniform(cap / 2, cap), retry_after_s or 0.0)


async def deliver_round(
    *, conn: Conn, sender: Sender, settings: Settings, now: datetime, signer: Signer,
    clock: Any = None,
) -> RoundResult:  # fmt: skip
    """Claim, send, record: two transactions, and none open while the network is slow."""
    async with conn.transaction():
        rows = await fetch_all(conn, _CLAIM, {"now": now, "n": settings.push_claim,
                                              "lease_until": now + timedelta(seconds=settings.push_lease_s)})  # fmt: skip
    result = RoundResult(claimed=len(rows))
    if not rows:
        return result
    devices: dict[int, list[str]] = defaultdict(list)
    for d in await fetch_all(conn, "SELECT person_id, token FROM device WHERE person_id = ANY(%(p)s) ORDER BY id",
                             {"p": list({r["person_id"] for r in rows})}):  # fmt: skip
        devices[d["person_id"]].append(d["token"])
    pushes = _pushes(rows, devices)
    # firebase-admin's send is synchronous: a thread, so this process's loop keeps turning.
    outcomes = await asyncio.to_thread(sender.send, pushes) if pushes else []
    accepted_at = clock() if clock else now  # FCM accepted by now: the latency's end
    by_notification: dict[int, list[tuple[Push, Result]]] = defaultdict(list)
    dead: set[str] = set()
    auth_errors = 0
    for p, r in zip(pushes, outcomes, strict=True):
        by_notification[p.notification_id].append((p, r))
        if r.kind == "dead_token":
            dead.add(p.token)
        auth_errors += r.kind == "auth"
    async with conn.transaction():
        if dead:
            result.tokens_deleted = await execute(
                conn, "DELETE FROM device WHERE token = ANY(%(t)s)", {"t": list(dead)}
            )
        # Who has a run of push failures open on a case (its count waits for the ledger).
        runs = await cases.open_unreachable_runs(
            conn=conn, person_ids=list({r["person_id"] for r in rows if r["case_id"] is not None})
        )
        # In case order: the fallback locks each case row, and two workers taking the same
        # cases in different orders would deadlock each other.
        for n in sorted(rows, key=lambda r: (r["case_id"] or 0, r["id"])):
            got = by_notification.get(n["id"], [])
            kinds = {r.kind for _, r in got}
            errors = "; ".join(sorted({r.error for _, r in got if r.error}))[:1000]
            reason = None
            values: dict[str, Any]
            if "ok" in kinds:
                outcome, values = "sent", {"delivery_state": "sent", "delivered_at": accepted_at, "last_error": None}
            elif kinds & {"retry", "auth"}:
                if (now - n["created_at"]).total_seconds() >= settings.push_give_up_after_s:
                    outcome, values = (
                        "failed",
                        {"delivery_state": "failed", "last_error": f"gave up after {n['attempts']} attempts: {errors}"},
                    )
                else:
                    wait = backoff_s(settings, n["attempts"], max((r.retry_after_s or 0 for _, r in got), default=0))
                    outcome, values = (
                        "retried",
                        {"next_attempt_at": now + timedelta(seconds=wait), "last_error": errors},
                    )
            elif "permanent" in kinds:
                outcome, values = "failed", {"delivery_state": "failed", "last_error": f"refused by FCM: {errors}"}
            else:  # no device, or every token dead: the inbox keeps it, and someone above must know
                reason = "every device token is dead" if got else "no registered device"
                outcome, values = "failed", {"delivery_state": "failed", "last_error": f"unreachable: {reason}"}
            if not await _set(conn, n, **values):
                continue  # our lease ran out and another round took the row: its result stands
            setattr(result, outcome, getattr(result, outcome) + 1)
            if outcome == "sent":
                result.latencies_s.append(max((accepted_at - n["created_at"]).total_seconds(), 0.0))
                if (n["case_id"], n["person_id"]) in runs:  # reachable again: the run's count goes on the ledger
                    runs.discard((n["case_id"], n["person_id"]))
                    await cases.reached(conn=conn, case_id=n["case_id"], person_id=n["person_id"], now=now,
                                        signer=signer)  # fmt: skip
            if reason is not None:
                result.unreachable += 1
                if settings.push_fallback == "chain":
                    await cases.notify_next_up(
                        conn=conn, notification=n, reason=reason, now=now, signer=signer,
                        fold_window=timedelta(seconds=settings.push_unreachable_fold_s),
                    )  # fmt: skip
        for name, value in (("sent", result.sent), ("retried", result.retried), ("failed", result.failed),
                            ("unreachable", result.unreachable), ("tokens_deleted", result.tokens_deleted),
                            ("third_party_auth_errors", auth_errors)):  # fmt: skip
            await bump(conn, name, value)
    log.info(
        "push round: %s claimed, %s sent, %s retried, %s failed (%s unreachable), %s tokens deleted",
        result.claimed,
        result.sent,
        result.retried,
        result.failed,
        result.unreachable,
        result.tokens_deleted,
    )
    return result


async def _set(conn: Conn, claimed: Row, **values: Any) -> bool:
    """Record an outcome, unless the row was claimed again since (attempts moved on)."""
    cols = ", ".join(f"{k} = %({k})s" for k in values)
    return (
        await execute(
            conn,
            f"UPDATE notification SET {cols}"
            " WHERE id = %(id)s AND attempts = %(attempts)s AND delivery_state = 'pending'",
            {**values, "id": claimed["id"], "attempts": claimed["attempts"]},
        )
        == 1
    )


async def deliver_all(
    *, conn: Conn, sender: Sender, settings: Settings, now: datetime, signer: Signer, clock: Any = None,
    max_rounds: int = 1000,
) -> RoundResult:  # fmt: skip
    """Rounds until the due outbox is empty (a full claim means more may be waiting)."""
    total = RoundResult()
    for _ in range(max_rounds):
        r = await deliver_round(conn=conn, sender=sender, settings=settings, now=now, signer=signer, clock=clock)
        for k in ("claimed", "sent", "retried", "failed", "unreachable", "tokens_deleted"):
            setattr(total, k, getattr(total, k) + getattr(r, k))
        total.latencies_s += r.latencies_s
        if r.claimed < settings.push_claim:
            break
    return total
