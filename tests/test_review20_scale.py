"""The scale findings of the fourth review of 2026-12-07 (review20a: 1, 2, 6, 7, 8 and 16's words).

1. ``protocol = "auto"`` decided ``yh_rev`` on ``=000.3000``; forward frames that followed were
   read reversed (``=0012.340`` shown as 43,210 g, a 5 kg load paid as 500 g). A decision is now
   watched: a frame whose decimal point is not where the deciding frames had it is a
   ``mismatch`` reject, never a weight, and 4 in a row forget the decision (docs/protocol.md §1.7).
2. A noisy stream kept a scale undetected; an arm was accepted and the decision replayed a
   buffered 9 kg load as the deposit. An undetected scale is not armed, and frames read before a
   decision are never weighed.
6. A scale whose frames were all rejected kept its last weight as settled; now it is ``stale``
   (docs/protocol.md §1.8): no weight, not armed.
7. An undecided detector said nothing and counted nothing: now its frames count as rejected
   (``undetected``) and it warns at 8, 16, 32... frames whatever keeps it undecided.
8. Rejected frames are at ``GET /scales/{id}/frames`` (reason, time, escaped bytes; 100 kept).
16. ``/scales`` and the page say the same words for the same state.

The reviewer's runs were on ptys through the gateway: so are 1, 2/7 and 8 here (the port task
reading a pty, the local endpoint through its ASGI app); the replay rule and staleness are also
checked through ``Gateway.feed`` with the caller's clock, the detector on its own.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from gateway.http import local_api
from gateway.readers import ScaleNotWeighing
from gateway.scale_protocol import AutoDetector, FrameError, WeightReading
from gateway.scale_state import BAD_FRAMES_KEPT, STALE_S, STATE_TEXT
from tests.conftest import eventually
from tests.test_gateway_faults import _deposits, _feed_for, _gateway
from tests.test_gateway_review2 import ARM, _on_a_pty
from wastebank.fleet.words import SCALE_STATE_TEXTS
from wastebank.messages import ScaleState

AND_ZERO = b"ST,+0000.000 kg\r\n"


def _noisy(line: bytes, lines: int) -> bytes:
    """``line`` repeated, every 4th with a parity-broken digit (as the reviewer's noisy feed)."""
    broken = line.replace(b"0", b"\xb0", 1)
    return b"".join(broken if i % 4 == 3 else line for i in range(lines))


# ---- the detector on its own -------------------------------------------------------------------


def test_a_yh_decision_is_forgotten_when_the_point_moves_and_no_such_frame_is_a_weight(
    caplog: pytest.LogCaptureFixture,
) -> None:
    detector = AutoDetector(label="scale-01")
    detector.feed(b"=000.3000" * 6)
    assert (detector.protocol, detector.decided_by) == ("yh_rev", "decimal point")
    caplog.set_level(logging.WARNING, "wastebank.gateway")
    items = []
    for _ in range(5):
        items += detector.feed(b"=0012.340")  # forward: 12.34 kg; reversed it reads 43.21 kg
    weights = [i.grams for i in items if isinstance(i, WeightReading)]
    assert weights == [3000]  # the last =000.3000 (an = frame ends at the next =), nothing else
    assert [i.reason for i in items if isinstance(i, FrameError)] == ["mismatch"] * 4
    assert not detector.decided
    assert detector.redetections == 1
    assert detector.lost_because is not None
    assert "did not fit yh_rev" in detector.lost_because
    (said,) = [r.getMessage() for r in caplog.records]
    assert "no longer fits scale-01" in said
    assert "yh_rev" in said
    out = detector.feed(b"=0012.340" * 6)
    assert detector.protocol == "yh_fwd"
    assert {i.grams for i in out if isinstance(i, WeightReading)} == {12_340}


def test_a_decision_another_format_makes_the_decoder_reject_is_forgotten_too() -> None:
    detector = AutoDetector()
    detector.feed(AND_ZERO * 6)
    assert detector.protocol == "and_std"
    detector.feed(b"ST,GS,+0001.234kg\r\n" * 4)  # the gs_nt variant: and_std rejects it
    assert not detector.decided
    assert detector.redetections == 1
    detector.feed(b"ST,GS,+0001.234kg\r\n" * 5)
    assert detector.protocol == "gs_nt"


def test_a_noisy_stream_and_two_formats_in_turn_are_counted_and_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "wastebank.gateway")
    detector = AutoDetector(label="scale-01")
    detector.feed(_noisy(b"ST,+0009.000 kg\r\n", 40))
    assert not detector.decided
    assert detector.frames_undecided == 39  # the first line is the partial one, dropped
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 3
    assert all("undecided scale-01" in line for line in said)
    assert "after 8 frames" in said[0]
    assert "rejects break every run" in said[0]
    assert ("parity", b"ST,+\xb0009.000 kg") in detector.recent
    assert ("weight", b"ST,+0009.000 kg") in detector.recent

    turns = AutoDetector()
    turns.feed(b"\r\n" + (AND_ZERO * 3 + b"ST,GS,+0001.234kg\r\n" * 3) * 4)
    assert not turns.decided
    assert turns.frames_undecided == 24


