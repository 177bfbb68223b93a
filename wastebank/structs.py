"""msgspec Structs at our edges: decode, convert and check with one exception, :class:`Invalid`,
that says where the input is wrong.

The wire contract, every process's settings and the gateway's local endpoint are msgspec Structs
(a Pi's gateway cannot spare pydantic's ~13 MB, docs/scaling.md). msgspec checks a Struct's
constraints (``msgspec.Meta``) when it decodes or converts, never in ``__init__``: a Struct our
code builds is checked with :func:`checked` (or built by :func:`replace`) before it leaves.

msgspec reports the first problem only, as one sentence ending in its location
(``Expected `int` >= 1 - at `$.items[0].net_g```); :func:`problem` splits the location off into
a tuple of field names and indexes. Nothing else reads msgspec's sentences.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from wastebank.errors import BadInput

__all__ = [
    "Invalid",
    "Loc",
    "checked",
    "convert",
    "decode_json",
    "encode_json",
    "problem",
    "replace",
    "to_builtins",
    "yes_no",
]

T = TypeVar("T")
Loc = tuple[str | int, ...]
"""Where in the input: field names and list indexes from the top (``("items", 0, "net_g")``);
``"..."`` stands for a dict's key, which msgspec does not name."""

_AT = re.compile(r" - at (?P<key>`key` in )?`\$(?P<path>[^`]*)`$")
_STEP = re.compile(r"\.(?P<name>[^.\[]+)|\[(?P<index>\d+)\]|\[(?P<key>\.\.\.)\]")
# The two problems msgspec locates at the object, naming the field in the sentence: the field
# belongs in the location.
_NAMED_FIELD = re.compile(r"^Object (?:missing required|contains unknown) field `(?P<field>[^`]+)`")


_YES = frozenset({"1", "on", "t", "true", "y", "yes"})
_NO = frozenset({"0", "off", "f", "false", "n", "no"})


def yes_no(word: str) -> bool | None:
    """``word`` as a boolean the way forms and environment variables write one (pydantic's
    words: 1/0, true/false, yes/no, on/off, t/f, y/n, in any case); None when it is neither."""
    word = word.lower()
    return True if word in _YES else False if word in _NO else None


class Invalid(BadInput, ValueError):
    """Input that does not fit a Struct. ``problems``: ``[(loc, msg)]`` (msgspec stops at the first
    one, so there is one); ``str()`` is ``msg`` followed by `` (at a.b[0])`` when located."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(_located_text(loc, msg) for loc, msg in problems))


def _located_text(loc: Loc, msg: str) -> str:
    if not loc:
        return msg
    where = "".join(f"[{p}]" if isinstance(p, int) or p == "..." else f".{p}" for p in loc)
    where = where.removeprefix(".")
    return f"{msg} (at {where})"


def problem(exc: msgspec.ValidationError | msgspec.DecodeError) -> tuple[Loc, str]:
    """``exc``'s location (:data:`Loc`) and its sentence without the location."""
    text = str(exc)
    loc: list[str | int] = []
    if m := _AT.search(text):
        text = text[: m.start()]
        for step in _STEP.finditer(m["path"]):
            if step["name"] is not None:
                loc.append(step["name"])
            elif step["index"] is not None:
                loc.append(int(step["index"]))
            else:
                loc.append("...")
        if m["key"]:  # a dict's key itself is wrong: located as the key it stands for
            loc.append("...")
    if named := _NAMED_FIELD.match(text):
        loc.append(named["field"])
    return tuple(loc), text


def _invalid(exc: msgspec.ValidationError | msgspec.DecodeError) -> Invalid:
    return Invalid([problem(exc)])


def decode_json(data: bytes | str, cls: type[T], *, strict: bool = True) -> T:
    """``data`` (JSON) as ``cls``; malformed JSON and a misfit alike raise :class:`Invalid`."""
    try:
        return msgspec.json.decode(data, type=cls, strict=strict)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _invalid(exc) from None


def convert(value: Any, cls: type[T], *, strict: bool = True, from_attributes: bool = False) -> T:
    """``value`` (builtins: dicts, lists, strings, numbers...) as ``cls``, constraints checked;
    ``strict=False`` also reads numbers and booleans from strings (environment variables, forms)."""
    try:
        return msgspec.convert(value, cls, strict=strict, from_attributes=from_attributes)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None


def to_builtins(obj: Any) -> Any:
    """``obj`` as JSON's types (datetimes as ISO 8601 strings, Structs as dicts)."""
    return msgspec.to_builtins(obj)


def encode_json(obj: Any) -> bytes:
    """``obj`` as compact JSON bytes."""
    return msgspec.json.encode(obj)


def checked(obj: T) -> T:
    """``obj`` (a Struct built by our code) with its constraints checked as decoding would;
    raises :class:`Invalid`. Returns an equal new Struct."""
    return convert(to_builtins(obj), type(obj))


def replace(obj: T, **changes: Any) -> T:
    """A copy of the Struct ``obj`` with ``changes``, checked (:func:`checked`)."""
    return checked(msgspec.structs.replace(obj, **changes))  # type: ignore[type-var]
