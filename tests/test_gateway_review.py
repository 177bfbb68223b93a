"""The gateway's findings of the independent review of 2026-12-07 (issue 16).

* The clock after its first synchronization: a lost time source is logged as lost (events stay
  marked synchronized this boot), not as "marked clock_synced=false until it is".
* A scale's state and its weighing agree: no deposit is taken while the scale shows a fault,
  and the alert is still raised once and cleared once.
* docs/protocol.md's MaxBotix table says what the decoder does, per model.

The gateway is built but not run: bytes go in through ``Gateway.feed`` with the caller's
monotonic time (as in tests/test_gateway_faults.py)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from firmware_sim.encoders import encode_kiosk
from gateway.app import Gateway
from gateway.clock import ClockSettings, ClockWatch, parse_chrony_tracking
from gateway.fill_sensor import MaxBotixDecoder, MaxBotixModel
from gateway.kiosk import KioskSession
from gateway.scale_state import FAULT_CLEAR_S, FAULTS
from tests.gateway_helpers import gateway_settings
from tests.test_clock import CHRONY_SYNCED, CHRONY_UNSYNCED
from tests.test_gateway_faults import OL, STEP, _alerts, _deposits, _feed_for, _gateway, _stable

ROOT = Path(__file__).resolve().parent.parent

# ---- the clock after its first synchronization -------------------------------------------------

FALSE_UNTIL = "clock_synced=false until it is"
LOST = "sumber waktu jam hilang sejak"
BACK = "sumber waktu jam kembali"


def test_a_time_source_lost_after_the_first_sync_is_logged_as_lost_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """timesyncd's file deleted after the sync (the reviewer's case): the probe says "not
    synchronized"; events stay marked synchronized and the log says so, once per loss."""
    caplog.set_level(logging.INFO, "wastebank.gateway")
    run = tmp_path / "timesync"
    run.mkdir()
    watch = ClockWatch(ClockSettings(probe="timesyncd", sync_file=run / "synchronized"))
    watch.check()
    assert caplog.text.count(FALSE_UNTIL) == 1  # before the first sync, the warning is true
    (run / "synchronized").touch()
    watch.check()
    first = watch.health().synced_at
    assert first is not None
    caplog.clear()

    (run / "synchronized").unlink()
    for _ in range(3):
        watch.check()
    assert FALSE_UNTIL not in caplog.text
    (lost,) = [r for r in caplog.records if LOST in r.getMessage()]
    assert lost.levelno == logging.WARNING
    assert "events stay marked clock_synced=true this boot" in lost.getMessage()
    assert first.isoformat() in lost.getMessage()
    assert watch.stamp() is True
    health = watch.health()
    assert (health.synchronized, health.synced_at) == (False, first)  # latest probe; first sync

    (run / "synchronized").touch()  # synchronized again: said once; synced_at stays the first
    watch.check()
    watch.check()
    assert sum(BACK in r.getMessage() for r in caplog.records) == 1
    assert (watch.health().synchronized, watch.health().synced_at) == (True, first)
    (run / "synchronized").unlink()  # a second loss is a new one
    watch.check()
    assert sum(LOST in r.getMessage() for r in caplog.records) == 2
    assert FALSE_UNTIL not in caplog.text


def test_chrony_not_synchronised_after_a_sync_is_a_lost_source(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "wastebank.gateway")
    watch = ClockWatch(ClockSettings(probe="none"))
    watch.update(parse_chrony_tracking(CHRONY_SYNCED))
    watch.update(parse_chrony_tracking(CHRONY_UNSYNCED))
    watch.update(parse_chrony_tracking(CHRONY_UNSYNCED))
    assert FALSE_UNTIL not in caplog.text
    assert caplog.text.count(LOST) == 1
    assert watch.stamp() is True
    assert watch.health().synchronized is False


# ---- a scale's state and its weighing agree ----------------------------------------------------

AND_OL = b"OL,+9999999E+19\r\n"
"""An A&D standard-format indicator's overload line (docs/protocol.md §1.6.6)."""
AND_12340 = b"ST,+00012.34 kg\r\n"
AND_ZERO = b"ST,+00000.00 kg\r\n"


def test_no_deposit_while_the_scale_shows_an_overload(tmp_path: Path) -> None:
    """The reviewer's run: OL for 7 s, arm, then a stable 12.34 kg. The deposit is taken with
    the frame that ends the overload, when the state (as /scales and the page read it) is ok,
    never while it still says overload; the alert is raised once and cleared once."""
    gw, reader = _gateway(tmp_path, "and_std")
    try:
        now = _feed_for(gw, reader, AND_ZERO, 99.0, 1.0)  # empty since start: deposits may come
        now = _feed_for(gw, reader, AND_OL, now, 7.0)
        assert reader.state_now()[0] == "overload"
        gw.recorder.arm(reader, "AMB-0001", "pet", "petugas-01")
        seen: list[tuple[str, int | None, bool]] = []  # (state, grams shown, a deposit stored)
        for _ in range(round((FAULT_CLEAR_S + 1.0) / STEP)):
            stored = gw.feed(reader, AND_12340, now)
            seen.append((reader.state_now()[0], reader.health().last_g, bool(stored)))
            now += STEP
        assert not any(stored and state in FAULTS for state, _, stored in seen)
        taken = [i for i, (_, _, stored) in enumerate(seen) if stored]
        assert len(taken) == 1
        assert seen[taken[0]] == ("ok", 12_340, True)
        # before it, the page says overload and shows no weight: nothing is weighed meanwhile
        assert {(state, grams) for state, grams, _ in seen[: taken[0]]} == {("overload", None)}
        (deposit,) = _deposits(gw)
        assert deposit["net_g"] == 12_340
        assert [(a.code, a.state) for a in _alerts(gw)] == [
            ("overload", "raised"),
            ("overload", "cleared"),
        ]
    finally:
        gw.outbox.close()


