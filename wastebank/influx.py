"""InfluxDB for 1.x, 2.x and 3.x alike: line protocol to ``/write``, InfluxQL on ``/query``.

Points are built with influxdb-client's ``Point`` (it owns the line-protocol escaping). Point
timestamps are nanoseconds: the measurement time in milliseconds with the event's sequence number
in the sub-millisecond digits, so two events in one millisecond never overwrite each other and a
replayed event lands on exactly the same point (InfluxDB then keeps one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from wastebank.config import InfluxSettings
from wastebank.messages import DepositEvent, FillReading, GatewayAlert, GatewayHealth

log = logging.getLogger(__name__)

DEPOSIT = "deposit"
FILL = "fill_level"
GATEWAY_HEALTH = "gateway_health"
SCALE_HEALTH = "scale_health"
ALERT = "gateway_alert"


def point_time_ns(at: datetime, seq: int) -> int:
    ms = int(at.timestamp() * 1000)
    return ms * 1_000_000 + seq % 1_000_000


def deposit_line(
    ev: DepositEvent, *, kecamatan: str, amount_idr: int, clock_ahead_s: int | None = None
) -> str:
    point = (
        Point(DEPOSIT)
        .tag("bank", ev.bank_code)
        .tag("kecamatan", kecamatan)
        .tag("category", ev.category_code)
        .tag("source", "scale")
        .field("net_g", ev.net_g)
        .field("amount_idr", amount_idr)
        .field("event_id", ev.event_id)
        .field("gateway", ev.gateway_id)
        .time(point_time_ns(ev.measured_at, ev.seq), WritePrecision.NS)
    )
    if clock_ahead_s is not None:
        point.field("clock_ahead_s", clock_ahead_s)
    return str(point.to_line_protocol())


def fill_line(reading: FillReading, *, clock_ahead_s: int | None = None) -> str:
    point = (
        Point(FILL)
        .tag("tps", reading.tps_code)
        .tag("sensor", reading.sensor_id)
        .field("filling_level", float(reading.fillingLevel))
        .field("distance_mm", reading.distance_mm)
        .field("reading_id", reading.reading_id)
        .time(point_time_ns(reading.measured_at, reading.seq), WritePrecision.NS)
    )
    if reading.temperature_c is not None:
        point.field("temperature_c", float(reading.temperature_c))
    if reading.battery_pct is not None:
        point.field("battery_pct", reading.battery_pct)
    for name, value in (
        ("rssi_dbm", reading.rssi_dbm),
        ("snr_db", None if reading.snr_db is None else float(reading.snr_db)),
        ("source", reading.source),
        ("level_status", reading.level_status),
        ("tilt", reading.tilt),
        ("pings", reading.pings),
        ("raw", reading.raw),
    ):
        if value is not None:
            point.field(name, value)
    if clock_ahead_s is not None:
        point.field("clock_ahead_s", clock_ahead_s)
    return str(point.to_line_protocol())


def health_lines(h: GatewayHealth) -> list[str]:
    """One point for the gateway and one per scale, at the report's time (ms precision)."""
    at = point_time_ns(h.at, 0)
    gateway = (
        Point(GATEWAY_HEALTH)
        .tag("bank", h.bank_code)
        .tag("gateway", h.gateway_id)
        .field("uptime_s", h.uptime_s)
        .field("outbox_depth", h.outbox_depth)
        .field("outbox_dropped", h.outbox_dropped)
        .field("mqtt_reconnects", h.mqtt_reconnects)
        .field("deposits_stored", h.deposits_stored)
        .time(at, WritePrecision.NS)
    )
    if h.outbox_oldest_age_s is not None:
        gateway.field("outbox_oldest_age_s", h.outbox_oldest_age_s)
    lines = [str(gateway.to_line_protocol())]
    for sc in h.scales:
        point = (
            Point(SCALE_HEALTH)
            .tag("bank", h.bank_code)
            .tag("gateway", h.gateway_id)
            .tag("scale", sc.scale_id)
            .field("protocol", sc.protocol)
            .field("connected", sc.connected)
            .field("frames_parsed", sc.frames_parsed)
            .field("frames_rejected", sc.frames_rejected)
            .field("reconnects", sc.reconnects)
            .time(at, WritePrecision.NS)
        )
        if sc.zero_drift_g is not None:
            point.field("zero_drift_g", sc.zero_drift_g)
        lines.append(str(point.to_line_protocol()))
    return lines


