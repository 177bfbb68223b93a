"""Serial ultrasonic sensors' frames: the JSN-SR04T's mode 2 binary frame (also DFRobot A02YYUW /
SEN0312, DYP-ME007YS) and MaxBotix ASCII ``R`` + digits + CR. Pure; each decoder counts what it
rejects and never raises on line noise."""

from __future__ import annotations

import re
from collections import Counter
from typing import Final, Literal

from gateway.fill_sensor.samples import DistanceSample, FillDecodeError, FillSource, RejectReason

# ---- JSN-SR04T / A02YYUW / ME007YS binary frames -------------------------------------------------

MODE2_HEADER: Final = 0xFF
MODE2_FRAME_LEN: Final = 4
MODE2_MAX_MM: Final = 10_000
"""Farthest distance a mode-2 frame is taken to carry: the modules that send it range to 4.5 m
(A02YYUW, ME007YS) or 6 m (JSN-SR04T). A checksum-valid frame beyond it is a misalignment (read
one byte off, ``FF 01 FF FF`` = 511 mm becomes ``FF FF 01 FF`` = 65,281 mm), not a reading."""
MODE2_CONFIRM: Final = 2
"""Consecutive valid frames that confirm an alignment before the first of them is returned."""


def mode2_checksum(high: int, low: int) -> int:
    """SUM byte of a mode-2 frame: the low 8 bits of 0xFF + H + L."""
    return (MODE2_HEADER + high + low) & 0xFF


def decode_mode2_frame(frame: bytes) -> int:
    """Distance in mm from exactly one frame; raises :class:`FillDecodeError`."""
    if len(frame) != MODE2_FRAME_LEN or frame[0] != MODE2_HEADER:
        raise FillDecodeError("bad_format", frame, "not FF H L SUM")
    if mode2_checksum(frame[1], frame[2]) != frame[3]:
        raise FillDecodeError("checksum", frame)
    return frame[1] * 256 + frame[2]


