"""The kiosk box's frames, ``#K,<seq>,<KIND>[,<value>]*<XOR>`` (docs/protocol.md §2): read on
every CR LF line format, so a card reader and keypad can share the scale's port. Pure."""

from __future__ import annotations

import re
from typing import Final

from gateway.scale_protocol.frames import (
    KIOSK_KINDS,
    FrameError,
    FrameReason,
    KioskFrame,
    KioskKind,
    xor,
)
from wastebank.messages import CODE_PATTERN

_KIND_BY_NAME: Final[dict[str, KioskKind]] = {kind: kind for kind in KIOSK_KINDS}
SEQ_MAX: Final = 65535
DIVISION_G: Final = 10
"""The kiosk indicator's display division (0.01 kg, docs/protocol.md §1.2)."""
_KIOSK_RE: Final = re.compile(r"#(?P<body>[^*]*)\*(?P<checksum>[0-9A-Fa-f]{2})")
_SEQ_RE: Final = re.compile(r"0|[1-9][0-9]{0,4}")
_CARD_RE: Final = re.compile(r"[0-9A-F]{8,20}")
_CODE_RE: Final = re.compile(CODE_PATTERN)


def _field_problem(seq: int, kind: str, value: str) -> tuple[FrameReason, str] | None:
    if not 0 <= seq <= SEQ_MAX:
        return "bad_value", f"seq {seq} outside 0..{SEQ_MAX}"
    if kind not in _KIND_BY_NAME:
        return "bad_value", f"kind {kind!r}"
    if kind == "CARD" and _CARD_RE.fullmatch(value) is None:
        return "bad_value", "card UID must be 8-20 upper-case hex digits"
    if kind == "CAT" and _CODE_RE.fullmatch(value) is None:
        return "bad_value", "category code must be [a-z0-9-]"
    if kind in ("OK", "CANCEL") and value:
        return "bad_format", f"{kind} takes no value"
    return None


def parse_kiosk(text: str, raw: bytes, line: bytes) -> KioskFrame:
    match = _KIOSK_RE.fullmatch(text)
    if match is None:
        raise FrameError("bad_format", line)
    body = match["body"]
    if xor(body.encode("ascii")) != int(match["checksum"], 16):
        raise FrameError("checksum", line)
    fields = body.split(",")
    if fields[0] != "K" or len(fields) not in (3, 4):
        raise FrameError("bad_format", line, "expected K,<seq>,<KIND>[,<value>]")
    if _SEQ_RE.fullmatch(fields[1]) is None:
        raise FrameError("bad_value", line, "seq")
    seq, kind = int(fields[1]), fields[2]
    value = fields[3] if len(fields) == 4 else ""
    if kind in ("CARD", "CAT") and len(fields) != 4:
        raise FrameError("bad_format", line, f"{kind} needs a value")
    if (problem := _field_problem(seq, kind, value)) is not None:
        raise FrameError(problem[0], line, problem[1])
    return KioskFrame(seq, _KIND_BY_NAME[kind], value, raw)
