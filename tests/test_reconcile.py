"""The ledger against InfluxDB (wastebank/reconcile/): `ledger verify --influx`, `influx
rebuild-deposits` and the ingester's daily reconciliation, on the real InfluxDB and both ledgers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import aiomqtt
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from api.app import create_app
from ingest.main import IngestSettings, ReconcileSettings
from ingest.main import run as run_ingest
from tests.auth_helpers import PASSWORD, add_users, api_settings, login
from tests.conftest import deposit_event, eventually, free_port, mqtt_login
from wastebank import ledger, reconcile
from wastebank.alerts import AlertCode, SystemAlert
from wastebank.cli import app
from wastebank.config import InfluxSettings, MqttSettings, SecretStr, load_settings
from wastebank.influx import Influx, deposit_line, downsample, ensure_schema, influxql_time
from wastebank.messages import DepositEvent, Topics
from wastebank.reconcile import ReconciliationRun
from wastebank.structs import encode_json

WIT = ZoneInfo("Asia/Jayapura")  # the demo city, Ambon


# ---- helpers ------------------------------------------------------------------------------------


def apply(url: str, events: list[DepositEvent]) -> list[ledger.AppliedDeposit]:
    """Apply ``events`` as the ingester does (one batch)."""
    engine = ledger.make_engine(url)
    try:
        with Session(engine) as session:
            results = ledger.apply_deposits(session, events)
            session.commit()
    finally:
        engine.dispose()
    applied = [r for r in results if isinstance(r, ledger.AppliedDeposit)]
    assert len(applied) == len(events), results
    return applied


def point(a: ledger.AppliedDeposit, **changed: Any) -> str:
    """The point the ingester writes for what the ledger applied (``changed``: a forged one)."""
    assert a.measured_at is not None
    values: dict[str, Any] = {
        "event_id": a.event_id,
        "bank": a.bank_code,
        "kecamatan": a.kecamatan,
        "category": a.category_code,
        "net_g": a.net_g,
        "amount_idr": a.amount_idr,
        "gateway": a.gateway_id,
        "measured_at": a.measured_at,
    }
    return deposit_line(**(values | changed))


def at(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), WIT)


async def cli(*args: str) -> Result:
    """The command line in a thread (its asyncio.run needs a thread without a loop)."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


def runs(url: str) -> list[ReconciliationRun]:
    engine = ledger.make_engine(url)
    try:
        with Session(engine) as session:
            return list(session.scalars(select(ReconciliationRun).order_by(ReconciliationRun.id)))
    finally:
        engine.dispose()


def drift_alerts(url: str) -> list[SystemAlert]:
    engine = ledger.make_engine(url)
    try:
        with Session(engine) as session:
            return list(
                session.scalars(
                    select(SystemAlert)
                    .where(SystemAlert.code == str(AlertCode.INFLUX_DRIFT))
                    .order_by(SystemAlert.id)
                )
            )
    finally:
        engine.dispose()


async def rows_of(influx: Influx, q: str) -> list[dict[str, Any]]:
    return [row | series.tags for series in await influx.query(q) for row in series.rows()]


@pytest.fixture
async def influx(influx_settings: InfluxSettings) -> AsyncIterator[Influx]:
    """The test's database with its retention policies and roll-ups, as the ingester makes it."""
    client = Influx(influx_settings)
    await ensure_schema(client, influx_settings)
    yield client
    await client.aclose()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, influx_settings: InfluxSettings) -> None:
    """The commands read InfluxDB's address from the ingester's settings (WASTEBANK_*)."""
    monkeypatch.setenv("WASTEBANK_INFLUX__URL", influx_settings.url)
    monkeypatch.setenv("WASTEBANK_INFLUX__DATABASE", influx_settings.database)


# ---- ledger verify --influx, influx rebuild-deposits ------------------------------------------