class Mode2Decoder:
    """Stream decoder for ``FF H L SUM`` frames, which have no delimiter: the decoder has to find
    where frames start (their *alignment*) and notice when it has lost it.

    * Locked on an alignment, it reads a frame every 4 bytes. A frame that fails (not ``FF``
      first, a bad sum, or beyond ``max_mm``) is counted in ``rejects`` by reason (``bad_format``,
      ``checksum``, ``out_of_range``) and unlocks it.
    * Unlocked (at the start, after :meth:`reset`, after a failure) it hunts: byte by byte from
      the failed frame's second byte, an ``FF`` starts a candidate alignment, taken only when
      :data:`MODE2_CONFIRM` consecutive frames there are valid and no other alignment within the
      next 3 bytes is valid as well (an ``FF`` inside a frame can start a frame that checks: a
      reading of 255 mm is ``FF 00 FF FE``). A candidate whose own first frame fails is counted
      like a locked failure; bytes passed over are counted in ``skipped_bytes``.

    So a port opened mid-frame, on a checksum byte of ``FF``, or after line noise re-aligns
    within a few frames and never returns a distance read across two frames. The result does
    not depend on how the stream is chunked; between calls at most 10 bytes are buffered.
    Invariant: bytes fed = 4 * frames + skipped_bytes + buffered.
    """

    def __init__(self, source: FillSource = "jsn_sr04t", *, max_mm: int = MODE2_MAX_MM) -> None:
        self.source: FillSource = source
        self.max_mm = max_mm
        self.frames = 0
        self.skipped_bytes = 0
        self.rejects: Counter[RejectReason] = Counter()
        self._buf = bytearray()
        self._locked = False

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def locked(self) -> bool:
        """Whether the decoder knows where frames start."""
        return self._locked

    def reset(self) -> None:
        """Forget a partial frame and the alignment (e.g. after reopening the port)."""
        self._buf.clear()
        self._locked = False

    def _fault(self, pos: int) -> RejectReason | None:
        """Why the frame at ``pos`` (4 bytes there) is no frame; None when it is one."""
        buf = self._buf
        if buf[pos] != MODE2_HEADER:
            return "bad_format"
        if mode2_checksum(buf[pos + 1], buf[pos + 2]) != buf[pos + 3]:
            return "checksum"
        if buf[pos + 1] * 256 + buf[pos + 2] > self.max_mm:
            return "out_of_range"
        return None

    def _run(self, pos: int) -> int | None:
        """Valid frames from ``pos`` on, up to :data:`MODE2_CONFIRM`; None when the buffer ends
        before that is known."""
        for n in range(MODE2_CONFIRM):
            at = pos + n * MODE2_FRAME_LEN
            if len(self._buf) - at < MODE2_FRAME_LEN:
                return None
            if self._fault(at) is not None:
                return n
        return MODE2_CONFIRM

    def _hunt(self, pos: int) -> bool | None:
        """Whether to lock on the ``FF`` at ``pos``: None while the buffer cannot tell yet."""
        run = self._run(pos)
        if run is None or run < MODE2_CONFIRM:
            return None if run is None else False
        for rival in range(pos + 1, pos + MODE2_FRAME_LEN):
            if self._buf[rival] != MODE2_HEADER:
                continue
            rival_run = self._run(rival)
            if rival_run is None:
                return None
            if rival_run == MODE2_CONFIRM:
                return False  # two alignments check: wait for one of them to fail
        return True

    def feed(self, data: bytes) -> list[DistanceSample]:
        buf = self._buf
        buf += data
        out: list[DistanceSample] = []
        pos, size = 0, len(buf)
        while size - pos >= MODE2_FRAME_LEN:
            if self._locked:
                fault = self._fault(pos)
                if fault is None:
                    frame = bytes(buf[pos : pos + MODE2_FRAME_LEN])
                    out.append(DistanceSample(frame[1] * 256 + frame[2], self.source, frame))
                    self.frames += 1
                    pos += MODE2_FRAME_LEN
                    continue
                self.rejects[fault] += 1
                self._locked = False
                self.skipped_bytes += 1
                pos += 1
                continue
            start = buf.find(MODE2_HEADER, pos)
            if start < 0:
                start = size
            self.skipped_bytes += start - pos
            pos = start
            if size - pos < MODE2_FRAME_LEN:
                break
            fault = self._fault(pos)
            if fault is not None:
                self.rejects[fault] += 1
            else:
                lock = self._hunt(pos)
                if lock is None:
                    break
                if lock:
                    self._locked = True
                    continue
            self.skipped_bytes += 1
            pos += 1
        del buf[:pos]
        return out


# ---- MaxBotix ASCII ------------------------------------------------------------------------------

MM_PER_INCH: Final = 25.4
MAXBOTIX_MAX_INCHES: Final = 255
_MAXBOTIX_RE: Final = re.compile(rb"R([0-9]{3,4}) ?")
MaxBotixModel = Literal["hrxl_5m", "hrxl_10m"]
MAXBOTIX_NO_TARGET: Final[dict[MaxBotixModel | None, frozenset[int]]] = {
    "hrxl_5m": frozenset({5000}),
    "hrxl_10m": frozenset({9999}),
    None: frozenset({5000, 9999}),
}
"""What an HRXL-MaxSonar (four digits, mm) sends when nothing is in range: its maximum reported
distance, 5000 on the 5 m models and 9999 on the 10 m models (HRXL-MaxSonar-WR datasheet,
PD11500: "for 5 meter sensors ... 5000 ... for 10 meter sensors ... 9999 (maximum reported
distance)"). A model not named takes both: a 10 m sensor whose surface sits at exactly 5.000 m
is then counted as no target (name its model to read it)."""
MAXBOTIX_MAX_MM: Final[dict[MaxBotixModel, int]] = {"hrxl_5m": 5000, "hrxl_10m": 9999}


