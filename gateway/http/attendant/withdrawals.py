"""The withdrawals page (penarikan) and its JSON routes; the receipt kind ``penarikan``:

GET  /petugas/penarikan                      the page (the login form when not signed in)
GET  /petugas/api/withdrawals                the bank's requests, newest first, with who must act
POST /petugas/api/withdrawals/{id}/approve   {}: 200 done, 202 queued
POST /petugas/api/withdrawals/{id}/reject    {reason}: 200 done, 202 queued
POST /petugas/api/withdrawals/{id}/pay       {payout_ref}: (a transfer's reference; cash gets
                                             the gateway's receipt number): 200 paid, 202 queued
GET  /petugas/struk/penarikan/{id}           its receipt (gateway.receipts)

A refusal (here from the gateway's copy, or the central API's) answers its status with an
Indonesian-first ``detail``. The logic is :mod:`.withdrawal_desk`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

from gateway import receipts
from gateway.http.attendant import auth
from gateway.http.attendant.pages import bank_name, render
from gateway.http.attendant.service import AttendantService, Who
from gateway.http.attendant.withdrawal_desk import (
    ACTION_TEXT,
    ACTION_WORDS,
    METHOD_TEXT,
    QUEUED_CASH,
    SECOND,
    STATUS_TEXT,
    Outcome,
    desk_of,
    effective_status,
)
from gateway.http.routing import Routes, parse_input, path_param
from gateway.receipts import Line, Receipt
from gateway.withdrawal_store import ACTIONS, Action, QueuedAction, WithdrawalRow
from wastebank.errors import NotFound, WastebankError
from wastebank.formats import rupiah, tanggal_waktu

routes = Routes(prefix="/petugas")

KIND: Final = "penarikan"
ID_MAX: Final = 2**31 - 1
"""A withdrawal's id is the ledger's 32-bit integer: a larger one is refused (422) here."""


class ReasonIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class PayIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    payout_ref: Annotated[str, msgspec.Meta(max_length=60)] | None = None


class ActionView(msgspec.Struct, kw_only=True):
    id: int
    action: str
    action_text: str
    by: str
    state: str
    asked_at: datetime
    error: str | None
    payout_ref: str | None


class WithdrawalView(msgspec.Struct, kw_only=True):
    id: int
    member_no: str
    member_name: str
    amount_idr: int
    method: str
    method_text: str
    destination: str | None
    status: str
    """The ledger's, as last known: requested, approved, paid, rejected, cancelled."""
    shown_status: str
    """What the page files it under: the ledger's, or ``queued`` while an action waits here."""
    status_text: str
    requested_at: datetime
    requested_by: str
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None
    paid_at: datetime | None
    paid_by: str | None
    payout_ref: str | None
    dual_control: bool
    available_idr: int | None
    next_step: str
    """Who must act next, or what happened (Indonesian first)."""
    second_person: bool
    """Only another attendant may take the next step (the second-person rule)."""
    do_not_pay_out: bool
    """A cash payment queued here, not yet taken by the ledger: no cash handed over yet."""
    may: list[str]
    """The actions this attendant may ask now."""
    queued: list[ActionView]
    refused: ActionView | None
    """The latest action asked here that the central API refused (its reason)."""
    receipt_url: str


class WithdrawalList(msgspec.Struct, kw_only=True):
    withdrawals: list[WithdrawalView]
    synced_at: datetime | None
    online: bool | None
    queued: int


class ActionOut(msgspec.Struct, kw_only=True):
    queued: bool
    message: str
    withdrawal: WithdrawalView


# ---- views ------------------------------------------------------------------------------------


def _action_view(a: QueuedAction) -> ActionView:
    return ActionView(
        id=a.id,
        action=a.action,
        action_text=ACTION_TEXT[a.action],
        by=a.by,
        state=a.state,
        asked_at=a.asked_at,
        error=a.error,
        payout_ref=a.payout_ref,
    )


def _when(service: AttendantService, at: datetime | None) -> str:
    return "" if at is None else tanggal_waktu(_aware(at), service.tz)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _queued_step(w: WithdrawalRow, waiting: list[QueuedAction]) -> str:
    if any(a.action == "pay" for a in waiting):
        if w.method == "cash":
            return QUEUED_CASH
        return "antri — transfer tercatat, dikirim saat API pusat terjangkau / queued"
    return "antri — menunggu API pusat / queued: waiting for the central API"


