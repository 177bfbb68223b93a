"""The fourth review's findings on bytes from outside (docs/protocol.md, "Limits and strictness";
docs/operations.md): control characters in device text, oversized messages, a retained junk
message at every start, the ingester under SIGTERM, and the run dir's permissions."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import signal
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gateway.clock import read_timesyncd
from ingest.deadletter import replay_dead_letters
from ingest.main import Ingester, IngestSettings
from tests.conftest import (
    PrivateMosquitto,
    Processes,
    deposit_event,
    eventually,
    mqtt_login,
    settings_env,
    wait_until,
)
from tests.ledger_helpers import add_dead_letter
from wastebank import ledger, services
from wastebank.cli import app
from wastebank.config import InfluxSettings, MqttSettings, load_settings
from wastebank.formats import terminal_text
from wastebank.influx import Influx
from wastebank.messages import (
    MAX_PAYLOAD_BYTES,
    DepositEvent,
    GatewayAlert,
    GatewayHealth,
    GatewayStatus,
    Topics,
)
from wastebank.process import setup_logging
from wastebank.services.mosquitto import MOSQUITTO_MAX_PACKET_BYTES
from wastebank.structs import Invalid, decode_json, encode_json, to_builtins

ESC_VERSION = "\x1b[2J\x1b[31mRED\x1b[0m\x1b]0;pwn\x07"
"""The reviewer's version: clear screen, colours, a window title."""
FORGED = "x\x1b[31m\nFAKE LINE"
"""An unknown field name that would forge a log line."""
HEALTH_TOPIC = Topics("").gateway_health("bs-batu-merah", "gw-01")


def _health(**changes: object) -> dict[str, object]:
    return {
        "gateway_id": "gw-01",
        "bank_code": "bs-batu-merah",
        "at": "2026-12-07T10:00:00+09:00",
        "uptime_s": 5,
        "outbox_depth": 0,
        "outbox_dropped": 0,
        "mqtt_reconnects": 0,
        "deposits_stored": 0,
        **changes,
    }


def _alert(message: str) -> dict[str, object]:
    return {
        "alert_id": "gw-01.k7q2m.3",
        "gateway_id": "gw-01",
        "install": "k7q2m",
        "seq": 3,
        "bank_code": "bs-batu-merah",
        "code": "zero_drift",
        "state": "raised",
        "subject": "scale-01",
        "at": "2026-12-07T10:00:00+09:00",
        "message": message,
    }


# ---- 1. control characters ---------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["\x1b", "\n", "\t", "\x00", "\x7f", "\x85", "\x9b"])
def test_device_free_text_with_a_control_character_is_refused_naming_the_field(bad: str) -> None:
    cases: list[tuple[type[object], dict[str, object], str]] = [
        (GatewayHealth, _health(version=f"1.0{bad}"), "version"),
        (GatewayStatus, {"state": "online", "device_id": "gw-01", "version": bad}, "version"),
        (GatewayAlert, _alert(f"drift{bad}FAKE"), "message"),
        (GatewayAlert, {**_alert("ok"), "subject": f"s{bad}"}, "subject"),
    ]
    deposit = to_builtins(deposit_event(1))
    cases.append((DepositEvent, {**deposit, "protocol": f"gs{bad}nt"}, "protocol"))
    cases.append(
        (DepositEvent, {**deposit, "calibration_version": f"c{bad}"}, "calibration_version")
    )
    for model, body, field in cases:
        with pytest.raises(Invalid) as caught:
            decode_json(encode_json(body), model)
        ((loc, _),) = caught.value.problems
        assert loc == (field,), (model, field)


def test_a_clock_problem_is_text_and_the_gateway_escapes_what_a_probe_met() -> None:
    clock = {"synchronized": None, "source": "unknown", "problem": "chrony: 506\tCannot talk"}
    with pytest.raises(Invalid) as caught:
        decode_json(encode_json(_health(clock=clock)), GatewayHealth)
    assert caught.value.problems[0][0] == ("clock", "problem")
    reading = read_timesyncd(Path("/nowhere\tat all/synchronized"))
    assert reading.problem == "timesyncd: no /nowhere\\tat all (timesyncd not running)"
    ok = {**clock, "problem": reading.problem}
    assert decode_json(encode_json(_health(clock=ok)), GatewayHealth).clock is not None


def test_plain_and_non_ascii_text_and_evidence_with_stx_stay_valid() -> None:
    health = decode_json(encode_json(_health(version="1.2.3-ß é ✓")), GatewayHealth)
    assert health.version == "1.2.3-ß é ✓"
    # A Toledo frame starts with STX: evidence is the scale's bytes as received, not text.
    body = {**to_builtins(deposit_event(1)), "raw_frames": ["\x02,2 000150000000\r"]}
    assert decode_json(encode_json(body), DepositEvent).raw_frames == ["\x02,2 000150000000\r"]