class MaxBotixDecoder:
    """Stream decoder for MaxBotix serial output ``R`` + 3 or 4 digits (+ optional space) + CR.

    Three digits are inches (converted to mm); four digits are mm, or cm when
    ``four_digit_unit="cm"`` (XL-MaxSonar). In mm, the model's no-target code
    (:data:`MAXBOTIX_NO_TARGET`; ``model`` None: both) is counted in ``no_target`` and
    ``rejects["no_target"]`` and returns no sample, and ``no_target_run`` counts such frames
    since the latest distance (a sensor that sees nothing for a while); a value beyond the
    named model's range is ``bad_value``. A line that does not match (e.g. the partial line
    seen right after opening the port, or bytes from an inverted RS-232 output read as TTL) is
    a ``bad_format`` reject; more than ``max_line`` bytes without CR is one ``overflow``
    reject and the rest of that line is dropped. LF is ignored.
    """

    def __init__(
        self,
        *,
        four_digit_unit: Literal["mm", "cm"] = "mm",
        model: MaxBotixModel | None = None,
        max_line: int = 16,
    ) -> None:
        if max_line < 6:
            raise ValueError("max_line must be >= 6")
        if model is not None and four_digit_unit != "mm":
            raise ValueError(f"{model} reports mm")
        self.four_digit_unit = four_digit_unit
        self.model: MaxBotixModel | None = model
        self.max_line = max_line
        self.frames = 0
        self.dropped_bytes = 0
        self.rejects: Counter[RejectReason] = Counter()
        self.no_target_run = 0
        self._buf = bytearray()
        self._discarding = False

    @property
    def no_target(self) -> int:
        """Frames that said nothing was in range."""
        return self.rejects["no_target"]

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        self._buf.clear()
        self._discarding = False

    def feed(self, data: bytes) -> list[DistanceSample]:
        out: list[DistanceSample] = []
        for chunk_end, piece in _split_keep_end(data.replace(b"\n", b""), b"\r"):
            if self._discarding:
                self.dropped_bytes += len(piece)
                self._discarding = not chunk_end
                continue
            self._buf += piece
            if len(self._buf) > self.max_line:
                self.rejects["overflow"] += 1
                self.dropped_bytes += len(self._buf)
                self._buf.clear()
                self._discarding = not chunk_end
                continue
            if chunk_end:
                line = bytes(self._buf)
                self._buf.clear()
                sample = self._parse(line)
                if sample is not None:
                    out.append(sample)
        return out

    def _parse(self, line: bytes) -> DistanceSample | None:
        if not line:
            return None
        match = _MAXBOTIX_RE.fullmatch(line)
        if match is None:
            self.rejects["bad_format"] += 1
            return None
        digits = match[1]
        value = int(digits)
        if len(digits) == 3:
            if value > MAXBOTIX_MAX_INCHES:
                self.rejects["bad_value"] += 1
                return None
            distance = round(value * MM_PER_INCH)
        elif self.four_digit_unit == "cm":
            distance = value * 10
        elif value in MAXBOTIX_NO_TARGET[self.model]:
            self.rejects["no_target"] += 1
            self.no_target_run += 1
            return None
        elif self.model is not None and value > MAXBOTIX_MAX_MM[self.model]:
            self.rejects["bad_value"] += 1
            return None
        else:
            distance = value
        self.frames += 1
        self.no_target_run = 0
        return DistanceSample(distance, "maxbotix", line + b"\r")


def _split_keep_end(data: bytes, sep: bytes) -> list[tuple[bool, bytes]]:
    """Pieces of ``data`` split at ``sep``; True marks pieces that ended with ``sep``."""
    parts = data.split(sep)
    return [
        (i < len(parts) - 1, part) for i, part in enumerate(parts) if part or i < len(parts) - 1
    ]
