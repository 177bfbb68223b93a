"""Request and response bodies of the JSON API. Money is integer Rupiah, weights integer grams,
times aware (UTC in responses). Requests refuse unknown fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    model_validator,
)

from wastebank.ledger import MemberKind, PayoutMethod
from wastebank.passbook import MemberData

MAX_IDR = 10**12  # a trillion Rupiah: far above any real amount, far below BigInteger
MAX_G = 10**9  # a thousand tonnes
MEMBER_NO = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"
CODE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

# Every integer a request body takes (money, weights, counts) is this: a JSON integer, never a
# string, a bool or a float. Pydantic's lax mode read "150.000" as 150.0 and so Rp150, and
# true as 1; a misread amount is money paid wrong (422 in words instead, api/validation.py).
Whole = StrictInt
YesNo = StrictBool  # true or false: "yes", "on" and 1 switched SMS on (the SMS review)

Reason = Annotated[str, Field(min_length=1, max_length=500, pattern=r"\S")]
Code = Annotated[str, Field(pattern=CODE)]
MemberNo = Annotated[str, Field(pattern=MEMBER_NO)]
CardUid = Annotated[str, Field(pattern=r"^[0-9A-F]{4,20}$", description="upper-case hex")]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9]{8,15}$")]


def in_utc(at: datetime) -> datetime:
    """``at`` in UTC, as the ledger stores it; a time that has no UTC (0001-01-01T00:00+14:00,
    9999-12-31T23:59-12:00) is invalid, not an overflow deep in the ledger."""
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise ValueError("waktu di luar jangkauan / time out of range") from None


UtcTime = Annotated[AwareDatetime, AfterValidator(in_utc)]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---- auth -------------------------------------------------------------------------------------


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - OAuth2 token type
    expires_in: int
    role: str


class Me(BaseModel):
    user_id: int
    username: str
    role: str
    name: str
    city_id: int | None = None
    member_no: str | None = None
    bank_codes: list[str] = []


# ---- members ----------------------------------------------------------------------------------


class MemberIn(In):
    member_no: MemberNo
    name: str = Field(min_length=1, max_length=200)
    kind: MemberKind = MemberKind.INDIVIDUAL
    phone: Phone | None = None
    kecamatan: str | None = Field(default=None, max_length=100)
    kelurahan: str | None = Field(default=None, max_length=100, description="or desa")
    rt: Whole | None = Field(default=None, ge=1, le=999)
    rw: Whole | None = Field(default=None, ge=1, le=999)
    nik: SecretStr | None = Field(
        default=None, description="16 digits; kept only as a keyed hash, never returned"
    )
    cards: list[CardUid] = Field(default_factory=list, max_length=10)


class MemberPatch(In):
    """Fields to change; a field sent as null is cleared (phone, area, RT, RW)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: MemberKind | None = None
    phone: Phone | None = None
    kecamatan: str | None = Field(default=None, max_length=100)
    kelurahan: str | None = Field(default=None, max_length=100)
    rt: Whole | None = Field(default=None, ge=1, le=999)
    rw: Whole | None = Field(default=None, ge=1, le=999)
    sms_opt_in: YesNo | None = Field(
        default=None,
        description="receipts and balance replies by SMS to the phone (needs an Indonesian "
        "mobile number: 08..., 62... or +62...); each SMS costs the bank (docs/attendant.md, SMS)",
    )


class MemberOut(BaseModel):
    """A member. ``personal`` says whether the personal fields were included: they are for the
    member, their bank's attendants and admins only (UU 27/2022); DLH sees the number, bank and
    kind. The NIK itself is never returned, only whether one is on file."""

    member_no: str
    bank_code: str
    kind: str
    personal: bool
    name: str | None = None
    phone: str | None = None
    kecamatan: str | None = None
    kelurahan: str | None = None
    rt: str | None = None
    rw: str | None = None
    cards: list[str] | None = None
    nik_on_file: bool | None = None
    has_login: bool | None = None
    sms_opt_in: bool | None = Field(default=None, description="personal: receipts by SMS")


class MemberListItem(BaseModel):
    member_no: str
    kind: str
    name: str | None = None
    balance_idr: int
    cards: list[str] | None = Field(
        default=None, description="card UIDs (personal: as name); the gateway's card lookup"
    )
    sms_opt_in: bool | None = Field(default=None, description="personal: receipts by SMS")


