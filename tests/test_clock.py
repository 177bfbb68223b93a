"""Clock honesty (issue 16): the gateway knows whether its clock has been synchronized since boot,
says so in health, marks each event it stamps before that with ``clock_synced=false``, and the
ledger keeps the mark and counts it.

The probes are the real ones, pointed by settings at what the test controls: timesyncd's file
in a temporary directory, a script that prints chronyc's CSV."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from gateway.app import Gateway
from gateway.clock import ClockSettings, ClockWatch, parse_chrony_tracking, read_timesyncd
from gateway.fill_sensor import DistanceSample
from tests.conftest import deposit_event
from tests.gateway_helpers import gateway_settings
from wastebank import ledger
from wastebank.cli import app
from wastebank.messages import DepositEvent, FillReading
from wastebank.structs import decode_json, replace, to_builtins

# chronyc -c tracking: reference id, name, stratum, reference time, system time (s, + = slow),
# last offset, RMS offset, frequency, residual freq, skew, root delay, root dispersion, update
# interval, leap status (chrony's client.c, process_cmd_tracking).
CHRONY_SYNCED = (
    "C0A80101,ntp.example.net,3,1795396502.123456789,-0.000012345,-0.000010000,0.000030000,"
    "-12.345,-0.001,0.050,0.012345678,0.001234567,64.2,Normal\n"
)
CHRONY_UNSYNCED = (
    "00000000,,0,0.000000000,0.000000000,0.0,0.0,0.0,0.0,0.0,1.0,1.0,0.0,Not synchronised\n"
)
CHRONY_LOCAL = "7F7F0101,,10,1795396502.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,Normal\n"


# ---- the probes --------------------------------------------------------------------------------


def test_timesyncd_file_says_synchronized_and_when(tmp_path: Path) -> None:
    run = tmp_path / "timesync"
    assert read_timesyncd(run / "synchronized").synchronized is None  # not running: cannot tell
    run.mkdir()
    waiting = read_timesyncd(run / "synchronized")
    assert (waiting.source, waiting.synchronized) == ("timesyncd", False)
    (run / "synchronized").touch()
    at = datetime(2026, 12, 6, 1, 2, 3, tzinfo=UTC)
    os.utime(run / "synchronized", (at.timestamp(), at.timestamp()))
    synced = read_timesyncd(run / "synchronized")
    assert (synced.synchronized, synced.synced_at) == (True, at)


def test_chrony_tracking_csv() -> None:
    synced = parse_chrony_tracking(CHRONY_SYNCED)
    assert (synced.source, synced.synchronized, synced.offset_ms) == ("chrony", True, 0)
    slow = parse_chrony_tracking(CHRONY_SYNCED.replace("-0.000012345", "2.5", 1))
    assert slow.offset_ms == -2500  # 2.5 s slow of NTP time: the clock is 2500 ms behind
    assert parse_chrony_tracking(CHRONY_UNSYNCED).synchronized is False
    assert parse_chrony_tracking(CHRONY_LOCAL).synchronized is False  # its own clock: no source
    assert parse_chrony_tracking("garbage").synchronized is None


def _fake_chronyc(tmp_path: Path, output: str, status: int = 0) -> list[str]:
    script = tmp_path / "chronyc.py"
    script.write_text(f"import sys\nsys.stdout.write({output!r})\nsys.exit({status})\n")
    return [sys.executable, str(script)]


def test_the_chrony_probe_runs_the_configured_command(tmp_path: Path) -> None:
    watch = ClockWatch(
        ClockSettings(probe="chrony", chronyc=_fake_chronyc(tmp_path, CHRONY_SYNCED))
    )
    assert watch.check().synchronized is True
    assert watch.stamp() is True
    health = watch.health()
    assert (health.source, health.synchronized, health.offset_ms) == ("chrony", True, 0)
    down = ClockWatch(
        ClockSettings(probe="chrony", chronyc=_fake_chronyc(tmp_path, "506 Cannot talk", 1))
    )
    assert down.check().synchronized is None
    assert down.stamp() is None  # cannot tell: events say nothing rather than a guess
    missing = ClockWatch(ClockSettings(probe="chrony", chronyc=[str(tmp_path / "no-such")]))
    assert missing.check().source == "unknown"


def test_once_synchronized_this_boot_events_stay_marked_synchronized(tmp_path: Path) -> None:
    """The clock keeps good time after its first synchronization even if the source is lost."""
    run = tmp_path / "timesync"
    run.mkdir()
    watch = ClockWatch(ClockSettings(probe="timesyncd", sync_file=run / "synchronized"))
    assert watch.check().synchronized is False
    assert watch.stamp() is False
    (run / "synchronized").touch()
    watch.check()
    assert watch.stamp() is True
    (run / "synchronized").unlink()
    assert watch.check().synchronized is False
    assert watch.stamp() is True
    assert watch.health().synced_at is not None


def test_auto_probe_chooses_what_the_machine_has(tmp_path: Path) -> None:
    run = tmp_path / "timesync"
    nothing = ClockSettings(sync_file=run / "synchronized", chronyc=[str(tmp_path / "no-chronyc")])
    assert ClockWatch(nothing).probe == "none"
    run.mkdir()
    assert ClockWatch(nothing).probe == "timesyncd"


# ---- the gateway's events ----------------------------------------------------------------------


def test_events_stamped_before_the_first_sync_say_so(tmp_path: Path) -> None:
    run = tmp_path / "timesync"
    run.mkdir()
    settings = gateway_settings(
        tmp_path,
        clock={"probe": "timesyncd", "sync_file": str(run / "synchronized")},
        sensors=[
            {
                "id": "wifi-01",
                "tps_code": "tps-mardika",
                "kind": "json",
                "uplink_topic": "sensors/wifi-01",
                "empty_distance_mm": 1400,
                "full_distance_mm": 250,
            }
        ],
    )
    gw = Gateway(settings)
    try:
        reader, sensor = gw.readers["scale-01"], gw.sensors["wifi-01"]
        reader.connected = True
        health = gw.health()
        assert health.clock is not None
        assert (health.clock.source, health.clock.synchronized) == ("timesyncd", False)

        def deposit(now: float) -> None:
            gw.recorder.arm(reader, "AMB-0001", "pet", "petugas-01")
            gw.feed(reader, b"ST,GS,+0000.00kg\r\n" * 3, now)
            gw.feed(reader, b"ST,GS,+0001.25kg\r\n" * 3, now + 1)

        def sample(received_at: datetime | None = None) -> None:
            gw.sample(sensor, DistanceSample(900, "json", b"{}", received_at=received_at))

        deposit(100.0)
        sample()
        sample(received_at=datetime.now(UTC))  # the network server's clock: not ours to judge
        (run / "synchronized").touch()
        gw.clock.check()
        deposit(200.0)
        sample()

        rows = gw.outbox.peek(100)
        deposits = [decode_json(r.payload, DepositEvent) for r in rows if "/deposit" in r.topic]
        fills = [decode_json(r.payload, FillReading) for r in rows if "/fill" in r.topic]
        assert [d.clock_synced for d in deposits] == [False, True]
        assert [f.clock_synced for f in fills] == [False, None, True]
        assert '"clock_synced":false' in rows[0].payload.decode()
        after = gw.health()
        assert after.clock is not None
        assert after.clock.synchronized is True
        assert after.clock.synced_at is not None
    finally:
        gw.outbox.close()


# ---- the ledger --------------------------------------------------------------------------------


def test_the_ledger_keeps_the_mark_and_verify_counts_it(ledger_url: str) -> None:
    unsynced = replace(deposit_event(1), clock_synced=False)
    synced = replace(deposit_event(2), clock_synced=True)
    older = deposit_event(3)  # a gateway from before the mark: None
    engine = ledger.make_engine(ledger_url)
    try:
        with ledger.Session(engine) as session:
            results = ledger.apply_deposits(session, [unsynced, synced, older])
            session.commit()
            assert [getattr(r, "clock_synced", "?") for r in results] == [False, True, None]
            stored = dict(
                session.execute(select(ledger.Deposit.event_id, ledger.Deposit.clock_synced)).all()
            )
            assert stored == {"gw-01-1": False, "gw-01-2": True, "gw-01-3": None}
            assert ledger.unsynced_clock_deposits(session) == {"gw-01": 1}
            # delivered again: the same deposit, the mark as it was
            (again,) = ledger.apply_deposits(session, [unsynced])
            assert isinstance(again, ledger.AppliedDeposit)
            assert again.outcome is ledger.Outcome.DUPLICATE
            assert again.clock_synced is False
    finally:
        engine.dispose()
    result = CliRunner().invoke(app, ["ledger", "verify", "--ledger-url", ledger_url])
    assert result.exit_code == 0, result.output
    assert "1 setoran dicatat sebelum jam gateway tersinkron" in result.output
    assert "(gw-01 1)" in result.output


def test_a_payload_without_the_mark_is_unknown_not_false() -> None:
    """Older gateways omit it: None, never counted as unsynchronized."""
    payload = to_builtins(deposit_event(1))
    del payload["clock_synced"]
    assert decode_json(json.dumps(payload), DepositEvent).clock_synced is None
