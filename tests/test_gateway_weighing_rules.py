"""The weighing page's small rules (issue 15): a member found however the number or name is
typed, a stable mark that does not flicker, one way to write a weight."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.attendant_store import AttendantDb, MemberEntry
from gateway.http.attendant.formats import kg
from gateway.member_search import EXACT, fold, number_key, rank
from gateway.outbox import Outbox
from gateway.stable_mark import HOLD_S, StableMark
from wastebank import formats

SITI = ("AMB-0001", "Siti Latuconsina", ("04A1B2C3D4",))


@pytest.mark.parametrize(
    "query", ["AMB-0001", "amb-0001", "amb0001", "AMB 0001", " amb - 0001 ", "04:a1:b2:c3:d4"]
)
def test_the_number_or_card_however_typed_is_an_exact_hit(query: str) -> None:
    assert rank(query, *SITI) == EXACT


@pytest.mark.parametrize("query", ["0001", "001", "1", "000"])
def test_the_number_without_its_prefix_finds_the_member(query: str) -> None:
    found = rank(query, *SITI)
    assert found is not None
    assert found > EXACT


@pytest.mark.parametrize("query", ["siti", "SITI", "latu", "latuconsina siti", "Sití  Latu"])
def test_a_name_fragment_in_any_case_and_accent_finds_the_member(query: str) -> None:
    assert rank(query, *SITI) is not None


@pytest.mark.parametrize("query", ["0002", "2", "AMB-0002", "yohanes", "siti x", "", "   "])
def test_others_do_not(query: str) -> None:
    assert rank(query, *SITI) is None


def test_folding() -> None:
    assert fold("  JOSÉ   Pattiasina ") == "jose pattiasina"
    assert number_key("amb - 0001") == "AMB0001"


def test_the_directory_ranks_the_exact_number_first(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    outbox = Outbox(tmp_path / "outbox.db")
    try:
        d = AttendantDb(outbox).directory
        d.replace_members(
            "bs-batu-merah",
            [
                MemberEntry("AMB-0001", "Siti Latuconsina", "individual", ("04A1B2C3D4",)),
                MemberEntry("AMB-0010", "Abdul Siti", "individual"),
                MemberEntry("AMB-0002", "Yohanes Pattiasina", "individual"),
                MemberEntry("AMB-0100", "José Amb Ohorella", "individual"),
            ],
            datetime(2026, 12, 6, tzinfo=UTC),
        )
        for query in ("0001", "amb0001", "AMB 0001", "AMB-0001", "1"):
            assert [m.member_no for m in d.search(query)][:1] == ["AMB-0001"], query
        assert [m.member_no for m in d.search("0001")] == ["AMB-0001"]
        assert [m.member_no for m in d.search("jose")] == ["AMB-0100"]
        # a name beginning with the words before a name containing them
        assert [m.member_no for m in d.search("siti")] == ["AMB-0001", "AMB-0010"]
        assert d.search("  ") == []
    finally:
        outbox.close()


def test_the_mark_holds_stable_through_a_short_wobble() -> None:
    mark = StableMark()
    assert mark.update(True, 0.0) is True
    # Unstable for less than the hold, again and again (the flicker of issue 15): stable.
    t = 0.0
    for _ in range(10):
        assert mark.update(False, t + 0.1) is True
        assert mark.update(False, t + 0.1 + HOLD_S * 0.9) is True
        assert mark.update(True, t + 0.1 + HOLD_S) is True
        t += 1.0
    # Unstable for the whole hold: moving, and the stream knows when to look again.
    assert mark.update(False, 20.0) is True
    assert mark.due(20.0) == pytest.approx(HOLD_S)
    assert mark.update(False, 20.0 + HOLD_S + 0.01) is False
    assert mark.due(21.0) is None
    # Stable again: shown at once.
    assert mark.update(True, 21.0) is True
    # No reading: no mark at once, and the first reading after it is shown as it is.
    assert mark.update(None, 22.0) is None
    assert mark.update(False, 22.1) is False


def test_a_weight_is_written_one_way() -> None:
    for grams, text in [
        (0, "0,00 kg"),
        (500, "0,50 kg"),
        (1250, "1,25 kg"),
        (1255, "1,255 kg"),
        (12000, "12,00 kg"),
        (1234567, "1.234,567 kg"),
    ]:
        assert kg(grams) == text == formats.kg(grams)
