"""gateway.kiosk.KioskSession: the deposit rules, driven by frames as they come off the wire."""

from __future__ import annotations

import pytest

from firmware_sim.encoders import encode_kiosk, encode_weight
from gateway.kiosk import AttendantSession, DepositCandidate, KioskSession
from gateway.scale_protocol import KioskFrame, WeightReading, parse_line

CARD = "04A1B2C3"


def frame(seq: int, kind: str, value: str = "") -> KioskFrame:
    parsed = parse_line(encode_kiosk(seq, kind, value)[:-2])
    assert isinstance(parsed, KioskFrame)
    return parsed


def weight(grams: int | None, *, stable: bool = True, mode: str = "gross") -> WeightReading:
    line = encode_weight(grams, stable=stable, mode=mode, overload=grams is None)  # type: ignore[arg-type]
    parsed = parse_line(line[:-2])
    assert isinstance(parsed, WeightReading)
    return parsed


class Kiosk:
    """A session plus a clock and a seq counter, so tests read like the event sequence."""

    def __init__(self, *, seen_empty: bool = True, **kwargs: float) -> None:
        self.session = KioskSession(**kwargs)  # type: ignore[arg-type]
        self.now = 1000.0
        self.seq = 100
        self.deposits: list[DepositCandidate] = []
        if seen_empty:  # the platform empty once since start, as at a bank's opening
            self.scale(0)

    def send(self, kind: str, value: str = "", *, seq: int | None = None) -> None:
        if seq is None:
            self.seq += 1
            seq = self.seq
        self._keep(self.session.on_frame(frame(seq, kind, value), self.now))

    def scale(self, grams: int | None, *, stable: bool = True, mode: str = "gross") -> None:
        self._keep(self.session.on_reading(weight(grams, stable=stable, mode=mode), self.now))

    def wait(self, seconds: float) -> None:
        self.now += seconds

    def _keep(self, candidate: DepositCandidate | None) -> None:
        if candidate is not None:
            self.deposits.append(candidate)


def test_happy_path() -> None:
    k = Kiosk()
    k.scale(0)
    k.send("CARD", CARD)
    k.send("CAT", "plastik")
    k.scale(1230, stable=False)
    k.scale(1230)
    k.send("OK")
    assert k.deposits == [
        DepositCandidate(
            card_uid=CARD,
            category_code="plastik",
            net_g=1230,
            tare_g=0,
            stable=True,
            protocol="gs_nt",
            raw_frames=(
                "#K,101,CARD,04A1B2C3*37",
                "#K,102,CAT,plastik*7A",
                "ST,GS,+0001.23kg",
                "#K,103,OK*7D",
            ),
        )
    ]
    assert k.session.card_uid == CARD  # the member stays for the next category
    assert k.session.category_code is None
    assert k.session.deposits == 1


def test_one_load_confirmed_twice_is_one_deposit() -> None:
    k = Kiosk()
    k.send("CARD", CARD)
    k.send("CAT", "plastik")
    k.scale(2500)
    k.send("OK")
    k.send("OK")  # pressed again: no category any more
    k.send("CAT", "plastik")
    k.scale(2500)
    k.send("OK")  # same load still on the scale: not armed
    assert len(k.deposits) == 1
    assert k.session.ignored_confirms == 2
    assert not k.session.armed

    k.scale(10)  # back inside the zero band
    assert k.session.armed
    k.scale(800)
    k.send("OK")
    assert [d.net_g for d in k.deposits] == [2500, 800]
    assert [d.card_uid for d in k.deposits] == [CARD, CARD]


def test_zero_band_needs_a_stable_reading() -> None:
    k = Kiosk()
    k.send("CARD", CARD)
    k.send("CAT", "kertas")
    k.scale(2500)
    k.send("OK")
    k.scale(0, stable=False)  # passing through zero while moving does not re-arm
    k.scale(40)  # stable but outside the 20 g band
    assert not k.session.armed
    k.scale(-20)
    assert k.session.armed


def test_confirm_while_unstable_deposits_on_settle() -> None:
    k = Kiosk()
    k.send("CARD", CARD)
    k.send("CAT", "logam")
    k.scale(5210, stable=False)
    k.send("OK")
    assert k.deposits == []
    assert k.session.confirm_pending
    k.wait(0.5)
    k.scale(4980, stable=False)
    k.scale(5000)
    assert [d.net_g for d in k.deposits] == [5000]
    assert k.deposits[0].raw_frames[2] == "ST,GS,+0005.00kg"
    assert k.deposits[0].raw_frames[3].startswith("#K,103,OK*")
    assert not k.session.confirm_pending


def test_held_confirm_expires() -> None:
    k = Kiosk()
    k.send("CARD", CARD)
    k.send("CAT", "logam")
    k.scale(5210, stable=False)
    k.send("OK")
    k.wait(10.5)
    k.scale(5000)
    assert k.deposits == []
    assert k.session.expired_confirms == 1


def test_held_confirm_dropped_when_load_comes_off() -> None:
    k = Kiosk()
    k.send("CARD", CARD)
    k.send("CAT", "logam")
    k.scale(5210, stable=False)
    k.send("OK")
    k.scale(0)
    k.scale(700)
    assert k.deposits == []
    assert not k.session.confirm_pending


def test_confirm_without_fresh_reading_waits_for_one() -> None:
    k = Kiosk()
    k.send("CARD", CARD)
    k.send("CAT", "kaca")
    k.scale(900)
    k.wait(5)  # the scale went quiet: that reading is stale
    k.send("OK")
    assert k.deposits == []
    k.scale(900)
    assert [d.net_g for d in k.deposits] == [900]


