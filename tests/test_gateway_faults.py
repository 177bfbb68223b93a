"""Faults out loud (issue 16): an overload, underload or indicator error is a scale state and an
alert raised once and cleared once, debounced, kept across restarts; never a deposit.

The gateway is built but not run: bytes go in through ``Gateway.feed`` with the caller's
monotonic time, so the debounce is exercised without waiting for it."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

import pytest

from firmware_sim.encoders import encode_weight
from gateway.app import Gateway
from gateway.kiosk import DepositCandidate
from gateway.readers import ScaleReader
from gateway.scale_state import FAULT_CLEAR_S, FAULT_RAISE_S, Fault, FaultWatch
from gateway.settings import ScaleSettings
from tests.gateway_helpers import gateway_settings
from wastebank.messages import NET_G_MAX, ActiveAlert, GatewayAlert, GatewayHealth
from wastebank.structs import decode_json, encode_json

OL = b"OL,GS,+       kg\r\n"
"""A GS/NT indicator's overload line (docs/protocol.md)."""
STEP = 0.1
"""A 10 Hz indicator."""
A12E_ZERO = b"WN000.000kg3B\r\n"
"""An A12E indicator's empty platform (net 0.000 kg, its XOR checksum)."""


def _stable(grams: int) -> bytes:
    return encode_weight(grams, stable=True)


def _alerts(gw: Gateway) -> list[GatewayAlert]:
    return [
        decode_json(r.payload, GatewayAlert)
        for r in gw.outbox.peek(10_000)
        if r.topic.endswith("/alert")
    ]


def _deposits(gw: Gateway) -> list[dict[str, object]]:
    return [json.loads(r.payload) for r in gw.outbox.peek(10_000) if r.topic.endswith("/deposit")]


def _feed_for(
    gw: Gateway, reader: ScaleReader, frame: bytes, start: float, seconds: float
) -> float:
    """``frame`` at 10 Hz for ``seconds`` from ``start``; the time after the last one."""
    now = start
    for _ in range(round(seconds / STEP)):
        gw.feed(reader, frame, now)
        now += STEP
    return now


def _gateway(tmp_path: Path, protocol: str = "gs_nt") -> tuple[Gateway, ScaleReader]:
    """A gateway with one attendant scale speaking ``protocol``."""
    scale = {"id": "scale-01", "port": tmp_path / "tty", "flow": "attendant", "protocol": protocol}
    gw = Gateway(gateway_settings(tmp_path, scales=[scale]))
    reader = gw.readers["scale-01"]
    reader.connected = True  # as its port task sets it; the port is not opened here
    return gw, reader


# ---- one alert, one state --------------------------------------------------------------------


def test_an_overload_raises_one_alert_shows_in_health_and_clears_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gw, reader = _gateway(tmp_path)
    try:
        now = _feed_for(gw, reader, _stable(0), 100.0, 2.0)
        assert reader.health().state == "ok"
        caplog.set_level(logging.INFO, "wastebank.gateway")
        now = _feed_for(gw, reader, OL, now, 5.0)  # 50 overload frames
        raised = _alerts(gw)
        assert [(a.code, a.state, a.subject) for a in raised] == [
            ("overload", "raised", "scale-01")
        ]
        assert "timbangan scale-01: Kelebihan beban / Overload (OL)" in raised[0].message
        health = gw.health()
        (scale,) = health.scales
        assert scale.state == "overload"
        assert scale.state_since is not None
        assert [(a.code, a.subject) for a in _active(health)] == [("overload", "scale-01")]
        assert decode_json(encode_json(health), GatewayHealth) == health
        assert "state overload" in caplog.text  # the transition is logged
        assert reader.status_by_kind == {"overload": 50}

        now = _feed_for(gw, reader, _stable(0), now, FAULT_CLEAR_S + 0.5)
        assert [(a.code, a.state) for a in _alerts(gw)] == [
            ("overload", "raised"),
            ("overload", "cleared"),
        ]
        assert reader.health().state == "ok"
        assert gw.health().alerts_active == []
        _feed_for(gw, reader, _stable(0), now, 5.0)
        assert len(_alerts(gw)) == 2  # cleared once, not at every weight
    finally:
        gw.outbox.close()


def test_a_flickering_overload_frame_raises_nothing(tmp_path: Path) -> None:
    """Near its capacity an indicator alternates OL and a weight: the run of OL frames never
    lasts FAULT_RAISE_S, so no alert, however long it goes on."""
    gw, reader = _gateway(tmp_path)
    try:
        now = 100.0
        for _ in range(200):
            gw.feed(reader, OL, now)
            gw.feed(reader, _stable(149_990), now + STEP / 2)
            now += STEP
        assert _alerts(gw) == []
        assert reader.health().state != "overload"
    finally:
        gw.outbox.close()


