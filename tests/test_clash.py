"""ClashWatch: two gateways with one id interleave; a card swap or a restart does not."""

from __future__ import annotations

from ingest.clash import ClashWatch


def _hear(w: ClashWatch, *keys: tuple[str, str | None], start: float = 0.0) -> list[str]:
    said = []
    for n, (install, boot) in enumerate(keys):
        said += [c.kind for c in w.heard("gw-01", "bs-1", install, boot, start + n)]
    return said


def test_a_card_swap_and_a_restart_are_not_clashes() -> None:
    w = ClashWatch()
    swap = [("aaaaa", "b1")] * 3 + [("bbbbb", "b2")] * 3 + [("bbbbb", "b3")] * 3
    assert _hear(w, *swap) == []


def test_two_installs_heard_in_turn_clash_once() -> None:
    w = ClashWatch()
    assert _hear(w, ("aaaaa", "b1"), ("bbbbb", "b2"), ("aaaaa", "b1"), ("bbbbb", "b2")) == [
        "install"
    ]
    assert _hear(w, ("aaaaa", "b1"), ("bbbbb", "b2"), start=10) == []  # said once
    w.forget("gw-01")
    assert _hear(w, ("aaaaa", "b1"), ("bbbbb", "b2"), start=20) == ["install"]


def test_one_install_on_two_machines_is_a_boot_clash() -> None:
    w = ClashWatch()
    assert _hear(w, ("aaaaa", "b1"), ("aaaaa", "b2"), ("aaaaa", "b1")) == ["boot"]


def test_an_install_silent_for_longer_than_the_window_is_forgotten() -> None:
    w = ClashWatch(window_s=60)
    w.heard("gw-01", "bs-1", "aaaaa", "b1", 0)
    w.heard("gw-01", "bs-1", "bbbbb", "b2", 100)  # the old card came back after the window
    assert w.heard("gw-01", "bs-1", "aaaaa", "b1", 200) == []
