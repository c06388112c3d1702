"""GET /metrics in the Prometheus text format.

Push is delivered by worker processes, not by the API; so the figures come from the
database (push_counter and the notification outbox), which every worker writes. Any
API process then reports the same, complete numbers, and they survive restarts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from app import push
from app.deps import SessionDep

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


@router.get("/metrics", include_in_schema=False)
async def metrics(conn: SessionDep) -> Response:
    counters, states, histogram = await push.metrics_figures(conn, LATENCY_BUCKETS)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PushCollector(counters, states, histogram))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
