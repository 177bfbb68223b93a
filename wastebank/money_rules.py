"""Money rules: plausibility limits on what one person may enter, and the withdrawal amount above
which a second person must approve (operator policy, ``[money]`` in the settings).

- **Prices** per kg, piece or litre (a category's unit): a minimum and a maximum, per category or
  for every category. A price list is set by one attendant, so a slip of the finger (an extra
  three zeros) or a dishonest one would reprice every deposit that follows.
- **Scale deposits**: the largest net weight one deposit from a scale may have, per scale
  (``"{gateway_id}/{scale_id}"``, e.g. its capacity) or for every scale. One over it is not
  credited: the ingester keeps it as an ``over_limit`` dead letter for an operator to resolve.
- **Manual deposits**: the largest weight and the largest amount an attendant may enter by hand.
- **Withdrawals**: above ``second_approval_above_idr`` a withdrawal needs three different
  people: who asked, who approves, who pays out (the member may be the one who asked).

Each limit has a value for every city and, optionally, a city's own (``cities.<city code>``:
the same fields). The most specific value wins: for a category's price, the city's value for the
category, then the default's value for the category, then the city's value for every category,
then the default; for a scale, likewise with ``scales``. These are settings, not data: they are
the city operator's policy (never an attendant's or an admin's through the API), each process
that writes money reads them (the API, the ingester, the CLI's ledger commands), and a refusal
names the setting that refused (``money.cities.ambon.price_max_idr``). docs/operations.md,
"Money rules", lists the defaults and why.

This module is pure: :class:`MoneyRules` resolves a city's limits and describes a value beyond
one as a :class:`Breach`; :mod:`wastebank.ledger` refuses it (``OverLimit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec
from msgspec import Meta, field

from wastebank.formats import kg, rupiah, unit_price

CODE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SCALE_KEY = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}/[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

Idr = Annotated[int, Meta(ge=0, le=10**12)]
Grams = Annotated[int, Meta(ge=1, le=10**10)]
CategoryCode = Annotated[str, Meta(pattern=CODE)]
ScaleKey = Annotated[str, Meta(pattern=SCALE_KEY)]
CityCode = Annotated[str, Meta(pattern=CODE)]


class Rules(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A table of ``[money]``: unknown keys refused."""


class PriceRange(Rules, kw_only=True):
    """A category's own price limits, per its unit (kg, piece, litre); an unset end falls back
    to the less specific value."""

    min_idr: Idr | None = None
    max_idr: Idr | None = None

    def __post_init__(self) -> None:
        if self.min_idr is not None and self.max_idr is not None and self.min_idr > self.max_idr:
            raise ValueError("min_idr is above max_idr")


class CityMoneyRules(Rules, kw_only=True):
    """A city's own values (``[money.cities.<city code>]``); a field left out is the default's.
    ``category_prices`` and ``scales`` add to the default's (the city's entry wins)."""

    price_min_idr: Idr | None = None
    price_max_idr: Idr | None = None
    category_prices: dict[CategoryCode, PriceRange] = {}
    scale_max_g: Grams | None = None
    scales: dict[ScaleKey, Grams] = {}
    manual_max_g: Grams | None = None
    manual_max_idr: Idr | None = None
    second_approval_above_idr: Idr | None = None


class MoneyRules(Rules, kw_only=True):
    """``[money]`` (environment ``WASTEBANK_MONEY__*``; the maps as JSON, e.g.
    ``WASTEBANK_MONEY__SCALES='{"gw-01/scale-01": 150000}'``). The price defaults are wide
    enough for every price in docs/methods.md section 10 (copper at most Rp50,000/kg) and
    narrow enough to stop an extra zero or three; docs/operations.md, "Money rules"."""

    price_min_idr: Annotated[
        Idr, Meta(description="the lowest price per kg, piece or litre of any category")
    ] = 0
    price_max_idr: Annotated[
        Idr,
        Meta(
            description="the highest price per kg, piece or litre of any category (copper, the "
            "dearest, is bought at Rp30,000-50,000/kg)"
        ),
    ] = 100_000
    category_prices: Annotated[
        dict[CategoryCode, PriceRange],
        Meta(description="a category's own range, by category code: {min_idr, max_idr}"),
    ] = field(default_factory=dict)
    scale_max_g: Annotated[
        Grams,
        Meta(description="the heaviest deposit from any scale, in grams (a 500 kg platform scale)"),
    ] = 500_000
    scales: Annotated[
        dict[ScaleKey, Grams],
        Meta(
            description="a scale's own maximum in grams (its capacity), by "
            "'{gateway_id}/{scale_id}'"
        ),
    ] = field(default_factory=dict)
    manual_max_g: Annotated[
        Grams, Meta(description="the heaviest deposit an attendant may enter by hand")
    ] = 500_000
    manual_max_idr: Annotated[
        Idr, Meta(description="the largest amount of a deposit entered by hand")
    ] = 5_000_000
    second_approval_above_idr: Annotated[
        Idr,
        Meta(
            description="a withdrawal above this needs a second person: the approver is not who "
            "asked, and who pays out is neither (0: every withdrawal)"
        ),
    ] = 1_000_000
    cities: Annotated[
        dict[CityCode, CityMoneyRules], Meta(description="a city's own values, by city code")
    ] = field(default_factory=dict)

    def city(self, code: str | None) -> CityRules:
        """The limits in force in the city ``code`` (None, or a city without values of its
        own: the defaults)."""
        own = self.cities.get(code) if code is not None else None
        return CityRules(self, own, code if own is not None else None)


