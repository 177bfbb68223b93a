"""Cutting a byte stream into frames, and what every decoder shares: the :class:`ScaleDecoder`
interface, its counters, the partial-frame rule after (re)opening, CR LF line framing. Pure."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Collection, Mapping
from typing import Protocol

from gateway.scale_protocol.frames import (
    CR,
    LF,
    MAX_LINE,
    Decoded,
    FrameError,
    FrameReason,
    Parsed,
    ascii_text,
    seven_bit,
)
from gateway.scale_protocol.kiosk_line import parse_kiosk

# ---- line framing ------------------------------------------------------------------------------


def _is_cr(byte: int) -> bool:
    return byte & 0x7F == CR  # CR is 0x8D on a 7E1 line read as 8N1


class LineFramer:
    """Cut a byte stream into lines at LF (a CR before the LF is dropped), with a bounded buffer.

    :meth:`feed` returns complete lines without CR/LF, skipping empty ones. A line longer than
    ``max_line`` yields one ``FrameError("overflow")`` carrying its first ``max_line + 1`` bytes;
    the rest of that line is discarded up to the next LF, after which framing resumes. The
    result does not depend on how the stream is chunked. ``dropped_bytes`` counts bytes of
    overflowed lines.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError("max_line must be >= 1")
        self.max_line = max_line
        self.dropped_bytes = 0
        self._buf = bytearray()
        self._discarding = False

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished line; never more than ``max_line + 1``."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget any partial line (e.g. after reopening the port)."""
        self._buf.clear()
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | FrameError]:
        out: list[bytes | FrameError] = []
        limit = self.max_line + 1  # room for a CR that may turn out to precede the LF
        start, size = 0, len(data)
        while start < size:
            newline = data.find(b"\n", start)
            end = size if newline < 0 else newline
            segment = data[start:end]
            if self._discarding:
                self.dropped_bytes += len(segment)
                self._discarding = newline < 0
            elif len(self._buf) + len(segment) > limit:
                self._overflow(out, segment)
                self._discarding = newline < 0
            elif newline < 0:
                self._buf += segment
            else:
                line = bytes(self._buf) + segment
                self._buf.clear()
                if line and _is_cr(line[-1]):
                    line = line[:-1]
                if len(line) > self.max_line:
                    self._buf += line  # exactly max_line + 1 bytes, no CR: still an overflow
                    self._overflow(out, b"")
                elif line:
                    out.append(line)
            if newline < 0:
                break
            start = newline + 1
        return out

    def _overflow(self, out: list[bytes | FrameError], segment: bytes) -> None:
        head = bytes(self._buf) + segment[: self.max_line + 1 - len(self._buf)]
        self.dropped_bytes += len(self._buf) + len(segment)
        self._buf.clear()
        out.append(FrameError("overflow", head, f"line longer than {self.max_line} bytes"))


# ---- decoders: the common interface ------------------------------------------------------------


class ScaleDecoder(Protocol):
    """Bytes from one serial port in, typed items out; one implementation per protocol.

    ``feed`` never raises: a bad frame comes back as a :class:`FrameError` item. Counters:
    ``parsed`` (frames that became a reading, status or kiosk frame), ``rejected`` (per
    reason; one per returned :class:`FrameError`), ``dropped_bytes`` (bytes outside any frame:
    the partial frame after opening, garbage between frames, the discarded tail of an overlong
    line) and ``partial_frames`` (partial frames dropped after opening). ``reset`` is for a
    reopened port: it forgets the buffer and drops the next partial frame again. ``protocol``
    is the protocol id; None only for an :class:`AutoDetector` that has not decided yet.
    """

    @property
    def protocol(self) -> str | None: ...
    @property
    def parsed(self) -> int: ...
    @property
    def rejected(self) -> Mapping[FrameReason, int]: ...
    @property
    def dropped_bytes(self) -> int: ...
    @property
    def partial_frames(self) -> int: ...
    @property
    def buffered(self) -> int: ...
    def feed(self, data: bytes) -> list[Decoded]: ...
    def reset(self) -> None: ...


