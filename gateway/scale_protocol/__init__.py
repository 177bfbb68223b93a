"""Scale and kiosk serial protocols: bytes in, typed readings out. Pure: no I/O, no clock.

Every weighing indicator a waste bank owns speaks one of the formats of docs/protocol.md §1
(Yaohua ``yh_stx``/``yh_rev``/``yh_fwd``/``a12e_chk``/``a12_ww``, A&D ``and_std``, the
``gs_nt`` "ST,GS," variant, CAS ``cas22``, ``toledo_cont``, Mettler ``mtsics``, ``ohaus`` and
DIY ``diy_hx711``). :func:`decoder_for` returns one :class:`ScaleDecoder` per protocol: it frames
the byte stream its own way (STX…ETX, CR LF, ``=``, STX…CR), keeps a bounded buffer, drops the
partial frame after (re)opening, and turns each frame into

* :class:`WeightReading` (integer grams; ``status`` ``"unknown"`` when the format has no
  stability flag), or
* :class:`ScaleStatus` (overload, underload, device error, busy: never a weight), or
* :class:`KioskFrame` (the kiosk box's ``#K,...*XX`` lines, on every CR LF format), or
* :class:`FrameError` (a typed reject; it is returned, never raised, by ``feed``).

``decoder_for("auto")`` returns an :class:`AutoDetector` that works out the protocol from the
stream itself. Bytes from a 7E1 device read as 8N1 carry the parity bit in bit 7; every decoder
checks and strips it.

The first module-level API (:func:`parse_line`, :class:`LineFramer`) is the original
"ST,GS," + kiosk path. Nothing here encodes: the simulators write their frames with code of their
own (``firmware_sim.encoders``), so the two sides are checked apart (tests/data/golden/).

One module per family of formats (``yaohua``, ``and_std``, ``cas``, ``toledo``, ``mtsics``,
``ohaus``, ``hx711``), the frame types and shared rules (``frames``), framing and the decoder
base (``framing``), the kiosk frames (``kiosk_line``) and the choice of a decoder (``detect``);
import from this package, which names the public API.
"""

from gateway.scale_protocol.and_std import DATA_WIDTH, AndStdDecoder, GsNtDecoder, parse_line
from gateway.scale_protocol.cas import Cas22Decoder
from gateway.scale_protocol.detect import (
    DETECT_HISTORY,
    DETECT_ORDER,
    FRAMES_NEEDED,
    AutoDetector,
    decoder_for,
)
from gateway.scale_protocol.frames import (
    CR,
    EQUALS,
    ETX,
    KIOSK_KINDS,
    LF,
    MAX_BUFFER,
    MAX_LINE,
    PROTOCOLS,
    STX,
    Decoded,
    FrameError,
    FrameReason,
    KioskFrame,
    KioskKind,
    Parsed,
    ProtocolId,
    ScaleStatus,
    StatusKind,
    ToledoUnits,
    Unit,
    WeightMode,
    WeightReading,
    WeightStatus,
)
from gateway.scale_protocol.framing import LineFramer, ScaleDecoder
from gateway.scale_protocol.hx711 import Hx711Decoder
from gateway.scale_protocol.kiosk_line import DIVISION_G, SEQ_MAX
from gateway.scale_protocol.mtsics import MtSicsDecoder
from gateway.scale_protocol.ohaus import OhausDecoder
from gateway.scale_protocol.toledo import (
    SWB_KG,
    SWB_MOTION,
    SWB_NEGATIVE,
    SWB_NET,
    SWB_OVER,
    SWC_LIDEN_LB,
    ToledoDecoder,
    toledo_checksum,
)
from gateway.scale_protocol.yaohua import (
    A12eChkDecoder,
    A12WwDecoder,
    YhFwdDecoder,
    YhRevDecoder,
    YhStxDecoder,
)

__all__ = [
    "WeightStatus",
    "WeightMode",
    "StatusKind",
    "KioskKind",
    "FrameReason",
    "Unit",
    "ToledoUnits",
    "ProtocolId",
    "PROTOCOLS",
    "KIOSK_KINDS",
    "SEQ_MAX",
    "DIVISION_G",
    "MAX_LINE",
    "MAX_BUFFER",
    "FRAMES_NEEDED",
    "DATA_WIDTH",
    "STX",
    "ETX",
    "CR",
    "LF",
    "EQUALS",
    "FrameError",
    "WeightReading",
    "ScaleStatus",
    "KioskFrame",
    "Parsed",
    "Decoded",
    "toledo_checksum",
    "parse_line",
    "LineFramer",
    "ScaleDecoder",
    "GsNtDecoder",
    "AndStdDecoder",
    "Cas22Decoder",
    "A12eChkDecoder",
    "A12WwDecoder",
    "MtSicsDecoder",
    "OhausDecoder",
    "Hx711Decoder",
    "YhStxDecoder",
    "YhRevDecoder",
    "YhFwdDecoder",
    "SWB_NET",
    "SWB_NEGATIVE",
    "SWB_OVER",
    "SWB_MOTION",
    "SWB_KG",
    "SWC_LIDEN_LB",
    "ToledoDecoder",
    "decoder_for",
    "DETECT_ORDER",
    "DETECT_HISTORY",
    "AutoDetector",
]