def test_duplicate_seq_is_ignored() -> None:
    k = Kiosk()
    k.send("CARD", CARD)
    k.send("CARD", CARD, seq=k.seq)
    k.send("CAT", "plastik")
    k.scale(1500, stable=False)
    k.send("OK")
    k.send("OK", seq=k.seq)  # retransmit
    k.scale(1500)
    assert len(k.deposits) == 1
    assert k.session.duplicate_frames == 2
    assert k.session.ignored_confirms == 0


def test_seq_wraps_around() -> None:
    k = Kiosk()
    k.send("CARD", CARD, seq=65535)
    k.send("CAT", "plastik", seq=0)
    k.scale(1500)
    k.send("OK", seq=1)
    assert len(k.deposits) == 1


def test_cancel_clears_everything() -> None:
    k = Kiosk()
    k.send("CARD", CARD)
    k.send("CAT", "plastik")
    k.scale(1500, stable=False)
    k.send("OK")
    k.send("CANCEL")
    assert (k.session.card_uid, k.session.category_code) == (None, None)
    assert not k.session.confirm_pending
    k.scale(1500)
    k.send("OK")
    assert k.deposits == []
    assert k.session.ignored_confirms == 1


def test_card_replaces_member_and_clears_category() -> None:
    k = Kiosk()
    k.send("CARD", CARD)
    k.send("CAT", "plastik")
    k.send("CARD", "DEADBEEF01")
    k.scale(1500)
    k.send("OK")
    assert k.deposits == []
    k.send("CAT", "kertas")
    k.send("OK")
    assert [(d.card_uid, d.category_code) for d in k.deposits] == [("DEADBEEF01", "kertas")]


@pytest.mark.parametrize(
    "events",
    [
        [("OK", "")],
        [("CAT", "plastik"), ("OK", "")],
        [("CARD", CARD), ("OK", "")],
    ],
)
def test_confirm_needs_card_and_category(events: list[tuple[str, str]]) -> None:
    k = Kiosk()
    k.scale(1500)
    for kind, value in events:
        k.send(kind, value)
    assert k.deposits == []
    assert k.session.ignored_confirms == 1


def test_category_without_card_is_ignored() -> None:
    k = Kiosk()
    k.send("CAT", "plastik")
    assert k.session.category_code is None
    assert k.session.ignored_frames == 1


def test_below_min_net_is_ignored() -> None:
    k = Kiosk()
    k.send("CARD", CARD)
    k.send("CAT", "plastik")
    k.scale(40)
    k.send("OK")
    assert k.deposits == []
    assert k.session.ignored_confirms == 1
    assert not k.session.confirm_pending


def test_overload_is_never_a_weight() -> None:
    k = Kiosk()
    k.send("CARD", CARD)
    k.send("CAT", "logam")
    k.scale(None)
    k.send("OK")
    assert k.deposits == []
    assert k.session.ignored_confirms == 1
    k.scale(None)
    assert k.deposits == []


def test_session_times_out() -> None:
    k = Kiosk(session_timeout_s=120.0)
    k.send("CARD", CARD)
    k.send("CAT", "plastik")
    k.wait(121)
    k.scale(1500)
    k.send("OK")
    assert k.deposits == []
    assert k.session.expired_sessions == 1
    assert k.session.card_uid is None


def test_session_kept_alive_by_frames() -> None:
    k = Kiosk(session_timeout_s=120.0)
    k.send("CARD", CARD)
    k.wait(100)
    k.send("CAT", "plastik")
    k.wait(100)
    k.scale(1500)
    k.send("OK")
    assert len(k.deposits) == 1


def test_net_mode_and_tare_lines() -> None:
    k = Kiosk()
    k.send("CARD", CARD)
    k.send("CAT", "plastik")
    k.scale(1200)
    k.scale(500, mode="tare")  # a tare line is not the deposit weight
    k.scale(700, mode="net")
    k.send("OK")
    assert [(d.net_g, d.tare_g) for d in k.deposits] == [(700, 0)]
    assert k.deposits[0].raw_frames[2] == "ST,NT,+0000.70kg"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_net_g": 20, "zero_band_g": 20},
        {"zero_band_g": -1},
        {"session_timeout_s": 0},
        {"confirm_timeout_s": -1},
    ],
)
def test_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - several messages
        KioskSession(**kwargs)  # type: ignore[arg-type]


def test_a_load_found_on_the_platform_at_start_waits_for_an_empty_platform() -> None:
    # A gateway restarted with a weighed load still on the scale (review 4, docs review): the
    # load may be a deposit already, so nothing is taken until the platform is seen empty once.
    k = Kiosk(seen_empty=False)
    assert not k.session.armed
    k.send("CARD", CARD)
    k.send("CAT", "kardus")
    k.scale(12340)
    k.send("OK")
    assert k.deposits == []
    k.scale(0)
    k.send("CAT", "kardus")
    k.scale(12340)
    k.send("OK")
    assert [d.net_g for d in k.deposits] == [12340]


def test_the_attendant_flow_waits_for_an_empty_platform_at_start() -> None:
    session = AttendantSession()
    assert session.waiting_for_zero
    session.arm("AMB-0002", "kardus", 1000.0)
    assert session.on_reading(weight(12340), 1001.0) is None  # the load left from before
    assert session.on_reading(weight(100), 1002.0) is None  # a zero 100 g off is not empty
    assert session.waiting_for_zero
    assert session.on_reading(weight(0), 1003.0) is None
    assert not session.waiting_for_zero
    taken = session.on_reading(weight(2000), 1004.0)
    assert taken is not None
    assert (taken.member_no, taken.net_g) == ("AMB-0002", 2000)
