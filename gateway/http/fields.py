"""A request's input read against a msgspec type's declared fields and constraints
(:func:`msgspec.inspect.type_info`), every field at once, each refusal typed and located as
FastAPI's pydantic typed it (``missing``, ``int_parsing``, ``less_than_equal``,
``string_too_long``...), which :mod:`gateway.http.validation` words for the attendant.

msgspec stops at the first problem and says it in one English sentence; an attendant's form
marks every bad field, so the reasons come from the declared structure checked against the
value, never from msgspec's prose. A yes/no is ``true``/``false`` in a JSON
body, read from ``"true"``, ``"0"``, ``"yes"``... only where every value is text; a date from
``"2026-12-06"``. Fields a Struct does not declare are ignored, unless it forbids them
(``forbid_unknown_fields``).

A whole number (money in Rupiah, weights in grams) is never guessed at. In a JSON body it is a
JSON integer only: a string, a bool or a float is refused (``"100.000"`` was read as 100 and
``true`` as 1, a sale recorded at Rp1/kg). Where every value is text (a path or query
parameter, a :class:`Form`) it is digits, with an optional sign and ``_`` between groups: a dot
is refused, never read as a fraction (in id-ID ``"100.000"`` is a hundred thousand, in English
a hundred: either reading could be the wrong one, so neither is taken).
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
import msgspec.inspect as mi

from wastebank.errors import BadInput
from wastebank.structs import Invalid, Loc, convert, yes_no

__all__ = ["Error", "Form", "read"]

Error = dict[str, Any]
"""One refusal: ``type``, ``loc``, ``msg`` and, for a constraint, ``ctx`` (e.g. ``{"le": 999}``)."""

_DIGITS = re.compile(r"[+-]?\d+(?:_\d+)*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_BOUNDS: tuple[tuple[str, str, str, Callable[[int, int], bool]], ...] = (
    ("ge", "greater_than_equal", "greater than or equal to", operator.ge),
    ("gt", "greater_than", "greater than", operator.gt),
    ("le", "less_than_equal", "less than or equal to", operator.le),
    ("lt", "less_than", "less than", operator.lt),
)
_DAY_S = 86_400
_MS_FROM = 20_000_000_000
"""A timestamp above this is in milliseconds (pydantic's rule for a number given as a date)."""


class Form(msgspec.Struct):
    """A form post's Struct (:func:`gateway.http.routing.parse_form`): its values are text, so a
    whole number is read from digits, as a path or query parameter's is. Any other Struct is a
    JSON body, whose whole numbers are JSON integers (see the module's docstring)."""


class _Bad(BadInput):
    """One field's refusal, inside this module (the caller gets :data:`Error` dicts)."""

    def __init__(self, kind: str, msg: str, ctx: dict[str, Any] | None = None) -> None:
        super().__init__(msg)
        self.kind, self.msg, self.ctx = kind, msg, ctx


@functools.lru_cache(maxsize=256)
def _info(kind: Any) -> mi.Type:
    return mi.type_info(kind)


def read(kind: Any, value: Any, loc: Loc) -> tuple[Any, list[Error]]:
    """``value`` read as ``kind`` (a Struct, or a type ``Annotated`` with :class:`msgspec.Meta`
    constraints): the value (a Struct built by msgspec), or the refusals located under ``loc``
    (a Struct's in its fields' order)."""
    t = _info(kind)
    if isinstance(t, mi.StructType):
        value, errors = _struct(t, value, loc, text=issubclass(t.cls, Form))
        if errors:
            return None, errors
    else:  # a path or query parameter: text
        try:
            value = _read(t, value, text=True)
        except _Bad as bad:
            return None, [_error(bad, loc)]
    try:
        return convert(value, kind), []
    except Invalid as exc:  # a type this module does not read: msgspec's location, no reason
        return None, [
            {"type": "value_error", "loc": (*loc, *where), "msg": msg}
            for where, msg in exc.problems
        ]


def _error(bad: _Bad, loc: Loc) -> Error:
    error: Error = {"type": bad.kind, "loc": loc, "msg": bad.msg}
    if bad.ctx is not None:
        error["ctx"] = bad.ctx
    return error


def _struct(t: mi.Type, value: Any, loc: Loc, *, text: bool) -> tuple[Any, list[Error]]:
    assert isinstance(t, mi.StructType)
    if not isinstance(value, dict):
        bad = _Bad("model_attributes_type", "Input should be a valid dictionary or object")
        return None, [_error(bad, loc)]
    out: dict[str, Any] = {}
    errors: list[Error] = []
    for field in t.fields:
        name = field.encode_name
        if name not in value:
            if field.required:
                errors.append({"type": "missing", "loc": (*loc, name), "msg": "Field required"})
            continue
        try:
            out[name] = _read(field.type, value[name], text=text)
        except _Bad as bad:
            why = bad
            if bad.kind == "literal_error":  # type_info sorts a Literal's values: as declared
                declared = {f.encode_name: f.type for f in msgspec.structs.fields(t.cls)}
                why = _not_one_of(_literal_values(declared[name]) or ())
            errors.append(_error(why, (*loc, name)))
    if t.forbid_unknown_fields:
        known = {f.encode_name for f in t.fields}
        for name in value:
            if name not in known:
                extra = _Bad("extra_forbidden", "Extra inputs are not permitted")
                errors.append(_error(extra, (*loc, name)))
    return out, errors


def _read(t: mi.Type, v: Any, *, text: bool) -> Any:
    """``v`` read as ``t``; ``text``: the value came as text (a parameter, a form's field), not
    as a JSON body's typed value."""
    if isinstance(t, mi.UnionType):
        return _union(t, v, text=text)
    if isinstance(t, mi.AnyType):
        return v
    if isinstance(t, mi.NoneType):
        if v is None:
            return None
        raise _Bad("none_required", "Input should be None")
    if isinstance(t, mi.BoolType):
        return _bool(v, text=text)
    if isinstance(t, mi.IntType):
        return _bounded(t, _int(v, text=text))
    if isinstance(t, mi.StrType):
        return _str(t, v)
    if isinstance(t, mi.LiteralType):
        return _literal(t, v)
    if isinstance(t, mi.DateType):
        return _date(v)
    return v  # checked by msgspec when :func:`read` builds the value


def _union(t: mi.UnionType, v: Any, *, text: bool) -> Any:
    if v is None and any(isinstance(m, mi.NoneType) for m in t.types):
        return None
    first: _Bad | None = None
    for member in t.types:
        if isinstance(member, mi.NoneType):
            continue
        try:
            return _read(member, v, text=text)
        except _Bad as bad:
            first = first or bad
    assert first is not None
    raise first


def _bool(v: Any, *, text: bool) -> bool:
    if isinstance(v, bool):
        return v
    if not text:  # a JSON body's yes/no is true or false: "yes" and 1 were taken (review 27)
        raise _Bad("bool_type", "Input should be a valid boolean")
    if isinstance(v, str) and (word := yes_no(v)) is not None:
        return word
    if isinstance(v, (str, int, float)):
        raise _Bad("bool_parsing", "Input should be a valid boolean, unable to interpret input")
    raise _Bad("bool_type", "Input should be a valid boolean")


def _int(v: Any, *, text: bool) -> int:
    if isinstance(v, bool):  # an int to Python, never a number to the attendant: true is not 1
        raise _Bad("int_type", "Input should be a valid integer")
    if isinstance(v, int):
        return v
    if isinstance(v, float):  # 12.0 too: a JSON integer has no point
        if math.isfinite(v) and not v.is_integer():
            raise _Bad(
                "int_from_float",
                "Input should be a valid integer, got a number with a fractional part",
            )
        raise _Bad("int_type", "Input should be a valid integer")
    if isinstance(v, str) and text:
        if _DIGITS.fullmatch(v.strip()):
            return int(v.strip())
        raise _Bad(
            "int_parsing", "Input should be a valid integer, unable to parse string as an integer"
        )
    raise _Bad("int_type", "Input should be a valid integer")


def _bounded(t: mi.IntType, v: int) -> int:
    for key, kind, words, holds in _BOUNDS:
        n = getattr(t, key)
        if n is not None and not holds(v, n):
            raise _Bad(kind, f"Input should be {words} {n}", {key: n})
    return v


def _str(t: mi.StrType, v: Any) -> str:
    if not isinstance(v, str):
        raise _Bad("string_type", "Input should be a valid string")
    if t.min_length is not None and len(v) < t.min_length:
        n = t.min_length
        raise _Bad(
            "string_too_short", f"String should have at least {n} characters", {"min_length": n}
        )
    if t.max_length is not None and len(v) > t.max_length:
        n = t.max_length
        raise _Bad(
            "string_too_long", f"String should have at most {n} characters", {"max_length": n}
        )
    if t.pattern is not None and not re.search(t.pattern, v):
        p = t.pattern
        raise _Bad("string_pattern_mismatch", f"String should match pattern '{p}'", {"pattern": p})
    return v


def _literal(t: mi.LiteralType, v: Any) -> Any:
    for allowed in t.values:
        if type(v) is type(allowed) and v == allowed:
            return v
    raise _not_one_of(t.values)


def _not_one_of(values: tuple[Any, ...]) -> _Bad:
    shown = [repr(a) for a in values]
    expected = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
    return _Bad("literal_error", f"Input should be {expected}", {"expected": expected})


def _literal_values(kind: Any) -> tuple[Any, ...] | None:
    """The values of the ``Literal`` in ``kind`` (possibly ``Annotated`` or in a union), in
    their declared order."""
    origin = get_origin(kind)
    if origin is Literal:
        return get_args(kind)
    if origin in (Annotated, Union, UnionType):
        for arg in get_args(kind):
            found = _literal_values(arg)
            if found is not None:
                return found
    return None


_NOT_A_DATE = ("date_from_datetime_parsing", "Input should be a valid date")
_NOT_MIDNIGHT = ("date_from_datetime_inexact", "Datetimes provided to dates should have zero time")


def _date(v: Any) -> date:
    if isinstance(v, date) and not isinstance(v, datetime):
        return v
    if isinstance(v, str):
        return _date_text(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        seconds = v / 1000 if abs(v) > _MS_FROM else v
        if seconds % _DAY_S == 0:
            with contextlib.suppress(OverflowError, ValueError, OSError):
                return datetime.fromtimestamp(seconds, UTC).date()
        raise _Bad(*_NOT_MIDNIGHT)
    raise _Bad("date_type", "Input should be a valid date")


def _date_text(v: str) -> date:
    """``2026-12-06``, or a datetime at its midnight (``2026-12-06T00:00:00Z``)."""
    if not _DATE.match(v):
        raise _Bad(*_NOT_A_DATE)
    try:
        at = date.fromisoformat(v) if _DATE.fullmatch(v) else datetime.fromisoformat(v)
    except ValueError:
        raise _Bad(*_NOT_A_DATE) from None
    if not isinstance(at, datetime):
        return at
    if at.time() != time():
        raise _Bad(*_NOT_MIDNIGHT)
    return at.date()
