"""The fourth review's leftovers the lead fixed: `tps watch` stops on SIGTERM as the ingester
does, and a scale's calibration_version is device text (no control characters), refused at
start rather than on every deposit."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from firmware_sim.encoders import encode_weight
from gateway.clock import parse_chrony_tracking
from gateway.kiosk import AttendantSession, DepositCandidate
from gateway.readers import ScaleNotWeighing, ScaleReader
from gateway.scale_state import STALE_S
from gateway.settings import GatewaySettings, ScaleSettings
from tests.conftest import Processes, eventually, settings_env
from tests.test_fleet import (
    BANKS,
    NOW,
    SETTINGS,
    TPS,
    _maxbotix,
    health,
    scale,
    stored,
)
from wastebank import fleet, ledger
from wastebank.cli import app as cli
from wastebank.config import ConfigError, InfluxSettings, MqttSettings, load_settings
from wastebank.fleet import Inputs
from wastebank.structs import Invalid, convert, to_builtins


async def test_tps_watch_stops_on_sigterm_with_exit_0(
    processes: Processes,
    mqtt_settings: MqttSettings,
    influx_settings: InfluxSettings,
    ledger_url: str,
    test_id: str,
) -> None:
    env = {
        **settings_env(mqtt_settings, influx_settings, ledger_url),
        "WASTEBANK_CLIENT_ID": f"tps-{test_id}",
    }
    proc = processes.start("tps", ["tps", "watch"], env)

    async def subscribed() -> bool:
        return "TPS watcher subscribed" in processes.log("tps")

    await eventually(subscribed)
    proc.send_signal(signal.SIGTERM)  # what systemd sends
    assert await asyncio.to_thread(proc.wait, 30) == 0
    assert "Traceback" not in processes.log("tps")


@pytest.mark.parametrize("version", ["cal\x1b[2J", "cal\n2026", "cal\x85"])
def test_a_calibration_version_with_a_control_character_is_refused_at_start(
    tmp_path: Path, version: str
) -> None:
    site = tmp_path / "site.toml"
    site.write_text(
        'bank_code = "bs-batu-merah"\n'
        "[[scales]]\n"
        'id = "scale-01"\n'
        'port = "/dev/ttyUSB0"\n'
        f"calibration_version = {json.dumps(version)}\n"  # a TOML basic string, escaped
    )
    with pytest.raises(ConfigError, match=r"scales\.0\.calibration_version"):
        load_settings(GatewaySettings, site)


# chronyc -c tracking with leap status Normal: system time (field 5, + = the clock is slow)
def _tracking(system_time: str) -> str:
    return (
        f"C0A80101,ntp.example.net,3,1795396502.1,{system_time},-0.00001,0.00003,"
        "-12.345,-0.001,0.050,0.012,0.001,64.2,Normal\n"
    )


def test_a_chrony_clock_a_day_off_is_not_synchronized_though_its_leap_status_is_normal() -> None:
    day_off = parse_chrony_tracking(_tracking("90061.5"))  # the docs review's fake chronyc
    assert (day_off.synchronized, day_off.offset_ms) == (False, -90_061_500)
    near = parse_chrony_tracking(_tracking("-9.999"))
    assert (near.synchronized, near.offset_ms) == (True, 9_999)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_chrony_system_time_that_is_no_number_is_a_probe_that_cannot_tell(value: str) -> None:
    reading = parse_chrony_tracking(_tracking(value))
    assert reading.synchronized is None
    assert reading.problem is not None
    assert "not a number" in reading.problem


def test_wastebank_fleet_escapes_device_text_stored_before_the_contract_refused_it(
    ledger_url: str,
) -> None:
    """A version with terminal commands (clear screen, window title) stored before the contract
    refused control characters never reaches the operator's terminal: the stored report is
    read as unreadable (it fails today's contract), and what is printed is escaped."""
    version = "\x1b[2J\x1b]0;pwn\x07"
    h = to_builtins(health("gw-esc", "bs-batu-merah"))
    h["version"] = version
    engine = ledger.make_engine(ledger_url)
    with Session(engine) as session, session.begin():
        session.add(
            fleet.DeviceReport(
                device_type="gateway",
                site="bs-batu-merah",
                device_id="gw-esc",
                health=json.dumps(h),
                health_received_at=datetime.now(UTC),
            )
        )
    engine.dispose()
    env = {"WASTEBANK_INFLUX__URL": "http://127.0.0.1:9"}
    shown = CliRunner().invoke(cli, ["fleet", "--ledger-url", ledger_url], env=env)
    assert "gw-esc" in shown.stdout, shown.output
    assert "laporan tersimpan tak terbaca" in shown.stdout
    assert "\x1b" not in shown.stdout
    assert "\x07" not in shown.stdout


def test_a_lost_sensor_port_is_disconnected_in_the_fleet_not_a_scale_offline() -> None:
    """The gateway raises scale_offline for any serial port it lost; on a TPS sensor's port the
    fleet said "timbangan tidak terhubung / scale offline" (docs review finding 7)."""
    sensor = {**_maxbotix("us-07", 0, None), "connected": False}
    alert = {"code": "scale_offline", "subject": "us-07", "since": NOW}
    h = health(
        "gw-a",
        "bs-a",
        scales=[scale("disconnected")],
        sensors=[sensor],
        alerts_active=[alert, {**alert, "subject": "scale-01"}],
    )
    built = fleet.build(Inputs([stored("gw-a", "bs-a", h, NOW)], BANKS, TPS), NOW, SETTINGS)
    (gateway,) = [d for d in built.devices if d.kind == "gateway"]
    assert sorted((p.code, p.subject) for p in gateway.problems) == [
        ("disconnected", "us-07"),
        ("scale_offline", "scale-01"),
    ]
    said = " | ".join(fleet.describe(gateway, NOW, "en").problems)
    assert "scale offline: us-07" not in said
    assert "disconnected: us-07" in said


def _silent_scale(tmp_path: Path, stale_after_s: float = STALE_S) -> ScaleReader:
    """A connected attendant scale that sent two empty-platform lines a minute ago, then nothing."""
    cfg = ScaleSettings(
        id="scale-01", port=tmp_path / "tty", flow="attendant", stale_after_s=stale_after_s
    )
    reader = ScaleReader(cfg)
    reader.connected = True
    reader.process(encode_weight(0, stable=True) * 2, 100.0)
    reader.parsed_at = time.monotonic() - 60
    return reader


def test_a_print_on_demand_scale_with_stale_after_0_is_never_stale_by_silence(
    tmp_path: Path,
) -> None:
    """An indicator that sends only when its print key is pressed (docs/deploy-pi.md §4): with
    the default it is stale between prints and cannot be armed; with stale_after_s = 0 it can,
    and the printed line is the deposit."""
    streaming = _silent_scale(tmp_path)
    assert streaming.state() == "stale"
    with pytest.raises(ScaleNotWeighing):
        streaming.require_weighing()
    printing = _silent_scale(tmp_path, stale_after_s=0)
    assert printing.state() == "ok"
    printing.require_weighing()
    assert isinstance(printing.session, AttendantSession)
    printing.session.arm("AMB-0001", "kardus", 200.0)
    (taken,) = [
        c
        for c in printing.process(encode_weight(2500, stable=True), 201.0)
        if isinstance(c, DepositCandidate)
    ]
    assert taken.net_g == 2500


@pytest.mark.parametrize("bad", [-1, 3601, float("nan")])
def test_stale_after_s_is_bounded(tmp_path: Path, bad: float) -> None:
    with pytest.raises(Invalid):
        convert(
            {"id": "scale-01", "port": str(tmp_path / "t"), "stale_after_s": bad},
            ScaleSettings,
            strict=False,
        )
