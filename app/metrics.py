"""GET /metrics in the Prometheus text format, for a scraper holding WUZHANG_METRICS_TOKEN.

Push is delivered by worker processes, not by the API; so the figures come from the
database (push_counter and the notification outbox), which every worker writes. Any
API process then reports the same, complete numbers, and they survive restarts.

A scrape never queries: each process keeps the figures in memory and reads them again in
the background at most every WUZHANG_METRICS_REFRESH_S. Only the first scrape a process
gets waits for the first reading (a counter that started at zero would look like a jump).
Without a token set, /metrics is not served (404): it needs no login otherwise.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import push
from app.accounts.exceptions import NotAuthenticated
from app.policy import bearer_token
from app.settings import Settings

log = logging.getLogger("wuzhang.metrics")
router = APIRouter(tags=["health"])

# Seconds from the decision (the case's commit) to FCM accepting the message.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
COUNTERS = {
    "sent": "notifications FCM accepted for at least one of the person's devices",
    "failed": "notifications given up on (they stay in the inbox)",
    "retried": "delivery attempts put off for a later retry",
    "unreachable": "notifications whose person had no reachable device",
    "tokens_deleted": "device tokens deleted as dead (UNREGISTERED, INVALID_ARGUMENT on the token)",
    "third_party_auth_errors": "THIRD_PARTY_AUTH_ERROR answers: fix the APNs/web push credentials in Firebase",
}


class PushCollector:
    """Figures read once per scrape (app.push.metrics_figures), in the Prometheus shapes."""

    def __init__(self, counters: dict[str, int], states: list[dict[str, Any]], histogram: dict[str, Any]) -> None:
        self.counters, self.states, self.histogram = counters, states, histogram

    def collect(self) -> Iterator[Any]:
        for name, help_text in COUNTERS.items():
            c = CounterMetricFamily(f"wuzhang_push_{name}", help_text)
            c.add_metric([], self.counters.get(name, 0))
            yield c
        g = GaugeMetricFamily("wuzhang_notifications", "notifications in the outbox, by delivery state",
                              labels=["state"])  # fmt: skip
        for row in self.states:
            g.add_metric([row["delivery_state"]], row["n"])
        yield g
        values = list(self.histogram.values())
        counts, total, seconds = values[: len(LATENCY_BUCKETS)], values[-2], float(values[-1])
        h = HistogramMetricFamily("wuzhang_push_delivery_latency_seconds",
                                  "from the decision's commit to FCM accepting the push")  # fmt: skip
        les = [str(b) for b in LATENCY_BUCKETS] + ["+Inf"]
        h.add_metric([], list(zip(les, [*counts, total], strict=True)), seconds)
        yield h


@dataclass
class Figures:
    """The process's latest reading of the database's figures, and the refresh under way."""

    collector: PushCollector | None = None
    taken_at: float = 0.0  # time.monotonic() of the reading
    refreshing: asyncio.Task[None] | None = field(default=None, repr=False)


async def read_figures(app: Any, figures: Figures) -> None:
    async with app.state.db.connection() as conn:
        figures.collector = PushCollector(*await push.metrics_figures(conn, LATENCY_BUCKETS))
    figures.taken_at = time.monotonic()


async def _refresh(app: Any, figures: Figures) -> None:
    try:
        await read_figures(app, figures)
    except Exception:  # the scrape keeps the last reading, and its age says how old it is
        log.warning("reading the figures for /metrics failed", exc_info=True)


def _figures(app: Any) -> Figures:
    figures: Figures | None = getattr(app.state, "metrics_figures", None)
    if figures is None:
        figures = app.state.metrics_figures = Figures()
    return figures


def _check_token(request: Request, settings: Settings) -> None:
    expected = settings.metrics_token.get_secret_value()
    if not expected:
        raise StarletteHTTPException(404)
    given = bearer_token(request) or ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise NotAuthenticated("/metrics 需要请求头 Authorization: Bearer <WUZHANG_METRICS_TOKEN>")


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    _check_token(request, settings)
    figures = _figures(request.app)
    if figures.collector is None:
        await read_figures(request.app, figures)
    elif time.monotonic() - figures.taken_at >= settings.metrics_refresh_s and (
        figures.refreshing is None or figures.refreshing.done()
    ):
        figures.refreshing = asyncio.create_task(_refresh(request.app, figures), name="wuzhang-metrics")
    assert figures.collector is not None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(figures.collector)
    age = GaugeMetricFamily("wuzhang_metrics_age_seconds", "how old the database figures of this answer are")
    age.add_metric([], time.monotonic() - figures.taken_at)
    registry.register(_Fixed([age]))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class _Fixed:
    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Iterator[Any]:
        yield from self.families
