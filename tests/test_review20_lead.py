"""The fourth review's leftovers the lead fixed: `tps watch` stops on SIGTERM as the ingester
does, and a scale's calibration_version is device text (no control characters), refused at
start rather than on every deposit."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from gateway.clock import parse_chrony_tracking
from gateway.settings import GatewaySettings
from tests.conftest import Processes, eventually, settings_env
from wastebank.config import ConfigError, InfluxSettings, MqttSettings, load_settings


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
