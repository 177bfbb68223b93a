"""Prometheus metrics of one ingester, and the ``/metrics`` endpoint that serves them.

Each :class:`IngestMetrics` owns its own ``CollectorRegistry`` (never the process-global one), so
several ingesters or tests in one process each count for themselves. The endpoint is
prometheus_client's own server (``start_http_server``: a small WSGI server in a daemon thread);
the counters are thread-safe, so the event loop updates them while that thread renders a scrape.

Label values are bounded: message kinds, measurements and dead-letter reasons are fixed sets
(anything else is counted as ``other``), so no device id or error text ever becomes a series.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated

from msgspec import Meta
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import start_http_server

from wastebank import broker_events, influx
from wastebank.config import Settings

NAMESPACE = "wastebank_ingest"

KINDS = ("deposit", "fill", "health", "alert")
BROKER_KIND = "broker"  # the broker's own events (wastebank/broker_events.py)
REFUSED_REASONS = (*broker_events.REASONS, "unreported")
MEASUREMENTS = (
    influx.DEPOSIT,
    influx.FILL,
    influx.GATEWAY_HEALTH,
    influx.SCALE_HEALTH,
    influx.ALERT,
)
OUTCOMES = ("applied", "duplicate", "conflict")
# (prefix of the rejection text, reason label); the texts are those of ingest.items and
# ingest.consumer.
_REASON_PREFIXES = (
    ("oversized", "oversized"),
    ("conflict", "conflict"),
    ("over limit", "over_limit"),
    ("invalid ", "invalid_payload"),
    ("identity mismatch", "identity_mismatch"),
    ("deposit rejected", "deposit_rejected"),
    ("topic not understood", "unknown_topic"),
    ("no handler for", "unknown_topic"),
    ("InfluxDB refused", "influx_refused"),
)
REASONS = (*dict.fromkeys(reason for _, reason in _REASON_PREFIXES), "other")
# The coarser code the dead letter keeps (``dead_letter.reason``, wastebank.ledger's
# DeadLetterReason values), by label.
_STORED = {
    "oversized": "oversized",
    "conflict": "conflict",
    "over_limit": "over_limit",
    "deposit_rejected": "rejected",
    "influx_refused": "influx_refused",
}

BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class MetricsSettings(Settings, kw_only=True):
    """Where ``/metrics`` listens (``WASTEBANK_METRICS__PORT``); no port: not served."""

    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] | None = None


def kind_of_topic(topic: str) -> str:
    """The message kind a topic names (its last level), ``broker``, or ``other``."""
    if topic == broker_events.REFUSED_TOPIC:
        return BROKER_KIND
    kind = topic.rpartition("/")[2]
    return kind if kind in KINDS else "other"


def reason_of(error: str) -> str:
    """A bounded reason label for a dead letter's error text."""
    for prefix, reason in _REASON_PREFIXES:
        if error.startswith(prefix):
            return reason
    return "other"


def stored_reason_of(error: str) -> str:
    """The reason code a dead letter with this error text is stored with."""
    return _STORED.get(reason_of(error), "invalid")


