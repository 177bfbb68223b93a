"""wastebank.structs: msgspec at our edges, one exception that says where the input is wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
import pytest

from wastebank import structs
from wastebank.errors import BadInput

Positive = Annotated[int, msgspec.Meta(ge=1)]
Aware = Annotated[datetime, msgspec.Meta(tz=True)]


class Item(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    net_g: Positive
    at: Aware
    raw: bytes = b""
    ratio: float = 0.0


class Batch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    items: list[Item]
    by_code: dict[str, Item] = {}


AT = '"at": "2026-12-07T09:00:00+08:00"'


@pytest.mark.parametrize(
    ("payload", "loc", "words"),
    [
        (f'{{"items": [{{"net_g": 0, {AT}}}]}}', ("items", 0, "net_g"), ">= 1"),
        (f'{{"items": [{{{AT}}}]}}', ("items", 0, "net_g"), "missing required field"),
        (f'{{"items": [{{"net_g": 1, {AT}, "x": 1}}]}}', ("items", 0, "x"), "unknown field"),
        ('{"items": [{"net_g": 1, "at": "2026-12-07T09:00:00"}]}', ("items", 0, "at"), "timezone"),
        (
            f'{{"items": [], "by_code": {{"k": {{"net_g": "1", {AT}}}}}}}',
            ("by_code", "...", "net_g"),
            "got `str`",
        ),
        (f'{{"items": [{{"net_g": 1.0, {AT}}}]}}', ("items", 0, "net_g"), "got `float`"),
        ('{"items": [', (), "truncated"),
        ("[]", (), "Expected `object`"),
    ],
)
def test_a_misfit_is_invalid_and_located(payload: str, loc: structs.Loc, words: str) -> None:
    with pytest.raises(structs.Invalid) as caught:
        structs.decode_json(payload, Batch)
    ((where, msg),) = caught.value.problems
    assert where == loc
    assert words in msg
    assert " - at " not in msg  # the location is in loc, not in the sentence
    assert isinstance(caught.value, BadInput)


def test_the_text_names_the_place() -> None:
    with pytest.raises(structs.Invalid, match=r"^Expected `int` >= 1 \(at items\[0\]\.net_g\)$"):
        structs.decode_json(f'{{"items": [{{"net_g": 0, {AT}}}]}}', Batch)
    with pytest.raises(structs.Invalid, match=r"\(at by_code\[\.\.\.\]\.net_g\)$"):
        structs.decode_json(f'{{"items": [], "by_code": {{"k": {{"net_g": 0, {AT}}}}}}}', Batch)


def test_a_struct_built_by_our_code_is_checked_as_decoding_would() -> None:
    at = datetime(2026, 12, 7, 1, tzinfo=UTC)
    bad = Item(net_g=0, at=at)  # msgspec does not check constraints in __init__
    with pytest.raises(structs.Invalid, match="net_g"):
        structs.checked(bad)
    with pytest.raises(structs.Invalid, match="timezone"):
        structs.checked(Item(net_g=1, at=datetime(2026, 12, 7, 1)))  # noqa: DTZ001
    good = Item(net_g=1, at=at, raw=b"\x00\xff", ratio=1)
    assert structs.checked(good) == good  # bytes and datetimes survive the round trip
    assert structs.replace(good, net_g=2).net_g == 2
    with pytest.raises(structs.Invalid, match="net_g"):
        structs.replace(good, net_g=-1)


def test_convert_reads_strings_only_when_asked() -> None:
    with pytest.raises(structs.Invalid, match="got `str`"):
        structs.convert({"net_g": "5", "at": "2026-12-07T01:00:00Z"}, Item)
    item = structs.convert({"net_g": "5", "at": "2026-12-07T01:00:00Z"}, Item, strict=False)
    assert item.net_g == 5
    assert structs.decode_json(structs.encode_json(item), Item) == item
    assert structs.to_builtins(item)["at"] == "2026-12-07T01:00:00Z"


@pytest.mark.parametrize(
    ("word", "value"),
    [("1", True), ("YES", True), ("on", True), ("t", True), ("0", False), ("No", False)]
    + [("off", False), ("F", False), ("2", None), ("", None), (" yes", None), ("ya", None)],
)
def test_the_yes_no_words_of_forms_and_environment_variables(word: str, value: bool | None) -> None:
    assert structs.yes_no(word) is value