# ---- through the gateway, the caller's clock ---------------------------------------------------


def test_frames_from_before_a_decision_never_make_a_deposit(tmp_path: Path) -> None:
    """An arm made while the scale could weigh; the decision lost to garbage; a noisy 9 kg load
    (undecided); then a clean 2 kg load decides. The 9 kg frames the decision hands back are
    counted, never weighed: the deposit is the 2 kg load (it was 9 kg)."""
    gw, reader = _gateway(tmp_path, "auto")
    try:
        now = _feed_for(gw, reader, AND_ZERO, 100.0, 2.0)
        assert (reader.protocol, reader.state()) == ("and_std", "ok")
        gw.recorder.arm(reader, "AMB-0003", "pet", "petugas-01")
        gw.feed(reader, b"garbage\r\n" * 4, now)
        assert reader.state() == "undetected"
        assert gw.feed(reader, _noisy(b"ST,+0009.000 kg\r\n", 12), now + 0.1) == []
        assert gw.feed(reader, b"ST,+0002.000 kg\r\n" * 4, now + 0.2) == []  # decides
        assert reader.protocol == "and_std"
        assert reader.shown() == (None, None)
        gw.feed(reader, b"ST,+0002.000 kg\r\n", now + 0.3)
        (deposit,) = _deposits(gw)
        assert deposit["net_g"] == 2000
        assert deposit["raw_frames"] == ["ST,+0002.000 kg"]
    finally:
        gw.outbox.close()


def test_a_scale_whose_frames_are_all_rejected_or_that_goes_quiet_is_stale(tmp_path: Path) -> None:
    gw, reader = _gateway(tmp_path, "and_std")
    try:
        now = _feed_for(gw, reader, b"ST,+0001.234 kg\r\n", 100.0, 2.0)
        assert (reader.state(), reader.shown()) == ("ok", (1234, True))
        gw.feed(reader, b"\x00garbage\r\n" * 3, now)
        assert reader.state() == "ok"  # three bad frames: noise
        gw.feed(reader, b"\x00garbage\r\n", now)
        assert (reader.state(), reader.shown()) == ("stale", (None, False))
        health = reader.health()
        assert (health.state, health.last_g, health.stable) == ("stale", None, False)
        with pytest.raises(ScaleNotWeighing) as refused:
            gw.recorder.arm(reader, "AMB-0001", "pet", "petugas-01")
        assert str(refused.value.args[0]).startswith(
            "timbangan scale-01 belum bisa menimbang: tidak ada bacaan baru / scale scale-01"
        )
        gw.feed(reader, b"ST,+0001.234 kg\r\n", now + 0.1)  # a frame that parses ends it
        assert reader.state() == "ok"
        reader.parsed_at -= STALE_S + 0.1  # as if 3 s had passed without a frame
        assert (reader.state(), reader.shown()) == ("stale", (None, False))
    finally:
        gw.outbox.close()


# ---- on a pty, through the local endpoint ------------------------------------------------------