def next_step(
    service: AttendantService, w: WithdrawalRow, waiting: list[QueuedAction], me: str
) -> tuple[str, bool]:
    """Who must act next (or what happened), and whether it must be another attendant."""
    if waiting:
        return _queued_step(w, waiting), False
    approver = w.decided_by
    if w.status == "requested":
        if w.dual_control and w.requested_by == me:
            return f"{SECOND}: Anda yang mengajukan; petugas lain menyetujui", True
        return "menunggu persetujuan petugas / waiting for an attendant's approval", False
    if w.status == "approved":
        if w.dual_control and me in (w.requested_by, approver):
            return f"{SECOND}: {approver} menyetujui; petugas lain yang membayar", True
        if w.dual_control:
            return f"disetujui {approver}; siap Anda bayar (petugas kedua) / ready to pay", False
        return "disetujui; siap dibayar / approved: ready to pay", False
    if w.status == "paid":
        return f"{_phrase('dibayar', _when(service, w.paid_at), w.paid_by)} / paid", False
    if w.status == "rejected":
        return f"{_phrase('ditolak', '', w.decided_by)}: {w.reason or '-'} / refused", False
    return f"dibatalkan: {w.reason or '-'} / cancelled", False


def _phrase(done: str, when: str, by: str | None) -> str:
    """``done`` [``when``] [oleh ``by``]: a withdrawal settled at the central office may come
    without its time or its attendant; the step leaves out what it does not know."""
    return " ".join(part for part in (done, when, f"oleh {by}" if by else "") if part)


def _may(service: AttendantService, w: WithdrawalRow, me: str) -> list[str]:
    desk = desk_of(service)
    out: list[str] = []
    for action in ACTIONS:
        try:
            desk.check(me, w, action, "-", "-")
        except WastebankError:
            continue
        out.append(action)
    return out


def withdrawal_view(
    service: AttendantService, w: WithdrawalRow, actions: list[QueuedAction], who: Who
) -> WithdrawalView:
    waiting = [a for a in actions if a.state == "pending"]
    refused = next((a for a in reversed(actions) if a.state == "refused"), None)
    step, second = next_step(service, w, waiting, who.username)
    name = w.member_name
    if not name:
        entry = service.db.directory.member(w.member_no)
        name = entry.name if entry is not None else w.member_no
    shown = "queued" if waiting else w.status
    status_text = STATUS_TEXT.get(w.status, w.status)
    if waiting:
        i, e = ACTION_WORDS[waiting[-1].action]
        status_text = f"antri: {i} / queued: {e}"
    return WithdrawalView(
        id=w.id,
        member_no=w.member_no,
        member_name=name,
        amount_idr=w.amount_idr,
        method=w.method,
        method_text=METHOD_TEXT.get(w.method, w.method),
        destination=w.destination,
        status=w.status,
        shown_status=shown,
        status_text=status_text,
        requested_at=w.requested_at,
        requested_by=w.requested_by,
        decided_at=w.decided_at,
        decided_by=w.decided_by,
        reason=w.reason,
        paid_at=w.paid_at,
        paid_by=w.paid_by,
        payout_ref=w.payout_ref,
        dual_control=w.dual_control,
        available_idr=w.available_idr,
        next_step=step,
        second_person=second,
        do_not_pay_out=any(a.action == "pay" for a in waiting) and w.method == "cash",
        may=_may(service, w, who.username),
        queued=[_action_view(a) for a in waiting],
        refused=None if refused is None or waiting else _action_view(refused),
        receipt_url=f"/petugas/struk/{KIND}/{w.id}",
    )


def one_view(service: AttendantService, w: WithdrawalRow, who: Who) -> WithdrawalView:
    return withdrawal_view(service, w, service.db.withdrawals.of([w.id]).get(w.id, []), who)


# ---- routes -----------------------------------------------------------------------------------


@routes.get("/penarikan")
async def withdrawals_page(request: Request) -> HTMLResponse:
    signed = auth.signed_in(request)
    return render(auth.service(request), request, signed, "withdrawals.html")


@routes.get("/api/withdrawals")
async def withdrawals(request: Request) -> WithdrawalList:
    signed, service = auth.signed_in(request), auth.service(request)
    desk = desk_of(service)
    await desk.fresh(signed.who)
    store = service.db.withdrawals
    actions = store.of()
    return WithdrawalList(
        withdrawals=[
            withdrawal_view(service, w, actions.get(w.id, []), signed.who) for w in store.rows()
        ],
        synced_at=store.synced_at(),
        online=service.central_online,
        queued=store.pending(),
    )


def _answer(service: AttendantService, outcome: Outcome, who: Who) -> JSONResponse:
    if outcome.refused_status is not None:
        raise HTTPException(outcome.refused_status, outcome.action.error or "ditolak / refused")
    view = one_view(service, outcome.withdrawal, who)
    queued = outcome.action.state == "pending"
    i, e = ACTION_WORDS[outcome.action.action]
    message = f"{i} tercatat / {e} recorded"  # each language's sentence whole
    if queued and outcome.action.action == "pay":
        message = view.next_step  # its own sentence: cash must not be handed over yet
    elif queued:  # "antri — ... / queued: ...": the action named in each half
        step_i, _, step_e = view.next_step.partition(" / ")
        message = f"{i} {step_i} / {e} {step_e}" if step_e else f"{i}: {view.next_step}"
    body = ActionOut(queued=queued, message=message, withdrawal=view)
    return JSONResponse(msgspec.to_builtins(body), status_code=202 if queued else 200)