def test_terminal_text_escapes_c0_del_c1_visibly() -> None:
    assert terminal_text(ESC_VERSION) == "\\x1b[2J\\x1b[31mRED\\x1b[0m\\x1b]0;pwn\\x07"
    assert terminal_text("a\nb\tc\r\x7f\x85é") == "a\\nb\\tc\\r\\x7f\\x85é"


def test_a_text_log_line_cannot_be_forged_or_carry_escapes_a_traceback_keeps_its_lines() -> None:
    stream = io.StringIO()
    setup_logging(stream=stream)
    log = logging.getLogger("wastebank.ingest")
    log.warning("pesan ditolak / dead letter on %s: %s", HEALTH_TOPIC, FORGED)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed %s", "\x1b]52;c;cHdu\x07")
    lines = stream.getvalue().splitlines()
    assert "\x1b" not in stream.getvalue()
    assert lines[0].endswith("x\\x1b[31m\\nFAKE LINE")
    assert not any(line.startswith("FAKE LINE") for line in lines)
    assert lines[1].endswith("failed \\x1b]52;c;cHdu\\x07")
    assert lines[2] == "Traceback (most recent call last):"


@pytest.fixture
async def ingester(ledger_url: str) -> AsyncIterator[Ingester]:
    settings = load_settings(IngestSettings, ledger_url=ledger_url, influx=InfluxSettings())
    influx = Influx(settings.influx)
    ingester = Ingester(settings, ledger.make_engine(ledger_url), influx)
    yield ingester
    ingester.close()
    await influx.aclose()


async def test_dead_letter_list_and_show_escape_a_forged_field_name(
    ingester: Ingester, ledger_url: str
) -> None:
    payload = encode_json({**_health(), FORGED: 1, "version": "ok"})
    assert await ingester.handle(HEALTH_TOPIC, payload) == []
    version = encode_json(_health(version=ESC_VERSION))
    assert await ingester.handle(HEALTH_TOPIC, version) == []
    runner = CliRunner()
    listed = runner.invoke(app, ["deadletter", "list", "--ledger-url", ledger_url])
    assert listed.exit_code == 0, listed.output
    assert "\x1b" not in listed.output
    assert not any(line.startswith("FAKE LINE") for line in listed.output.splitlines())
    assert "x\\x1b[31m\\nFAKE LINE" in listed.output
    assert "version: control character refused" in listed.output
    shown = runner.invoke(app, ["deadletter", "show", "1", "--ledger-url", ledger_url])
    assert "\x1b" not in shown.output
    assert "FAKE LINE" in shown.output
    assert not any(line.startswith("FAKE LINE") for line in shown.output.splitlines())


# ---- 2. size -------------------------------------------------------------------------------------


def test_an_oversized_payload_keeps_its_first_bytes_size_and_hash_and_cannot_be_applied(
    ledger_url: str,
) -> None:
    big = b"{" + b"x" * (3 * 1024 * 1024)
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            row_id = add_dead_letter(s, HEALTH_TOPIC, big, "oversized: ...", "oversized")
            within = add_dead_letter(s, HEALTH_TOPIC, b"y" * MAX_PAYLOAD_BYTES, "invalid")
            s.commit()
            row = ledger.get_dead_letter(s, row_id)
            assert row is not None
            assert len(row.payload) == ledger.OVERSIZED_KEPT_BYTES
            assert row.payload == big[: ledger.OVERSIZED_KEPT_BYTES]
            assert (row.payload_size, row.truncated) == (len(big), True)
            assert row.payload_sha256 == hashlib.sha256(big).hexdigest()
            whole = ledger.get_dead_letter(s, within)
            assert whole is not None
            assert (len(whole.payload), whole.truncated) == (MAX_PAYLOAD_BYTES, False)
    finally:
        engine.dispose()
    runner = CliRunner()
    base = ["--ledger-url", ledger_url]
    shown = runner.invoke(app, ["deadletter", "show", str(row_id), *base])
    assert shown.exit_code == 0
    assert f"only the first 4096 of its {len(big)} bytes are kept" in shown.output
    assert len(shown.output) < 8000  # the first 4096 bytes at most, never the whole
    long_one = runner.invoke(app, ["deadletter", "show", str(within), *base])
    assert len(long_one.output) < 8000
    assert f"{MAX_PAYLOAD_BYTES - 4096} more (--full)" in long_one.output
    full = runner.invoke(app, ["deadletter", "show", str(within), "--full", *base])
    assert "y" * MAX_PAYLOAD_BYTES in full.output
    applied = runner.invoke(
        app, ["deadletter", "resolve", str(row_id), "--apply", "--reason", "r", *base]
    )
    assert applied.exit_code == 1
    assert "truncated: only the first 4096" in applied.output
    assert "neither replayed nor applied" in applied.output


