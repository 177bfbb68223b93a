"""The fourth outside review (gateway side), findings 9, 10, 11, 14, 15 and 16's rate: the clock's
first synchronization is per boot, a probe that cannot run says so, a damaged outbox stops the
gateway with a message and a status systemd does not restart, a health report says how many
alerts it left out and lists the most urgent, alert ids never repeat deposit ids, and a flapping
alert is damped."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from pathlib import Path

import msgspec
import pytest

from gateway.alert_store import FLAP_HOLD_S, FLAP_RAISES
from gateway.app import Gateway
from gateway.clock import ClockSettings, ClockWatch
from gateway.outbox import Outbox, OutboxDamaged
from gateway.readers import Condition
from gateway.run import OUTBOX_DAMAGED, run
from tests.gateway_helpers import gateway_settings
from wastebank.influx.lines import health_lines
from wastebank.messages import ALERTS_ACTIVE_MAX, EVENT_ID_PATTERN, GatewayAlert
from wastebank.structs import Invalid, decode_json

CHRONY_SYNCED = (
    "C0A80101,ntp.example.net,3,1795396502.123456789,-0.000012345,-0.000010000,0.000030000,"
    "-12.345,-0.001,0.050,0.012345678,0.001234567,64.2,Normal\n"
)
CHRONY_UNSYNCED = (
    "00000000,,0,0.000000000,0.000000000,0.0,0.0,0.0,0.0,0.0,1.0,1.0,0.0,Not synchronised\n"
)
ROOT = Path(__file__).resolve().parents[1]


def _chronyc(tmp_path: Path, output: str, status: int = 0, name: str = "chronyc.py") -> list[str]:
    script = tmp_path / name
    script.write_text(
        f"import sys\nsys.stdout.write({output!r})\nsys.stderr.write('506 Cannot talk to "
        f"daemon\\x1b[2J' if {status} else '')\nsys.exit({status})\n"
    )
    return [sys.executable, str(script)]


def _clock(tmp_path: Path, output: str, boot: str) -> dict[str, object]:
    (tmp_path / "boot_id").write_text(boot + "\n")
    return {
        "probe": "chrony",
        "chronyc": _chronyc(tmp_path, output, name=f"chronyc-{len(output)}.py"),
        "boot_id_file": tmp_path / "boot_id",
    }


# ---- finding 9: the first synchronization is per boot -------------------------------------------


def test_a_gateway_restarted_within_the_boot_keeps_its_first_sync(tmp_path: Path) -> None:
    first = Gateway(gateway_settings(tmp_path, clock=_clock(tmp_path, CHRONY_SYNCED, "boot-a")))
    synced_at = first.clock.synced_at
    assert synced_at is not None
    assert first.clock.stamp() is True
    first.outbox.close()

    # restarted (a crash, an upgrade) while chrony has lost its source: same boot
    again = Gateway(gateway_settings(tmp_path, clock=_clock(tmp_path, CHRONY_UNSYNCED, "boot-a")))
    health = again.health().clock
    assert health is not None
    assert (health.synchronized, health.synced_at) == (False, synced_at)
    assert again.clock.stamp() is True  # its events stay clock_synced=true
    again.outbox.close()

    # and again with chronyd not answering: the probe cannot tell, the boot's sync still holds
    broken = _clock(tmp_path, CHRONY_UNSYNCED, "boot-a") | {"chronyc": [str(tmp_path / "gone")]}
    blind = Gateway(gateway_settings(tmp_path, clock=broken))
    assert blind.clock.stamp() is True
    assert blind.clock.health().problem is not None
    blind.outbox.close()

    # a new boot: the Pi's clock is whatever it saved, until a probe says synchronized
    rebooted = Gateway(
        gateway_settings(tmp_path, clock=_clock(tmp_path, CHRONY_UNSYNCED, "boot-b"))
    )
    assert rebooted.clock.synced_at is None
    assert rebooted.clock.stamp() is False
    rebooted.outbox.close()


# ---- finding 10: a probe that cannot run says so ------------------------------------------------


def test_a_probe_that_cannot_run_is_logged_once_and_in_health(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "wastebank.gateway")
    missing = ClockWatch(ClockSettings(probe="chrony", chronyc=[str(tmp_path / "no-chronyc")]))
    for _ in range(3):
        missing.check()
    warned = [r for r in caplog.records if "clock probe cannot run" in r.getMessage()]
    assert len(warned) == 1
    assert warned[0].levelno == logging.WARNING
    assert "no-chronyc" in warned[0].getMessage()
    health = missing.health()
    assert (health.synchronized, health.source) == (None, "unknown")
    assert health.problem is not None
    assert "no-chronyc" in health.problem

    failing = ClockWatch(ClockSettings(probe="chrony", chronyc=_chronyc(tmp_path, "", 1)))
    problem = failing.check().problem
    assert problem is not None
    assert "506 Cannot talk to daemon" in problem

    caplog.clear()
    run_dir = tmp_path / "timesync"
    timesyncd = ClockWatch(ClockSettings(probe="timesyncd", sync_file=run_dir / "synchronized"))
    problem = timesyncd.check().problem
    assert problem is not None
    assert "timesyncd" in problem
    run_dir.mkdir()  # timesyncd started
    assert timesyncd.check().problem is None
    assert timesyncd.health().problem is None
    said = [r.getMessage() for r in caplog.records]
    assert sum("cannot run" in m for m in said) == 1
    assert sum("works again" in m for m in said) == 1


def test_auto_chooses_again_while_it_has_found_nothing(tmp_path: Path) -> None:
    run_dir = tmp_path / "timesync"
    watch = ClockWatch(
        ClockSettings(sync_file=run_dir / "synchronized", chronyc=[str(tmp_path / "none")])
    )
    reading = watch.check()
    assert reading.problem is not None
    assert reading.problem.startswith("auto: neither timesyncd")
    run_dir.mkdir()  # timesyncd started after the gateway
    (run_dir / "synchronized").touch()
    assert watch.check().synchronized is True
    assert watch.probe == "timesyncd"
    assert watch.stamp() is True


# ---- finding 11: a damaged outbox ------------------------------------------------------------


def _damage(path: Path) -> None:
    outbox = Outbox(path)
    with outbox.transaction() as write:
        for n in range(400):
            write.put("t", b"x" * 200 + str(n).encode())
    outbox.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    outbox.close()
    with path.open("r+b") as f:  # pages 2 to 5 overwritten, as the reviewer did
        f.seek(4096)
        f.write(b"\xa5" * 4 * 4096)


def test_a_damaged_outbox_stops_the_gateway_with_status_3(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = gateway_settings(tmp_path)
    _damage(settings.outbox.path)
    with pytest.raises(OutboxDamaged):
        Outbox(settings.outbox.path)
    with pytest.raises(SystemExit) as stopped:
        asyncio.run(run(settings))
    assert stopped.value.code == OUTBOX_DAMAGED == 3
    said = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL)
    assert said.startswith("berkas outbox rusak")
    assert "sqlite3 .recover" in said
    assert "§7a" in said
    # the damaged file is left as it was, for recovery
    assert settings.outbox.path.stat().st_size > 4 * 4096


def test_the_unit_does_not_restart_a_damaged_outbox() -> None:
    unit = (ROOT / "deploy" / "wastebank-gateway.service").read_text()
    assert f"RestartPreventExitStatus={OUTBOX_DAMAGED}\n" in unit
    assert "After=network-online.target systemd-timesyncd.service" in unit
    assert "time-sync.target\n" not in unit.replace("Not After=time-sync.target", "")


def test_an_outbox_created_anew_where_an_install_was_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "outbox.db"
    old = Outbox(path)
    old.close()
    reopened = Outbox(path)
    assert reopened.install == old.install  # reopened: the same, no warning
    reopened.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        name.unlink(missing_ok=True)
    new = Outbox(path)
    assert new.install != old.install
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1
    assert old.install in warned[0]
    assert "created anew or recovered" in warned[0]
    new.close()


# ---- findings 14, 15, 16: alerts ------------------------------------------------------------


def _alerts(gw: Gateway) -> list[GatewayAlert]:
    return [
        decode_json(row.payload, GatewayAlert)
        for row in gw.outbox.peek(10_000)
        if b'"alert"' in row.payload
    ]


def test_a_health_report_lists_the_most_urgent_alerts_and_counts_the_rest(tmp_path: Path) -> None:
    gw = Gateway(gateway_settings(tmp_path))
    for n in range(ALERTS_ACTIVE_MAX + 7):
        gw.recorder.report(Condition("scale_offline", f"us-{n:02d}", True, "tidak terdengar"))
    gw.recorder.report(Condition("overload", "scale-01", True, "kelebihan beban"))
    health = gw.health()
    assert len(health.active) == ALERTS_ACTIVE_MAX
    assert health.alerts_left_out == 8
    assert health.active[0].code == "overload"  # a fault before the sensors not heard
    assert " alerts_active=72i," in health_lines(health)[0]  # InfluxDB counts them all
    gw.outbox.close()


def test_alert_ids_never_repeat_deposit_ids(tmp_path: Path) -> None:
    gw = Gateway(gateway_settings(tmp_path))
    install = gw.outbox.install
    gw.recorder.report(Condition("zero_drift", "scale-01", True, "nol bergeser"))
    (alert,) = _alerts(gw)
    gateway_id = gw.settings.gateway_id
    assert alert.alert_id == f"{gateway_id}.{install}-1"
    assert re.fullmatch(EVENT_ID_PATTERN, alert.alert_id)
    assert alert.alert_id != gw.event_id(1)  # deposit 1's id
    # an older gateway's alert (the deposits' form) is still read; any other form is not
    older = msgspec.structs.asdict(alert) | {"alert_id": f"{gateway_id}.{install}.1"}
    decode_json(msgspec.json.encode(older), GatewayAlert)
    other = older | {"alert_id": f"{gateway_id}.{install}-2"}
    with pytest.raises(Invalid, match="alert_id"):
        decode_json(msgspec.json.encode(other), GatewayAlert)
    gw.outbox.close()


def test_an_upgraded_outbox_goes_on_with_its_alert_numbers(tmp_path: Path) -> None:
    """An outbox whose older release sent alerts 1..5 as '{gw}.{install}.{seq}': the next is 6,
    in the new form, so no id it sent is issued again, in either form."""
    settings = gateway_settings(tmp_path)
    old = Outbox(settings.outbox.path)
    with old.transaction() as write:
        for _ in range(5):
            write.next_seq("alert")
    old.close()
    gw = Gateway(settings)
    gw.recorder.report(Condition("zero_drift", "scale-01", True, "nol bergeser"))
    (alert,) = _alerts(gw)
    assert alert.alert_id == f"{settings.gateway_id}.{gw.outbox.install}-6"
    gw.outbox.close()


def test_a_flapping_alert_is_damped(tmp_path: Path) -> None:
    gw = Gateway(gateway_settings(tmp_path))
    now = 1000.0

    def flap(cycles: int) -> None:
        nonlocal now
        for _ in range(cycles):
            gw.recorder.report(Condition("overload", "scale-01", True, "OL"), now=now)
            now += 1.2
            gw.recorder.report(Condition("overload", "scale-01", False, "ST"), now=now)
            now += 2.2

    flap(12)  # 40 s of OL and ST in turn, as the reviewer fed it
    states = [a.state for a in _alerts(gw)]
    assert states == ["raised", "cleared"] * (FLAP_RAISES - 1) + ["raised"]
    assert ("overload", "scale-01") in gw.recorder.alerts  # held raised while it flaps
    gw.recorder.release_held(now + FLAP_HOLD_S - 10)
    assert len(_alerts(gw)) == 2 * FLAP_RAISES - 1  # not yet: over for less than the hold

    gw.recorder.release_held(now + FLAP_HOLD_S)
    last = _alerts(gw)[-1]
    assert last.state == "cleared"
    held = 2 * (12 - FLAP_RAISES) + 1  # 9 clears undone by 9 raises, and the clear released
    assert last.message.startswith(f"{held} perubahan ditahan")
    assert ("overload", "scale-01") not in gw.recorder.alerts

    # still within the window: the next flap is held from its first clear
    now += FLAP_HOLD_S
    flap(5)
    assert [a.state for a in _alerts(gw)][2 * FLAP_RAISES :] == ["raised"]
    gw.outbox.close()
