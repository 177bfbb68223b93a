"""InfluxDB writers, error classification, gzip and 1.x retention/downsampling.

Integration tests run against the real InfluxDB 1.6 that `wastebank services up` starts; the v2
writer (no 2.x here) is checked against a loopback aiohttp server that records each request.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import TypeVar

import httpx
import msgspec
import pytest
from aiohttp import web
from hypothesis import example, given
from hypothesis import strategies as st
from influxdb_client.client.write.point import Point  # the oracle for line(); tests only

from gateway.fill_sensor import LevelStatus
from tests.conftest import deposit_event, event_line
from wastebank import influx as influx_module
from wastebank.config import (
    ConfigError,
    InfluxSettings,
    SecretStr,
    WastebankSettings,
    load_settings,
)
from wastebank.errors import SetupError, Unavailable
from wastebank.influx import (
    DOWNSAMPLES,
    FieldValue,
    Influx,
    InfluxError,
    InfluxSchemaError,
    V1Writer,
    V2Writer,
    alert_line,
    api_for_version,
    auth_headers,
    classify,
    deposit_line,
    downsample,
    ensure_schema,
    fill_line,
    gzip_wanted,
    health_lines,
    line,
    make_writer,
    parse_retry_after,
)
from wastebank.influx import lines as influx_lines
from wastebank.messages import (
    ClockHealth,
    DepositEvent,
    FillReading,
    GatewayAlert,
    GatewayHealth,
    ScaleHealth,
)
from wastebank.structs import decode_json, encode_json, replace

T = TypeVar("T")

# ---- line protocol (no server) ------------------------------------------------------------------

# Text that exercises every escape: separators, quotes, backslashes, the control characters that
# keys write as \n \t \r, '#', and non-ASCII text (names are free text: kecamatan, subjects).
_TRICKY = st.sampled_from([",", "=", " ", '"', "\\", "\n", "\t", "\r", "#", "é", "€", "日", "😀"])
_TEXT = st.text(st.one_of(_TRICKY, st.characters()), max_size=12)
_FIELD_VALUES: st.SearchStrategy[FieldValue | None] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),  # NaN and infinity included: both encoders leave them out
    _TEXT,
)


def _point_line(
    measurement: str,
    tags: dict[str, str | None],
    fields: dict[str, FieldValue | None],
    time_ns: int | None,
) -> str:
    """What influxdb-client's Point writes for the same point (its own escaping and sorting)."""
    point = Point(measurement)
    for key, tag in tags.items():
        point.tag(key, tag)
    for key, value in fields.items():
        point.field(key, value)
    if time_ns is not None:
        point.time(time_ns, "ns")
    return str(point.to_line_protocol())


@given(
    measurement=_TEXT.filter(lambda m: not m.startswith("#")),
    tags=st.dictionaries(_TEXT, st.one_of(st.none(), _TEXT), max_size=5),
    fields=st.dictionaries(_TEXT, _FIELD_VALUES, max_size=6),
    time_ns=st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
)
@example(
    measurement="fill level,x",
    tags={"k=1": "a\\", "": "x", "e": "", "n": None, "b c": 'q"\n'},
    fields={"f": 1.0, "g": -0.0, "h": float("nan"), "i": True, "j": 'say "hi" \\ \n', "k": 2},
    time_ns=1795396502345000042,
)
@example(measurement="m", tags={}, fields={"x": None, "y": float("inf")}, time_ns=1)  # no field
def test_line_matches_influxdb_client_point(
    measurement: str,
    tags: dict[str, str | None],
    fields: dict[str, FieldValue | None],
    time_ns: int | None,
) -> None:
    assert line(measurement, tags, fields, time_ns) == _point_line(
        measurement, tags, fields, time_ns
    )


def test_line_escaping_by_hand() -> None:
    """The line-protocol reference's rules, spelled out (the property test above uses Point)."""
    got = line(
        "fill level,x=1",
        {"z": "last", "a b": "c,d=e", "t": "ends\\"},
        {"s": 'he said "hi" \\o/', "f": 1.0, "g": 0.25, "i": -3, "b": False},
        1795396502345000042,
    )
    assert got == (
        "fill\\ level\\,x=1,a\\ b=c\\,d\\=e,t=ends\\ ,z=last "
        'b=false,f=1,g=0.25,i=-3i,s="he said \\"hi\\" \\\\o/" 1795396502345000042'
    )
    assert line("m", {"k": "v\nw"}, {"x\ty": "a\nb"}) == 'm,k=v\\nw x\\ty="a\nb"'