class Decoder(ABC):
    """Counters, the partial-frame rule and the frame -> item loop; subclasses frame and parse."""

    protocol: str = ""

    def __init__(self) -> None:
        self.parsed = 0
        self.rejected: Counter[FrameReason] = Counter()
        self.dropped_bytes = 0
        self.partial_frames = 0
        self._synced = False
        self._skipped_content = False

    @property
    @abstractmethod
    def buffered(self) -> int: ...

    def reset(self) -> None:
        self._synced = False
        self._skipped_content = False
        self._clear_buffer()

    def feed(self, data: bytes) -> list[Decoded]:
        out: list[Decoded] = []
        for piece in self._split(data):
            item: Decoded
            if isinstance(piece, FrameError):
                item = piece
            else:
                try:
                    item = self.parse_frame(piece)
                except FrameError as exc:
                    item = exc
            if isinstance(item, FrameError):
                self.rejected[item.reason] += 1
            else:
                self.parsed += 1
            out.append(item)
        return out

    @abstractmethod
    def parse_frame(self, frame: bytes) -> Parsed:
        """One delimited frame as this decoder frames it; raises :class:`FrameError`."""

    @abstractmethod
    def _split(self, data: bytes) -> list[bytes | FrameError]:
        """Frames (and framing errors) completed by ``data``; bytes outside frames skipped."""

    @abstractmethod
    def _clear_buffer(self) -> None: ...

    def _skip(self, byte: int) -> None:
        """A byte outside any frame."""
        self.dropped_bytes += 1
        if not self._synced and byte & 0x7F not in (CR, LF):
            self._skipped_content = True

    def _sync(self) -> None:
        """The first frame start after (re)opening: what came before was a partial frame."""
        if not self._synced:
            self._synced = True
            if self._skipped_content:
                self.partial_frames += 1
            self._skipped_content = False


class ByteDecoder(Decoder):
    """A decoder that frames raw bytes itself (STX…ETX, ``=``, STX…CR) in its own buffer."""

    def __init__(self) -> None:
        super().__init__()
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def _clear_buffer(self) -> None:
        self._buf.clear()


# ---- CR LF line formats ------------------------------------------------------------------------


class LineDecoder(Decoder):
    """CR LF (or LF) lines; the first line after (re)opening is dropped as partial unless it
    starts with ``#`` (a kiosk frame, which its checksum protects).

    Lines starting with ``#`` are kiosk frames (docs/protocol.md §2) on every line format.
    """

    def __init__(self) -> None:
        super().__init__()
        self._framer = LineFramer(MAX_LINE)
        self._first_byte = True

    def reset(self) -> None:
        super().reset()
        self._first_byte = True

    @property
    def buffered(self) -> int:
        return self._framer.buffered

    def _clear_buffer(self) -> None:
        self._framer.reset()

    def _split(self, data: bytes) -> list[bytes | FrameError]:
        if not self._synced and data and self._first_byte:
            # The very first byte after (re)opening: if it is '#', a whole kiosk frame begins
            # here (it carries a checksum, so a truncated one could never pass): keep it. A card
            # tap right after the port opens must not be lost; a partial weight line is dropped
            # instead (the next arrives within 100 ms).
            self._first_byte = False
            if data[0] & 0x7F == ord("#"):
                self._sync()
        if not self._synced:
            newline = data.find(b"\n")
            head = data if newline < 0 else data[: newline + 1]
            for byte in head:
                self._skip(byte)
            if newline < 0:
                return []
            self._sync()
            data = data[newline + 1 :]
        before = self._framer.dropped_bytes
        pieces = self._framer.feed(data)
        self.dropped_bytes += self._framer.dropped_bytes - before
        return pieces

    def parse_frame(self, frame: bytes) -> Parsed:
        """One line without CR LF."""
        if not frame:
            raise FrameError("empty", frame)
        seven = seven_bit(frame, binary=self._binary_positions(frame))
        if seven[:1] == b"#":
            return parse_kiosk(ascii_text(seven, frame), seven, frame)
        return self._parse_text(seven, frame)

    def _binary_positions(self, frame: bytes) -> Collection[int]:
        return ()

    @abstractmethod
    def _parse_text(self, seven: bytes, frame: bytes) -> Parsed:
        """A line without CR LF: ``seven`` with parity bits removed, ``frame`` as received."""
