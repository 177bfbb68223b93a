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
    """Stream decoder for ``FF H L SUM`` frames.

    It looks for the 0xFF header and checks the sum; on a bad sum it counts a ``checksum`` reject
    and resynchronises on the next 0xFF *after* that header, so a frame hidden behind a false
    header (``FF FF 07 A1 A7``) is still found. Bytes before a header are counted in
    ``skipped_bytes``. Between calls the buffer holds at most 3 bytes (an incomplete frame), so
    it is bounded whatever arrives; the result does not depend on how the stream is chunked.
    Invariant: bytes fed = 4 * frames + rejects["checksum"] + skipped_bytes + buffered.
    """

    def __init__(self, source: FillSource = "jsn_sr04t") -> None:
        self.source: FillSource = source
        self.frames = 0
        self.skipped_bytes = 0
        self.rejects: Counter[RejectReason] = Counter()
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        """Forget a partial frame (e.g. after reopening the port)."""
        self._buf.clear()

    def feed(self, data: bytes) -> list[DistanceSample]:
        buf = self._buf
        buf += data
        out: list[DistanceSample] = []
        pos, size = 0, len(buf)
        while pos < size:
            start = buf.find(MODE2_HEADER, pos)
            if start < 0:
                self.skipped_bytes += size - pos
                pos = size
                break
            self.skipped_bytes += start - pos
            pos = start
            if size - start < MODE2_FRAME_LEN:
                break
            high, low, total = buf[start + 1], buf[start + 2], buf[start + 3]
            if mode2_checksum(high, low) != total:
                self.rejects["checksum"] += 1
                pos = start + 1
                continue
            frame = bytes(buf[start : start + MODE2_FRAME_LEN])
            out.append(DistanceSample(high * 256 + low, self.source, frame))
            self.frames += 1
            pos = start + MODE2_FRAME_LEN
        del buf[:pos]
        return out


# ---- MaxBotix ASCII ------------------------------------------------------------------------------

MM_PER_INCH: Final = 25.4
MAXBOTIX_MAX_INCHES: Final = 255
_MAXBOTIX_RE: Final = re.compile(rb"R([0-9]{3,4}) ?")


class MaxBotixDecoder:
    """Stream decoder for MaxBotix serial output ``R`` + 3 or 4 digits (+ optional space) + CR.

    Three digits are inches (converted to mm); four digits are mm, or cm when
    ``four_digit_unit="cm"`` (XL-MaxSonar). A line that does not match (e.g. the partial line
    seen right after opening the port, or bytes from an inverted RS-232 output read as TTL) is
    a ``bad_format`` reject; more than ``max_line`` bytes without CR is one ``overflow`` reject
    and the rest of that line is dropped. LF is ignored.
    """

    def __init__(self, *, four_digit_unit: Literal["mm", "cm"] = "mm", max_line: int = 16) -> None:
        if max_line < 6:
            raise ValueError("max_line must be >= 6")
        self.four_digit_unit = four_digit_unit
        self.max_line = max_line
        self.frames = 0
        self.dropped_bytes = 0
        self.rejects: Counter[RejectReason] = Counter()
        self._buf = bytearray()
        self._discarding = False

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
        else:
            distance = value * 10 if self.four_digit_unit == "cm" else value
        self.frames += 1
        return DistanceSample(distance, "maxbotix", line + b"\r")


def _split_keep_end(data: bytes, sep: bytes) -> list[tuple[bool, bytes]]:
    """Pieces of ``data`` split at ``sep``; True marks pieces that ended with ``sep``."""
    parts = data.split(sep)
    return [
        (i < len(parts) - 1, part) for i, part in enumerate(parts) if part or i < len(parts) - 1
    ]