def test_a_single_fault_frame_starts_nothing_and_the_scale_is_unsettled(tmp_path: Path) -> None:
    gw, reader = _gateway(tmp_path)
    try:
        now = _feed_for(gw, reader, _stable(1250), 100.0, 2.0)
        gw.feed(reader, OL, now)
        assert _alerts(gw) == []
        assert reader.health().state == "unsettled"  # the weight shown is gone, not "ok"
        assert reader.health().last_g is None
    finally:
        gw.outbox.close()


def test_fault_watch_debounce_in_time() -> None:
    watch = FaultWatch()

    def overload(fault: Fault | None, now: float) -> list[bool]:
        return [c.active for c in watch.update(fault, now) if c.fault == "overload"]

    assert overload("overload", 0.0) == []
    assert overload("overload", FAULT_RAISE_S - 0.01) == []
    assert overload("overload", FAULT_RAISE_S) == [True]
    assert watch.active() == "overload"
    assert overload(None, 2.0) == []
    assert overload(None, 2.0 + FAULT_CLEAR_S - 0.01) == []
    assert overload("overload", 4.0) == []  # back before it cleared: still the same alert
    assert overload(None, 4.1) == []  # the first other frame: the absence starts
    assert overload(None, 4.1 + FAULT_CLEAR_S - 0.01) == []
    assert overload(None, 4.1 + FAULT_CLEAR_S) == [False]
    assert watch.active() is None


def test_a_fresh_watch_says_once_that_each_fault_is_absent() -> None:
    """A new process does not know what an earlier one raised: it says "absent" once it knows,
    so the recorder can clear what was left raised (and ignores it otherwise)."""
    watch = FaultWatch()
    assert watch.update(None, 0.0) == []
    changes = watch.update(None, FAULT_CLEAR_S)
    assert sorted((c.fault, c.active) for c in changes) == [
        ("indicator_error", False),
        ("overload", False),
        ("underload", False),
    ]
    assert watch.update(None, 10 * FAULT_CLEAR_S) == []


def test_an_indicator_error_and_underload_are_their_own_states(tmp_path: Path) -> None:
    """Ohaus ``ES`` is an indicator error; A&D ``OL,-...`` an underload (decoders' kinds)."""
    gw = Gateway(
        gateway_settings(
            tmp_path,
            scales=[
                {"id": "scale-01", "port": tmp_path / "a", "protocol": "ohaus"},
                {"id": "scale-02", "port": tmp_path / "b", "protocol": "and_std"},
            ],
        )
    )
    try:
        ohaus, ad = gw.readers["scale-01"], gw.readers["scale-02"]
        ohaus.connected = ad.connected = True
        _feed_for(gw, ohaus, b"ES\r\n", 100.0, 2.0)
        _feed_for(gw, ad, b"OL,-9999999E+19\r\n", 100.0, 2.0)
        assert ohaus.health().state == "indicator_error"
        assert ad.health().state == "underload"
        assert sorted((a.code, a.subject) for a in _alerts(gw)) == [
            ("indicator_error", "scale-01"),
            ("underload", "scale-02"),
        ]
    finally:
        gw.outbox.close()


def test_the_states_in_order_of_seriousness(tmp_path: Path) -> None:
    reader = ScaleReader(ScaleSettings(id="s-1", port=tmp_path / "t", zero_drift_alert_g=30))
    assert reader.health().state == "disconnected"
    reader.connected = True
    assert reader.health().state == "unsettled"  # nothing read yet
    reader.process(_stable(0) * 2, 1.0)  # (the first line after opening may be partial)
    assert reader.health().state == "ok"
    reader.process(encode_weight(0, stable=False), 1.1)
    assert reader.health().state == "unsettled"
    for step, grams in enumerate((10, 20, 30, 40)):  # the idle zero creeps past the 30 g limit
        reader.process(_stable(grams), 2.0 + step)
    assert reader.health().state == "zero_drift"
    auto = ScaleReader(ScaleSettings(id="s-2", port=tmp_path / "u", protocol="auto"))
    auto.connected = True
    assert auto.health().state == "undetected"
    auto.connected = False
    assert auto.health().state == "disconnected"


# ---- never a deposit ---------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [OL, b"OL,+9999999E+19\r\n"])
def test_an_armed_scale_never_takes_an_overload_as_a_deposit(tmp_path: Path, fault: bytes) -> None:
    gw, reader = _gateway(tmp_path, "gs_nt" if fault == OL else "and_std")
    try:
        gw.recorder.arm(reader, "AMB-0001", "pet", "petugas-01")
        _feed_for(gw, reader, fault, 100.0, 10.0)
        assert _deposits(gw) == []
        assert reader.session.armed == ("AMB-0001", "pet")  # still waiting for a real load
    finally:
        gw.outbox.close()


