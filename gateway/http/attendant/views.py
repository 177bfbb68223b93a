"""What the attendant page shows: the JSON views of its routes, and the live stream of a scale
(Server-Sent Events) that pushes a new view whenever the gateway's live state changes."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Final

import msgspec
from starlette.exceptions import HTTPException

from gateway.attendant_store import JournalEntry, MemberEntry
from gateway.http.attendant import deposit_receipt
from gateway.http.attendant.formats import day_bounds, jam, kg, rupiah, tanggal
from gateway.http.attendant.service import AttendantService
from gateway.kiosk import AttendantSession
from gateway.readers import ScaleReader
from gateway.scale_state import STATE_TEXT
from gateway.stable_mark import StableMark
from wastebank.messages import CODE_PATTERN, ScaleState

CARD_FRESH_S: Final = 60.0
"""A card tapped on the reader is offered for this long."""
LIVE_MIN_GAP_S: Final = 0.1
"""At most ten live updates a second per page."""
LIVE_REFRESH_S: Final = 10.0
"""A live update at least this often (outbox depth and send status change without a wake)."""
LIVE_PER_SESSION: Final = 4
"""Live views one session may hold open at once (the page in a tab or two, per tablet)."""
LIVE_MAX: Final = 16
"""Live views open at once on the gateway, every session together: each holds a connection and
~40 KB of a Pi's memory, so a session opening them by the hundred is refused, not served."""
TOO_MANY_LIVE: Final = (
    "terlalu banyak tampilan langsung terbuka; tutup tab lain / too many live views open: "
    "close other tabs"
)


SEND_TEXT = {
    "pending": "menunggu / pending",
    "sent": "terkirim / sent",
    "dropped": "hilang dari outbox / dropped",
}
VOID_TEXT = {
    "pending": "batal menunggu / void pending",
    "done": "dibatalkan / voided",
    "refused": "batal ditolak / void refused",
}


ESTIMATE_LABEL: Final = "Perkiraan / Estimate"
AMOUNT_LABEL: Final = "Jumlah / Amount"


class DepositView(msgspec.Struct, kw_only=True):
    event_id: str
    scale_id: str
    member_no: str | None
    member_name: str | None
    card_uid: str | None
    category_code: str
    category_name: str
    net_g: int
    weight_text: str
    price_per_kg_idr: int | None
    price_text: str | None
    amount_idr: int | None
    amount_text: str | None
    estimate: bool = True
    """Price and amount are the gateway's estimate until the ledger has applied the deposit
    (then they are the ledger's: :func:`gateway.http.attendant.deposit_receipt.deposit_figures`)."""
    amount_label: str = ""
    """"Perkiraan / Estimate" or "Jumlah / Amount": what to call ``amount_text``."""
    receipt_url: str = ""
    """The deposit's receipt page (58 mm print, ESC/POS printer)."""
    recorded_at: datetime
    recorded_text: str
    time_text: str
    attendant: str | None
    status: str
    status_text: str
    void_state: str | None
    void_text: str | None
    void_reason: str | None
    void_error: str | None


class CardView(msgspec.Struct, kw_only=True):
    uid: str
    member_no: str | None = None
    member_name: str | None = None


class ScaleMark(msgspec.Struct, kw_only=True):
    """A scale's state for the page's scale list."""

    scale_id: str
    state: ScaleState
    state_text: str


class LiveView(msgspec.Struct, kw_only=True):
    scale_id: str
    connected: bool
    grams: int | None
    weight_text: str
    stable: bool | None
    """The mark held steady (:mod:`gateway.stable_mark`): "bergerak" only after 0,7 s of motion."""
    state: ScaleState
    """The scale's state (overload, indicator_error... : docs/operations.md)."""
    state_text: str
    armed_member_no: str | None
    armed_member_name: str | None
    armed_category_code: str | None
    armed_category_name: str | None
    waiting_for_zero: bool
    card: CardView | None
    last_deposit: DepositView | None
    broker_connected: bool
    outbox_depth: int
    central_online: bool | None
    pending_voids: int
    scales: list[ScaleMark] = msgspec.field(default_factory=list)
    """Every attendant scale's state: the page marks one in trouble that is not the one shown."""


class MemberView(msgspec.Struct, kw_only=True):
    member_no: str
    name: str
    kind: str
    cards: list[str]


class PriceView(msgspec.Struct, kw_only=True):
    category_code: str
    category_name: str
    unit: str
    price_idr: int
    price_text: str


class ScaleChoice(msgspec.Struct, kw_only=True):
    scale_id: str
    connected: bool


class WhoView(msgspec.Struct, kw_only=True):
    username: str
    name: str
    role: str
    offline: bool


class StateView(msgspec.Struct, kw_only=True):
    who: WhoView
    gateway_id: str
    bank_code: str
    timezone: str
    today_text: str
    scales: list[ScaleChoice]
    prices: list[PriceView]
    members: int
    members_synced_text: str | None
    prices_synced_text: str | None
    central_configured: bool
    central_online: bool | None


class RecordIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    member_no: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9-]{1,32}$")]
    category_code: Annotated[str, msgspec.Meta(pattern=CODE_PATTERN)]


class VoidIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=r"\S")]


def member_view(m: MemberEntry) -> MemberView:
    return MemberView(member_no=m.member_no, name=m.name, kind=m.kind, cards=list(m.cards))


def today(service: AttendantService) -> tuple[datetime, datetime]:
    """Today in the bank's zone, from its first moment to the next day's."""
    return day_bounds(datetime.now(service.tz).date(), service.tz)


