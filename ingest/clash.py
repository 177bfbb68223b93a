"""Two gateways running with one gateway id: found from the stream, said once.

Every message a gateway sends carries its *install* (its outbox's identity) and its health
reports also the *boot* (random per process start). One gateway id is one place at one time:
an SD card swap or a restart ends the old install or boot before the new one starts. When two
of them *interleave* (the older one is heard again after the newer one appeared, within
``window_s``), two processes run with one gateway id: a cloned image, a second Pi given the
same site file, an old card put back. Their deposits still count (their ids differ by install,
or conflict loudly when a clone copied the outbox too); this names the clash so that someone
gives one of them its own gateway id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_WINDOW_S = 900.0
"""How recently the other install or boot must have been heard: longer than a gateway's health
interval (60 s by default), so two quiet clones are found by their health reports."""


@dataclass
class _Heard:
    first: int  # the order of messages heard (a counter: one batch shares one clock reading)
    last: int
    at: float  # when last heard (the window)


@dataclass(frozen=True)
class Clash:
    gateway_id: str
    bank_code: str
    kind: str  # "install": two outbox files; "boot": one outbox file on two machines
    ids: tuple[str, str]  # the older, the newer

    def message(self) -> str:
        older, newer = self.ids
        what = (
            f"dua install / two installs {older} dan/and {newer}"
            if self.kind == "install"
            else f"install {older.split('/')[0]} di dua proses / on two processes "
            f"(boot {older.split('/')[1]}, {newer.split('/')[1]})"
        )
        return (
            f"Gateway {self.gateway_id} ({self.bank_code}) berjalan di dua tempat sekaligus: "
            f"{what}. Beri salah satunya gateway id sendiri (docs/deploy-pi.md) / gateway "
            f"{self.gateway_id} runs in two places at once; give one of them its own gateway id."
        )


@dataclass
class ClashWatch:
    window_s: float = DEFAULT_WINDOW_S
    _installs: dict[str, dict[str, _Heard]] = field(default_factory=dict)
    _boots: dict[tuple[str, str], dict[str, _Heard]] = field(default_factory=dict)
    _said: set[tuple[str, str]] = field(default_factory=set)
    _tick: int = 0

    def heard(
        self, gateway_id: str, bank_code: str, install: str, boot: str | None, now: float
    ) -> list[Clash]:
        """Note one message; return the clashes it reveals that were not said before."""
        self._tick += 1
        found: list[Clash] = []
        installs = self._installs.setdefault(gateway_id, {})
        older = _interleaved(installs, install, self._tick, now, self.window_s)
        if older is not None:
            found.append(Clash(gateway_id, bank_code, "install", older))
        if boot is not None:
            boots = self._boots.setdefault((gateway_id, install), {})
            pair = _interleaved(boots, boot, self._tick, now, self.window_s)
            if pair is not None:
                ids = (f"{install}/{pair[0]}", f"{install}/{pair[1]}")
                found.append(Clash(gateway_id, bank_code, "boot", ids))
        new = [c for c in found if (c.gateway_id, c.kind) not in self._said]
        self._said.update((c.gateway_id, c.kind) for c in new)
        return new

    def forget(self, gateway_id: str) -> None:
        """Say a clash of ``gateway_id`` again when it is found again (its alert was cleared)."""
        self._said = {s for s in self._said if s[0] != gateway_id}


def _interleaved(
    heard: dict[str, _Heard], key: str, tick: int, now: float, window_s: float
) -> tuple[str, str] | None:
    """Record ``key`` heard as message ``tick`` at ``now``; return (older, newer) when it and
    another key heard within the window interleave: the older heard after the newer appeared.
    One that ended before the other began (a card swap, a restart) is forgotten."""
    mine = heard.setdefault(key, _Heard(tick, tick, now))
    mine.last, mine.at = tick, now
    for other, h in list(heard.items()):
        if other == key:
            continue
        if now - h.at > window_s:
            del heard[other]
            continue
        old, new = (h, mine) if h.first < mine.first else (mine, h)
        if old.last > new.first:
            return (other, key) if old is h else (key, other)
    return None
