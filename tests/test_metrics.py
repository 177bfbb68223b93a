"""Prometheus metrics of the ingester: what is counted, and the /metrics endpoint."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import httpx

from ingest.metrics import (
    IngestMetrics,
    kind_of_topic,
    measurement_of,
    reason_of,
    serve_metrics,
)
from tests.conftest import deposit_event, event_line
from wastebank.messages import Topics

TOPICS = Topics("")


def value(metrics: IngestMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_counters_count_by_bounded_labels() -> None:
    metrics, other = IngestMetrics(), IngestMetrics()  # own registries: no clash, no sharing
    deposit_topic = TOPICS.deposit("bs-batu-merah", "gw-01")
    metrics.message_received(deposit_topic)
    metrics.messages_received([TOPICS.fill("tps-benteng", "us-01")] * 3 + ["odd/topic"])
    metrics.deposit("applied")
    metrics.deposit("duplicate", 2)
    metrics.dead_letter("invalid DepositEvent: net_g: must be > 0")
    metrics.dead_letter("deposit rejected: unknown card '04FFEE0001'")
    metrics.dead_letter("something new")
    metrics.write_retry()
    line = event_line(deposit_event(1), kecamatan="Sirimau", amount_idr=5000)
    metrics.points_written([line, line, "fill_level,tps=a distance_mm=1i 1"])

    assert value(metrics, "wastebank_ingest_received_total", kind="deposit") == 1
    assert value(metrics, "wastebank_ingest_received_total", kind="fill") == 3
    assert value(metrics, "wastebank_ingest_received_total", kind="other") == 1
    assert value(metrics, "wastebank_ingest_received_total", kind="health") == 0  # present at 0
    assert value(metrics, "wastebank_ingest_deposits_total", outcome="applied") == 1
    assert value(metrics, "wastebank_ingest_deposits_total", outcome="duplicate") == 2
    assert value(metrics, "wastebank_ingest_dead_lettered_total", reason="invalid_payload") == 1
    assert value(metrics, "wastebank_ingest_dead_lettered_total", reason="deposit_rejected") == 1
    assert value(metrics, "wastebank_ingest_dead_lettered_total", reason="other") == 1
    assert value(metrics, "wastebank_ingest_write_retries_total") == 1
    assert value(metrics, "wastebank_ingest_written_points_total", measurement="deposit") == 2
    assert value(metrics, "wastebank_ingest_written_points_total", measurement="fill_level") == 1
    assert value(other, "wastebank_ingest_received_total", kind="deposit") == 0


def test_label_helpers() -> None:
    assert kind_of_topic(TOPICS.gateway_health("bs-a", "gw-01")) == "health"
    assert kind_of_topic("x/y/status") == "other"
    assert reason_of("identity mismatch: topic bank=a") == "identity_mismatch"
    assert reason_of("InfluxDB refused: 400") == "influx_refused"
    assert reason_of("topic not understood: x") == "unknown_topic"
    assert measurement_of('gateway_alert,bank=a msg="x" 1') == "gateway_alert"
    assert measurement_of("deposit net_g=1i 1") == "deposit"
    assert measurement_of("nonsense") == "other"


def test_batch_latency_lag_and_inflight() -> None:
    metrics = IngestMetrics()
    metrics.batch_acked(first_received=100.0, now=100.25)
    metrics.batch_acked(first_received=200.0, now=200.75)
    assert value(metrics, "wastebank_ingest_batch_seconds_count") == 2
    assert value(metrics, "wastebank_ingest_batch_seconds_sum") == 1.0
    assert value(metrics, "wastebank_ingest_batch_seconds_bucket", le="0.5") == 1

    now = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    metrics.processed([now - timedelta(seconds=90), now - timedelta(seconds=30)], now=now)
    assert value(metrics, "wastebank_ingest_consumer_lag_seconds") == 30
    # A device clock running ahead is not the newest message: it would hide the lag.
    metrics.processed([now + timedelta(hours=1), now - timedelta(seconds=5)], now=now)
    assert value(metrics, "wastebank_ingest_consumer_lag_seconds") == 5
    metrics.processed([], now=now)
    assert value(metrics, "wastebank_ingest_consumer_lag_seconds") == 5

    metrics.inflight_messages.inc(3)
    metrics.inflight_messages.dec()
    assert value(metrics, "wastebank_ingest_inflight_messages") == 2


async def test_endpoint_serves_the_text_format() -> None:
    metrics = IngestMetrics()
    metrics.message_received(TOPICS.deposit("bs-batu-merah", "gw-01"))
    metrics.dead_letter("invalid DepositEvent: x")
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(serve_metrics(metrics, "127.0.0.1", 0, ready=ready))
    try:
        port = await asyncio.wait_for(ready, 10)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            resp = await client.get("/metrics")
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    body = resp.text
    for name in (
        "wastebank_ingest_received_total",
        "wastebank_ingest_written_points_total",
        "wastebank_ingest_dead_lettered_total",
        "wastebank_ingest_write_retries_total",
        "wastebank_ingest_deposits_total",
        "wastebank_ingest_batch_seconds",
        "wastebank_ingest_consumer_lag_seconds",
        "wastebank_ingest_inflight_messages",
    ):
        assert f"# TYPE {name} " in body, name
    assert 'wastebank_ingest_received_total{kind="deposit"} 1.0' in body
    assert 'wastebank_ingest_dead_lettered_total{reason="invalid_payload"} 1.0' in body
    assert body.encode() == metrics.exposition()

    # Stopped with its task: the port no longer answers.
    async with httpx.AsyncClient() as client:
        try:
            await client.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
        except httpx.ConnectError:
            pass
        else:
            raise AssertionError("the metrics server still answers after its task ended")
