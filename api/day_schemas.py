"""Bodies of the routes of a bank's stock movements and its day (api/stock_moves.py,
api/day.py). Money integer Rupiah, weights integer grams, times aware (UTC in responses)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.schemas import (
    MAX_G,
    MAX_IDR,
    Code,
    IdempotencyKey,
    In,
    Reason,
    StockLineOut,
    UtcTime,
    Whole,
)

# ---- stock movements --------------------------------------------------------------------------


class CollectorOut(BaseModel):
    code: str
    name: str
    phone: str | None = None


class TransferIn(In):
    """A unit's stock delivered to its induk."""

    category: Code
    grams: Whole = Field(ge=1, le=MAX_G, description="what left the unit")
    received_g: Whole | None = Field(
        default=None,
        ge=0,
        le=MAX_G,
        description="what the induk weighed on arrival (default: grams); the rest is shrinkage",
    )
    at: UtcTime | None = None
    note: str = Field(default="", max_length=500)
    idempotency_key: IdempotencyKey | None = None


class ResidueIn(In):
    """Stock leaving as residue to the TPS/TPA (or burned)."""

    category: Code
    grams: Whole = Field(ge=1, le=MAX_G)
    kind: Literal["residue", "burned"] = "residue"
    at: UtcTime | None = None
    note: str = Field(default="", max_length=500)
    idempotency_key: IdempotencyKey | None = None


class MovementOut(BaseModel):
    id: int
    kind: str = Field(description="sale, transfer, residue, burned")
    bank_code: str
    to_bank_code: str | None = None
    category_code: str
    category_name: str
    grams: int
    received_g: int | None = None
    collector_code: str | None = None
    collector_name: str | None = None
    revenue_idr: int | None = None
    payment_method: str | None = None
    occurred_at: datetime
    author: str
    note: str


# ---- the day ----------------------------------------------------------------------------------


class CategoryTotalOut(BaseModel):
    category_code: str
    category_name: str
    unit: str
    count: int
    grams: int
    quantity: int = Field(default=0, description="pieces or millilitres (piece/litre categories)")
    amount_idr: int = Field(default=0, description="credited (deposits) or revenue (sales)")
    received_g: int = Field(default=0, description="transfers: what the induk weighed")


class MethodTotalOut(BaseModel):
    method: str = Field(description="cash, bank_transfer, ewallet")
    count: int
    amount_idr: int


class SumOut(BaseModel):
    count: int
    grams: int
    amount_idr: int


class CashOut(BaseModel):
    """The drawer over ``[cash_from, cash_until)``: expected = opening + in - out."""

    cash_from: datetime
    cash_until: datetime
    opening_idr: int
    opening_source: str = Field(description="previous_close, or entered (a bank's first close)")
    in_idr: int = Field(description="sales paid in cash")
    out_idr: int = Field(description="withdrawals paid in cash")
    expected_idr: int


class DayCloseOut(BaseModel):
    id: int
    bank_code: str
    local_date: date
    revision: int
    cash: CashOut
    counted_cash_idr: int
    difference_idr: int = Field(description="counted - expected: below zero, cash is missing")
    note: str
    closed_by: str
    closed_at: datetime
    reopened_at: datetime | None = None
    reopened_by: str | None = None
    reopen_reason: str | None = None


class DayOut(BaseModel):
    """A bank's local day from the ledger, and its close if any."""

    bank_code: str
    bank_name: str
    local_date: date
    zone: str = Field(description="the city's IANA zone, e.g. Asia/Jayapura")
    zone_label: str = Field(description="WIB, WITA or WIT")
    start: datetime
    end: datetime
    deposits: list[CategoryTotalOut]
    deposits_total: SumOut = Field(description="voided deposits excluded")
    voided: SumOut
    withdrawals_paid: list[MethodTotalOut]
    withdrawals_paid_total: SumOut
    sales: list[CategoryTotalOut]
    sales_by_method: list[MethodTotalOut]
    sales_total: SumOut
    transfers_out: list[CategoryTotalOut]
    transfers_in: list[CategoryTotalOut]
    residue: list[CategoryTotalOut]
    burned: list[CategoryTotalOut]
    stock: list[StockLineOut] = Field(description="held now (not at the end of that day)")
    close: DayCloseOut | None = Field(description="the close in force, if the day is closed")
    closes: list[DayCloseOut] = Field(description="every close of the day, reopened ones too")
    cash: CashOut | None = Field(
        description="the close's figures; for a day not yet closed, what a close would record "
        "now (None when it cannot be closed: see closable_why)"
    )
    closable: bool
    closable_why: str | None = None


class CloseIn(In):
    counted_cash_idr: Whole = Field(ge=0, le=MAX_IDR, description="the cash counted in the drawer")
    note: str = Field(default="", max_length=500)
    opening_cash_idr: Whole | None = Field(
        default=None,
        ge=0,
        le=MAX_IDR,
        description="the float at the start: only at a bank's first close (after, the "
        "previous close's counted cash)",
    )


class ReopenIn(In):
    reason: Reason