def alert_line(a: GatewayAlert) -> str:
    point = (
        Point(ALERT)
        .tag("bank", a.bank_code)
        .tag("gateway", a.gateway_id)
        .tag("code", a.code)
        .field("state", a.state)
        .field("subject", a.subject)
        .field("message", a.message)
        .field("alert_id", a.alert_id)
        .time(point_time_ns(a.at, a.seq), WritePrecision.NS)
    )
    if a.value is not None:
        point.field("value", float(a.value))
    if a.threshold is not None:
        point.field("threshold", float(a.threshold))
    return str(point.to_line_protocol())


class InfluxError(Exception):
    def __init__(self, message: str, *, status: int | None, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


@dataclass(frozen=True)
class Series:
    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, v, strict=True)) for v in self.values]


class Influx:
    """An async v1-API client: ``/ping``, ``/write`` (line protocol) and ``/query`` (InfluxQL)."""

    def __init__(self, settings: InfluxSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._client = client or httpx.AsyncClient(
            base_url=settings.url, timeout=settings.timeout_s
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def _auth(self) -> dict[str, str]:
        if self.settings.username and self.settings.password:
            return {"u": self.settings.username, "p": self.settings.password.get_secret_value()}
        return {}

    async def ping(self) -> str:
        """The server's version (``X-Influxdb-Version``); raises InfluxError when unreachable."""
        try:
            resp = await self._client.get("/ping")
        except httpx.HTTPError as exc:
            raise InfluxError(
                f"InfluxDB unreachable: {exc!r}", status=None, retryable=True
            ) from exc
        if resp.status_code != 204:
            raise InfluxError(
                f"/ping answered {resp.status_code}", status=resp.status_code, retryable=True
            )
        return str(resp.headers.get("X-Influxdb-Version", "unknown"))

    async def ensure_database(self) -> None:
        await self._post_query(f'CREATE DATABASE "{self.settings.database}"')

    async def drop_database(self) -> None:
        await self._post_query(f'DROP DATABASE "{self.settings.database}"')

    async def _post_query(self, q: str) -> None:
        try:
            resp = await self._client.post("/query", params={"q": q, **self._auth()})
        except httpx.HTTPError as exc:
            raise InfluxError(
                f"InfluxDB unreachable: {exc!r}", status=None, retryable=True
            ) from exc
        if resp.status_code >= 300:
            raise InfluxError(
                f"{q!r} failed: {resp.status_code} {resp.text[:200]}",
                status=resp.status_code,
                retryable=resp.status_code >= 500,
            )

    async def write(self, lines: list[str]) -> None:
        """Write line protocol (ns precision). Raises InfluxError classified as retryable or not."""
        if not lines:
            return
        body = ("\n".join(lines) + "\n").encode()
        params = {"db": self.settings.database, "precision": "ns", **self._auth()}
        try:
            resp = await self._client.post("/write", params=params, content=body)
        except httpx.HTTPError as exc:
            raise InfluxError(f"write failed: {exc!r}", status=None, retryable=True) from exc
        if resp.status_code == 204:
            return
        retryable = resp.status_code >= 500 or resp.status_code == 429
        raise InfluxError(
            f"write answered {resp.status_code}: {resp.text[:300]}",
            status=resp.status_code,
            retryable=retryable,
        )

    async def query(self, q: str) -> list[Series]:
        """Run one InfluxQL statement; timestamps come back as epoch milliseconds."""
        params = {"db": self.settings.database, "q": q, "epoch": "ms", **self._auth()}
        try:
            resp = await self._client.get("/query", params=params)
        except httpx.HTTPError as exc:
            raise InfluxError(f"query failed: {exc!r}", status=None, retryable=True) from exc
        if resp.status_code != 200:
            raise InfluxError(
                f"query answered {resp.status_code}: {resp.text[:300]}",
                status=resp.status_code,
                retryable=resp.status_code >= 500,
            )
        data = resp.json()
        out: list[Series] = []
        for result in data.get("results", []):
            if "error" in result:
                if "database not found" in result["error"]:
                    return []
                raise InfluxError(f"query error: {result['error']}", status=200, retryable=False)
            for s in result.get("series", []):
                out.append(
                    Series(
                        name=s.get("name", ""),
                        tags=s.get("tags") or {},
                        columns=s["columns"],
                        values=s.get("values") or [],
                    )
                )
        return out


def influxql_time(at: datetime) -> str:
    """An RFC3339 UTC literal for an InfluxQL WHERE clause."""
    return "'" + at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + "'"