DEFAULT_RULES = MoneyRules()
"""The built-in defaults, for callers that are given no settings (tests, scripts)."""


@dataclass(frozen=True)
class Breach:
    """A value beyond a limit: which setting refused it, its limit and the value, and the
    refusal in Bahasa Indonesia then English (id-ID numbers)."""

    setting: str
    limit: int
    value: int
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class CityRules:
    """One city's limits: each answer is a value and the setting it comes from."""

    rules: MoneyRules
    own: CityMoneyRules | None
    city_code: str | None

    def _city_name(self, field: str) -> str:
        return f"money.cities.{self.city_code}.{field}"

    def pick(self, field: str) -> tuple[int, str]:
        """A scalar limit (``manual_max_g``, ``scale_max_g``, ...): the city's, else the default."""
        if self.own is not None and (value := getattr(self.own, field)) is not None:
            return int(value), self._city_name(field)
        return int(getattr(self.rules, field)), f"money.{field}"

    def price_range(self, category_code: str) -> tuple[tuple[int, str], tuple[int, str]]:
        """((min, its setting), (max, its setting)) of a category's price."""
        out: list[tuple[int, str]] = []
        for end in ("min_idr", "max_idr"):
            found: tuple[int, str] | None = None
            own = self.own.category_prices.get(category_code) if self.own is not None else None
            default = self.rules.category_prices.get(category_code)
            if own is not None and (value := getattr(own, end)) is not None:
                found = value, self._city_name(f"category_prices.{category_code}.{end}")
            elif default is not None and (value := getattr(default, end)) is not None:
                found = value, f"money.category_prices.{category_code}.{end}"
            out.append(found or self.pick(f"price_{end}"))
        return out[0], out[1]

    def scale_max(self, gateway_id: str, scale_id: str) -> tuple[int, str]:
        key = f"{gateway_id}/{scale_id}"
        if self.own is not None and key in self.own.scales:
            return self.own.scales[key], self._city_name(f'scales."{key}"')
        if key in self.rules.scales:
            return self.rules.scales[key], f'money.scales."{key}"'
        return self.pick("scale_max_g")

    def own_scales(self) -> dict[str, int]:
        """The scales with a maximum of their own, by ``"{gateway_id}/{scale_id}"``."""
        return {**self.rules.scales, **(self.own.scales if self.own is not None else {})}

    def second_approval_above(self) -> tuple[int, str]:
        return self.pick("second_approval_above_idr")

    # ---- checks: None when the value is within its limits --------------------------------------

    def price_breach(self, category_code: str, unit: str, price_idr: int) -> Breach | None:
        (low, low_setting), (high, high_setting) = self.price_range(category_code)
        shown = unit_price(price_idr, unit)
        if price_idr > high:
            limit = unit_price(high, unit)
            return Breach(
                high_setting,
                high,
                price_idr,
                f"harga {category_code} {shown} di atas batas {limit} ({high_setting}) / "
                f"the price of {category_code}, {shown}, is above the limit {limit} "
                f"({high_setting})",
            )
        if price_idr < low:
            limit = unit_price(low, unit)
            return Breach(
                low_setting,
                low,
                price_idr,
                f"harga {category_code} {shown} di bawah batas {limit} ({low_setting}) / "
                f"the price of {category_code}, {shown}, is below the limit {limit} "
                f"({low_setting})",
            )
        return None

    def scale_breach(self, gateway_id: str, scale_id: str, net_g: int) -> Breach | None:
        high, setting = self.scale_max(gateway_id, scale_id)
        if net_g <= high:
            return None
        scale = f"{gateway_id}/{scale_id}"
        return Breach(
            setting,
            high,
            net_g,
            f"setoran {kg(net_g)} dari timbangan {scale} di atas batas {kg(high)} ({setting}) / "
            f"a deposit of {kg(net_g)} from scale {scale} is above the limit {kg(high)} "
            f"({setting})",
        )

    def manual_breach(self, net_g: int, amount_idr: int) -> Breach | None:
        high_g, setting_g = self.pick("manual_max_g")
        if net_g > high_g:
            return Breach(
                setting_g,
                high_g,
                net_g,
                f"setoran manual {kg(net_g)} di atas batas {kg(high_g)} ({setting_g}) / "
                f"a manual deposit of {kg(net_g)} is above the limit {kg(high_g)} "
                f"({setting_g})",
            )
        high_idr, setting_idr = self.pick("manual_max_idr")
        if amount_idr > high_idr:
            return Breach(
                setting_idr,
                high_idr,
                amount_idr,
                f"setoran manual senilai {rupiah(amount_idr)} di atas batas {rupiah(high_idr)} "
                f"({setting_idr}) / a manual deposit worth {rupiah(amount_idr)} is above the "
                f"limit {rupiah(high_idr)} ({setting_idr})",
            )
        return None

    def needs_second_person(self, amount_idr: int) -> bool:
        """Whether a withdrawal of ``amount_idr`` needs three different people."""
        return amount_idr > self.second_approval_above()[0]


def amount_for(net_g: int, price_per_kg_idr: int) -> int:
    """Integer Rupiah for ``net_g`` grams at ``price_per_kg_idr``, rounded half up: the one
    pricing rule, used by the ledger and by the gateway's estimate on the attendant's receipt."""
    return (net_g * price_per_kg_idr + 500) // 1000