def test_an_overload_that_flickers_after_it_started_weighs_nothing_and_stays_one_alert(
    tmp_path: Path,
) -> None:
    """Once an overload has started, weights between its lines (a load at the capacity) are not
    deposits and do not flip the state: it stays overload, one alert, until it ends."""
    gw, reader = _gateway(tmp_path, "and_std")
    try:
        now = _feed_for(gw, reader, AND_OL, 100.0, 2.0)
        gw.recorder.arm(reader, "AMB-0001", "pet", "petugas-01")
        states = set()
        for _ in range(50):
            gw.feed(reader, AND_OL, now)
            gw.feed(reader, AND_12340, now + STEP / 2)
            states.add(reader.state_now()[0])
            now += STEP
        assert states == {"overload"}
        assert _deposits(gw) == []
        assert [(a.code, a.state) for a in _alerts(gw)] == [("overload", "raised")]
        assert reader.session.armed == ("AMB-0001", "pet")
    finally:
        gw.outbox.close()


def test_a_kiosk_ok_is_refused_while_the_scale_still_shows_an_overload(tmp_path: Path) -> None:
    """The member's OK while the page still says overload is refused (counted), as on an
    overload line; once the state is back to ok, an OK makes the deposit."""
    scale = {"id": "kiosk-01", "port": tmp_path / "tty", "flow": "kiosk"}
    gw = Gateway(gateway_settings(tmp_path, scales=[scale]))
    try:
        reader = gw.readers["kiosk-01"]
        reader.connected = True
        session = reader.session
        assert isinstance(session, KioskSession)
        now = _feed_for(gw, reader, _stable(0), 98.0, 1.0)  # empty since start
        gw.feed(reader, encode_kiosk(1, "CARD", "04A1B2C3D4") + encode_kiosk(2, "CAT", "pet"), now)
        now = _feed_for(gw, reader, OL, max(now, 100.0), 2.0)
        now = _feed_for(gw, reader, _stable(1250), now, 1.0)
        assert reader.state_now()[0] == "overload"
        assert gw.feed(reader, encode_kiosk(3, "OK"), now) == []
        assert (session.ignored_confirms, session.confirm_pending) == (1, False)
        now = _feed_for(gw, reader, _stable(1250), now, FAULT_CLEAR_S)
        assert reader.state_now()[0] == "ok"
        assert len(gw.feed(reader, encode_kiosk(4, "OK"), now)) == 1
        (deposit,) = _deposits(gw)
        assert deposit["net_g"] == 1250
    finally:
        gw.outbox.close()


# ---- docs/protocol.md's MaxBotix table ---------------------------------------------------------


def _codes(cell: str) -> set[int]:
    """A cell's 4-digit codes: `R5000`, ranges `R5001`–`R9999`; "—" none."""
    out: set[int] = set()
    for low, high in re.findall(r"`R(\d{4})`(?:–`R(\d{4})`)?", cell):
        out.update(range(int(low), int(high or low) + 1))
    return out


def _maxbotix_rows() -> dict[MaxBotixModel | None, tuple[set[int], set[int]]]:
    """docs/protocol.md's table: model -> (no target, bad_value) codes, 4-digit mm output."""
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    rows: dict[MaxBotixModel | None, tuple[set[int], set[int]]] = {}
    models: tuple[tuple[MaxBotixModel | None, str], ...] = (
        ("hrxl_5m", "`hrxl_5m`"),
        ("hrxl_10m", "`hrxl_10m`"),
        (None, "not named"),
    )
    for model, name in models:
        (line,) = [ln for ln in text.splitlines() if ln.startswith(f"| {name} |")]
        cols = [c.strip() for c in line.strip("|").split("|")]
        rows[model] = (_codes(cols[2]), _codes(cols[3]))
    return rows


@pytest.mark.parametrize("model", ["hrxl_5m", "hrxl_10m", None])
def test_the_maxbotix_table_says_what_the_decoder_does(model: MaxBotixModel | None) -> None:
    no_target, bad_value = _maxbotix_rows()[model]
    assert no_target
    for value in range(10_000):
        decoder = MaxBotixDecoder(model=model)
        samples = decoder.feed(b"R%04d\r" % value)
        if value in no_target:
            assert (samples, decoder.no_target) == ([], 1), value
        elif value in bad_value:
            assert (samples, decoder.rejects["bad_value"]) == ([], 1), value
        else:
            assert [s.distance_mm for s in samples] == [value], value
