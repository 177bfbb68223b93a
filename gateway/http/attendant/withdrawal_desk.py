"""Withdrawals at the bank's desk: the requests the central API lists, and the attendants'
decisions (approve, refuse with a reason, pay) sent with the acting attendant's token, or queued
in the gateway's file while the central API cannot be reached and sent, in order, once it can.
No FastAPI here: the routes are :mod:`.withdrawals`.

**Never paid twice.** A payment is queued first, with its ``payout_ref`` (a transfer's
reference; for cash, the gateway's own receipt number), then sent. Sent again after an answer
that never came back, the central API recognises the same payment (the same attendant, the same
reference: ``wastebank.ledger.repeats_payment``) and answers with it, paying nothing; a 409 on a
payment is taken for done only when the ledger's paid record is this one (paid, by this
attendant, with this reference), refused otherwise (an approval or a refusal likewise, when the
ledger's decision is this attendant's).

**Cash is handed over only once the ledger says "dibayar".** A payment queued while the
central API is unreachable is shown as "antri — belum dibayar, jangan serahkan uang": until the
ledger takes it, the member may have cancelled the request from their phone, or another
attendant may have paid it, and only the ledger knows. (The member's balance is not the risk:
the amount was reserved when the request was made, and a void can never take a reserved
amount.) A transfer queued offline was made already: it is recorded and sent when the API is
back.

**The second-person rule** (``[money] second_approval_above_idr``): the ledger refuses it; the
desk also checks its copy before queuing, so an offline approval or payment that the ledger
would refuse is refused at once (who asked cannot approve; who asked or approved cannot pay).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final
from weakref import WeakKeyDictionary

from gateway.central import Central, RateLimited, Refused, Unreachable
from gateway.http.attendant.service import SYNC_PARTS, AttendantService, Who
from gateway.withdrawal_store import Action, QueuedAction, WithdrawalRow, WithdrawalStore
from wastebank.errors import Conflict, Forbidden, Invalid, NotFound
from wastebank.formats import rupiah

log = logging.getLogger("wastebank.gateway")

RETRY_S: Final = 5.0
"""A queued action is tried again this soon after a 429 without Retry-After."""
FRESH_S: Final = 2.0
"""The page's list asks the central API again when the copy is older than this."""

STATUS_TEXT: Final = {
    "requested": "diajukan / requested",
    "approved": "disetujui / approved",
    "paid": "dibayar / paid",
    "rejected": "ditolak / refused",
    "cancelled": "dibatalkan / cancelled",
}
METHOD_TEXT: Final = {
    "cash": "tunai / cash",
    "bank_transfer": "transfer bank / bank transfer",
    "ewallet": "dompet digital / e-wallet",
}
ACTION_WORDS: Final = {
    "approve": ("persetujuan", "approval"),
    "reject": ("penolakan", "refusal"),
    "pay": ("pembayaran", "payment"),
}
"""An action's name (Indonesian, English): a sentence about it puts each in its own half."""
ACTION_TEXT: Final = {action: f"{i} / {e}" for action, (i, e) in ACTION_WORDS.items()}
"""An action's name standing alone (a label): "persetujuan / approval"."""
ACTION_VERB: Final = {"approve": "disetujui", "reject": "ditolak", "pay": "dibayar"}
ACTION_EN: Final = {"approve": "approved", "reject": "refused", "pay": "paid"}
SECOND: Final = "perlu petugas kedua / needs a second attendant"
QUEUED_CASH: Final = (
    "antri — belum dibayar, jangan serahkan uang / queued — not paid yet: do not hand over the cash"
)


@dataclass(frozen=True)
class Outcome:
    """What became of an action asked on the page: the action and the withdrawal now."""

    action: QueuedAction
    withdrawal: WithdrawalRow
    refused_status: int | None = None
    """The central API's status when it refused the action (its message: ``action.error``)."""


_desks: WeakKeyDictionary[AttendantService, WithdrawalDesk] = WeakKeyDictionary()


def desk_of(service: AttendantService) -> WithdrawalDesk:
    """The service's desk (made with the service, see :data:`SYNC_PARTS`)."""
    desk = _desks.get(service)
    if desk is None:
        desk = _desks[service] = WithdrawalDesk(service)
    return desk


def _part(service: AttendantService) -> WithdrawalDesk:
    return desk_of(service)


SYNC_PARTS.append(_part)


