"""Choosing a decoder: :func:`decoder_for` by protocol id, or :class:`AutoDetector` working the
protocol out from the byte stream itself (docs/protocol.md §1.7). Pure (no I/O, no clock); the
detector logs its decision and a decision that is slow to come."""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import Final

from gateway.scale_protocol.and_std import AndStdDecoder, GsNtDecoder
from gateway.scale_protocol.cas import Cas22Decoder
from gateway.scale_protocol.frames import (
    PROTOCOLS,
    Decoded,
    FrameError,
    FrameReason,
    ProtocolId,
    ToledoUnits,
    Unit,
    WeightReading,
)
from gateway.scale_protocol.framing import Decoder, ScaleDecoder
from gateway.scale_protocol.hx711 import Hx711Decoder
from gateway.scale_protocol.mtsics import MtSicsDecoder
from gateway.scale_protocol.ohaus import OhausDecoder
from gateway.scale_protocol.toledo import ToledoDecoder
from gateway.scale_protocol.yaohua import (
    A12eChkDecoder,
    A12WwDecoder,
    YhFwdDecoder,
    YhRevDecoder,
    YhStxDecoder,
)

log = logging.getLogger("wastebank.gateway")

FRAMES_NEEDED: Final = 4
"""Consecutive valid weight frames the :class:`AutoDetector` needs before it decides."""

# ---- choosing a decoder ------------------------------------------------------------------------

_FACTORIES: Final[dict[str, Callable[[Unit, ToledoUnits], Decoder]]] = {
    "yh_stx": lambda unit, _: YhStxDecoder(unit),
    "yh_rev": lambda unit, _: YhRevDecoder(unit),
    "yh_fwd": lambda unit, _: YhFwdDecoder(unit),
    "a12e_chk": lambda _, __: A12eChkDecoder(),
    "a12_ww": lambda _, __: A12WwDecoder(),
    "and_std": lambda _, __: AndStdDecoder(),
    "gs_nt": lambda _, __: GsNtDecoder(),
    "cas22": lambda _, __: Cas22Decoder(),
    "toledo_cont": lambda _, units: ToledoDecoder(units),
    "mtsics": lambda _, __: MtSicsDecoder(),
    "ohaus": lambda _, __: OhausDecoder(),
    "diy_hx711": lambda unit, _: Hx711Decoder(unit),
}


def decoder_for(
    protocol: str,
    *,
    unit: Unit = "kg",
    toledo_units: ToledoUnits = "fairbanks",
    frames_needed: int = FRAMES_NEEDED,
    label: str = "",
) -> ScaleDecoder:
    """A fresh decoder for ``protocol`` (one of :data:`PROTOCOLS`, ``"kiosk"`` or ``"auto"``).

    ``"kiosk"`` is the ``gs_nt`` decoder (every CR LF decoder also reads kiosk frames).
    ``unit`` is the unit of formats that do not send one (Yaohua STX and ``=``, bare HX711
    numbers); ``toledo_units`` picks where ``toledo_cont`` keeps its unit bit;
    ``frames_needed`` and ``label`` (the scale's id, for its log lines) are for ``"auto"`` (see
    :class:`AutoDetector`).
    """
    if protocol == "auto":
        return AutoDetector(
            frames_needed=frames_needed, unit=unit, toledo_units=toledo_units, label=label
        )
    factory = _FACTORIES.get("gs_nt" if protocol == "kiosk" else protocol)
    if factory is None:
        known = ", ".join((*PROTOCOLS, "kiosk", "auto"))
        raise ValueError(f"unknown scale protocol {protocol!r}; known: {known}")
    return factory(unit, toledo_units)


DETECT_ORDER: Final[tuple[ProtocolId, ...]] = (
    "yh_stx",
    "a12e_chk",
    "toledo_cont",
    "cas22",
    "gs_nt",
    "and_std",
    "mtsics",
    "a12_ww",
    "yh_fwd",
    "yh_rev",
    "ohaus",
    "diy_hx711",
)
"""Candidates of :class:`AutoDetector`, most specific first: this breaks exact ties."""
_YH_PAIR: Final = frozenset({"yh_fwd", "yh_rev"})
DETECT_HISTORY: Final = 64
"""Items each candidate keeps while undecided; the winner's are returned at the decision."""
_YH_POINT_SIDE: Final[dict[int, str]] = {3: "yh_rev", 4: "yh_fwd"}
"""Where the point sits among the 8 characters after ``=`` (0-based) -> the direction that reads
3 decimals there; the other reads 4 (docs/protocol.md §1.7, rule 3b)."""


def _zero_padded(value: str) -> bool:
    return value[:1] == " " or (len(value) > 1 and value[0] == "0" and value[1] != ".")