def test_line_refuses_comments_and_unknown_types() -> None:
    with pytest.raises(ValueError, match="comment"):
        line("#m", {}, {"x": 1})
    with pytest.raises(TypeError, match="bytes"):
        line("m", {}, {"x": b"raw"})  # type: ignore[dict-item]
    assert line("m", {"t": "a"}, {"x": None}, 1) == ""  # nothing to write, as Point


def test_escape_cache_is_bounded() -> None:
    for i in range(influx_lines._ESCAPED_MAX + 10):
        line("m", {f"tag{i}": f"v{i}"}, {"x": i})
    assert len(influx_lines._escaped) <= influx_lines._ESCAPED_MAX


# The builders' lines, as the Point-based builders wrote them before line() replaced Point: the
# same tags, fields and nanosecond timestamps, so replays land on the points already stored.
WIT = timezone(timedelta(hours=9))
AT = datetime(2026, 11, 23, 10, 15, 2, 345678, tzinfo=WIT)


def test_deposit_line_unchanged() -> None:
    ev = DepositEvent(
        event_id="gw-01-7",
        gateway_id="gw-01",
        seq=7,
        bank_code="bs-batu-merah",
        scale_id="scale-01",
        card_uid="04A1B2C3D4",
        category_code="pet",
        net_g=1250,
        stable=True,
        protocol="gs_nt",
        measured_at=AT,
    )
    assert event_line(ev, kecamatan="Sirimau", amount_idr=5000) == (
        "deposit,bank=bs-batu-merah,category=pet,kecamatan=Sirimau,source=scale "
        'amount_idr=5000i,event_id="gw-01-7",gateway="gw-01",net_g=1250i 1795396502345000007'
    )
    assert event_line(ev, kecamatan="Teluk Ambon, Baguala=1", amount_idr=0, clock_ahead_s=42) == (
        "deposit,bank=bs-batu-merah,category=pet,kecamatan=Teluk\\ Ambon\\,\\ Baguala\\=1,"
        'source=scale amount_idr=0i,clock_ahead_s=42i,event_id="gw-01-7",gateway="gw-01",'
        "net_g=1250i 1795396502345000007"
    )
    unsynced = deposit_line(
        event_id="gw-01-7",
        bank="bs-batu-merah",
        kecamatan="Sirimau",
        category="pet",
        net_g=1250,
        amount_idr=5000,
        gateway="gw-01",
        measured_at=AT,
        clock_synced=False,
    )
    assert unsynced == (
        "deposit,bank=bs-batu-merah,category=pet,kecamatan=Sirimau,source=scale "
        'amount_idr=5000i,clock_synced=false,event_id="gw-01-7",gateway="gw-01",net_g=1250i '
        "1795396502345000007"
    )


def test_fill_line_unchanged() -> None:
    full = FillReading(
        reading_id="us-07-42",
        sensor_id="us-07",
        tps_code="tps-batu-merah",
        seq=42,
        measured_at=AT,
        distance_mm=2116,
        fillingLevel=0.175,
        temperature_c=29.5,
        battery_pct=92,
        rssi_dbm=-87,
        snr_db=7.25,
        source="em310_udl",
        level_status="ok",
        tilt=True,
        pings=1,
        raw='01 75 "5C" \\ 03\nff',
        clock_synced=False,
    )
    assert fill_line(full, clock_ahead_s=3) == (
        "fill_level,sensor=us-07,tps=tps-batu-merah battery_pct=92i,clock_ahead_s=3i,"
        'clock_synced=false,distance_mm=2116i,filling_level=0.175,level_status="ok",pings=1i,'
        'raw="01 75 \\"5C\\" \\\\ 03\nff",reading_id="us-07-42",rssi_dbm=-87i,snr_db=7.25,'
        'source="em310_udl",temperature_c=29.5,tilt=true 1795396502345000042'
    )
    minimal = FillReading(
        reading_id="us-01-1",
        sensor_id="us-01",
        tps_code="tps-batu-merah",
        seq=1,
        measured_at=AT,
        distance_mm=1000,
        fillingLevel=1.0,
        temperature_c=30.0,
        snr_db=-5,
    )
    assert fill_line(minimal) == (
        "fill_level,sensor=us-01,tps=tps-batu-merah distance_mm=1000i,filling_level=1,"
        'reading_id="us-01-1",snr_db=-5,temperature_c=30 1795396502345000001'
    )