class Balance(BaseModel):
    member_no: str
    name: str | None
    bank_code: str
    balance_idr: int
    available_idr: int
    deposits: int
    as_of: datetime


class DepositOut(BaseModel):
    event_id: str
    measured_at: datetime
    category_code: str
    category_name: str
    net_g: int
    quantity: int | None = None
    price_per_kg_idr: int
    amount_idr: int
    manual: bool = False
    voided: bool = False


# ---- deposits ---------------------------------------------------------------------------------


class ManualDepositIn(In):
    member_no: MemberNo
    category: Code
    net_g: Whole = Field(ge=1, le=MAX_G)
    quantity: Whole | None = Field(
        default=None, ge=1, le=MAX_G, description="pieces or millilitres (piece/litre categories)"
    )
    measured_at: UtcTime | None = Field(default=None, description="default: now")
    reason: Reason
    idempotency_key: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._:-]{1,100}$",
        description=(
            "the client's retry key: the same key again (same attendant) returns the deposit "
            "first recorded with it, never a second deposit; with another deposit it is refused"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _no_event_id(cls, data: object) -> object:
        """The id is the server's (``M-XXXX-XXXX``): a client that still sends one is told why."""
        if isinstance(data, dict) and "event_id" in data:
            raise ValueError(
                "event_id diberikan oleh server; pakai idempotency_key / "
                "event_id is issued by the server; use idempotency_key"
            )
        return data


class AppliedOut(BaseModel):
    outcome: str
    event_id: str
    member_no: str
    bank_code: str
    category_code: str
    net_g: int
    amount_idr: int
    price_per_kg_idr: int


class VoidIn(In):
    reason: Reason


class CorrectIn(In):
    reason: Reason
    net_g: Whole | None = Field(default=None, ge=1, le=MAX_G)
    category: Code | None = None
    member_no: MemberNo | None = None
    quantity: Whole | None = Field(default=None, ge=1, le=MAX_G)


class VoidOut(BaseModel):
    event_id: str
    voided_at: datetime
    reason: str
    author: str
    replacement: AppliedOut | None = None


# ---- prices -----------------------------------------------------------------------------------


class PriceIn(In):
    price_idr: Whole = Field(ge=0, le=10**9, description="per the category's unit (kg/piece/L)")
    effective_from: UtcTime | None = Field(default=None, description="default: now")


class PriceOut(BaseModel):
    category_code: str
    category_name: str
    unit: str
    price_idr: int
    effective_from: datetime


class PriceList(BaseModel):
    bank_code: str
    price_bank_code: str = Field(description="whose list it is: the induk's for such a unit")
    at: datetime
    prices: list[PriceOut]


class GatewayLoginsOut(BaseModel):
    allowed: list[str] = Field(
        description="those of the usernames asked about who may log in at the bank's gateway "
        "now: active admins and active attendants of the bank (or of its induk)"
    )


# ---- withdrawals ------------------------------------------------------------------------------


class WithdrawalIn(In):
    amount_idr: Whole = Field(ge=1, le=MAX_IDR)
    method: PayoutMethod = PayoutMethod.CASH
    destination: str | None = Field(
        default=None, min_length=1, max_length=100, description="account or e-wallet number"
    )

    @model_validator(mode="after")
    def _destination(self) -> Self:
        if self.method != PayoutMethod.CASH and not self.destination:
            raise ValueError(
                "transfer/e-wallet perlu nomor tujuan / a transfer needs the destination number"
            )
        return self


class RejectIn(In):
    reason: Reason


class CancelIn(In):
    reason: str = Field(default="", max_length=500)


class PayIn(In):
    payout_ref: str | None = Field(
        default=None,
        max_length=100,
        description="the transfer's reference (required for a transfer or an e-wallet: 422 "
        "without it), or a cash payout's receipt number: the same attendant paying again with "
        "the same reference is the same payment (200, nothing paid twice)",
    )


class WithdrawalOut(BaseModel):
    id: int
    member_no: str
    bank_code: str
    amount_idr: int
    method: str
    destination: str | None = Field(description="hidden from DLH (personal data)")
    status: str
    requested_at: datetime
    requested_by: str
    decided_at: datetime | None = None
    decided_by: str | None = None
    reason: str | None = None
    paid_at: datetime | None = None
    paid_by: str | None = None
    payout_ref: str | None = None
    dual_control: bool = Field(
        default=False,
        description="above the second-approval amount when requested: who approves is not "
        "who asked, and who pays out is neither (docs/operations.md, 'Money rules')",
    )
    member_name: str | None = Field(
        default=None, description="the bank's list only, for its staff (personal data)"
    )
    available_idr: int | None = Field(
        default=None,
        description="the bank's list only, for its staff: what the member may still withdraw "
        "now (balance less open withdrawals, this one included)",
    )


# ---- the money rules in force at a bank -------------------------------------------------------


class PriceLimitOut(BaseModel):
    category_code: str
    unit: str = Field(description="the price is per kg, piece or litre")
    min_idr: int
    max_idr: int
    min_setting: str = Field(description="the setting the minimum comes from")
    max_setting: str


class MoneyLimitsOut(BaseModel):
    """The money rules (settings ``[money]``) in force at a bank: its city's, else the
    defaults; each value beyond them is refused (422) or, from a scale, dead-lettered."""

    bank_code: str
    city_code: str
    prices: list[PriceLimitOut]
    scale_max_g: int = Field(description="a scale deposit's maximum, for scales without their own")
    scales: dict[str, int] = Field(description="scales with their own maximum, '{gateway}/{scale}'")
    manual_max_g: int
    manual_max_idr: int
    second_approval_above_idr: int = Field(
        description="a withdrawal above this needs three different people"
    )


# ---- banks, stock, sales ----------------------------------------------------------------------


class BankOut(BaseModel):
    code: str
    name: str
    kind: str
    parent_code: str | None
    use_parent_price: bool
    city: str
    kecamatan: str
    kelurahan: str
    min_withdrawal_idr: int


class StockLineOut(BaseModel):
    """A category's stock and why (wastebank.ledger.stock_lines): ``held_g = deposited_g +
    received_g - sold_g - transferred_g - residue_g - burned_g``."""

    category_code: str
    category_name: str
    deposited_g: int = Field(description="members' deposits, less voids")
    received_g: int = Field(description="delivered by the bank's units (an induk)")
    sold_g: int
    transferred_g: int = Field(description="delivered to the bank's induk (a unit)")
    residue_g: int = Field(description="sent to the TPS/TPA as residue")
    burned_g: int
    held_g: int


class StockOut(BaseModel):
    bank_code: str
    stock_g: dict[str, int]
    total_g: int
    lines: list[StockLineOut] = []


IdempotencyKey = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9._:-]{1,100}$",
        description="the client's own retry key, unique per attendant: the same key again "
        "answers 200 with what it first recorded and writes nothing; with other content, 409",
    ),
]