async def test_a_truncated_dead_letter_fails_its_replay_saying_why(
    ledger_url: str, influx_settings: InfluxSettings
) -> None:
    engine = ledger.make_engine(ledger_url)
    with Session(engine) as s:
        row_id = add_dead_letter(s, HEALTH_TOPIC, b"{" * 70_000, "oversized: ...", "oversized")
        s.commit()
    engine.dispose()
    settings = load_settings(IngestSettings, ledger_url=ledger_url, influx=influx_settings)
    summary = await replay_dead_letters(settings, [row_id])
    assert summary.replayed == []
    assert summary.failed[row_id].startswith("truncated: only the first 4096 of its 70000")


async def test_a_retained_junk_message_at_each_start_is_one_row_counted(
    ingester: Ingester, ledger_url: str
) -> None:
    junk = b"not json"
    for _ in range(3):  # the broker hands the retained message to each new ingester
        assert await ingester.handle(HEALTH_TOPIC, junk) == []
    assert ingester.stats.dead_lettered == 3
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            (row,) = ledger.dead_letters(s)
            assert (row.times_received, row.last_received_at is not None) == (3, True)
            ledger.resolve_dead_letter(s, row.id, apply=False, reason="junk", author="t")
            s.commit()
    finally:
        engine.dispose()
    assert await ingester.handle(HEALTH_TOPIC, junk) == []  # settled: a new row
    listed = CliRunner().invoke(app, ["deadletter", "list", "--ledger-url", ledger_url])
    assert "received 3x" in listed.output
    assert "2 pesan ditolak / 2 dead letter(s)" in listed.output


async def test_the_broker_disconnects_a_sender_over_its_packet_limit_and_passes_the_rest(
    private_mosquitto: PrivateMosquitto,
) -> None:
    mqtt = private_mosquitto.mqtt("size/")
    conf = services.mosquitto_conf(
        services.mosquitto.mosquitto_service(private_mosquitto.settings),
        private_mosquitto.settings,
    )
    assert f"max_packet_size {MOSQUITTO_MAX_PACKET_BYTES}" in conf
    over_ingester = b"a" * (MAX_PAYLOAD_BYTES + 1)
    async with aiomqtt.Client(mqtt.host, mqtt.port, **mqtt_login(mqtt, "reader")) as reader:
        await reader.subscribe("size/#", qos=1)
        async with aiomqtt.Client(mqtt.host, mqtt.port, **mqtt_login(mqtt, "big")) as sender:
            await sender.publish("size/a", over_ingester, qos=1)
            got = await asyncio.wait_for(anext(reader.messages), 10)
            assert got.payload == over_ingester  # the ingester counts it as a dead letter
            with pytest.raises(aiomqtt.MqttError):  # disconnected: never acknowledged
                await sender.publish("size/b", b"b" * MOSQUITTO_MAX_PACKET_BYTES, qos=1)
        log = private_mosquitto.settings.run_dir / "mosquitto" / "mosquitto.log"
        wait_until(lambda: "test@big disconnected due to oversize packet" in log.read_text())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(reader.messages), 1)  # nothing over the limit came


# ---- 3. SIGTERM ----------------------------------------------------------------------------------


async def test_the_ingester_stops_on_sigterm_with_its_stop_line_and_exit_0(
    processes: Processes,
    mqtt_settings: MqttSettings,
    influx_settings: InfluxSettings,
    ledger_url: str,
    test_id: str,
) -> None:
    env = {
        **settings_env(mqtt_settings, influx_settings, ledger_url),
        "WASTEBANK_CLIENT_ID": f"ingest-{test_id}",
    }
    proc = processes.start("ingest", ["ingest"], env)

    async def subscribed() -> bool:
        return "subscribed" in processes.log("ingest")

    await eventually(subscribed)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0
    log = processes.log("ingest")
    assert "ingest berhenti / stopping:" in log
    assert "'reports_unstored': 0" in log
    assert "'retained_cleared': 0" in log
    assert "Traceback" not in log


# ---- 4. permissions ------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_services_up_makes_and_closes_its_run_dir_0700(
    private_mosquitto: PrivateMosquitto,
) -> None:
    run = private_mosquitto.settings.run_dir
    ours = [run, run / "secrets", run / "secrets" / "mqtt", run / "mosquitto"]
    ours.append(run / "mosquitto" / "data")
    # made by `services.up` as a test calls it, under the test process's umask
    assert {str(d): _mode(d) for d in ours} == {str(d): 0o700 for d in ours}
    assert _mode(run / "ports.toml") == 0o600
    # an older run dir, opened: closed again at the next `up`
    for d in ours:
        d.chmod(0o755)
    (run / "ports.toml").chmod(0o644)
    services.control.close_run_dir(private_mosquitto.settings)
    assert {str(d): _mode(d) for d in ours} == {str(d): 0o700 for d in ours}
    assert _mode(run / "ports.toml") == 0o600
