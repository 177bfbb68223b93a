"""``wastebank ingest``: MQTT (QoS 1, persistent session) -> ledger + InfluxDB, each message
applied once. :func:`run` starts the parts and stops them; each part has a module of its own:

- ``ingest.settings``: :class:`IngestSettings` (``WASTEBANK_*``);
- ``ingest.consumer``: the :class:`Ingester`, batch-then-ack (its docstring tells the design);
- ``ingest.items``: one message on its way, and :class:`Rejected`;
- ``ingest.ledger_writes``: dead letters and system alerts in the ledger;
- ``ingest.paho_inbox``: the fast path from the socket to the batches (measured: keep it apart);
- ``ingest.connection``: the broker connection and what it logs;
- ``ingest.metrics``, ``ingest.clash``, ``ingest.deadletter``: as their names say.

The names callers import from here (``from ingest.main import Ingester, IngestSettings, run``)
stay here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ingest.connection import connect
from ingest.consumer import MAX_LINES_PER_WRITE, Ingester, Stats
from ingest.items import Rejected
from ingest.metrics import serve_metrics
from ingest.paho_inbox import Inbox, InboxClient
from ingest.settings import KINDS, IngestSettings, Kind, ReconcileSettings
from wastebank.config import InfluxSettings
from wastebank.influx import (
    CLOCK_AHEAD_TOLERANCE,
    Influx,
    InfluxError,
    ensure_schema,
    make_writer,
    retry_wait,
)
from wastebank.mqtt import retrying

__all__ = [
    "CLOCK_AHEAD_TOLERANCE",
    "KINDS",
    "MAX_LINES_PER_WRITE",
    "Inbox",
    "IngestSettings",
    "Ingester",
    "Kind",
    "ReconcileSettings",
    "Rejected",
    "Stats",
    "run",
]

log = logging.getLogger("wastebank.ingest")

T = TypeVar("T")


async def run(settings: IngestSettings, *, ready: asyncio.Event | None = None) -> None:
    # A telemetry-only ingester never loads SQLAlchemy unless it must store a dead letter: a large
    # share of its memory (docs/scaling.md). One that takes deposits opens the ledger now, so a
    # wrong ledger URL stops it at start, not at the first deposit.
    engine = None
    if "deposit" in settings.kinds:
        from wastebank import ledger

        engine = ledger.make_engine(settings.ledger_url)
    influx = Influx(settings.influx)
    writer = await _retrying(lambda: make_writer(settings.influx), "InfluxDB")
    ingester = Ingester(settings, engine, influx, writer)
    metrics_server = (
        asyncio.create_task(
            serve_metrics(ingester.metrics, settings.metrics.host, settings.metrics.port),
            name="metrics",
        )
        if settings.metrics.port is not None
        else None
    )
    inbox = Inbox(asyncio.get_running_loop(), limit=2 * settings.batch_size)
    client: InboxClient | None = None
    reconciler: asyncio.Task[None] | None = None
    try:
        await _retrying(lambda: _ensure_schema(influx, settings.influx), "InfluxDB schema")
        client = connect(settings, ingester.subscriptions(), inbox, ready)
        reconciler = _start_reconciliation(settings, ingester)
        await ingester.consume(inbox)
    finally:
        if reconciler is not None:
            reconciler.cancel()
        if client is not None:
            # Messages taken and not acknowledged come again on the next session.
            inbox.closing = True
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)
        if metrics_server is not None:
            metrics_server.cancel()
        if reconciler is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await reconciler
        log.info("ingest berhenti / stopping: %s", ingester.stats.as_dict())
        await writer.aclose()
        await influx.aclose()
        ingester.close()


def _start_reconciliation(
    settings: IngestSettings, ingester: Ingester
) -> asyncio.Task[None] | None:
    """The daily ledger-vs-InfluxDB comparison (wastebank.reconcile), in an ingester that
    takes deposits and whose ``reconcile.interval_s`` is not 0. Imported here: a telemetry-only
    ingester never loads it (nor SQLAlchemy)."""
    options = settings.reconcile
    if "deposit" not in settings.kinds or options.interval_s <= 0:
        return None
    from wastebank import reconcile

    return asyncio.create_task(
        reconcile.run_daily(
            ingester.engine,
            ingester.influx,
            interval_s=options.interval_s,
            days=options.days,
            first_delay_s=options.first_delay_s,
            settle_s=options.settle_s,
        ),
        name="reconcile",
    )


async def _ensure_schema(influx: Influx, settings: InfluxSettings) -> None:
    """1.x: database, retention policies and downsampling queries; 2.x/3.x: the database only
    where the server supports creating it (their retention is set up on the server)."""
    if not await ensure_schema(influx, settings):
        log.info("InfluxDB 2.x/3.x: retensi diatur di server / retention is set on the server")


async def _retrying(make: Callable[[], Awaitable[T]], what: str) -> T:
    """Wait for a service at start, logging once: retryable failures are tried again with no
    attempt limit and no deadline (an ingester started before InfluxDB, as after a power cut,
    starts when InfluxDB does); anything else is raised at once."""
    async for attempt in retrying(on=retry_wait):
        with attempt:
            try:
                return await make()
            except InfluxError as exc:
                if exc.retryable and attempt.num == 1:
                    log.warning("menunggu / waiting for %s: %s", what, exc)
                raise
    raise AssertionError("unreachable: retrying() ends by returning or raising")