class SaleIn(In):
    category: Code
    grams: Whole = Field(ge=1, le=MAX_G)
    collector: Code
    revenue_idr: Whole = Field(ge=0, le=MAX_IDR)
    at: UtcTime | None = None
    note: str = Field(default="", max_length=500)
    payment_method: PayoutMethod = Field(
        default=PayoutMethod.CASH, description="cash: into the drawer a day close counts"
    )
    idempotency_key: IdempotencyKey | None = None


class SaleOut(BaseModel):
    id: int
    bank_code: str
    category_code: str
    grams: int
    collector_code: str | None
    revenue_idr: int | None
    occurred_at: datetime
    author: str
    note: str
    payment_method: str | None = None
    category_name: str = ""
    collector_name: str | None = None


# ---- audit and export -------------------------------------------------------------------------


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    entity: str
    entity_id: str
    summary: str
    client_ip: str | None
    user_agent: str | None


class LoginOut(BaseModel):
    username: str
    role: str
    active: bool
    created_at: datetime
    secret_changed_at: datetime | None


class MemberExport(BaseModel):
    """Everything held about a member (UU 27/2022, the right of access), as JSON: the ledger's
    data (profile, cards, deposits, withdrawals, the whole passbook), their login, and the
    audit entries about them and by them."""

    exported_at: datetime
    data: MemberData
    login: LoginOut | None
    audit: list[AuditOut]