def test_a_flagless_scale_settles_afresh_after_a_fault(tmp_path: Path) -> None:
    """A12E has no stability flag: the gateway computes it over 1 s of readings. The readings
    from before an overload must not make the first one after it "stable" (that reading would
    become a deposit that no settled load ever made)."""
    weight = b"WN004.139kg34\r\n"
    ol = b"         OL23\r\n"
    gw, reader = _gateway(tmp_path, "a12e_chk")
    try:
        now = _feed_for(gw, reader, A12E_ZERO, 97.0, 2.0)  # empty since start, computed stable
        now = _feed_for(gw, reader, weight, max(now, 100.0), 0.9)  # settling, not yet stable
        gw.recorder.arm(reader, "AMB-0001", "pet", "petugas-01")
        gw.feed(reader, ol, now)
        gw.feed(reader, weight, now + 0.2)
        assert _deposits(gw) == []
        # a load that settles: one deposit, once FAULT_CLEAR_S has passed since the OL line
        _feed_for(gw, reader, weight, now + 0.3, FAULT_CLEAR_S + 0.5)
        (deposit,) = _deposits(gw)
        assert deposit["net_g"] == 4139
    finally:
        gw.outbox.close()


# ---- across restarts --------------------------------------------------------------------------


def _active(health: GatewayHealth) -> list[ActiveAlert]:
    """The alerts the health says are active: a gateway of this version always says."""
    assert isinstance(health.alerts_active, list)
    return health.alerts_active


def _stopped_while_overloaded(tmp_path: Path) -> tuple[GatewayAlert, datetime]:
    """A gateway that raised an overload and stopped (or lost power) with the scale still
    overloaded: the alert it raised, and since when its health said it was active."""
    gw, reader = _gateway(tmp_path)
    try:
        _feed_for(gw, reader, OL, 100.0, 3.0)
        (raised,) = _alerts(gw)
        return raised, _active(gw.health())[0].since
    finally:
        gw.outbox.close()


def test_a_restarted_gateway_does_not_raise_a_still_active_alert_again(tmp_path: Path) -> None:
    raised, since = _stopped_while_overloaded(tmp_path)
    again, reader = _gateway(tmp_path)
    try:
        (kept,) = _active(again.health())  # known before the scale says anything
        assert (kept.code, kept.subject, kept.since) == ("overload", "scale-01", since)
        _feed_for(again, reader, OL, 10.0, 5.0)  # its monotonic clock starts afresh too
        assert _alerts(again) == [raised]  # the first run's row, nothing new
        assert reader.health().state == "overload"
    finally:
        again.outbox.close()


def test_an_alert_that_ended_while_the_gateway_was_down_is_cleared_once(tmp_path: Path) -> None:
    _stopped_while_overloaded(tmp_path)
    again, reader = _gateway(tmp_path)
    try:
        _feed_for(again, reader, _stable(0), 10.0, 10.0)
        assert [(a.code, a.state) for a in _alerts(again)] == [
            ("overload", "raised"),
            ("overload", "cleared"),
        ]
        assert again.health().alerts_active == []
    finally:
        again.outbox.close()

    third, _ = _gateway(tmp_path)
    try:
        assert third.health().alerts_active == []  # the clearing was kept too
    finally:
        third.outbox.close()


def test_an_alert_about_a_scale_no_longer_configured_is_cleared_at_start(tmp_path: Path) -> None:
    _stopped_while_overloaded(tmp_path)
    moved = [{"id": "scale-02", "port": tmp_path / "tty2", "flow": "attendant"}]
    again = Gateway(gateway_settings(tmp_path, scales=moved))
    try:
        assert [(a.code, a.state, a.subject) for a in _alerts(again)][-1] == (
            "overload",
            "cleared",
            "scale-01",
        )
        assert again.health().alerts_active == []
    finally:
        again.outbox.close()


@pytest.mark.parametrize(
    ("candidate", "field"),
    [
        (
            DepositCandidate(None, "PET!", 1250, 0, True, "gs_nt", ("x",), "AMB-0001"),
            "category_code",
        ),
        (DepositCandidate(None, "pet", NET_G_MAX + 1, 0, True, "gs_nt", (), "AMB-0001"), "net_g"),
        (DepositCandidate(None, "pet", 1250, 0, True, "gs_nt", ("x",), "AMB-0001\n"), "member_no"),
        (DepositCandidate(None, "pet", 1250, 0, True, "gs_nt", ("x",), None), ""),
    ],
    ids=["category", "net_g", "member_no-newline", "no-member"],
)
def test_a_deposit_the_ingester_would_refuse_is_never_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, candidate: DepositCandidate, field: str
) -> None:
    """msgspec checks constraints when decoding, not in a Struct's constructor: the recorder
    checks the event it builds, so the outbox never holds what the ingester would dead-letter."""
    gw, reader = _gateway(tmp_path)
    with caplog.at_level(logging.WARNING, logger="wastebank.gateway"):
        assert gw.recorder.store_deposit(reader, candidate) is None
    assert _deposits(gw) == []
    assert gw.recorder.stats.deposits_invalid == 1
    assert gw.recorder.stats.deposits_stored == 0
    (warning,) = [r.getMessage() for r in caplog.records if "invalid deposit" in r.getMessage()]
    assert f"(at {field})" in warning if field else "identifies the member" in warning