@pytest.mark.integration
@pytest.mark.usefixtures("cli_env")
async def test_verify_finds_drift_and_rebuild_mends_it(
    ledger_url: str,
    influx: Influx,
    influx_settings: InfluxSettings,
    mqtt_settings: MqttSettings,
) -> None:
    today = datetime.now(WIT).date()
    day1, day2 = today - timedelta(days=2), today - timedelta(days=1)
    events = [
        deposit_event(1, net_g=1250, at=at(day1, 10, 5)),
        deposit_event(2, net_g=2500, category="kardus", at=at(day1, 23, 59, 30)),
        # 15:00:30 UTC on day1, but day2 in Ambon: bucketed by the city's local day
        deposit_event(3, net_g=3000, category="kardus", at=at(day2, 0, 0, 30)),
        deposit_event(4, net_g=800, at=at(day2, 12)),
        deposit_event(
            5, net_g=4100, card="04B1B2C3D1", bank="bs-nusaniwe", gateway="gw-02", at=at(day2, 9)
        ),
    ]
    applied = apply(ledger_url, events)
    await influx.write([point(a) for a in applied])
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as session:
            # manual deposits have no point; a voided deposit keeps its point
            ledger.record_manual_deposit(
                session,
                bank_code="bs-batu-merah",
                member_no="AMB-0001",
                category_code="pet",
                net_g=500,
                measured_at=at(day2, 13),
                author="petugas-bm-01",
                reason="timbangan mati / the scale was down",
            )
            ledger.void_deposit(
                session, "gw-01-4", author="petugas-bm-01", reason="salah kategori / wrong one"
            )
            session.commit()
    finally:
        engine.dispose()
    days = ["--from", day1.isoformat(), "--to", day2.isoformat()]
    verify = ["ledger", "verify", "--influx", *days, "--settle", "0", "--ledger-url", ledger_url]

    result = await cli(*verify)
    assert result.exit_code == 0, result.output
    assert "pembukuan benar / the books hold" in result.output
    assert f"the ledger and InfluxDB agree {day1}..{day2}" in result.output
    (run,) = runs(ledger_url)
    assert (run.ok, run.drifts, run.date_from, run.date_to) == (True, 0, day1, day2)
    assert run.ran_by.startswith("cli:")
    src = f"WHERE time >= {influxql_time(at(day1, 0))} AND time < {influxql_time(at(today, 0))}"
    as_written = await rows_of(influx, f'SELECT * FROM "deposit" {src}')  # noqa: S608
    assert len(as_written) == 5

    # Around the ingester: a point the ledger has no deposit for (in an hour of its own), and
    # a deposit's point with other grams (the same series and time: it replaces the field).
    ghost = deposit_event(9, net_g=999, gateway="gw-09", at=at(day1, 5, 30))
    await influx.write(
        [
            deposit_line(
                event_id=ghost.event_id,
                bank="bs-batu-merah",
                kecamatan="Sirimau",
                category="pet",
                net_g=999,
                amount_idr=4000,
                gateway="gw-09",
                measured_at=ghost.measured_at,
            ),
            point(applied[2], net_g=3100),
        ]
    )
    await downsample(influx, at(day1, 0), at(today, 0))  # the ghost's hour is rolled up too
    result = await cli(*verify)
    assert result.exit_code == 1, result.output
    lines = [x for x in result.output.splitlines() if x.startswith("selisih ")]
    assert len(lines) == 2, result.output
    assert lines[0].startswith(f"selisih {day1} bs-batu-merah pet: buku besar 1 setoran, 1250 g")
    assert f"/ drift {day1} bs-batu-merah pet: ledger 1 deposits, 1250 g, Rp5000;" in lines[0]
    assert "InfluxDB 2 deposits, 2249 g, Rp9000" in lines[0]
    assert lines[1].startswith(f"selisih {day2} bs-batu-merah kardus: buku besar 1 setoran, 3000 g")
    assert "InfluxDB 1 deposits, 3100 g" in lines[1]
    assert "2 selisih" in result.output
    last = runs(ledger_url)[-1]
    assert (last.ok, last.drifts) == (False, 2)
    assert [d["bank"] for d in json.loads(last.detail)] == ["bs-batu-merah"] * 2

    # /health: ok or not and when for anyone, the figures for an admin
    add_users(ledger_url, ("admin",))
    api = create_app(
        api_settings(mqtt=mqtt_settings, influx=influx_settings, ledger_url=ledger_url)
    )
    async with LifespanManager(api) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            public = (await client.get("/health")).json()["reconciliation"]
            admin = await login(client, "admin", PASSWORD)
            full = (await client.get("/health", headers=admin)).json()["reconciliation"]
    assert public == {"ok": False, "ran_at": last.ran_at.isoformat()}
    assert full["drifts"] == 2
    assert (full["date_from"], full["date_to"]) == (day1.isoformat(), day2.isoformat())

    # Rebuild the range from the ledger: the points as the ingester wrote them, the hourly
    # roll-up following (the ghost's hour loses its row), and the same again on a second run.
    rebuild = ["influx", "rebuild-deposits", *days, "--ledger-url", ledger_url]
    hourly = f'SELECT sum("deposits") AS "n", sum("net_g") AS "g" FROM "hourly"."deposit_1h" {src}'  # noqa: S608
    for _ in range(2):
        result = await cli(*rebuild)
        assert result.exit_code == 0, result.output
        assert "ditulis / written 5 " in result.output
        assert "hourly roll-up recomputed" in result.output
        assert await rows_of(influx, f'SELECT * FROM "deposit" {src}') == as_written  # noqa: S608
        (rolled,) = await rows_of(influx, hourly)
        assert (rolled["n"], rolled["g"]) == (5, 1250 + 2500 + 3000 + 800 + 4100)
        result = await cli(*verify)
        assert result.exit_code == 0, result.output
    assert [r.ok for r in runs(ledger_url)] == [True, False, True, True]