async def test_a_yh_decision_follows_an_indicator_switched_to_forward_on_a_pty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The reviewer's run: decided yh_rev on =000.3000, then forward frames: =0012.340 was shown
    as 43,210 g and a 5 kg load paid as 500 g."""
    caplog.set_level(logging.INFO, "wastebank.gateway")
    async with _on_a_pty(tmp_path, "auto") as (svc, client, main, _):
        reader = svc.gw.readers["scale-01"]
        shown: set[int | None] = set()

        def writes(frame: bytes, protocol: str, grams: int) -> Callable[[], Awaitable[bool]]:
            async def until() -> bool:
                os.write(main, frame)
                shown.add(reader.shown()[0])
                return reader.protocol == protocol and reader.shown() == (grams, True)

            return until

        await eventually(writes(b"=000.3000", "yh_rev", 3000))
        await eventually(writes(b"=0012.340", "yh_fwd", 12_340))
        assert 43_210 not in shown  # never read the wrong way round
        frames = (await client.get("/scales/scale-01/frames")).json()
        assert frames["detection"]["redetections"] == 1
        assert {f["reason"] for f in frames["bad_frames"]} == {"mismatch"}
        assert any("no longer fits scale-01" in r.getMessage() for r in caplog.records)

        await eventually(writes(b"=0000.000", "yh_fwd", 0))
        resp = await client.post("/scales/scale-01/arm", json=ARM)
        assert resp.status_code == 200, resp.text

        async def deposited() -> bool:
            os.write(main, b"=0005.000")
            return bool(_deposits(svc.gw))

        await eventually(deposited)
        (deposit,) = _deposits(svc.gw)
        assert deposit["net_g"] == 5000
        assert deposit["protocol"] == "yh_fwd"


async def test_an_undecided_scale_says_so_counts_its_frames_and_is_not_armed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "wastebank.gateway")
    async with _on_a_pty(tmp_path, "auto") as (svc, client, main, _):
        reader = svc.gw.readers["scale-01"]

        async def counted() -> bool:
            os.write(main, _noisy(b"ST,+0009.000 kg\r\n", 4))
            return reader.stats.frames_rejected >= 16

        await eventually(counted)
        (scale,) = (await client.get("/health/full")).json()["scales"]
        assert scale["state"] == "undetected"
        assert (scale["frames_parsed"], scale["frames_rejected"] >= 16) == (0, True)
        assert any("undecided scale-01 after 8 frames" in r.getMessage() for r in caplog.records)
        resp = await client.post("/scales/scale-01/arm", json=ARM)
        assert resp.status_code == 409
        assert resp.json()["detail"] == (
            "timbangan scale-01 belum bisa menimbang: protokol belum dikenali / scale scale-01 "
            "cannot weigh now: protocol not detected yet"
        )
        assert reader.session.armed is None
        detection = (await client.get("/scales/scale-01/frames")).json()["detection"]
        assert detection["decided"] is False
        assert detection["frames_undecided"] >= 16
        assert {"reason": "weight", "at": None, "raw": "ST,+0009.000 kg"} in detection["recent"]


async def test_rejected_frames_are_kept_escaped_and_bounded_for_an_operator(
    tmp_path: Path,
) -> None:
    async with _on_a_pty(tmp_path, "and_std") as (svc, client, main, _):
        reader = svc.gw.readers["scale-01"]

        async def rejected() -> bool:
            os.write(main, b"\x1b[2J junk\r\n" * 50)
            return reader.stats.frames_rejected >= 150

        await eventually(rejected)
        resp = await client.get("/scales/scale-01/frames")
        assert resp.status_code == 200
        frames = resp.json()
        assert frames["state"] == "stale"
        assert frames["detection"] is None
        assert len(frames["bad_frames"]) == BAD_FRAMES_KEPT
        last = frames["bad_frames"][-1]
        assert (last["reason"], last["raw"]) == ("bad_format", "\\x1b[2J junk")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", last["at"])
        assert frames["rejected_by_reason"]["bad_format"] == frames["frames_rejected"]
        transport = httpx.ASGITransport(app=local_api.http_app(svc.gw, svc))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as anyone:
            assert (await anyone.get("/scales/scale-01/frames")).status_code == 401


# ---- one table of words ------------------------------------------------------------------------


def test_the_page_the_api_and_the_fleet_say_a_state_in_the_same_words() -> None:
    page = (Path(__file__).parents[1] / "gateway/static/attendant.js").read_text()
    assert f'"● {STATE_TEXT["ok"].lower()}"' in page
    assert f'"~ {STATE_TEXT["unsettled"].lower()}"' in page
    assert STATE_TEXT["unsettled"] == "Bergerak / Moving"
    states: tuple[ScaleState, ...] = ("stale", "undetected", "unsettled")
    for state in states:
        assert " / ".join(SCALE_STATE_TEXTS[state]) == STATE_TEXT[state].lower()
    assert '"stale"' in page.split("const FAULTS")[1].split(";")[0]