def test_health_lines_unchanged() -> None:
    health = GatewayHealth(
        gateway_id="gw-01",
        bank_code="bs-batu-merah",
        at=AT,
        uptime_s=3600,
        outbox_depth=2,
        outbox_oldest_age_s=95,
        outbox_dropped=0,
        outbox_refused=3,
        mqtt_reconnects=1,
        deposits_stored=40,
        scales=[
            ScaleHealth(
                scale_id="scale-01",
                protocol="gs_nt",
                connected=True,
                frames_parsed=100,
                frames_rejected=2,
                reconnects=0,
                zero_drift_g=-3,
                state="overload",
            ),
            ScaleHealth(
                scale_id="scale-02",
                protocol="auto",
                connected=False,
                frames_parsed=0,
                frames_rejected=0,
                reconnects=5,
            ),
        ],
    )
    assert health_lines(health) == [
        "gateway_health,bank=bs-batu-merah,gateway=gw-01 deposits_stored=40i,mqtt_reconnects=1i,"
        "outbox_depth=2i,outbox_dropped=0i,outbox_oldest_age_s=95i,outbox_refused=3i,"
        "uptime_s=3600i "
        "1795396502345000000",
        "scale_health,bank=bs-batu-merah,gateway=gw-01,scale=scale-01 connected=true,"
        'frames_parsed=100i,frames_rejected=2i,protocol="gs_nt",reconnects=0i,'
        'state="overload",zero_drift_g=-3i 1795396502345000000',
        "scale_health,bank=bs-batu-merah,gateway=gw-01,scale=scale-02 connected=false,"
        'frames_parsed=0i,frames_rejected=0i,protocol="auto",reconnects=5i '
        "1795396502345000000",
    ]
    # a gateway that reports its clock and alerts (issue 16): those too
    clocked = replace(
        health, clock=ClockHealth(synchronized=False, source="timesyncd"), alerts_active=[]
    )
    clocked = decode_json(encode_json(clocked), GatewayHealth)
    assert health_lines(clocked)[0] == (
        "gateway_health,bank=bs-batu-merah,gateway=gw-01 alerts_active=0i,"
        "clock_synchronized=false,deposits_stored=40i,mqtt_reconnects=1i,"
        "outbox_depth=2i,outbox_dropped=0i,outbox_oldest_age_s=95i,outbox_refused=3i,"
        "uptime_s=3600i 1795396502345000000"
    )


def test_alert_line_unchanged() -> None:
    alert = GatewayAlert(
        alert_id="gw-01-9",
        gateway_id="gw-01",
        seq=9,
        bank_code="bs-batu-merah",
        code="zero_drift",
        state="raised",
        subject="scale-01",
        value=12.0,
        threshold=10.5,
        at=AT,
        message='Timbangan "scale-01" bergeser 12 g \\ zero drift',
    )
    message = 'message="Timbangan \\"scale-01\\" bergeser 12 g \\\\ zero drift"'
    assert alert_line(alert) == (
        f'gateway_alert,bank=bs-batu-merah,code=zero_drift,gateway=gw-01 alert_id="gw-01-9",'
        f'{message},state="raised",subject="scale-01",threshold=10.5,value=12 1795396502345000009'
    )
    # unchecked: a NaN no message may carry, to show the line leaves it out
    cleared = msgspec.structs.replace(alert, value=None, threshold=float("nan"), state="cleared")
    assert alert_line(cleared) == (
        f'gateway_alert,bank=bs-batu-merah,code=zero_drift,gateway=gw-01 alert_id="gw-01-9",'
        f'{message},state="cleared",subject="scale-01" 1795396502345000009'
    )