def deposit_view(service: AttendantService, e: JournalEntry) -> DepositView:
    price = service.db.directory.price(e.category_code)
    member_no, member_name = e.member_no, e.member_name
    if member_no is None and e.card_uid:  # a kiosk deposit: the card's holder, if known
        holder = service.db.directory.by_card(e.card_uid)
        if holder is not None:
            member_no, member_name = holder.member_no, holder.name
    # The receipts' rule, the one place a deposit's price and amount are decided: the ledger's
    # once it applied the deposit, else an estimate at the freshest list.
    per_kg, amount, estimate = deposit_receipt.deposit_figures(service, e)
    return DepositView(
        event_id=e.event_id,
        scale_id=e.scale_id,
        member_no=member_no,
        member_name=member_name,
        card_uid=e.card_uid,
        category_code=e.category_code,
        category_name=price.category_name if price else e.category_code,
        net_g=e.net_g,
        weight_text=kg(e.net_g),
        price_per_kg_idr=per_kg,
        price_text=None if per_kg is None else f"{rupiah(per_kg)}/kg",
        amount_idr=amount,
        amount_text=None if amount is None else rupiah(amount),
        estimate=estimate,
        receipt_url=deposit_receipt.receipt_url(e.event_id),
        recorded_at=e.recorded_at,
        recorded_text=tanggal(e.recorded_at, service.tz),
        time_text=jam(e.recorded_at, service.tz),
        attendant=e.attendant,
        status=e.status,
        status_text=SEND_TEXT[e.status],
        void_state=e.void_state,
        void_text=None if e.void_state is None else VOID_TEXT[e.void_state],
        void_reason=e.void_reason,
        void_error=e.void_error,
    )


_marks: weakref.WeakKeyDictionary[ScaleReader, StableMark] = weakref.WeakKeyDictionary()
"""Each scale's stable mark, shared by every page watching it."""


def stable_mark(r: ScaleReader) -> StableMark:
    mark = _marks.get(r)
    if mark is None:
        mark = _marks[r] = StableMark()
    return mark


def live_view(service: AttendantService, r: ScaleReader) -> LiveView:
    session = r.session
    armed = session.armed if isinstance(session, AttendantSession) else None
    last_event_id = service.gw.recorder.last_event_id.get(r.cfg.id)
    last = service.db.journal.get(last_event_id) if last_event_id else None
    card = None
    if r.last_card is not None and time.monotonic() - r.last_card[1] <= CARD_FRESH_S:
        holder = service.db.directory.by_card(r.last_card[0])
        card = CardView(
            uid=r.last_card[0],
            member_no=holder.member_no if holder else None,
            member_name=holder.name if holder else None,
        )
    grams, raw = r.shown()
    directory = service.db.directory
    member = directory.member(armed[0]) if armed else None
    price = directory.price(armed[1]) if armed else None
    state, _ = r.state_now()
    return LiveView(
        scale_id=r.cfg.id,
        connected=r.connected,
        grams=grams,
        weight_text="—" if grams is None else kg(grams),
        stable=stable_mark(r).update(None if grams is None else raw, time.monotonic()),
        state=state,
        state_text=STATE_TEXT[state],
        armed_member_no=armed[0] if armed else None,
        armed_member_name=member.name if member else None,
        armed_category_code=armed[1] if armed else None,
        armed_category_name=price.category_name if price else None,
        waiting_for_zero=isinstance(session, AttendantSession) and session.waiting_for_zero,
        card=card,
        last_deposit=None if last is None else deposit_view(service, last),
        broker_connected=service.gw.connected.is_set(),
        outbox_depth=len(service.gw.outbox),
        central_online=service.central_online,
        pending_voids=service.db.journal.pending_voids(),
        scales=[scale_mark(x) for x in service.gw.readers.values() if x.cfg.flow == "attendant"],
    )


def scale_mark(r: ScaleReader) -> ScaleMark:
    state, _ = r.state_now()
    return ScaleMark(scale_id=r.cfg.id, state=state, state_text=STATE_TEXT[state])


async def live(
    service: AttendantService,
    r: ScaleReader,
    signed_in: Callable[[], bool] = lambda: True,
    sid: str = "",
) -> AsyncIterator[LiveView]:
    """The scale's live view whenever it changes, until the gateway stops or the session
    ``signed_in`` checks ends (a logout, an account disabled); the client going away ends
    it too (the response cancels the stream). Its first step refuses (429) a stream over
    :data:`LIVE_MAX`, or over :data:`LIVE_PER_SESSION` for the session ``sid``."""
    open_here = service.live_by_session
    if service.streams >= LIVE_MAX or open_here[sid] >= LIVE_PER_SESSION:
        retry = {"Retry-After": str(int(LIVE_REFRESH_S))}
        raise HTTPException(429, TOO_MANY_LIVE, headers=retry)
    state = service.gw.live
    last: LiveView | None = None
    service.streams += 1
    open_here[sid] += 1
    try:
        while not state.stopped and signed_in():
            seen = state.version
            view = live_view(service, r)
            if view != last:
                yield view
                last = view
                await asyncio.sleep(LIVE_MIN_GAP_S)  # a rate limit, not a wait for an outcome
            # A held "stabil" turns "bergerak" on time even if no new reading wakes us.
            due = stable_mark(r).due(time.monotonic())
            await state.wait(seen, LIVE_REFRESH_S if due is None else min(due, LIVE_REFRESH_S))
    finally:
        service.streams -= 1
        open_here[sid] -= 1
        if not open_here[sid]:
            del open_here[sid]
