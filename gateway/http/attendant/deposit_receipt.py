"""The deposit receipt (kind ``setoran``, ref: the event id), and the one rule for the price and
amount the attendant's pages show for a deposit recorded here.

**A receipt never shows a price the ledger will not use.** The ledger prices a deposit when the
ingester applies it, at the price in force at the deposit's ``measured_at`` (``price_in_force``:
the newest price whose ``effective_from`` is at or before it). The gateway cannot know that
price for sure before: its cached list may be behind an admin's change (the sync's cadence), a
price may be set to start in the past, and the deposit may wait in the outbox through an outage.
So (:func:`deposit_figures`):

* once the central API says the ledger applied the deposit (:mod:`.applied`), the receipt shows
  the ledger's amount and price, and is no estimate;
* before that, an estimate at the freshest price list the gateway holds (not the price cached
  when the load was recorded: the list may have been refreshed since), marked
  ``PERKIRAAN / estimate``.

This was the bug of issue 15: the journal's price, cached at record time from a list up to
``sync_interval_s`` old, was shown as the amount for good (Rp1.800/kg, Rp26.820) while the
ledger credited its own price (Rp22.350).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from gateway import receipts
from gateway.attendant_store import JournalEntry
from gateway.http.attendant import applied
from gateway.http.attendant.pages import bank_name
from gateway.http.attendant.service import AttendantService
from gateway.receipts import Line, Receipt
from wastebank.errors import NotFound
from wastebank.formats import kg, rupiah, unit_price
from wastebank.money_rules import amount_for

DEPOSIT: Final = "setoran"


def deposit_figures(
    service: AttendantService, e: JournalEntry
) -> tuple[int | None, int | None, bool]:
    """(price per kg, amount, estimate) of a journal entry: the ledger's once it has applied
    the deposit; else the freshest cached list's (an estimate); for a kiosk deposit of a
    category the list does not have, the price cached when it was recorded (an estimate too)."""
    if e.applied_amount_idr is not None:
        return e.applied_price_idr, e.applied_amount_idr, False
    price = service.db.directory.price(e.category_code)
    per_kg = price.price_idr if price is not None and price.unit == "kg" else e.price_per_kg_idr
    return per_kg, None if per_kg is None else amount_for(e.net_g, per_kg), True


def receipt_url(event_id: str) -> str:
    return f"/petugas/struk/{DEPOSIT}/{event_id}"


def _member(service: AttendantService, e: JournalEntry) -> tuple[str, str | None]:
    """(name to print, member number) of the depositor: the card's holder for a kiosk load."""
    if e.member_name or e.member_no:
        return e.member_name or e.member_no or "-", e.member_no
    holder = service.db.directory.by_card(e.card_uid) if e.card_uid else None
    if holder is not None:
        return holder.name, holder.member_no
    return f"kartu {e.card_uid}" if e.card_uid else "-", None


def _attendant_name(service: AttendantService, username: str) -> str:
    """The attendant's name as their cached login has it (names, not codes); else the username."""
    cached = service.db.logins.get(username, datetime.now(UTC))
    return cached.name if cached is not None and cached.name else username


def deposit_receipt(service: AttendantService, e: JournalEntry) -> Receipt:
    price = service.db.directory.price(e.category_code)
    name, member_no = _member(service, e)
    per_kg, amount, estimate = deposit_figures(service, e)
    lines = [
        Line("Nasabah", name),
        *([Line("No. nasabah", member_no)] if member_no and member_no != name else []),
        Line("Jenis", price.category_name if price else e.category_code),
        Line("Berat", kg(e.net_g)),
        Line("Harga", "-" if per_kg is None else unit_price(per_kg, "kg")),
    ]
    if e.attendant:
        lines.append(Line("Petugas", _attendant_name(service, e.attendant)))
    if e.void_state == "done":
        lines.append(Line("** DIBATALKAN / VOIDED **"))
    return Receipt(
        kind=DEPOSIT,
        title="STRUK SETORAN / DEPOSIT",
        reference=e.event_id,
        at=e.recorded_at,
        bank_name=bank_name(service),
        lines=tuple(lines),
        total=Line("JUMLAH", "-" if amount is None else rupiah(amount)),
        footer=("Terima kasih / Thank you",),
        estimate=estimate,
        extra={
            "event_id": e.event_id,
            "applied": not estimate,
            "price_per_kg_idr": per_kg,
            "amount_idr": amount,
        },
    )


async def load_deposit(service: AttendantService, ref: str) -> Receipt:
    """The receipt of deposit ``ref`` recorded here; a deposit sent but not known applied is
    asked about first (briefly: :data:`applied.ON_DEMAND_TIMEOUT_S`)."""
    e = service.db.journal.get(ref)
    if e is None:
        raise NotFound(f"setoran {ref} tidak ada di gateway ini / no such deposit here")
    if e.applied_amount_idr is None and e.status == "sent":
        await applied.refresh_one(service, ref)
        e = service.db.journal.get(ref) or e
    return deposit_receipt(service, e)


receipts.register(DEPOSIT, load_deposit, nav="timbang")