@pytest.mark.integration
@pytest.mark.usefixtures("cli_env")
async def test_verify_defaults_to_the_last_30_local_days(ledger_url: str, influx: Influx) -> None:
    (a,) = apply(ledger_url, [deposit_event(1)])
    result = await cli("ledger", "verify", "--influx", "--settle", "0", "--ledger-url", ledger_url)
    assert result.exit_code == 1, result.output  # the point was never written
    today = datetime.now(WIT).date()
    assert a.measured_at is not None
    assert f"selisih {a.measured_at.astimezone(WIT).date()} bs-batu-merah pet" in result.output
    (run,) = runs(ledger_url)
    assert (run.date_from, run.date_to) == (today - timedelta(days=29), today)
    await influx.write([point(a)])
    result = await cli("ledger", "verify", "--influx", "--settle", "0", "--ledger-url", ledger_url)
    assert result.exit_code == 0, result.output
    # --from without --influx is a mistake, not ignored
    result = await cli("ledger", "verify", "--from", "2026-01-01", "--ledger-url", ledger_url)
    assert result.exit_code == 2


# ---- the daily reconciliation inside the ingester ---------------------------------------------


async def _count_points(influx: Influx) -> int:
    rows = await rows_of(influx, 'SELECT count("net_g") AS "n" FROM "deposit"')
    return int(rows[0]["n"]) if rows else 0


@pytest.mark.integration
async def test_the_ingester_reconciles_and_raises_the_drift_alert_once(
    mqtt_settings: MqttSettings, influx_settings: InfluxSettings, ledger_url: str, test_id: str
) -> None:
    settings = load_settings(
        IngestSettings,
        mqtt=mqtt_settings,
        influx=influx_settings,
        ledger_url=ledger_url,
        client_id=f"ingest-{test_id}",
        batch_max_age_s=0.05,
        reconcile=ReconcileSettings(interval_s=0.3, first_delay_s=0, settle_s=0.2, days=2),
    )
    ready = asyncio.Event()
    task = asyncio.create_task(run_ingest(settings, ready=ready))
    influx = Influx(influx_settings)
    try:
        await asyncio.wait_for(ready.wait(), 20)
        topic = Topics(mqtt_settings.topic_prefix).deposit("bs-batu-merah", "gw-01")
        async with aiomqtt.Client(
            mqtt_settings.host, mqtt_settings.port, **mqtt_login(mqtt_settings)
        ) as client:
            for ev in (deposit_event(1), deposit_event(2, category="kardus")):
                await client.publish(topic, encode_json(ev), qos=1)

        async def points_written() -> bool:
            return await _count_points(influx) == 2

        await eventually(points_written)
        mark = len(runs(ledger_url))

        async def run_after(n: int, ok: bool) -> bool:
            return any(r.ok is ok for r in runs(ledger_url)[n:])

        async def agreeing() -> bool:
            return await run_after(mark, True)

        await eventually(agreeing)
        assert [a for a in drift_alerts(ledger_url) if a.cleared_at is None] == []
        good = runs(ledger_url)[-1]
        assert good.ran_by == "ingest"
        assert good.date_to == datetime.now(WIT).date()
        assert good.date_from == good.date_to - timedelta(days=1)

        # a point around the ingester
        ghost = deposit_event(3, net_g=777, gateway="gw-09")
        line = deposit_line(
            event_id=ghost.event_id,
            bank="bs-batu-merah",
            kecamatan="Sirimau",
            category="pet",
            net_g=777,
            amount_idr=3108,
            gateway="gw-09",
            measured_at=ghost.measured_at,
        )
        await influx.write([line])
        mark = len(runs(ledger_url))

        async def drifting_twice() -> bool:
            return sum(not r.ok for r in runs(ledger_url)[mark:]) >= 2

        await eventually(drifting_twice)
        active = [a for a in drift_alerts(ledger_url) if a.cleared_at is None]
        assert len(active) == 1  # raised once, though every later run finds the drift
        (alert,) = active
        assert alert.subject == f"influx:{influx_settings.database}"
        assert alert.details["drifts"] == 1
        assert alert.details["first"][0]["influx"] == [2, 1250 + 777, 5000 + 3108]
        assert "InfluxDB" in alert.message

        # mended from the ledger: the next run finds them equal and clears the alert
        engine = ledger.make_engine(ledger_url, writer=False)
        try:
            today = datetime.now(WIT).date()
            await reconcile.rebuild_deposits(
                engine, influx_settings, today - timedelta(days=1), today
            )
        finally:
            engine.dispose()
        mark = len(runs(ledger_url))

        async def agreeing_again() -> bool:
            return await run_after(mark, True)

        await eventually(agreeing_again)
        (cleared,) = drift_alerts(ledger_url)
        assert cleared.id == alert.id
        assert cleared.cleared_at is not None
        assert cleared.cleared_by == "ingest"
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await influx.aclose()


