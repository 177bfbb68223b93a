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
    ScaleStatus,
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


RECENT_KEPT: Final = 16
"""Frames :attr:`AutoDetector.recent` keeps for inspection."""


def _what(item: Decoded) -> str:
    if isinstance(item, FrameError):
        return item.reason
    if isinstance(item, WeightReading):
        return "weight"
    return "status" if isinstance(item, ScaleStatus) else "kiosk"


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
    it produced while undecided (the last :data:`DETECT_HISTORY`; :attr:`replayed` says how many
    lead the list: read before the decision, never to be weighed) and from then on passes bytes
    straight through, so nothing beyond the first partial frame is lost.

    A decision is watched (:meth:`_watch`): a weight frame that does not fit it (an ``=`` frame
    whose decimal point is elsewhere than in the frames that decided, or, decided by padding,
    padded the other way round) comes back as ``FrameError("mismatch")``, never as a weight; a
    run of ``frames_needed`` frames that are rejects or mismatches, with no fitting weight among
    them, forgets the decision (logged at WARNING, :attr:`redetections`, :attr:`lost_because`)
    and detection starts again with the next bytes.
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
        self._seen: dict[str, int] = {}
        self.frames_undecided = 0
        """Frames delimited while undecided, over the detector's life (each read by the
        candidate that delimited the most; rejects count too and reset nothing)."""
        self.recent: deque[tuple[str, bytes]] = deque(maxlen=RECENT_KEPT)
        """The latest frames seen while undecided: (what the leading candidate made of it:
        ``weight``, ``status``, ``kiosk`` or its reject reason, the raw bytes)."""
        self.replayed = 0
        """How many items at the head of the last :meth:`feed` result were read before the
        decision (counted, never weighed: docs/protocol.md §1.7)."""
        self.redetections = 0
        self.lost_because: str | None = None
        """Why the last decision was forgotten (English), None if none was."""
        self._places: frozenset[int] = frozenset()
        self._misfits = 0
        self._start()

    def _start(self) -> None:
        self._trials = {c: _FACTORIES[c](self.unit, self.toledo_units) for c in self.candidates}
        self._streak = dict.fromkeys(self.candidates, 0)
        self._streak_raws = {c: deque(maxlen=DETECT_HISTORY) for c in self.candidates}
        self._history = {c: deque(maxlen=DETECT_HISTORY) for c in self.candidates}
        self._undecided_frames = 0
        self._seen = dict.fromkeys(self.candidates, 0)
        self._next_warning = 2 * self.frames_needed
        self._misfits = 0
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
    def frames_seen(self) -> int:
        """Frames delimited since this detection began (rejects included); the warnings count
        these, so a stream that every reject keeps undecided is reported too."""
        return max(self._seen.values(), default=0)

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
            seen = self.frames_seen
            return "no candidate reads the stream as weights" + (
                f" ({seen} frames seen, the latest rejected)" if seen else ""
            )
        if self._undecided_frames < self.frames_needed:
            broken = (
                f" ({self.frames_seen} frames seen: rejects break every run)"
                if self.frames_seen >= 2 * self.frames_needed
                else ""
            )
            return (
                f"{', '.join(leading)}: {self._undecided_frames} of {self.frames_needed} "
                f"frames{broken}"
            )
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
        self.replayed = 0
        if self.decoder is not None:
            return self._watch(self.decoder.feed(data))
        for index in range(len(data)):
            self.sampled_bytes += 1
            byte = data[index : index + 1]
            before, fed = self.frames_seen, {}
            for name, trial in self._trials.items():
                if items := trial.feed(byte):
                    fed[name] = items
                    self._record(name, items)
            emitted = bool(fed)
            if self.frames_seen > before:
                self._note_seen(fed, self.frames_seen - before)
            if emitted and (choice := self._decide()) is not None:
                decoder = self._trials[choice]
                out = list(self._history[choice])
                self.replayed = len(out)
                self._places = frozenset(raw[1:].find(b".") for raw in self._streak_raws[choice])
                self.decoder = decoder
                self._trials, self._history, self._streak_raws = {}, {}, {}
                log.info(
                    "deteksi otomatis / auto-detected%s: %s after %d frames (%s)",
                    self._for(),
                    choice,
                    self._undecided_frames,
                    self.decided_by,
                )
                out.extend(self._watch(decoder.feed(data[index + 1 :])))
                return out
            if emitted:
                self._say_undecided()
        return []

    # -- internals --

    def _for(self) -> str:
        return f" {self.label}" if self.label else ""

    def _say_undecided(self) -> None:
        if self.frames_seen < self._next_warning:
            return
        self._next_warning *= 2
        log.warning(
            "deteksi otomatis belum memutuskan / auto-detection undecided%s after %d frames: %s",
            self._for(),
            self.frames_seen,
            self.waiting_for,
        )

    def _fits(self, item: WeightReading) -> bool:
        """Whether a weight frame the decided decoder read fits the decision. Only the ``=``
        pair reads other frames "fine" with another value; what tells them apart is what
        decided: the decimal point's place (an indicator's decimals are a setting, fixed) and,
        for a decision by padding, the padding."""
        if self.protocol not in _YH_PAIR:
            return True
        if self._places and item.raw[1:].find(b".") not in self._places:
            return False
        return self.decided_by != "padding" or _yh_vote([item.raw], 1) in (None, self.protocol)

    def _watch(self, items: list[Decoded]) -> list[Decoded]:
        """The decided decoder's items, checked against the decision (see the class)."""
        out: list[Decoded] = []
        for index, item in enumerate(items):
            if isinstance(item, WeightReading) and not self._fits(item):
                item = FrameError("mismatch", item.raw, f"does not fit {self.protocol}")
            if isinstance(item, WeightReading):
                self._misfits = 0
            elif isinstance(item, FrameError):
                self._misfits += 1
            out.append(item)
            if self._misfits >= self.frames_needed:
                assert isinstance(item, FrameError)
                self._lose(item)
                out.extend(
                    FrameError("mismatch", rest.raw, "detecting again")
                    for rest in items[index + 1 :]
                )
                break
        return out

    def _lose(self, last: FrameError) -> None:
        was = self.protocol
        self.lost_because = (
            f"{self.frames_needed} frames in a row did not fit {was} "
            f"(the last: {last.reason} {last.raw[:32]!r})"
        )
        self.redetections += 1
        log.warning(
            "deteksi otomatis: aliran tidak cocok lagi, mendeteksi ulang / auto-detection: the "
            "stream no longer fits%s, detecting again: %s",
            self._for(),
            self.lost_because,
        )
        self.decoder = None
        self._start()

    def _note_seen(self, fed: dict[str, list[Decoded]], new: int) -> None:
        """Count the frames just seen and keep them as the candidate that read the most of them
        read them (rather than the first of the rivals that rejected them)."""
        self.frames_undecided += new
        leaders = [items for name, items in fed.items() if self._seen[name] == self.frames_seen]
        best = max(leaders, key=lambda items: sum(not isinstance(i, FrameError) for i in items))
        self.recent.extend((_what(item), item.raw) for item in best[-new:])

    def _record(self, name: str, items: list[Decoded]) -> None:
        self._history[name].extend(items)
        self._seen[name] += len(items)
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