def measurement_of(line: str) -> str:
    """The measurement of one line-protocol line (ours are never escaped), or ``other``."""
    end = len(line)
    for sep in (",", " "):
        at = line.find(sep)
        if 0 <= at < end:
            end = at
    name = line[:end]
    return name if name in MEASUREMENTS else "other"


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "received", "Messages received, by kind", ["kind"], namespace=NAMESPACE, registry=r
        )
        self.written_points = Counter(
            "written_points",
            "Points written to InfluxDB, by measurement",
            ["measurement"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.dead_lettered = Counter(
            "dead_lettered",
            "Messages stored as dead letters, by reason",
            ["reason"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.write_retries = Counter(
            "write_retries",
            "InfluxDB writes retried after a retryable failure",
            namespace=NAMESPACE,
            registry=r,
        )
        self.deposits = Counter(
            "deposits",
            "Deposits applied to the ledger, or found already applied",
            ["outcome"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "batch_seconds",
            "Seconds from a batch's first message received to its acknowledgement",
            namespace=NAMESPACE,
            registry=r,
            buckets=BATCH_BUCKETS,
        )
        self.consumer_lag_seconds = Gauge(
            "consumer_lag_seconds",
            "Now minus measured_at of the newest message processed",
            namespace=NAMESPACE,
            registry=r,
        )
        self.broker_refused = Counter(
            "broker_refused",
            "CONNECTs the broker refused for a client id of another identity, by reason "
            "(unreported: more pairs at once than the broker's plugin reports one by one)",
            ["reason"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.inflight_messages = Gauge(
            "inflight_messages",
            "Messages received and not yet acknowledged",
            namespace=NAMESPACE,
            registry=r,
        )
        # Every known series exists from the start (at 0), so rates and alerts see it at once;
        # the children are kept so the hot path does no label lookup.
        self._received = {k: self.received.labels(kind=k) for k in (*KINDS, BROKER_KIND, "other")}
        self._written = {
            m: self.written_points.labels(measurement=m) for m in (*MEASUREMENTS, "other")
        }
        self._dead = {reason: self.dead_lettered.labels(reason=reason) for reason in REASONS}
        self._deposits = {o: self.deposits.labels(outcome=o) for o in OUTCOMES}
        self._refused = {r: self.broker_refused.labels(reason=r) for r in REFUSED_REASONS}

    # ---- what the ingest loop calls -------------------------------------------------------------

    def message_received(self, topic: str, count: int = 1) -> None:
        self._received[kind_of_topic(topic)].inc(count)

    def messages_received(self, topics: Iterable[str]) -> None:
        for kind, n in Tally(kind_of_topic(t) for t in topics).items():
            self._received[kind].inc(n)

    def deposit(self, outcome: str, count: int = 1) -> None:
        """``outcome``: ``applied`` or ``duplicate`` (ledger.Outcome's values)."""
        self._deposits[str(outcome)].inc(count)

    def refused(self, reason: str, count: int = 1) -> None:
        """``count`` CONNECTs the broker refused (``reason``: one of ``REFUSED_REASONS``)."""
        self._refused[reason].inc(count)

    def dead_letter(self, error: str) -> None:
        self._dead[reason_of(error)].inc()

    def write_retry(self) -> None:
        self.write_retries.inc()

    def points_written(self, lines: Sequence[str]) -> None:
        for measurement, n in Tally(measurement_of(line) for line in lines).items():
            self._written[measurement].inc(n)

    def batch_acked(self, first_received: float, now: float | None = None) -> None:
        """A batch was acknowledged; ``first_received`` is ``time.monotonic()`` (= the default
        event loop's ``loop.time()``) when its first message arrived."""
        now = time.monotonic() if now is None else now
        self.batch_seconds.observe(max(0.0, now - first_received))

    def processed(self, measured_at: Iterable[datetime], now: datetime | None = None) -> None:
        """Set the consumer lag from the newest ``measured_at`` of the messages just processed.

        Times in the future (a device clock running ahead) are ignored: they would hide the lag.
        """
        now = now or datetime.now(UTC)
        newest = max((t for t in measured_at if t <= now), default=None)
        if newest is not None:
            self.consumer_lag_seconds.set((now - newest).total_seconds())

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format, as ``/metrics`` serves it."""
        return generate_latest(self.registry)


async def serve_metrics(
    metrics: IngestMetrics,
    host: str,
    port: int,
    *,
    ready: asyncio.Future[int] | None = None,
) -> None:
    """Serve ``/metrics`` on ``host:port`` until cancelled; ``ready`` gets the bound port.

    prometheus_client's own server runs in its daemon thread; this coroutine owns its lifetime,
    so it belongs in the ingester's TaskGroup and stops the server when the group exits.
    """
    server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    try:
        if ready is not None and not ready.done():
            ready.set_result(int(server.server_port))
        await asyncio.Event().wait()  # until cancelled
    finally:
        server.shutdown()  # returns within the server's 0.5 s poll interval
        server.server_close()
        thread.join(timeout=5)