class WithdrawalDesk:
    def __init__(self, service: AttendantService) -> None:
        self.service = service
        self.store: WithdrawalStore = service.db.withdrawals
        self._sending = asyncio.Lock()
        self._refreshed = -float("inf")
        self._status: dict[int, int] = {}
        """The central API's status of each action it refused in this run (for the answer)."""

    async def __call__(self, token: str) -> bool:
        """One round of the sync loop: the list again, then the queue; whether work waits."""
        await self.refresh(token)
        await self.send_queued()
        return self.store.pending() > 0

    # -- the list --

    async def refresh(self, token: str | None) -> bool:
        """The bank's withdrawals from the central API into the copy; False when it could not
        answer now (the copy stays as it was)."""
        central = self.service.api()
        if central is None or token is None:
            return False
        try:
            rows = await central.withdrawals(self.service.gw.settings.bank_code, token)
        except Unreachable as exc:
            self.service._unreachable(exc)  # noqa: SLF001  (the service's one online flag)
            return False
        except Refused as exc:
            self.service._online(True)  # noqa: SLF001
            if exc.status_code == 401:
                self.service.tokens = {u: t for u, t in self.service.tokens.items() if t != token}
            log.warning("daftar penarikan ditolak / withdrawal list refused: %s", exc)
            return False
        self.service._online(True)  # noqa: SLF001
        self.store.replace(rows, datetime.now(UTC))
        self._refreshed = time.monotonic()
        return True

    async def fresh(self, who: Who) -> None:
        """For the page: the list again when the copy is older than :data:`FRESH_S` and the
        central API is not known to be down (then the sync loop finds it back)."""
        if self.service.central_online is False:
            return
        if time.monotonic() - self._refreshed >= FRESH_S:
            await self.refresh(self.service.tokens.get(who.username))

    # -- asking --

    async def ask(
        self,
        who: Who,
        withdrawal_id: int,
        action: Action,
        *,
        reason: str | None = None,
        payout_ref: str | None = None,
    ) -> Outcome:
        """Check ``action`` against the copy, queue it, and send the queue now when the central
        API is not known to be down. A refusal by the central API is raised with its message
        (:attr:`Outcome.refused_status`, the message in the action's ``error``), the action
        kept as refused."""
        w = self.store.get(withdrawal_id)
        if w is None:
            raise NotFound(
                f"penarikan {withdrawal_id} tidak ada di daftar gateway; muat ulang / withdrawal "
                f"{withdrawal_id} is not in the gateway's list: reload"
            )
        reason = (reason or "").strip() or None
        payout_ref = (payout_ref or "").strip() or None
        self.check(who.username, w, action, reason, payout_ref)
        now = datetime.now(UTC)
        queued = self.store.add(
            w.id, action, who.username, now, reason=reason, payout_ref=payout_ref
        )
        if action == "pay" and w.method == "cash":
            gw = self.service.gw
            ref = WithdrawalStore.cash_ref(gw.settings.gateway_id, gw.outbox.install, queued.id)
            queued = self.store.set_payout_ref(queued.id, ref)
        log.info(
            "penarikan / withdrawal %s: %s by %s queued (%s)",
            w.id,
            action,
            who.username,
            queued.payout_ref or "-",
        )
        if self.service.central_online is not False:
            await self.send_queued()
        self.service.wake()
        done = self.store.action(queued.id)
        assert done is not None
        status = self._status.pop(done.id, 409) if done.state == "refused" else None
        return Outcome(done, self.store.get(w.id) or w, status)

    def check(
        self,
        username: str,
        w: WithdrawalRow,
        action: Action,
        reason: str | None,
        payout_ref: str | None,
    ) -> None:
        """Refuse here what the ledger would refuse (from the copy and the queue), so an action
        queued offline is one the ledger can take."""
        waiting = [a for a in self.store.of([w.id]).get(w.id, []) if a.state == "pending"]
        status = effective_status(w, waiting)
        if any(a.action == action for a in waiting):
            i, e = ACTION_WORDS[action]
            raise Conflict(
                f"{i} penarikan {w.id} sudah antri / already queued: the {e} of withdrawal {w.id}"
            )
        needed = {"approve": "requested", "reject": "requested", "pay": "approved"}[action]
        if status != needed:
            now_id = STATUS_TEXT.get(status, status).split(" / ")[0]
            raise Conflict(
                f"penarikan {w.id} {now_id}: tidak bisa {ACTION_VERB[action]} / withdrawal "
                f"{w.id} is {status}: it cannot be {ACTION_EN[action]}"
            )
        if action == "reject" and not reason:
            raise Invalid("alasan penolakan wajib diisi / a refusal needs a reason")
        if action == "pay" and w.method != "cash" and not payout_ref:
            raise Invalid(
                "nomor referensi transfer wajib diisi / the transfer's reference is required"
            )
        if w.dual_control:
            self._second_person(username, w, action, waiting)

    @staticmethod
    def _second_person(
        username: str, w: WithdrawalRow, action: Action, waiting: list[QueuedAction]
    ) -> None:
        approver = w.decided_by or next((a.by for a in waiting if a.action == "approve"), None)
        amount = rupiah(w.amount_idr)
        if action == "approve" and w.requested_by == username:
            raise Forbidden(
                f"{SECOND}: penarikan {w.id} ({amount}) Anda ajukan sendiri; petugas lain yang "
                f"menyetujui / you asked for it: another attendant approves"
            )
        if action == "pay" and username in (w.requested_by, approver):
            did = "ajukan" if username == w.requested_by else "setujui"
            raise Forbidden(
                f"{SECOND}: penarikan {w.id} ({amount}) Anda {did} sendiri; petugas lain yang "
                f"membayar / you {'asked for' if did == 'ajukan' else 'approved'} it: another "
                "attendant pays it out"
            )

    # -- sending --

    async def send_queued(self) -> None:
        """Send due actions in the order asked, each with its own attendant's token; one whose
        attendant has no token here (the gateway restarted, or they logged in offline) waits
        for their next online login, and so do later actions on the same withdrawal."""
        central = self.service.api()
        if central is None:
            return
        async with self._sending:
            held: set[int] = set()
            for a in self.store.due(datetime.now(UTC)):
                if a.withdrawal_id in held:
                    continue
                token = self.service.tokens.get(a.by)
                if token is None:
                    held.add(a.withdrawal_id)
                    self.store.waiting(
                        a.id,
                        f"menunggu {a.by} masuk lagi saat online / waiting for {a.by} to log in "
                        "online again",
                    )
                    continue
                if not await self._send(central, a, token):
                    return
                self.service.gw.live.notify()

    async def _send(self, central: Central, a: QueuedAction, token: str) -> bool:
        """One action to the central API; False when the rest must wait (an outage, a 429)."""
        body: dict[str, str | None] = {}
        if a.action == "reject":
            body = {"reason": a.reason}
        elif a.action == "pay":
            body = {"payout_ref": a.payout_ref}
        now = datetime.now(UTC)
        try:
            row = await central.withdrawal_action(a.withdrawal_id, a.action, token, body)
        except RateLimited as exc:
            self.service._online(True)  # noqa: SLF001
            wait = exc.retry_after_s or RETRY_S
            self.store.retry(a.id, str(exc), now + timedelta(seconds=wait))
            return False
        except Unreachable as exc:
            self.service._unreachable(exc)  # noqa: SLF001
            self.store.waiting(a.id, "API pusat tidak terjangkau / central API unreachable")
            return False
        except Refused as exc:
            self.service._online(True)  # noqa: SLF001
            await self._refused(a, exc, token)
            return True
        self.service._online(True)  # noqa: SLF001
        self.store.update(self._merged(row, a))
        self.store.done(a.id, now)
        log.info("penarikan / withdrawal %s: %s by %s done", a.withdrawal_id, a.action, a.by)
        return True

    def _merged(self, row: WithdrawalRow, a: QueuedAction) -> WithdrawalRow:
        """An action's answer lacks what only the bank's list carries (the member's name, what
        they may still withdraw): kept from the copy until the next list (a refusal gives the
        reserved amount back)."""
        old = self.store.get(row.id)
        if old is None:
            return row
        available = old.available_idr
        if available is not None and a.action == "reject":
            available += row.amount_idr
        return replace(
            row,
            member_name=row.member_name or old.member_name,
            available_idr=row.available_idr if row.available_idr is not None else available,
        )

    async def _refused(self, a: QueuedAction, exc: Refused, token: str) -> None:
        now = datetime.now(UTC)
        if exc.status_code == 401:  # the token expired or was revoked: wait for a new login
            self.service.tokens.pop(a.by, None)
            self.store.waiting(a.id, f"sesi {a.by} di API pusat berakhir / session ended")
            return
        if exc.status_code == 409:  # maybe this very action, taken by a try whose answer was lost
            await self.refresh(token)
            w = self.store.get(a.withdrawal_id)
            if w is not None and taken_already(w, a):
                self.store.done(a.id, now)  # recorded already: nothing done twice
                return
        self._status[a.id] = exc.status_code
        self.store.refused(a.id, exc.detail, now)
        log.warning(
            "penarikan / withdrawal %s: %s by %s refused: %s",
            a.withdrawal_id,
            a.action,
            a.by,
            exc.detail,
        )


def taken_already(w: WithdrawalRow, a: QueuedAction) -> bool:
    """The ledger's record is this queued action, taken before (a 409 to a repeat): a payment
    when it was paid by this attendant with this reference (the rule of
    ``wastebank.ledger.repeats_payment``, which the gateway may not import); an approval or a
    refusal when this attendant made that decision."""
    if a.action == "pay":
        return (
            w.status == "paid"
            and a.payout_ref is not None
            and w.paid_by == a.by
            and w.payout_ref == a.payout_ref
        )
    if a.action == "approve":
        return w.decided_by == a.by and w.status in ("approved", "paid")
    return w.decided_by == a.by and w.status == "rejected"


def effective_status(w: WithdrawalRow, waiting: list[QueuedAction]) -> str:
    """The status the withdrawal will have once the actions waiting here are taken."""
    status = w.status
    for a in waiting:
        status = {"approve": "approved", "reject": "rejected", "pay": "paid"}[a.action]
    return status
