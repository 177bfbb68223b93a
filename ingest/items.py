"""One message of a batch on its way through the ingester, and why one is rejected.

:func:`validate` reads a payload as its model (or says why not, as :class:`Rejected`, whose text
becomes the dead letter's error); :class:`Item` carries the message, what it was found to be and
the points it gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from wastebank.broker_events import Refusal
from wastebank.errors import BadInput
from wastebank.messages import (
    TEXT_PATTERN,
    DepositEvent,
    FillReading,
    GatewayAlert,
    GatewayHealth,
    GatewayStatus,
    PayloadTooLarge,
    check_size,
)
from wastebank.structs import Invalid, decode_json


@dataclass(frozen=True)
class Cleared:
    """An empty message on a retained report's topic (a device's ``health`` or ``status``): MQTT's
    way of deleting the retained report, which an operator does when a device leaves for good
    (docs/fleet.md, "Limits"). Counted and logged; not a dead letter, and nothing is stored."""

    topic: str


Parsed = (
    DepositEvent | FillReading | GatewayHealth | GatewayStatus | GatewayAlert | Refusal | Cleared
)
"""What a message can be, once validated."""
M = TypeVar("M", DepositEvent, FillReading, GatewayHealth, GatewayStatus, GatewayAlert, Refusal)


class Rejected(BadInput):
    """A message that cannot be applied; the text says why (it becomes the dead letter's error)."""


@dataclass
class Item:
    """One message of a batch on its way through."""

    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 0
    connection: int = 0
    parsed: Parsed | None = None
    error: str | None = None
    lines: list[str] = field(default_factory=list)


def event_id_of(msg: object) -> str | None:
    return msg.event_id if isinstance(msg, DepositEvent) else None


_TEXT_WORDS = {
    f"Expected `str` matching regex {TEXT_PATTERN!r}": "control character refused "
    "(C0 incl. tab and newline, DEL, C1; docs/protocol.md, Limits and strictness)"
}
"""msgspec's sentence for a free-text field with a control character, in words."""


def validate(model: type[M], payload: bytes) -> M:
    """The payload as ``model``. Over the payload limit (``messages.MAX_PAYLOAD_BYTES``) it is
    refused unread (``oversized: ...``); a schema violation is ``invalid <Model>: <where>: <why>``,
    ``<where>`` the field's dotted path (``scales.0.frames_parsed``) or ``payload`` for the
    message as a whole (malformed JSON, NaN, a rule across fields). A field name is the
    sender's text: it is escaped where it is printed (``formats.terminal_text``)."""
    try:
        check_size(payload)
    except PayloadTooLarge as exc:
        raise Rejected(str(exc)) from None
    try:
        return decode_json(payload, model)
    except Invalid as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in loc) or 'payload'}: {_TEXT_WORDS.get(msg, msg)}"
            for loc, msg in exc.problems
        )
        raise Rejected(f"invalid {model.__name__}: {errors}") from None