@pytest.mark.integration
async def test_an_influxdb_outage_postpones_the_run_and_never_stops_it(
    ledger_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = ledger.make_engine(ledger_url)
    dead = Influx(InfluxSettings(url=f"http://127.0.0.1:{free_port()}", timeout_s=1))
    caplog.set_level(logging.WARNING, logger="wastebank.reconcile")
    task = asyncio.create_task(
        reconcile.run_daily(engine, dead, interval_s=0.05, days=2, first_delay_s=0, settle_s=0)
    )
    try:

        async def postponed_twice() -> bool:
            return caplog.text.count("reconciliation postponed") >= 2

        await eventually(postponed_twice)
        assert not task.done()
        assert runs(ledger_url) == []
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await dead.aclose()
        engine.dispose()


# ---- InfluxDB 2.x and 3.x, as far as a stand-in server shows them ------------------------------


class _FakeInflux(BaseHTTPRequestHandler):
    """Answers /ping with ``version`` and records every POST (2.x delete and write)."""

    version = "v2.7.10"
    posts: list[tuple[str, dict[str, list[str]], bytes]] = []

    def log_message(self, *_args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(204)
        self.send_header("X-Influxdb-Version", self.version)
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        url = urlsplit(self.path)
        type(self).posts.append((url.path, parse_qs(url.query), body))
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def fake_influx() -> Iterator[tuple[str, type[_FakeInflux]]]:
    handler = type("Handler", (_FakeInflux,), {"posts": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


@pytest.mark.integration
async def test_rebuild_on_2x_deletes_through_the_v2_api_and_refuses_3x(
    ledger_url: str,
    fake_influx: tuple[str, type[_FakeInflux]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, handler = fake_influx
    day = datetime.now(WIT).date() - timedelta(days=1)
    (a,) = apply(ledger_url, [deposit_event(7, at=at(day, 8))])
    monkeypatch.setenv("WASTEBANK_INFLUX__URL", url)
    monkeypatch.setenv("WASTEBANK_INFLUX__TOKEN", "t0ken")
    monkeypatch.setenv("WASTEBANK_INFLUX__BUCKET", "wastebank")
    args = ["influx", "rebuild-deposits", "--from", str(day), "--to", str(day)]
    result = await cli(*args, "--ledger-url", ledger_url)
    assert result.exit_code == 0, result.output
    assert "ditulis / written 1 " in result.output
    assert "the hourly roll-up is the server's task" in result.output
    (delete_path, params, body), (write_path, _, written) = handler.posts
    assert (delete_path, params["bucket"], write_path) == (
        "/api/v2/delete",
        ["wastebank"],
        "/api/v2/write",
    )
    start = datetime.combine(day, time(0), WIT).astimezone(UTC)
    assert json.loads(body) == {
        "start": start.strftime("%Y-%m-%dT%H:%M:%S.000000000Z"),
        "stop": (start + timedelta(days=1, seconds=-1)).strftime("%Y-%m-%dT%H:%M:%S.999999999Z"),
        "predicate": '_measurement="deposit"',
    }
    assert written.decode().strip() == point(a)

    handler.version = "3.1.0"
    handler.posts.clear()
    result = await cli(*args, "--ledger-url", ledger_url)
    assert result.exit_code == 2
    assert "not supported on 3.x" in result.output
    assert handler.posts == []


def test_server_kinds() -> None:
    settings = InfluxSettings()
    assert reconcile.server_kind("1.6.7~rc0", settings) == "v1"
    assert reconcile.server_kind("v2.7.10", settings) == "v2"
    assert reconcile.server_kind("unknown", settings) == "v1"
    assert reconcile.server_kind("unknown", InfluxSettings(token=SecretStr("x"))) == "v2"
    with pytest.raises(reconcile.RebuildUnsupported):
        reconcile.server_kind("3.0.3", settings)
