"""The attendant (petugas) page on the gateway's local endpoint, and what keeps it working offline.

The page, the live weight and recording a deposit are all on the bank's LAN: a deposit goes into
the gateway's outbox (see :mod:`gateway.recorder`) whether or not the bank's internet is up. The
central API is used when it can be reached, for:

* logins: forwarded to ``POST {api_url}/api/token`` and ``GET /api/me``; on success an argon2
  hash of the password, the role and the banks are cached (``login_cache_days``), so the same
  attendant can log in while the internet is down;
* the member directory and price list, fetched with the attendant's token and kept in SQLite;
* voids: ``POST /api/deposits/{event_id}/void`` with the token of the attendant who asked; while
  offline (or before the deposit has reached the ledger) they wait in the journal and are retried.

Tokens are kept in memory only: after a restart a queued void waits until its attendant logs in
again while online.

**Sessions.** A login's session is a signed, HttpOnly, SameSite=Strict cookie (``wb_petugas``, a
JWT, HS256, path ``/``: every route of the local endpoint) whose key is kept in the gateway's
SQLite file, and a row in that file: the cookie is good only while its row is there. A logout
deletes the row; so does the sync when the central API no longer lets the account log in here
(disabled, removed, moved to another bank: see :meth:`AttendantService.sync_logins`), which also
drops the account's cached login. Every write needs the session's CSRF token (an HMAC of the
session id) in the ``X-CSRF-Token`` header (the page's script) or the form's ``csrf_token``
field (the logout button). The login form carries a token bound to a nonce cookie of its own
(``wb_petugas_masuk``), so no other site can log a tablet in to an account of its choosing.

Every route of the local endpoint needs the session (:class:`SessionGate`, deny by default)
but those listed in :data:`PUBLIC`: the minimal ``/health``, the page itself (the login form when
not signed in), the pages' scripts and styles (``/petugas/static/``), and the logins and logout.
A browser asking for another page without a session is sent to the login form and back.

  GET  /petugas                          the page (the login form when not signed in)
  POST /petugas/masuk, /petugas/keluar   log in (form), log out
  POST /petugas/api/session              log in (JSON: the CLI, `wastebank attend`)
  DELETE /petugas/api/session            log out (JSON)
  GET  /petugas/static/{name}            the pages' scripts and styles (gateway/static/)
  GET  /petugas/api/status               the frame's banner: broker, outbox, central API, voids
  GET  /petugas/api/state                who, the scales, the price list, the directory's age
  GET  /petugas/api/members?q=           search the directory (name, number or card UID)
  GET  /petugas/api/cards/{uid}          the member holding a card
  POST /petugas/api/scales/{id}/record   {member_no, category_code}: the next settled load
  POST /petugas/api/scales/{id}/cancel
  GET  /petugas/api/scales/{id}/live     Server-Sent Events: weight, stable, armed, last deposit
  GET  /petugas/api/deposits             today's deposits at this gateway
  POST /petugas/api/deposits/{id}/void   {reason}
  GET  /petugas/struk/{kind}/{ref}       a receipt (58 mm print stylesheet): gateway.receipts
  GET  /petugas/api/struk/{kind}/{ref}   the receipt as JSON
  POST /petugas/api/struk/{kind}/{ref}/cetak   print it on the ESC/POS printer ([printer])
  GET  /petugas/nasabah                  members at the bank (:mod:`.members`)
  GET  /petugas/api/members/next-no      the next member number (central API)
  POST /petugas/api/members              register a walk-in (central API)
  POST /petugas/api/members/{no}/cards   {uid}: bind a card tapped on the reader (central API)
  POST /petugas/api/members/{no}/pin     {reset}: issue or reset a PIN; its slip: struk/pin/{ref}
  GET|PUT /petugas/api/members/{no}/sms  {sms_opt_in}: SMS receipts on or off (central API)
  POST /petugas/api/sync                 members and prices from the central API now
  GET  /petugas/penarikan                withdrawals (:mod:`.withdrawals`, :mod:`.withdrawal_desk`)
  GET  /petugas/api/withdrawals          the bank's requests, with who must act next
  POST /petugas/api/withdrawals/{id}/approve|reject|pay   sent, or queued while offline
  GET  /petugas/stok                     stock, sales, transfers, residue (:mod:`.stock`)
  GET  /petugas/api/stock                the stock per category, pengepul, today's movements
  POST /petugas/api/stock/sales|transfers|residue   {key, ...}: sent, or queued while offline
  GET  /petugas/hari-ini                 today's totals, its close, the day sheet (:mod:`.day`)
  GET  /petugas/api/day?date=            the central API's day (online; the last copy offline)
  POST /petugas/api/day/close            {date, counted_cash_idr, note}: online only

The service is :mod:`.service`; the routes are one module per part of the page
(:mod:`.pages`, :mod:`.session`, :mod:`.directory`, :mod:`.scales`, :mod:`.deposits`...), each
a :class:`gateway.http.routing.Routes`, put together in :data:`routes`; :mod:`.auth` has the
gate and what the handlers take the session, its CSRF check and the service from.
"""

from typing import Final

from gateway.http.attendant import day as day_page
from gateway.http.attendant import (
    deposits,
    directory,
    members,
    pages,
    receipts,
    scales,
    session,
    stock,
    withdrawals,
)
from gateway.http.attendant.auth import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    LOGIN_COOKIE,
    PUBLIC,
    SessionGate,
)
from gateway.http.attendant.formats import jam, kg, rupiah, tanggal
from gateway.http.attendant.service import (
    AttendantService,
    LoginForbidden,
    LoginLimited,
    LoginRefused,
    SignedIn,
    Who,
)
from gateway.http.routing import mount

__all__ = [
    "COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "LOGIN_COOKIE",
    "PUBLIC",
    "AttendantService",
    "LoginForbidden",
    "LoginLimited",
    "LoginRefused",
    "SessionGate",
    "SignedIn",
    "Who",
    "jam",
    "kg",
    "routes",
    "rupiah",
    "tanggal",
]

routes: Final = mount(
    part.routes
    for part in (
        pages,
        session,
        directory,
        scales,
        deposits,
        receipts,
        members,
        withdrawals,
        stock,  # sales, transfers, residue, stock
        day_page,  # the day and its close
    )
)
"""Every route of the attendant page (under ``/petugas``), in its parts' order."""