def test_importing_the_module_leaves_influxdb_client_unloaded() -> None:
    """influxdb-client costs ~25 MB; only a V2 writer imports it (a fresh interpreter checks)."""
    code = (
        "import sys, wastebank.influx; "
        "loaded = sorted(m for m in sys.modules if m.startswith('influxdb_client')); "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ---- classification (no server) ----------------------------------------------------------------

# What InfluxDB 1.6.7 answered here (see test_field_type_conflict_is_permanent for the live one).
CONFLICT_1_6 = (
    b'{"error":"partial write: field type conflict: input field \\"v\\" on measurement \\"m\\" '
    b'is type string, already exists as type integer dropped=1"}'
)


def test_413_is_too_large_not_retryable() -> None:
    err = classify(413, b'{"error":"Request Entity Too Large"}')
    assert err.too_large
    assert not err.retryable
    assert not err.permanent
    assert err.kind == "too_large"
    assert err.server_status == 413


@pytest.mark.parametrize(("status", "header", "wait"), [(429, "7", 7.0), (503, "0", 0.0)])
def test_429_and_503_honour_retry_after(status: int, header: str, wait: float) -> None:
    err = classify(status, b"", header)
    assert err.retryable
    assert err.kind == "retryable"
    assert err.retry_after_s == wait


def test_5xx_without_retry_after_is_retryable() -> None:
    err = classify(500, b'{"error":"timeout"}')
    assert err.retryable
    assert err.retry_after_s is None


def test_partial_write_is_permanent_with_dropped_count() -> None:
    err = classify(400, CONFLICT_1_6)
    assert err.permanent
    assert not err.retryable
    assert not err.too_large
    assert err.partial
    assert err.dropped == 1
    assert "field type conflict" in str(err)


def test_2x_message_body_and_422_are_permanent() -> None:
    err = classify(422, b'{"code":"unprocessable entity","message":"failure writing points"}')
    assert err.permanent
    assert "failure writing points" in str(err)
    assert classify(400, b'{"error":"unable to parse \'m 1\': invalid field format"}').permanent


@pytest.mark.parametrize("status", [401, 403, 404, 408])
def test_refusals_about_the_server_not_the_batch_are_retryable(status: int) -> None:
    # Wrong credentials or a missing database refuse every batch alike: dead-lettering the
    # batch would not help; retrying once the settings are fixed does.
    assert classify(status, b'{"error":"database not found: \\"x\\""}').retryable


def test_parse_retry_after() -> None:
    now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Mon, 23 Nov 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Mon, 23 Nov 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None


@pytest.mark.parametrize(
    ("version", "token", "api"),
    [
        ("1.6.7~rc0", False, "v1"),  # this machine's Debian build
        ("1.7.11", False, "v1"),
        ("1.8.10", False, "v1"),  # has /api/v2/write too; v1 is simpler
        ("1.11.8", True, "v1"),
        ("v2.7.10", False, "v2"),
        ("2.7.1", False, "v2"),
        ("3.0.1", True, "v2"),  # v2-compatible write, bucket = database
        ("v3.8.0", False, "v2"),
        ("unknown", False, "v1"),
        ("", True, "v2"),  # InfluxDB Cloud sends no version; a token says 2.x/3.x
    ],
)
def test_api_for_version(version: str, token: bool, api: str) -> None:
    assert api_for_version(version, token=token) == api


def test_gzip_auto_pays_only_off_loopback_and_above_threshold() -> None:
    local = InfluxSettings(url="http://127.0.0.1:8086")
    remote = InfluxSettings(url="https://influx.example.id:8086", gzip_min_bytes=1000)
    assert not gzip_wanted(local, 10_000_000)
    assert not gzip_wanted(InfluxSettings(url="http://localhost:8086"), 10_000_000)
    assert gzip_wanted(remote, 1000)
    assert not gzip_wanted(remote, 999)
    assert gzip_wanted(msgspec.structs.replace(local, gzip=True), 16_384)
    assert not gzip_wanted(msgspec.structs.replace(local, gzip=True), 16_383)
    assert gzip_wanted(msgspec.structs.replace(local, gzip=True, gzip_min_bytes=0), 1)
    assert not gzip_wanted(msgspec.structs.replace(remote, gzip=False), 10_000_000)


class _Settings(WastebankSettings, kw_only=True):
    influx: InfluxSettings = msgspec.field(default_factory=InfluxSettings)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASTEBANK_INFLUX__GZIP", "true")
    monkeypatch.setenv("WASTEBANK_INFLUX__API", "v2")
    monkeypatch.setenv("WASTEBANK_INFLUX__TOKEN", "s3cret")
    monkeypatch.setenv("WASTEBANK_INFLUX__RETENTION_RAW", "30d")
    s = load_settings(_Settings).influx
    assert s.gzip is True
    assert s.api == "v2"
    assert s.retention_raw == "30d"
    assert s.token is not None
    assert s.token.get_secret_value() == "s3cret"
    monkeypatch.setenv("WASTEBANK_INFLUX__GZIP", "auto")
    assert load_settings(_Settings).influx.gzip == "auto"
    with pytest.raises(ConfigError, match=r"influx\.retention_raw .*matching regex"):
        load_settings(_Settings, influx={"retention_raw": "90 days"})


async def test_batch_over_max_body_bytes_is_too_large_before_sending() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    settings = InfluxSettings(max_body_bytes=100)
    client = httpx.AsyncClient(base_url=settings.url, transport=httpx.MockTransport(handler))
    writer = V1Writer(settings, client=client)
    try:
        with pytest.raises(InfluxError) as info:
            await writer.write([f"m v={i}i {i}" for i in range(20)])
        assert info.value.too_large
        assert not info.value.retryable
        assert sent == []
        await writer.write(["m v=1i 1"])  # small enough
        assert len(sent) == 1
    finally:
        await client.aclose()


async def test_v1_unreachable_is_retryable() -> None:
    writer = V1Writer(InfluxSettings(url=f"http://127.0.0.1:{_free_port()}", timeout_s=2))
    try:
        with pytest.raises(InfluxError) as info:
            await writer.write(["m v=1i 1"])
        assert info.value.retryable
        assert info.value.server_status is None
    finally:
        await writer.aclose()


# ---- the v2 writer against a loopback HTTP server ----------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes  # as sent (gzip when Content-Encoding says so)

    @property
    def text(self) -> str:
        raw = gzip.decompress(self.body) if self.headers.get("Content-Encoding") else self.body
        return raw.decode()


@dataclass
class FakeInflux:
    """Records requests; answers each from ``replies`` (status, headers, body), default 204."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    replies: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    ping_version: str = "v2.7.10"
    hang: bool = False  # never answer writes (until teardown): a timeout
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                await request.read(),
            )
        )
        if request.path == "/ping":
            return web.Response(status=204, headers={"X-Influxdb-Version": self.ping_version})
        if self.hang:
            await self.release.wait()
        status, headers, body = self.replies.pop(0) if self.replies else (204, {}, "")
        return web.Response(
            status=status,
            headers=headers,
            text=body or None,
            content_type="application/json" if body else None,
        )


@pytest.fixture
async def fake_influx() -> AsyncIterator[FakeInflux]:
    fake = FakeInflux()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app, access_log=None, auto_decompress=False)  # see the bytes sent
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        fake.release.set()
        await runner.cleanup()


@pytest.fixture
async def v2_writer(
    fake_influx: FakeInflux,
) -> AsyncIterator[Callable[..., V2Writer]]:
    made: list[V2Writer] = []

    def make(**overrides: object) -> V2Writer:
        settings = msgspec.structs.replace(
            InfluxSettings(
                url=fake_influx.url, database="wb", token=SecretStr("tok-123"), org="kota-ambon"
            ),
            **overrides,
        )
        writer = V2Writer(settings)
        made.append(writer)
        return writer

    yield make
    for writer in made:
        await writer.aclose()


LINES = ['deposit,bank=bs-1,category=pet net_g=1250i,event_id="gw-01-1" 1795392902345000001']


async def test_v2_request_shape(
    fake_influx: FakeInflux, v2_writer: Callable[..., V2Writer]
) -> None:
    await v2_writer().write(LINES * 3)
    (req,) = fake_influx.requests
    assert (req.method, req.path) == ("POST", "/api/v2/write")
    assert req.query == {"org": "kota-ambon", "bucket": "wb", "precision": "ns"}
    assert req.headers["Authorization"] == "Token tok-123"
    assert req.headers["Content-Type"].startswith("text/plain")
    assert "Content-Encoding" not in req.headers  # loopback, auto: not worth compressing
    assert req.text == "\n".join(LINES * 3) + "\n"


async def test_v2_gzip_above_threshold(
    fake_influx: FakeInflux, v2_writer: Callable[..., V2Writer]
) -> None:
    writer = v2_writer(gzip=True, gzip_min_bytes=0)
    lines = [line.replace("gw-01-1", f"gw-01-{i}") for i in range(500) for line in LINES]
    await writer.write(lines)
    (req,) = fake_influx.requests
    assert req.headers["Content-Encoding"] == "gzip"
    assert len(req.body) < len(req.text) / 4
    assert req.text.splitlines() == lines


async def test_v2_forward_compat_1_8(
    fake_influx: FakeInflux, v2_writer: Callable[..., V2Writer]
) -> None:
    writer = v2_writer(
        token=None, org=None, bucket="wb/raw", username="ingest", password=SecretStr("pw")
    )
    await writer.write(LINES)
    (req,) = fake_influx.requests
    assert req.query == {"org": "-", "bucket": "wb/raw", "precision": "ns"}
    assert req.headers["Authorization"] == "Token ingest:pw"


QUOTA = '{"code":"too many requests","message":"quota"}'


@pytest.mark.parametrize(
    ("reply", "kind", "retry_after_s"),
    [
        ((429, {"Retry-After": "3"}, QUOTA), "retryable", 3.0),
        ((503, {"Retry-After": "1"}, ""), "retryable", 1.0),
        ((500, {}, '{"code":"internal error","message":"boom"}'), "retryable", None),
        ((413, {}, '{"code":"request too large","message":"too large"}'), "too_large", None),
        ((400, {}, '{"code":"invalid","message":"unable to parse"}'), "permanent", None),
        ((422, {}, '{"code":"unprocessable entity","message":"type conflict"}'), "permanent", None),
    ],
)
async def test_v2_error_classes(
    fake_influx: FakeInflux,
    v2_writer: Callable[..., V2Writer],
    reply: tuple[int, dict[str, str], str],
    kind: str,
    retry_after_s: float | None,
) -> None:
    fake_influx.replies.append(reply)
    with pytest.raises(InfluxError) as info:
        await v2_writer().write(LINES)
    err = info.value
    assert (err.server_status, err.kind, err.retry_after_s) == (reply[0], kind, retry_after_s)


def test_errors_in_the_project_families() -> None:
    """An InfluxDB failure is Unavailable (an API answer that needed it is a 503) and keeps the
    status InfluxDB answered apart; a missing schema is a SetupError (the CLI exits 2) that
    callers catching InfluxError still catch."""
    err = classify(400, b'{"error":"unable to parse"}')
    assert isinstance(err, Unavailable)
    assert (err.status, err.server_status) == (503, 400)
    schema = InfluxSchemaError("kota", ["retention policy 'raw'"], "user 'ingest'")
    assert isinstance(schema, SetupError)
    assert isinstance(schema, InfluxError)
    assert (schema.status, schema.server_status, schema.retryable) == (
        SetupError.status,
        403,
        False,
    )
    assert "retention policy 'raw'" in str(schema)


async def test_v2_unreachable_is_retryable(v2_writer: Callable[..., V2Writer]) -> None:
    writer = v2_writer(url=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(InfluxError) as info:
        await writer.write(LINES)
    assert info.value.retryable
    assert info.value.server_status is None


async def test_v2_timeout_is_retryable(
    fake_influx: FakeInflux, v2_writer: Callable[..., V2Writer]
) -> None:
    fake_influx.hang = True
    with pytest.raises(InfluxError) as info:
        await v2_writer(timeout_s=0.3).write(LINES)
    assert info.value.retryable
    assert info.value.server_status is None


@pytest.mark.parametrize(("version", "api"), [("v2.7.10", "v2"), ("3.0.1", "v2"), ("1.8.10", "v1")])
async def test_auto_detection_from_ping(fake_influx: FakeInflux, version: str, api: str) -> None:
    fake_influx.ping_version = version
    writer = await make_writer(InfluxSettings(url=fake_influx.url, database="wb"))
    try:
        assert writer.api == api
        assert isinstance(writer, V2Writer if api == "v2" else V1Writer)
    finally:
        await writer.aclose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# ---- the real InfluxDB 1.6 ---------------------------------------------------------------------


@pytest.fixture
async def influx(influx_settings: InfluxSettings) -> AsyncIterator[Influx]:
    client = Influx(influx_settings)
    await client.ensure_database()
    yield client
    await client.aclose()


async def _count(influx: Influx, q: str) -> int:
    series = await influx.query(q)
    return int(series[0].values[0][1]) if series else 0


@pytest.mark.integration
async def test_detects_v1_and_writes_land(influx: Influx, influx_settings: InfluxSettings) -> None:
    writer = await make_writer(influx_settings)
    try:
        assert writer.api == "v1"
        assert isinstance(writer, V1Writer)
        lines = [
            event_line(deposit_event(i), kecamatan="Sirimau", amount_idr=5000) for i in range(50)
        ]
        await writer.write(lines)
        await writer.write(lines)  # a replay lands on the same points
    finally:
        await writer.aclose()
    assert await _count(influx, 'SELECT count("net_g") FROM "deposit"') == 50


@pytest.mark.integration
async def test_field_type_conflict_is_permanent(
    influx: Influx, influx_settings: InfluxSettings
) -> None:
    writer = V1Writer(influx_settings)
    at = influx_module.point_time_ns(datetime.now(UTC), 0)  # inside the raw retention policy
    try:
        await writer.write([f"m,t=a v=1i {at}"])
        with pytest.raises(InfluxError) as info:
            await writer.write([f'm,t=a v="text" {at + 1}', f"m,t=b v=3i {at + 2}"])
    finally:
        await writer.aclose()
    err = info.value
    assert err.server_status == 400
    assert err.permanent
    assert not err.retryable
    assert err.partial
    assert err.dropped == 1
    assert "field type conflict" in str(err)
    # 1.x stored the rest of the batch: only the conflicting point was dropped.
    assert await _count(influx, 'SELECT count("v") FROM "m"') == 2


@pytest.mark.integration
async def test_gzip_bodies_are_accepted(influx: Influx, influx_settings: InfluxSettings) -> None:
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    settings = msgspec.structs.replace(influx_settings, gzip=True, gzip_min_bytes=1024)
    client = httpx.AsyncClient(base_url=settings.url, event_hooks={"request": [record]})
    writer = V1Writer(settings, client=client)
    try:
        big = [
            event_line(deposit_event(i), kecamatan="Sirimau", amount_idr=5000) for i in range(200)
        ]
        await writer.write(big)
        await writer.write(big[:1])  # under gzip_min_bytes: sent plain
    finally:
        await client.aclose()
    assert sent[0].headers["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in sent[1].headers
    assert await _count(influx, 'SELECT count("net_g") FROM "deposit"') == 200


@pytest.mark.integration
async def test_body_over_max_body_size_is_413_too_large(
    influx: Influx, influx_settings: InfluxSettings
) -> None:
    """1.x [http] max-body-size defaults to 25,000,000 bytes; a bigger body gets 413.

    The server answers as soon as it has read the headers and closes the connection; a client
    still sending the body sees a reset instead (httpx here: ``ReadError``), which is why the
    writers refuse batches over ``max_body_bytes`` themselves. ``Expect: 100-continue`` makes
    1.6 answer before any body is sent, so its real answer can be read here.
    """
    login = "".join(f"{k}: {v}" for k, v in auth_headers(influx_settings).items())
    reader, writer = await asyncio.open_connection("127.0.0.1", httpx.URL(influx.settings.url).port)
    try:
        writer.write(
            f"POST /write?db={influx_settings.database}&precision=ns HTTP/1.1\r\n"
            f"Host: influx\r\n{login}\r\n"  # the login first: else 401, not 413
            "Content-Length: 26000000\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        length = int(re.search(r"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
        body = await reader.readexactly(length)
    finally:
        writer.close()
    assert head.startswith("HTTP/1.1 413 Request Entity Too Large")
    err = classify(413, body)
    assert err.too_large
    assert err.kind == "too_large"
    assert "Request Entity Too Large" in str(err)


async def _rps(influx: Influx) -> dict[str, list[object]]:
    (series,) = await influx.query(f'SHOW RETENTION POLICIES ON "{influx.settings.database}"')
    return {row["name"]: [row["duration"], row["default"]] for row in series.rows()}


async def _cqs(influx: Influx) -> dict[str, str]:
    db = influx.settings.database
    return {
        row["name"]: row["query"]
        for s in await influx.query("SHOW CONTINUOUS QUERIES")
        if s.name == db
        for row in s.rows()
    }


@pytest.mark.integration
async def test_ensure_schema_is_idempotent(influx: Influx, influx_settings: InfluxSettings) -> None:
    assert await ensure_schema(influx, influx_settings)
    assert await ensure_schema(influx, influx_settings)  # twice: harmless
    rps = await _rps(influx)
    assert rps["raw"] == ["2160h0m0s", True]  # 90d, the DEFAULT: writes land there
    assert rps["hourly"] == ["0s", False]  # INF
    cqs = await _cqs(influx)
    assert set(cqs) == {ds.name for ds in DOWNSAMPLES}
    db = influx_settings.database
    assert "RESAMPLE EVERY 1h FOR 2d" in cqs["deposit_1h"]
    assert f"INTO {db}.hourly.deposit_1h FROM {db}.raw.deposit" in cqs["deposit_1h"]
    assert "GROUP BY time(1h), tps, sensor" in cqs["fill_level_1h"]

    # Changed settings: the policy is altered, the CQ replaced.
    changed = msgspec.structs.replace(
        influx_settings, retention_raw="30d", downsample_lookback="3d"
    )
    assert await ensure_schema(influx, changed)
    assert (await _rps(influx))["raw"] == ["720h0m0s", True]
    cqs = await _cqs(influx)
    assert set(cqs) == {ds.name for ds in DOWNSAMPLES}
    assert "FOR 3d" in cqs["deposit_1h"]
    assert "FOR 3d" in cqs["fill_level_1h"]


@pytest.mark.integration
async def test_points_older_than_raw_retention_are_refused_permanently(
    influx: Influx, influx_settings: InfluxSettings
) -> None:
    await ensure_schema(influx, influx_settings)
    old = deposit_event(1, at=datetime.now(UTC) - timedelta(days=120))
    writer = V1Writer(influx_settings)
    try:
        with pytest.raises(InfluxError) as info:
            await writer.write([event_line(old, kecamatan="Sirimau", amount_idr=1)])
    finally:
        await writer.aclose()
    assert info.value.server_status == 400
    assert info.value.permanent
    assert info.value.beyond_retention


@pytest.mark.integration
async def test_the_hourly_rollup_downsamples(
    influx: Influx, influx_settings: InfluxSettings
) -> None:
    """The CQs' SELECT INTO, run by hand for a past hour (the CQ scheduler is not waited for)."""
    await ensure_schema(influx, influx_settings)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    lines = [
        event_line(
            deposit_event(
                i,
                net_g=1000 + i,
                category="pet" if i % 2 else "hdpe",
                at=hour + timedelta(minutes=i),
            ),
            kecamatan="Sirimau",
            amount_idr=10 * i,
        )
        for i in range(10)
    ]
    lines.append(  # the next hour: a bucket of its own
        event_line(
            deposit_event(99, at=hour + timedelta(minutes=70)), kecamatan="Sirimau", amount_idr=1
        )
    )
    for i, level in enumerate((0.2, 0.4, 0.9)):
        reading = FillReading(
            reading_id=f"us-01-{i + 1}",
            sensor_id="us-01",
            tps_code="tps-batu-merah",
            seq=i + 1,
            measured_at=hour + timedelta(minutes=15 * i),
            distance_mm=1000,
            fillingLevel=level,
        )
        lines.append(fill_line(reading))
    await influx.write(lines)

    await downsample(influx, hour - timedelta(hours=1), hour + timedelta(hours=3))

    db = influx_settings.database
    fields = '"net_g", "deposits", "amount_idr"'
    dep = await influx.query(
        f'SELECT {fields} FROM "{db}"."hourly"."deposit_1h" GROUP BY "category"'  # noqa: S608
    )
    by_cat = {s.tags["category"]: s.rows() for s in dep}
    pet = [r for r in by_cat["pet"] if r["time"] == int(hour.timestamp() * 1000)]
    assert pet == [
        {
            "time": int(hour.timestamp() * 1000),
            "net_g": sum(1000 + i for i in range(1, 10, 2)),
            "deposits": 5,
            "amount_idr": sum(10 * i for i in range(1, 10, 2)),
        }
    ]
    assert sum(r["deposits"] for rows in by_cat.values() for r in rows) == 11
    assert {s.tags["category"] for s in dep} == {"pet", "hdpe"}

    (fill,) = await influx.query(
        f'SELECT * FROM "{db}"."hourly"."fill_level_1h" GROUP BY "tps", "sensor"'  # noqa: S608
    )
    assert fill.tags == {"tps": "tps-batu-merah", "sensor": "us-01"}
    (row,) = fill.rows()
    assert row["readings"] == 3
    assert row["filling_level_max"] == pytest.approx(0.9)
    assert row["filling_level_mean"] == pytest.approx(0.5)


@st.composite
def fill_readings(draw: st.DrawFn) -> FillReading:
    seq = draw(st.integers(0, 10**9))
    optional = st.none() | st.just(True)  # each optional field present or absent

    def maybe(strategy: st.SearchStrategy[T]) -> T | None:
        return draw(st.none() | strategy) if draw(optional) else None

    statuses: list[LevelStatus] = ["ok", "over_full", "below_empty"]

    return FillReading(
        reading_id=f"us-01-{seq}",
        sensor_id="us-01",
        seq=seq,
        tps_code=draw(st.sampled_from(["tps-batu-merah", "t", "tps-0-9"])),
        measured_at=datetime(2026, 11, 23, tzinfo=UTC)
        + timedelta(milliseconds=draw(st.integers(0, 10**10))),
        distance_mm=draw(st.integers(0, 20_000)),
        fillingLevel=draw(st.floats(0, 1)),
        temperature_c=maybe(st.floats(-40, 85)),
        battery_pct=maybe(st.integers(0, 100)),
        rssi_dbm=maybe(st.integers(-200, 20)),
        snr_db=maybe(st.floats(-40, 40)),
        source=maybe(st.sampled_from(["jsn_sr04t", "em310_udl", "json"])),
        level_status=maybe(st.sampled_from(statuses)),
        tilt=maybe(st.booleans()),
        pings=maybe(st.integers(1, 1000)),
        raw=maybe(st.text(max_size=40)),
        clock_synced=maybe(st.booleans()),
    )


@given(fill_readings(), st.none() | st.integers(121, 10**6))
def test_fill_line_is_what_the_general_encoder_writes(
    reading: FillReading, clock_ahead_s: int | None
) -> None:
    """The hand-ordered fast path equals line() for the same tags and fields."""
    expected = line(
        influx_module.FILL,
        {"tps": reading.tps_code, "sensor": reading.sensor_id},
        {
            "filling_level": float(reading.fillingLevel),
            "distance_mm": reading.distance_mm,
            "reading_id": reading.reading_id,
            "temperature_c": reading.temperature_c,
            "battery_pct": reading.battery_pct,
            "rssi_dbm": reading.rssi_dbm,
            "snr_db": reading.snr_db,
            "source": reading.source,
            "level_status": reading.level_status,
            "tilt": reading.tilt,
            "pings": reading.pings,
            "raw": reading.raw,
            "clock_ahead_s": clock_ahead_s,
            "clock_synced": reading.clock_synced,
        },
        influx_module.point_time_ns(reading.measured_at, reading.seq),
    )
    assert fill_line(reading, clock_ahead_s=clock_ahead_s) == expected
