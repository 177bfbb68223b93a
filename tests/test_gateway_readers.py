"""The gateway's readers return what they read (deposit candidates, alert conditions, the port's
comings and goings) with no gateway around them; the recorder stores what they return, and an
arm from either HTTP surface reaches the deposit's journal entry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tty
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from firmware_sim.encoders import encode_kiosk, encode_weight
from gateway.app import Gateway
from gateway.http import local_api
from gateway.kiosk import DepositCandidate
from gateway.readers import Condition, ScaleReader
from gateway.settings import GatewaySettings, ScaleSettings
from tests.gateway_helpers import FakeCentral, attendant_service, gateway_login, gateway_settings
from wastebank import mqtt


def _stable(grams: int) -> bytes:
    return encode_weight(grams, stable=True)


def test_a_kiosk_reader_returns_the_deposit_it_read(tmp_path: Path) -> None:
    reader = ScaleReader(ScaleSettings(id="scale-01", port=tmp_path / "tty"))
    now = 100.0
    # the platform empty first (no deposit before it since start); the first line read may be
    # partial (the port opened mid-line), so two
    assert not [c for c in reader.process(_stable(0) * 2, now) if isinstance(c, DepositCandidate)]
    stream = (
        encode_kiosk(1, "CARD", "04A1B2C3D4")
        + encode_kiosk(2, "CAT", "pet")
        + _stable(1250)
        + encode_kiosk(3, "OK")
    )
    (candidate,) = [c for c in reader.process(stream, now + 1) if isinstance(c, DepositCandidate)]
    assert (candidate.card_uid, candidate.category_code, candidate.net_g) == (
        "04A1B2C3D4",
        "pet",
        1250,
    )
    assert reader.stats.frames_rejected == 0


def test_zero_drift_is_returned_as_a_condition_raised_then_cleared(tmp_path: Path) -> None:
    cfg = ScaleSettings(id="scale-01", port=tmp_path / "tty", flow="attendant")
    reader = ScaleReader(cfg)
    conditions: list[Condition] = []
    for i, grams in enumerate((0, 10, 20, 30, 40, 30, 20, 10)):  # the idle zero creeps, then back
        out = reader.process(_stable(grams), float(i))
        conditions += [c for c in out if isinstance(c, Condition)]
    raised = [c for c in conditions if c.active]
    assert raised, conditions
    assert (raised[0].code, raised[0].subject, raised[0].value) == ("zero_drift", "scale-01", 40)
    assert raised[0].threshold == cfg.zero_drift_alert_g
    assert not conditions[-1].active  # back within half the limit


def test_an_auto_scale_names_itself_in_the_detectors_log_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A site with two scales on `protocol = "auto"`: the detector's lines say which scale is
    undecided and which decided (the gateway's log, docs/protocol.md §1.7)."""
    reader = ScaleReader(ScaleSettings(id="timbang-02", port=tmp_path / "tty", protocol="auto"))
    with caplog.at_level(logging.INFO, logger="wastebank.gateway"):
        reader.process(b"=00001500" * 9, 1.0)  # padded both ways: undecided at 8 frames
        reader.process(b"=00001503=", 2.0)  # a last digit only yh_fwd reads
    said = [r.getMessage() for r in caplog.records]
    assert any("undecided timbang-02 after 8 frames" in line for line in said), said
    assert any("auto-detected timbang-02: yh_fwd" in line for line in said), said
    assert reader.protocol == "yh_fwd"