def _yh_vote(raws: list[bytes], needed: int) -> str | None:
    """Which ``=`` direction the padding supports: the true value is padded at its high end
    (``003.120``); read the wrong way round the padding lands at the low end (``21.3000``)."""
    fwd = rev = 0
    for raw in raws:
        body = raw[1:].decode("ascii", "replace")
        forward, backward = _zero_padded(body[1:]), _zero_padded(body[::-1][1:])
        fwd += forward and not backward
        rev += backward and not forward
    if fwd >= needed and not rev:
        return "yh_fwd"
    if rev >= needed and not fwd:
        return "yh_rev"
    return None


def _yh_point(raws: list[bytes]) -> str | None:
    """The direction that reads 3 decimals where the other reads 4, when every frame has its
    point in the same place: a mirror-image frame (``=000.3000``: 3.000 reversed, 0.3000
    forward) differs between the two readings in nothing but the point."""
    places = {raw[1:].find(b".") for raw in raws}
    if len(places) != 1:
        return None
    return _YH_POINT_SIDE.get(places.pop())


class AutoDetector:
    """Work out a scale's protocol from its byte stream, then hand over to that decoder.

    Every candidate decoder (:data:`DETECT_ORDER`) is fed the same bytes, one at a time, so the
    decision does not depend on how reads chunk the stream. A candidate's *streak* is the number
    of weight frames it parsed since its last reject (status and kiosk frames are neutral).
    Rules, checked after every frame (docs/protocol.md §1.7):

    1. only candidates with a streak of at least ``frames_needed`` qualify (so garbage, which
       makes every decoder reject, never decides);
    2. the longest streak wins: a rival that rejected a frame the winner accepted is out;
    3. ``yh_fwd`` and ``yh_rev`` read many frames both ways (``=0003.120`` is 3.120 forward,
       21.3 reversed). A tie between them is decided by the stream's structure: (a) a frame
       only one accepts (a negative weight, a last digit that is not 0, more than 4 decimals
       one way) ends the tie through rule 2; (b) the decimal point: a point after 3 of the 8
       characters reads 3 decimals reversed and 4 forward, after 4 the other way round (any
       other place gives one reading 5 or more, which (a) already excluded); when every frame
       of the streak has it in the same place, the 3-decimal reading wins (:func:`_yh_point`):
       the A26 manual's round ``=000.3000`` is 3.000 reversed; (c) frames without a point
       (0 decimals): padding, the true value is zero-padded at its high end
       (:func:`_yh_vote`);
    4. any other tie goes to the earlier entry of :data:`DETECT_ORDER` (``ohaus`` over
       ``diy_hx711`` for a ``   12.34 g`` line); ``gs_nt``/``and_std`` never tie, they differ
       in the second header.

    While undecided, :attr:`contenders` names the candidates with the longest streak and
    :attr:`undecided_frames` its length (the frames read without a decision); a tie that lasts
    ``2 * frames_needed`` frames, and each doubling of that, is logged with the reason
    (:attr:`waiting_for`). ``label`` names the scale in those lines.

    Once decided, ``protocol`` is set and ``decoder`` is the winner: ``feed`` returns the items
    it produced while undecided (the last :data:`DETECT_HISTORY`) and from then on passes bytes
    straight through, so nothing beyond the first partial frame is lost.
    """

    def __init__(
        self,
        *,
        frames_needed: int = FRAMES_NEEDED,
        candidates: tuple[str, ...] = DETECT_ORDER,
        unit: Unit = "kg",
        toledo_units: ToledoUnits = "fairbanks",
        label: str = "",
    ) -> None:
        if frames_needed < 1:
            raise ValueError("frames_needed must be >= 1")
        unknown = [c for c in candidates if c not in _FACTORIES]
        if unknown or not candidates:
            raise ValueError(f"unknown candidates {unknown}")
        self.frames_needed = frames_needed
        self.candidates = candidates
        self.unit: Unit = unit
        self.toledo_units: ToledoUnits = toledo_units
        self.label = label
        self.decoder: ScaleDecoder | None = None
        self.sampled_bytes = 0
        self.decided_by: str | None = None
        """Which rule decided (``streak``, ``padding``, ``decimal point``, ``order``)."""
        self._trials: dict[str, Decoder] = {}
        self._streak: dict[str, int] = {}
        self._streak_raws: dict[str, deque[bytes]] = {}
        self._history: dict[str, deque[Decoded]] = {}
        self._undecided_frames = 0
        self._next_warning = 2 * frames_needed
        self._start()

    def _start(self) -> None:
        self._trials = {c: _FACTORIES[c](self.unit, self.toledo_units) for c in self.candidates}
        self._streak = dict.fromkeys(self.candidates, 0)
        self._streak_raws = {c: deque(maxlen=DETECT_HISTORY) for c in self.candidates}
        self._history = {c: deque(maxlen=DETECT_HISTORY) for c in self.candidates}
        self._undecided_frames = 0
        self._next_warning = 2 * self.frames_needed
        self.decided_by = None

    # -- the ScaleDecoder interface --

    @property
    def protocol(self) -> str | None:
        return None if self.decoder is None else self.decoder.protocol

    @property
    def parsed(self) -> int:
        return 0 if self.decoder is None else self.decoder.parsed

    @property
    def rejected(self) -> Mapping[FrameReason, int]:
        return Counter() if self.decoder is None else self.decoder.rejected

    @property
    def dropped_bytes(self) -> int:
        return 0 if self.decoder is None else self.decoder.dropped_bytes

    @property
    def partial_frames(self) -> int:
        return 0 if self.decoder is None else self.decoder.partial_frames

    @property
    def buffered(self) -> int:
        if self.decoder is not None:
            return self.decoder.buffered
        return max(trial.buffered for trial in self._trials.values())

    # -- what the detector is doing, for health reports --

    @property
    def decided(self) -> bool:
        return self.decoder is not None

    @property
    def contenders(self) -> tuple[str, ...]:
        """The protocol once decided; until then the candidates with the longest streak (in
        :data:`DETECT_ORDER` order), empty while no candidate reads the stream."""
        if (protocol := self.protocol) is not None:
            return (protocol,)
        best = max(self._streak.values())
        return tuple(c for c in self.candidates if best and self._streak[c] == best)

    @property
    def undecided_frames(self) -> int:
        """Weight frames the leading candidate read in a row without a decision (frozen at the
        decision: the frames it took)."""
        return self._undecided_frames

    @property
    def waiting_for(self) -> str | None:
        """Why there is no decision yet (English, for logs and health); None once decided."""
        if self.decoder is not None:
            return None
        leading = self.contenders
        if not leading:
            return "no candidate reads the stream as weights"
        if self._undecided_frames < self.frames_needed:
            return f"{', '.join(leading)}: {self._undecided_frames} of {self.frames_needed} frames"
        if _YH_PAIR <= set(leading):
            return (
                "yh_fwd and yh_rev both read every frame and nothing in them tells which way "
                "round (docs/protocol.md §1.7): set protocol explicitly"
            )
        return f"{', '.join(leading)} tie"

    def reset(self) -> None:
        """After reopening the port: the decided decoder resyncs; an undecided search restarts."""
        if self.decoder is not None:
            self.decoder.reset()
        else:
            self._start()

    def redetect(self) -> None:
        """Forget the decision (e.g. another scale was plugged in) and detect again."""
        self.decoder = None
        self._start()

    def feed(self, data: bytes) -> list[Decoded]:
        if self.decoder is not None:
            return self.decoder.feed(data)
        for index in range(len(data)):
            self.sampled_bytes += 1
            byte = data[index : index + 1]
            emitted = False
            for name, trial in self._trials.items():
                items = trial.feed(byte)
                if items:
                    emitted = True
                    self._record(name, items)
            if emitted and (choice := self._decide()) is not None:
                decoder = self._trials[choice]
                out = list(self._history[choice])
                self.decoder = decoder
                self._trials, self._history, self._streak_raws = {}, {}, {}
                log.info(
                    "deteksi otomatis / auto-detected%s: %s after %d frames (%s)",
                    self._for(),
                    choice,
                    self._undecided_frames,
                    self.decided_by,
                )
                out.extend(decoder.feed(data[index + 1 :]))
                return out
            if emitted:
                self._say_undecided()
        return []

    # -- internals --

    def _for(self) -> str:
        return f" {self.label}" if self.label else ""

    def _say_undecided(self) -> None:
        if self._undecided_frames < self._next_warning:
            return
        self._next_warning *= 2
        log.warning(
            "deteksi otomatis belum memutuskan / auto-detection undecided%s after %d frames: %s",
            self._for(),
            self._undecided_frames,
            self.waiting_for,
        )

    def _record(self, name: str, items: list[Decoded]) -> None:
        self._history[name].extend(items)
        for item in items:
            if isinstance(item, FrameError):
                self._streak[name] = 0
                self._streak_raws[name].clear()
            elif isinstance(item, WeightReading):
                self._streak[name] += 1
                self._streak_raws[name].append(item.raw)
        self._undecided_frames = max(self._streak.values())

    def _decide(self) -> str | None:
        qualified = [c for c in self.candidates if self._streak[c] >= self.frames_needed]
        if not qualified:
            return None
        best = max(self._streak[c] for c in qualified)
        top = [c for c in qualified if self._streak[c] == best]
        self.decided_by = "streak" if len(top) == 1 else "order"
        if _YH_PAIR <= set(top):
            raws = list(self._streak_raws["yh_fwd"])
            vote = _yh_point(raws)
            self.decided_by = "decimal point"
            if vote is None:
                vote = _yh_vote(raws, max(1, self.frames_needed // 2))
                self.decided_by = "padding"
            if vote is None:
                self.decided_by = None
                return None
            top = [c for c in top if c not in _YH_PAIR or c == vote]
        return top[0]
