"""gateway.scale_protocol.AutoDetector: the protocol from the first bytes, then a clean handover;
and a round-weight Yaohua stream detected by the gateway process over a pty."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.encoders import (
    FrameOptions,
    Reading,
    decimals_for,
    encode_kiosk,
    encode_yh_fwd,
    encode_yh_rev,
    with_even_parity,
)
from firmware_sim.scales import QUIET, ScaleSimulator
from gateway.scale_protocol import (
    FRAMES_NEEDED,
    MAX_BUFFER,
    PROTOCOLS,
    AutoDetector,
    Decoded,
    FrameError,
    KioskFrame,
    WeightReading,
    decoder_for,
)
from tests.auth_helpers import ApiEnv, api_settings
from tests.conftest import (
    LedgerFactory,
    Processes,
    eventually,
    free_port,
    mqtt_login,
    settings_env,
    write_site,
)
from tests.gateway_helpers import gateway_login
from wastebank.config import MqttSettings
from wastebank.messages import DepositEvent, Topics
from wastebank.structs import decode_json

# Four to six frames per format, as the indicator sends them (hand-written from the notes).
STREAMS: dict[str, bytes] = {
    "yh_stx": b"\x02+00123421D\x03" * 3 + b"\x02-00010021E\x03" + b"\x02+00123421=\x03" * 2,
    "yh_rev": b"=000.3000=000.3000=00.1000-=021.3000=021.3000=",
    "yh_fwd": b"=0003.000=0003.000=-0001.00=0003.120=0003.125=",
    "a12e_chk": b"WG004.139kg3D\r\n" * 3 + b"         OL23\r\n" + b"WN004.139kg34\r\n" * 2,
    "a12_ww": b"ww000.000kg\r\nww000.250kg\r\nwt000.150kg\r\nwn000.100kg\r\nww000.250kg\r\n",
    "and_std": b"US,-00183.69  g\r\nST,+00012.34  g\r\nST,+00012.34  g\r\nOL,+9999999E+19\r\n"
    b"ST,+00012.34  g\r\nST,+00012.34  g\r\n",
    "gs_nt": b"US,GS,+0012.30kg\r\n#K,17,CARD,04A1B2C3*01\r\nST,GS,+0012.34kg\r\n"
    b"ST,GS,+0012.34kg\r\nST,TR,+0000.50kg\r\nST,NT,+0011.84kg\r\n",
    "cas22": b"ST,GS,1\xc4,00013.50 kg\r\n" * 5,
    "toledo_cont": b"\x02,0 001234000000\r+" * 3 + b"\x02,1 000870000500\r " * 2,
    "mtsics": b"S D     100.00 g\r\nS S     100.00 g\r\nS I\r\nS S     100.00 g\r\n"
    b"S S     100.00 g\r\nES\r\nS S     100.01 g\r\n",
    "ohaus": b"       0.01 g ?\r\n     192.21 g   \r\n     192.21 g   \r\n     192.21 g   \r\n"
    b"     192.21 g   \r\n",
    "diy_hx711": b"Load_cell output val: 0.01\r\nLoad_cell output val: 1.25\r\n"
    b"Load_cell output val: 1.26\r\nLoad_cell output val: 1.25\r\nLoad_cell output val: 1.25\r\n",
}
PARTIAL_START = b"9.12\r\n\x03=0.0"
"""What a port typically shows first: the tail of a frame that was on the wire at open."""


def _summary(out: list[Decoded]) -> list[object]:
    return [("error", i.reason, i.raw) if isinstance(i, FrameError) else i for i in out]


def test_streams_cover_every_protocol() -> None:
    assert set(STREAMS) == set(PROTOCOLS)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_detects_every_protocol_and_loses_nothing(protocol: str) -> None:
    stream = PARTIAL_START + STREAMS[protocol]
    detector = AutoDetector()
    out = detector.feed(stream)
    assert detector.protocol == protocol
    direct = decoder_for(protocol)
    assert _summary(out) == _summary(direct.feed(stream))  # the handover dropped nothing
    assert detector.parsed == direct.parsed
    assert detector.rejected == direct.rejected
    assert detector.dropped_bytes == direct.dropped_bytes
    assert detector.partial_frames == direct.partial_frames
    assert sum(isinstance(i, WeightReading) for i in out) >= FRAMES_NEEDED


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_detects_seven_e1_read_as_8n1(protocol: str) -> None:
    if protocol == "cas22":  # an 8N1 format with a binary lamp byte
        return
    detector = AutoDetector()
    detector.feed(with_even_parity(STREAMS[protocol]))
    assert detector.protocol == protocol


@given(
    protocol=st.sampled_from(PROTOCOLS),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_chunking_changes_neither_decision_nor_output(protocol: str, cuts: list[int]) -> None:
    stream = PARTIAL_START + STREAMS[protocol] * 2
    points = sorted({c % (len(stream) + 1) for c in cuts})
    whole = AutoDetector()
    expected = _summary(whole.feed(stream))
    chunked = AutoDetector()
    out: list[Decoded] = []
    for a, b in zip([0, *points], [*points, len(stream)], strict=True):
        out += chunked.feed(stream[a:b])
        assert chunked.buffered <= MAX_BUFFER
    assert chunked.protocol == whole.protocol == protocol
    assert _summary(out) == expected


@given(st.binary(max_size=2000))
def test_garbage_never_decides(noise: bytes) -> None:
    detector = AutoDetector()
    assert detector.feed(noise) == []
    assert detector.protocol is None
    assert detector.buffered <= MAX_BUFFER
    assert detector.sampled_bytes == len(noise)


def test_text_that_is_no_scale_never_decides() -> None:
    detector = AutoDetector()
    noise = b"AT+CSQ\r\nOK\r\nhello world\r\n+CSQ: 21,99\r\n" * 20 + b"ES\r\n" * 20
    kiosk = b"".join(encode_kiosk(seq, "OK") for seq in range(20))  # neutral: no weights
    assert detector.feed(noise + kiosk) == []
    assert detector.protocol is None


def test_status_only_streams_wait_for_a_weight() -> None:
    detector = AutoDetector()
    assert detector.feed(b"\r\n" + b"S I\r\n" * 10 + b"S +\r\n" * 10) == []
    assert detector.protocol is None
    out = detector.feed(b"S S     100.00 g\r\n" * FRAMES_NEEDED)
    assert detector.protocol == "mtsics"
    assert len(out) == 20 + FRAMES_NEEDED


def test_a_reject_restarts_the_count() -> None:
    detector = AutoDetector(frames_needed=3)
    good = b"ST,GS,+0012.34kg\r\n"
    detector.feed(b"\r\n" + good * 2 + b"ST,GS,+002.34kg\r\n" + good * 2)
    assert detector.protocol is None
    detector.feed(good)
    assert detector.protocol == "gs_nt"


# ---- ambiguity rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "protocol", "grams"),
    [
        (b"=000.3000", "yh_rev", 3_000),  # A26 manual p.11, continuous format 1
        (b"=0003.000", "yh_fwd", 3_000),  # A26 manual p.11 format 2, A23P manual p.22
        (b"=000.0000", "yh_rev", 0),  # an idle scale decides too
        (b"=0000.000", "yh_fwd", 0),
        (b"=004.3210", "yh_rev", 123_400),  # padded both ways: the point decides, not padding
        (b"=0003.120", "yh_fwd", 3_120),  # reversed: 21.3000
        (b"=021.3000", "yh_rev", 3_120),  # forward: 21.3000
    ],
)
def test_yh_a_round_weight_is_decided_by_the_decimal_point(
    frame: bytes, protocol: str, grams: int
) -> None:
    """Both directions read a round weight (``=000.3000``: 3.000 reversed, 0.3000 forward);
    the structure decides: 3 decimals, not 4, as soon as the streak qualifies."""
    detector = AutoDetector()
    out = detector.feed(frame * (FRAMES_NEEDED + 1))
    assert detector.protocol == protocol
    assert detector.decided_by == "decimal point"
    assert detector.undecided_frames == FRAMES_NEEDED
    assert [i.grams for i in out if isinstance(i, WeightReading)] == [grams] * FRAMES_NEEDED


@given(
    direction=st.sampled_from(["yh_rev", "yh_fwd"]),
    division_g=st.sampled_from([1, 2, 5, 10, 20, 50, 100]),
    loads=st.lists(st.integers(min_value=-20, max_value=6_000), min_size=1, max_size=12),
)
def test_yh_any_stream_with_a_point_decides_right(
    direction: str, division_g: int, loads: list[int]
) -> None:
    """Round or not, still or changing, an "=" stream with a decimal point (a kg display of
    1 g to 100 g division) is read the way the indicator sends it, from its own frames."""
    encode = encode_yh_rev if direction == "yh_rev" else encode_yh_fwd
    dp = decimals_for(division_g)
    shown = [n * division_g for n in loads]
    frames = [encode(Reading(g, dp, True, division_g=division_g), FrameOptions()) for g in shown]
    while len(frames) <= FRAMES_NEEDED:
        frames += frames
    detector = AutoDetector()
    out = detector.feed(b"".join(frames) + b"=")
    assert detector.protocol == direction
    readings = [i.grams for i in out if isinstance(i, WeightReading)]
    assert readings == [n * division_g for n in (loads * 8)[: len(frames)]]


def test_yh_a_tie_nothing_settles_is_said_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """No decimal point and padded either way round (1500 kg on a weighbridge, 0 decimals):
    nothing in the stream tells the directions apart; the detector says so instead of guessing."""
    detector = AutoDetector(label="timbang-01")
    with caplog.at_level(logging.WARNING, logger="wastebank.gateway"):
        assert detector.feed(b"=00001500" * 31) == []
    assert detector.protocol is None
    assert not detector.decided
    assert detector.contenders == ("yh_fwd", "yh_rev")
    assert detector.undecided_frames == 30  # the 31st is not delimited yet
    assert detector.waiting_for is not None
    assert "set protocol explicitly" in detector.waiting_for
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2  # at 8 and 16 frames: each doubling, not every frame
    assert all("timbang-01" in line and "yh_fwd and yh_rev" in line for line in said)
    detector.feed(b"=00001503=")  # a last digit that is not 0: only yh_fwd reads it
    assert detector.protocol == "yh_fwd"
    assert detector.decided
    assert detector.contenders == ("yh_fwd",)
    assert detector.waiting_for is None


def test_undecided_says_why() -> None:
    detector = AutoDetector()
    assert not detector.contenders
    assert detector.waiting_for == "no candidate reads the stream as weights"
    detector.feed(b"\r\nST,GS,+0012.34kg\r\n")
    assert list(detector.contenders) == ["gs_nt"]
    assert detector.waiting_for == "gs_nt: 1 of 4 frames"


def test_yh_a_frame_only_one_direction_accepts_decides() -> None:
    detector = AutoDetector()
    detector.feed(b"=00000000" * 10 + b"=-0000100=")
    assert detector.protocol == "yh_fwd"
    assert detector.decided_by == "streak"
    detector = AutoDetector()
    detector.feed(b"=00000000" * 10 + b"=0010000-=")
    assert detector.protocol == "yh_rev"


def test_yh_more_than_four_decimals_is_not_a_reading() -> None:
    # 12.50 forward (2 decimals) read reversed is 5.21000: no indicator shows 5 decimals
    detector = AutoDetector()
    out = detector.feed(b"=00012.50" * (FRAMES_NEEDED + 1))
    assert detector.protocol == "yh_fwd"
    assert detector.decided_by == "streak"
    assert {i.grams for i in out if isinstance(i, WeightReading)} == {12_500}


@pytest.mark.parametrize(
    ("frame", "protocol", "grams"),
    [
        (b"=00000310", "yh_fwd", 310_000),  # 0 decimals: the true value is padded high
        (b"=01300000", "yh_rev", 310_000),
    ],
)
def test_yh_padding_breaks_a_tie_without_a_point(frame: bytes, protocol: str, grams: int) -> None:
    detector = AutoDetector()
    out = detector.feed(frame * (FRAMES_NEEDED + 1))
    assert detector.protocol == protocol
    assert detector.decided_by == "padding"
    assert {i.grams for i in out if isinstance(i, WeightReading)} == {grams}


def test_ohaus_wins_a_tie_with_hx711_but_not_a_hx711_stream() -> None:
    detector = AutoDetector()
    detector.feed(b"\r\n" + b"     192.21 g   \r\n" * FRAMES_NEEDED)
    assert detector.protocol == "ohaus"  # hx711 reads these lines too; ohaus is more specific
    detector = AutoDetector()
    detector.feed(b"\r\n" + b"     192.21 g   \r\n" * 2 + b"Load_cell output val: 1.25\r\n" * 6)
    assert detector.protocol == "diy_hx711"


def test_gs_nt_and_and_std_never_tie() -> None:
    for line, protocol in ((b"ST,GS,+0012.34kg", "gs_nt"), (b"ST,+00012.34  g", "and_std")):
        detector = AutoDetector()
        detector.feed(b"\r\n" + (line + b"\r\n") * FRAMES_NEEDED)
        assert detector.protocol == protocol


# ---- the interface -----------------------------------------------------------------------------


def test_after_the_decision_bytes_pass_straight_through() -> None:
    detector = decoder_for("auto")
    assert isinstance(detector, AutoDetector)
    assert detector.protocol is None
    assert detector.parsed == 0
    assert detector.rejected == {}
    detector.feed(b"\r\n" + b"ST,GS,+0012.34kg\r\n" * FRAMES_NEEDED)
    assert detector.protocol == "gs_nt"
    assert detector.decoder is not None
    out = detector.feed(b"#K,19,OK*47\r\nUS,GS,+0001.00kg\r\n")
    assert out[0] == KioskFrame(19, "OK", "", b"#K,19,OK*47")
    assert isinstance(out[1], WeightReading)
    assert detector.parsed == FRAMES_NEEDED + 2


def test_reset_keeps_the_protocol_redetect_forgets_it() -> None:
    detector = AutoDetector()
    detector.feed(b"\r\n" + b"ST,GS,+0012.34kg\r\n" * FRAMES_NEEDED)
    detector.reset()  # port reopened: the same scale, a partial line first
    assert detector.feed(b"34kg\r\nST,GS,+0012.34kg\r\n") == [
        WeightReading("stable", "gross", 12_340, b"ST,GS,+0012.34kg", "gs_nt")
    ]
    assert detector.partial_frames == 1
    detector.redetect()
    assert detector.protocol is None
    detector.feed(b"=0003.120" * (FRAMES_NEEDED + 1))
    assert detector.protocol == "yh_fwd"


def test_reset_while_undecided_starts_over() -> None:
    detector = AutoDetector(frames_needed=2)
    detector.feed(b"\r\nST,GS,+0012.34kg\r\n")
    detector.reset()
    detector.feed(b"ST,GS,+0012.34kg\r\n")  # dropped as the partial line after reopening
    assert detector.protocol is None
    detector.feed(b"ST,GS,+0012.34kg\r\n" * 2)
    assert detector.protocol == "gs_nt"


def test_candidates_and_settings() -> None:
    detector = AutoDetector(candidates=("a12_ww", "diy_hx711"), frames_needed=2)
    detector.feed(b"\r\n" + b"ST,GS,+0012.34kg\r\n" * 5 + b"12.5\r\n" * 2)
    assert detector.protocol == "diy_hx711"
    detector = AutoDetector(unit="g")
    out = detector.feed(b"\r\n" + b"Load_cell output val: 1.25\r\n" * FRAMES_NEEDED)
    assert {i.grams for i in out if isinstance(i, WeightReading)} == {1}
    with pytest.raises(ValueError, match="frames_needed"):
        AutoDetector(frames_needed=0)
    with pytest.raises(ValueError, match="unknown candidates"):
        AutoDetector(candidates=("nope",))
    with pytest.raises(ValueError, match="unknown scale protocol"):
        decoder_for("nope")


# ---- over a pty, through the gateway process ----------------------------------------------------


@pytest.fixture
def central(
    ledger_factories: dict[str, LedgerFactory], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiEnv]:
    """The central API the gateway forwards the attendant's login to, on a SQLite ledger of its
    own (the ledger only checks the login here: one backend is enough)."""
    factory = ledger_factories.get("sqlite")
    if factory is None:
        factory = ledger_factories["sqlite"] = LedgerFactory("sqlite", tmp_path_factory, None)
    url = factory.new()
    try:
        with ApiEnv(url, api_settings(ledger_url=url)) as api:
            yield api
    finally:
        factory.drop(url)


@pytest.mark.integration
async def test_gateway_detects_a_round_weight_yaohua_stream_and_takes_a_deposit(
    processes: Processes, mqtt_settings: MqttSettings, central: ApiEnv, tmp_path: Path
) -> None:
    """A Yaohua A26 on "format 1" (reversed) already showing 3.000 kg when the gateway starts
    on `protocol = "auto"`: every frame is the manual's `=000.3000`, which reads 3.000 reversed
    and 0.3000 forward. The gateway decides from the frames' structure (the decimal point), says
    so in its log, and the attendant's deposit of a round 3 kg goes out as yh_rev, 3000 g."""
    bank, gateway_id = "bs-batu-merah", "gw-yaohua-auto"
    topics = Topics(mqtt_settings.topic_prefix)
    port = free_port()
    link = tmp_path / "yaohua.tty"
    site = write_site(
        tmp_path / "site.toml",
        gateway_id=gateway_id,
        link=link,
        outbox=tmp_path / "outbox.db",
        api_url=str(central.client.base_url),
        flow="attendant",
        protocol="auto",
        http_port=port,
        credentials=mqtt_settings,
    )
    async with (
        aiomqtt.Client(
            mqtt_settings.host, mqtt_settings.port, **mqtt_login(mqtt_settings)
        ) as observer,
        ScaleSimulator(link, "yh_rev", seed=16, speed=5, noise=QUIET, max_backlog=256) as scale,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as gw,
    ):
        assert scale.dp == 3  # a 5 g division: 3.000 kg is sent as =000.3000
        await scale.place(3_000)  # on the platform before the gateway reads a byte
        settled = scale.bytes_dropped

        async def only_round_frames_wait() -> bool:
            # unread bytes are flushed past max_backlog: after one flush since the load
            # settled, what waits for the gateway is =000.3000 only
            return scale.bytes_dropped > settled

        await eventually(only_round_frames_wait)
        await observer.subscribe(topics.deposit(bank, gateway_id), qos=1)
        processes.start("gateway", ["gateway", "--config", str(site)], settings_env(mqtt_settings))
        await eventually(lambda: gateway_login(gw, *central.creds["attendant_1"]))

        async def shows(**want: object) -> bool:
            try:
                (view,) = (await gw.get("/scales")).json()
            except httpx.HTTPError:
                return False
            return all(view.get(k) == v for k, v in want.items())

        await eventually(lambda: shows(protocol="yh_rev"))
        log = processes.log("gateway")
        assert "auto-detected scale-01: yh_rev after 4 frames (decimal point)" in log, log

        await scale.place(0)
        await eventually(lambda: shows(grams=0, stable=True))
        armed = await gw.post(
            "/scales/scale-01/arm", json={"member_no": "AMB-0001", "category_code": "pet"}
        )
        assert armed.status_code == 200, armed.text
        await scale.place(3_000)
        message = await asyncio.wait_for(anext(aiter(observer.messages)), 30)
        assert isinstance(message.payload, bytes | bytearray)
        deposit = decode_json(bytes(message.payload), DepositEvent)

    assert (deposit.protocol, deposit.net_g, deposit.member_no) == ("yh_rev", 3_000, "AMB-0001")
    assert deposit.stable  # decided by the gateway: the format has no flag