async def test_a_port_that_comes_and_goes_is_said_in_the_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No port yet: the stream says so (once), keeps trying, and says when it is there; then the
    bytes; the port gone: said again."""
    monkeypatch.setattr(mqtt, "BACKOFF_FIRST_S", 0.01)
    link = tmp_path / "scale.tty"
    reader = ScaleReader(ScaleSettings(id="scale-01", port=link))
    stream = reader.stream()
    try:
        gone = await anext(stream)
        assert isinstance(gone, Condition)
        assert (gone.code, gone.active) == ("scale_offline", True)

        main, sub = os.openpty()
        tty.setraw(main)
        link.symlink_to(os.ttyname(sub))
        back = await asyncio.wait_for(anext(stream), 10)
        assert isinstance(back, Condition)
        assert not back.active
        assert reader.connected is False  # reading starts with the next item
        os.write(main, _stable(1250))
        data = await asyncio.wait_for(anext(stream), 10)
        assert data == _stable(1250)
        assert reader.connected

        os.close(main)  # the adapter unplugged: the read fails
        lost = await asyncio.wait_for(anext(stream), 10)
        assert isinstance(lost, Condition)
        assert lost.active
        assert not reader.connected
        os.close(sub)
    finally:
        await stream.aclose()


async def test_a_port_another_process_holds_is_refused_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes on one port would each get half the bytes: the port held by another
    (a gateway started twice, a stale one whose link now points at a reused pty), the reader
    does not open it, says why, and opens it once the other lets go."""
    monkeypatch.setattr(mqtt, "BACKOFF_FIRST_S", 0.01)
    main, sub = os.openpty()
    tty.setraw(main)
    link = tmp_path / "scale.tty"
    link.symlink_to(os.ttyname(sub))
    other = ScaleReader(ScaleSettings(id="scale-01", port=link))._open()  # the other process
    reader = ScaleReader(ScaleSettings(id="scale-01", port=link))
    stream = reader.stream()
    try:
        held = await anext(stream)
        assert isinstance(held, Condition)
        assert held.active
        assert "exclusively lock" in held.message
        other.close()
        back = await asyncio.wait_for(anext(stream), 10)
        assert isinstance(back, Condition)
        assert not back.active
        os.write(main, _stable(1250))
        assert await asyncio.wait_for(anext(stream), 10) == _stable(1250)
    finally:
        await stream.aclose()
        os.close(main)
        os.close(sub)


@contextlib.asynccontextmanager
async def _endpoint(
    settings: GatewaySettings,
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    """The gateway (not running) behind its local endpoint, a client logged in as an attendant."""
    async with attendant_service(settings, FakeCentral()) as svc:
        app = local_api.http_app(svc.gw, svc)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            assert await gateway_login(client, "petugas-bm-01", "kata-sandi")
            yield svc.gw, client


@pytest.mark.parametrize(
    "path",
    ["/scales/scale-01/arm", "/petugas/api/scales/scale-01/record"],
    ids=["local-api", "attendant-page"],
)
async def test_either_arm_reaches_the_deposits_journal_entry(tmp_path: Path, path: str) -> None:
    """`wastebank attend` (the local API) and the attendant page arm through one recorder: who
    armed the scale, the member's name and the price go into the journal either way."""
    async with _endpoint(gateway_settings(tmp_path)) as (gw, client):
        reader = gw.readers["scale-01"]
        gw.feed(reader, _stable(0) * 2)  # the platform empty since start (first line may be cut)
        resp = await client.post(path, json={"member_no": "AMB-0001", "category_code": "pet"})
        assert resp.status_code == 200, resp.text
        assert gw.feed(reader, _stable(1250)) == [1]
        entry = gw.attendant_db.journal.get(gw.event_id(1))
        assert entry is not None
        assert (entry.attendant, entry.member_name, entry.price_per_kg_idr) == (
            "petugas-bm-01",
            "Siti",
            4000,
        )
        gw.feed(reader, _stable(0))
        assert gw.feed(reader, _stable(1250)) == []  # the arm was used once


async def test_a_kiosk_scale_cannot_be_armed(tmp_path: Path) -> None:
    scales = [{"id": "kiosk-01", "port": tmp_path / "tty", "flow": "kiosk"}]
    async with _endpoint(gateway_settings(tmp_path, scales=scales)) as (gw, client):
        arm = {"member_no": "AMB-0001", "category_code": "pet"}
        resp = await client.post("/scales/kiosk-01/arm", json=arm)
        assert resp.status_code == 409
        assert resp.json()["detail"] == "kiosk-01 memakai kios / is a kiosk scale (card + keys)"


async def test_full_health_counts_a_maxbotix_saying_nothing_is_in_range(tmp_path: Path) -> None:
    """An HRXL over an empty bin sends R5000 (its no-target code): /health/full counts those
    frames as no_target, among the sensor's rejects, and no reading comes of them."""
    sensor = {
        "id": "us-01",
        "tps_code": "tps-batu-merah",
        "kind": "maxbotix",
        "port": tmp_path / "mb",
        "maxbotix_model": "hrxl_5m",
        "empty_distance_mm": 4500,
        "full_distance_mm": 300,
    }
    async with _endpoint(gateway_settings(tmp_path, sensors=[sensor])) as (gw, client):
        assert gw.sensors["us-01"].process(b"R5000\r" * 3 + b"R4100\r") == []
        resp = await client.get("/health/full")
        assert resp.status_code == 200, resp.text
        (health,) = resp.json()["sensors"]
    assert health["sensor_id"] == "us-01"
    assert (health["no_target"], health["samples_rejected"]) == (3, 3)
    assert health["samples_accepted"] == 1  # R4100: a distance, in the filter's window
