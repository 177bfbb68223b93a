"""How the attendant finds a member by what they type: forgiving about case, accents, spaces and
dashes, and about the bank's prefix of a member number.

A query finds a member when:

* its letters and digits (:func:`number_key`: "AMB 0001", "amb0001", "AMB-0001" are all
  ``AMB0001``) are the member's number's, or begin it (``AMB00`` ...);
* it is all digits and is the number's trailing number ("0001", "001" and "1" find AMB-0001:
  people say the number without the prefix), or begins it ("000", while typing);
* every word of it is in the member's name, folded (:func:`fold`: case and diacritics ignored,
  so "latu siti" and "LATUCONSINA" find Siti Latuconsina, "jose" finds José);
* it is a card UID the member holds (spaces and colons ignored: "04:A1:B2:C3:D4").

Best first: the exact number or card, then the trailing number, a number's beginning, a name
beginning with the query, any other name; alphabetically within each. Pure functions: the
gateway's directory (:meth:`gateway.attendant_store.Directory.search`) applies them to its
members, a few thousand at most at one bank.
"""

from __future__ import annotations

import re
from typing import Final

from wastebank.formats import unaccented

__all__ = ["EXACT", "card_key", "fold", "number_key", "rank"]

EXACT: Final = 0
"""The rank of an exact number or card match."""
_TRAILING: Final = re.compile(r"(\d+)$")
_NOT_ALNUM: Final = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Lower case, no diacritics, one space between words: "  JOSÉ  Pattiasina" -> "jose
    pattiasina"."""
    plain = unaccented(text).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", plain).split())


def number_key(text: str) -> str:
    """A member number's letters and digits only, upper case: "amb 0001" -> "AMB0001"."""
    return _NOT_ALNUM.sub("", fold(text)).upper()


def card_key(text: str) -> str:
    """A card UID as the directory keeps it: hex upper case, no spaces or colons."""
    return re.sub(r"[\s:\-]+", "", text).upper()


def rank(query: str, member_no: str, name: str, cards: tuple[str, ...] = ()) -> int | None:
    """How well ``query`` finds the member (lower is better, :data:`EXACT` best), None when it
    does not."""
    q = query.strip()
    if not q:
        return None
    key, number = number_key(q), number_key(member_no)
    if (key and key == number) or card_key(q) in cards:
        return EXACT
    trailing = _TRAILING.search(number)
    if key.isdigit() and trailing is not None and int(key) == int(trailing.group(1)):
        return 1
    if key and number.startswith(key):
        return 2
    if key.isdigit() and trailing is not None and trailing.group(1).startswith(key):
        return 2  # "000" on the way to "0001"
    words, folded = fold(q).split(), fold(name)
    if words and folded.startswith(" ".join(words)):
        return 3
    if (words and all(w in folded for w in words)) or q.casefold() in name.casefold():
        return 4  # the literal text too: a name's "100%" is found by "%"
    return None
