"""Toledo continuous output (``toledo_cont``, docs/protocol.md §1.6.5): ``STX SWA SWB SWC``,
weight and tare, CR and an optional checksum; as Fairbanks, Mettler and Liden send it. Pure."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

from gateway.scale_protocol.frames import (
    CR,
    STX,
    FrameError,
    Parsed,
    ScaleStatus,
    StatusKind,
    ToledoUnits,
    Unit,
    WeightReading,
    seven_bit,
    to_grams,
)
from gateway.scale_protocol.framing import ByteDecoder


def toledo_checksum(frame: bytes) -> int:
    """Toledo continuous checksum: two's complement of the 7-bit sum of STX … CR, in 7 bits."""
    return -sum(b & 0x7F for b in frame) & 0x7F


_TOLEDO_LEN: Final = 17
_TOLEDO_STATUS: Final = (1, 2, 3)
_TOLEDO_FIELD_RE: Final = re.compile(rb" *[0-9]*")
SWB_NET: Final = 0x01
SWB_NEGATIVE: Final = 0x02
SWB_OVER: Final = 0x04
SWB_MOTION: Final = 0x08
SWB_KG: Final = 0x10
SWC_LIDEN_LB: Final = 0x01


class ToledoDecoder(ByteDecoder):
    """Toledo (MT standard) continuous: ``STX SWA SWB SWC wwwwww tttttt CR [CKS]``, 17/18 bytes.

    SWA bits 0-2: decimal position (0-2 no decimals, 3-7 one to five decimals). SWB: bit 0 net,
    bit 1 negative, bit 2 out of range (overload, or underload when negative), bit 3 motion,
    bit 4 kg (1) / lb (0). ``units="fairbanks"`` (Fairbanks, Mettler) reads the unit there and
    takes SWC bits 0-2 = 1 as grams; ``units="liden"`` reads SWC bit 0 (0 kg, 1 lb) instead.
    Bit 7 of the status words is their parity bit.

    The checksum byte (two's complement of the 7-bit sum of STX … CR) is optional: with
    ``checksum=None`` the decoder learns from the first frames whether one follows the CR
    (the byte after CR is STX, or it matches the checksum).
    """

    protocol = "toledo_cont"

    def __init__(self, units: ToledoUnits = "fairbanks", checksum: bool | None = None) -> None:
        super().__init__()
        self.units: ToledoUnits = units
        self.checksum = checksum
        self._configured_checksum = checksum

    def _clear_buffer(self) -> None:
        super()._clear_buffer()
        self.checksum = self._configured_checksum

    def _split(self, data: bytes) -> list[bytes | FrameError]:
        out: list[bytes | FrameError] = []
        for byte in data:
            if len(self._buf) == _TOLEDO_LEN and self._complete(byte, out):
                continue
            self._take(byte, out)
        return out

    def _complete(self, byte: int, out: list[bytes | FrameError]) -> bool:
        """STX … CR is complete: True if ``byte`` is its checksum, False if it belongs to what
        follows (the next STX, or noise)."""
        frame = bytes(self._buf)
        self._buf.clear()
        if self.checksum is None:
            self.checksum = self._learn(frame, byte & 0x7F)
        if self.checksum is not False:
            out.append(frame + bytes([byte]))  # parse_frame checks the checksum
            return True
        out.append(frame)
        return False

    def _take(self, byte: int, out: list[bytes | FrameError]) -> None:
        """A byte of a frame being collected, a frame's start, or a byte outside any frame."""
        buf, low = self._buf, byte & 0x7F
        if low == STX:
            if buf:
                out.append(FrameError("bad_format", bytes(buf), "truncated: STX before CR"))
                buf.clear()
            self._sync()
            buf.append(byte)
        elif not buf:
            self._skip(byte)
        else:
            buf.append(byte)
            if len(buf) == _TOLEDO_LEN:
                if low != CR:
                    out.append(FrameError("bad_format", bytes(buf), "no CR at byte 17"))
                    buf.clear()
                elif self.checksum is False:
                    out.append(bytes(buf))
                    buf.clear()

    @staticmethod
    def _learn(frame: bytes, low: int) -> bool | None:
        """Checksum or not, from the byte after CR: False if it is STX and no valid checksum,
        True if it is a valid checksum and not STX; None (undecided) otherwise."""
        matches, is_stx = low == toledo_checksum(frame), low == STX
        if is_stx != matches:
            return matches
        return None

    def parse_frame(self, frame: bytes) -> Parsed:
        """``STX`` … ``CR`` inclusive, plus the checksum byte if there is one."""
        own = _TOLEDO_STATUS + ((_TOLEDO_LEN,) if len(frame) > _TOLEDO_LEN else ())
        seven = seven_bit(frame, own_parity=own)
        if len(seven) not in (_TOLEDO_LEN, _TOLEDO_LEN + 1) or seven[0] != STX or seven[16] != CR:
            raise FrameError("bad_format", frame, f"{len(seven)} bytes, not 17/18")
        if len(seven) > _TOLEDO_LEN and seven[17] != toledo_checksum(seven[:_TOLEDO_LEN]):
            raise FrameError("checksum", frame)
        swa, swb, swc = seven[1], seven[2], seven[3]
        weight, tare = seven[4:10], seven[10:16]
        if (
            _TOLEDO_FIELD_RE.fullmatch(weight) is None
            or _TOLEDO_FIELD_RE.fullmatch(tare) is None
            or not weight.strip()
        ):
            raise FrameError("bad_format", frame, "weight/tare fields")
        negative = bool(swb & SWB_NEGATIVE)
        if swb & SWB_OVER:
            kind: StatusKind = "underload" if negative else "overload"
            return ScaleStatus(kind, seven, self.protocol, "SWB.2")
        unit = self._unit(swb, swc, frame)
        places = max(0, (swa & 0x07) - 2)
        value = Decimal(int(weight)).scaleb(-places)
        grams = to_grams(-value if negative else value, unit, frame)
        tare_g = to_grams(Decimal(int(tare.strip() or b"0")).scaleb(-places), unit, frame)
        return WeightReading(
            "unstable" if swb & SWB_MOTION else "stable",
            "net" if swb & SWB_NET else "gross",
            grams,
            seven,
            self.protocol,
            tare_g=tare_g,
        )

    def _unit(self, swb: int, swc: int, frame: bytes) -> Unit:
        if self.units == "liden":
            return "lb" if swc & SWC_LIDEN_LB else "kg"
        extended = swc & 0x07
        if extended == 1:
            return "g"
        if extended:
            raise FrameError("unit", frame, f"SWC unit code {extended}")
        return "kg" if swb & SWB_KG else "lb"