async def _act(
    request: Request,
    who: Who,
    withdrawal_id: int,
    action: Action,
    *,
    reason: str | None = None,
    payout_ref: str | None = None,
) -> JSONResponse:
    service = auth.service(request)
    outcome = await desk_of(service).ask(
        who, withdrawal_id, action, reason=reason, payout_ref=payout_ref
    )
    return _answer(service, outcome, who)


def _withdrawal_id(request: Request) -> int:
    """The path's withdrawal id: a whole number from 1 to :data:`ID_MAX` (422 otherwise)."""
    found: int = path_param(request, "withdrawal_id", int, ge=1, le=ID_MAX)
    return found


@routes.post("/api/withdrawals/{withdrawal_id}/approve")
async def approve(request: Request) -> JSONResponse:
    signed = await auth.csrf_checked(request)
    return await _act(request, signed.who, _withdrawal_id(request), "approve")


@routes.post("/api/withdrawals/{withdrawal_id}/reject")
async def reject(request: Request) -> JSONResponse:
    signed, (withdrawal_id,), body = await parse_input(
        request, ReasonIn, auth.csrf_checked, _withdrawal_id
    )
    return await _act(request, signed.who, withdrawal_id, "reject", reason=body.reason)


@routes.post("/api/withdrawals/{withdrawal_id}/pay")
async def pay(request: Request) -> JSONResponse:
    signed, (withdrawal_id,), body = await parse_input(
        request, PayIn, auth.csrf_checked, _withdrawal_id
    )
    return await _act(request, signed.who, withdrawal_id, "pay", payout_ref=body.payout_ref)


# ---- the receipt ------------------------------------------------------------------------------

TITLES: Final = {
    "requested": "PERMINTAAN PENARIKAN / WITHDRAWAL REQUEST",
    "approved": "PENARIKAN DISETUJUI / WITHDRAWAL APPROVED",
    "paid": "STRUK PENARIKAN / WITHDRAWAL PAID",
    "rejected": "PENARIKAN DITOLAK / WITHDRAWAL REFUSED",
    "cancelled": "PENARIKAN DIBATALKAN / WITHDRAWAL CANCELLED",
}


def _lines(service: AttendantService, w: WithdrawalRow, status: str) -> list[Line]:
    name = w.member_name or w.member_no
    lines = [
        Line("Nasabah / Member", name),
        Line("No. nasabah", w.member_no),
        Line("Cara / Method", METHOD_TEXT.get(w.method, w.method)),
    ]
    if w.destination:
        lines.append(Line("Tujuan / To", w.destination))
    lines.append(Line("Diajukan / Asked", _when(service, w.requested_at)))
    lines.append(Line("Status", STATUS_TEXT.get(status, status)))
    if w.decided_by and w.status != "cancelled":
        lines.append(Line("Diputuskan oleh / By", w.decided_by))
    if w.paid_by:
        lines.append(Line("Dibayar oleh / Paid by", w.paid_by))
    if w.payout_ref:
        lines.append(Line("Ref.", w.payout_ref))
    if w.reason:
        lines.append(Line(f"Alasan / Reason: {w.reason}"))
    if w.dual_control:
        lines.append(Line("Jumlah besar: dua petugas berbeda / two attendants"))
    return lines


def load_receipt(service: AttendantService, ref: str) -> Receipt:
    """The receipt of a withdrawal, as the gateway knows it now: the ledger's status, or
    "BELUM DIBAYAR" while a payment waits here (no cash handed over on it)."""
    missing = NotFound(f"penarikan {ref} tidak ada / no such withdrawal")
    if not (ref.isascii() and ref.isdigit()) or len(ref) > 10:  # "²" is a digit int() refuses
        raise missing
    store = service.db.withdrawals
    w = store.get(int(ref))
    if w is None:
        raise missing
    waiting = [a for a in store.of([w.id]).get(w.id, []) if a.state == "pending"]
    status = effective_status(w, waiting)
    title = TITLES.get(w.status, "PENARIKAN / WITHDRAWAL")
    footer: tuple[str, ...] = ("Terima kasih / Thank you",)
    if waiting:
        title = "BELUM DIBAYAR / NOT PAID YET" if status == "paid" else f"ANTRI / QUEUED: {title}"
        footer = (QUEUED_CASH if w.method == "cash" and status == "paid" else "antri / queued",)
    at = w.paid_at or w.decided_at or w.requested_at
    return Receipt(
        kind=KIND,
        title=title,
        reference=w.payout_ref if w.status == "paid" and w.payout_ref else f"penarikan {w.id}",
        at=_aware(at),
        bank_name=bank_name(service),
        lines=tuple(_lines(service, w, w.status)),
        total=Line("Jumlah / Amount", rupiah(w.amount_idr)),
        footer=footer,
        extra={"withdrawal_id": w.id, "status": w.status, "queued": bool(waiting)},
    )


receipts.register(KIND, load_receipt, nav="penarikan")
