"""The HTTP API and pages: :func:`create_app` composes them. Resources (ledger engines, InfluxDB
client, the token key, the password hasher) are created in the lifespan; each domain's routes are
a module of this package.

Who may call what (see wastebank/access/ for the roles, tests/test_authz_matrix.py for every
route x role):

  GET  /health                                 api/health.py; public: broker, InfluxDB and ledger
                                               ok or not, the last ledger-InfluxDB reconciliation
                                               ok or not; addresses, versions, errors, drifts for
                                               admins
  POST /api/token, GET /api/me                 api/auth.py (OAuth2 password flow, JWT)
  GET|POST /masuk, POST /keluar                api/auth.py (the login page, session cookie)
  /api/banks/..., /api/members/...             api/members.py, api/bank.py
  /api/banks/{bank}/transfers|residue|movements|collectors   api/stock_moves.py
  /api/banks/{bank}/days/{date}[/close|/reopen]   api/day.py: a bank's day, its close
  /api/members/{no}/pin|cards, .../next-no     api/member_desk.py: PIN issued/reset, a card
                                               bound, the next member number (the bank's desk)
  GET  /api/banks/{bank}/deposits?event_id=    api/deposits_lookup.py: the ledger's amounts
  /api/members/{no}/statement, /api/receipts   api/passbook.py (wastebank/passbook/)
  /api/dlh/...                                 api/dlh.py: DLH reports from the ledger;
                                               api/sipsn.py: the SIPSN export
                                               api/estimates.py: estimates, PLTSa scenario
  GET  /bank-sampah, /api/public/banks         api/public_banks.py; public: the city's banks
  GET  /api/tonnage?start=&end=&group_by=&interval=   api/measured.py; DLH (their city's
                                               banks), admin
  GET  /api/tps/latest                         api/measured.py; DLH, admin: latest fill reading
                                               per TPS sensor
  /api/tps/...                                 api/tps.py: TPS fill, pickups, alerts
  /api/alerts                                  api/alerts.py: the system's alerts, admins
  /nasabah/..., /dlh, /admin/...               the HTML pages (session cookie, CSRF-protected
                                               forms; api/web.py): api/pages.py (the citizen),
                                               api/pages_dlh.py, api/pages_admin.py
  /static/...                                  the pages' CSS/JS, Chart.js and Leaflet
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api import alerts as alerts_api
from api import (
    auth,
    bank,
    capacity,
    deposits_lookup,
    dlh,
    estimates,
    fleet,
    health,
    limits,
    measured,
    member_desk,
    members,
    pages,
    pages_admin,
    pages_dlh,
    passbook,
    public_banks,
    sipsn,
    stock_moves,
    tps,
    validation,
    web,
)
from api import day as day_api
from api.capacity import HEALTH_POOL, Admission, Capacity, HealthDesk, gated_hasher, pool_timeout
from api.deps import State, data_error, http_error, integrity_error, wastebank_error
from api.settings import ApiSettings
from wastebank import __version__, access, ledger
from wastebank.errors import WastebankError
from wastebank.http_limits import BodyLimit, InFlightLimit
from wastebank.influx import Influx

__all__ = ["ApiSettings", "create_app"]


def create_app(settings: ApiSettings) -> FastAPI:
    app = FastAPI(title="wastebank", version=__version__, lifespan=_lifespan(settings))
    app.add_exception_handler(WastebankError, wastebank_error)
    app.add_exception_handler(IntegrityError, integrity_error)
    app.add_exception_handler(DataError, data_error)
    app.add_exception_handler(PoolTimeout, pool_timeout)
    app.add_exception_handler(StarletteHTTPException, http_error)
    # 422s in words, Indonesian first, naming the field (pydantic's English before)
    app.add_exception_handler(RequestValidationError, validation.request_refused)
    app.include_router(auth.router)
    app.include_router(members.router)
    app.include_router(member_desk.router)
    app.include_router(bank.router)
    app.include_router(deposits_lookup.router)  # GET /api/banks/{b}/deposits?event_id=
    app.include_router(stock_moves.router)  # transfers, residue, pengepul, movements
    app.include_router(day_api.router)  # a bank's day: totals, close, reopen
    app.include_router(passbook.router)
    app.include_router(dlh.router)
    app.include_router(sipsn.router)  # GET /api/dlh/report/sipsn
    app.include_router(estimates.router)  # GET /api/dlh/estimates, /api/dlh/wte-scenario
    app.include_router(public_banks.router)  # GET /bank-sampah, /api/public/banks: no login
    app.include_router(health.router)
    app.include_router(measured.router)
    app.include_router(alerts_api.router)
    app.include_router(tps.router)  # after /api/tps/latest: /api/tps/{code} would take it
    app.include_router(fleet.router)  # GET /api/fleet and the page /armada
    app.include_router(pages.router)
    app.include_router(pages_dlh.router)
    app.include_router(pages_admin.router)
    app.add_exception_handler(web.CsrfRefused, web.csrf_refused_handler)
    web.mount_static(app, settings.pages)
    # Added first, so innermost of the middlewares: what they refuse takes no slot.
    app.add_middleware(Admission)
    # One client's share of the slots, before it may wait for one (its address is the proxy's
    # forwarded one: the proxy middleware is outside).
    app.add_middleware(
        InFlightLimit,
        max_requests=2**31,
        per_client=settings.capacity.per_client,
        retry_after_s=settings.capacity.retry_after_s,
        exempt=capacity.FREE_PATHS,
        exempt_prefixes=capacity.FREE_PREFIXES,
        refused=capacity.per_client_refused,
        logger=limits.log,
    )
    # A body over its limit is refused before it is read or parsed and before the route's
    # dependencies check the caller. Outside it (added last: outermost), the client's address
    # from a trusted reverse proxy, for the login limits and the logs.
    app.add_middleware(
        BodyLimit,
        max_body_bytes=settings.http.max_body_bytes,
        max_upload_bytes=settings.http.max_upload_bytes,
        upload_paths=limits.upload_paths(app.routes),
        refused=limits.refused,
        logger=limits.log,
        body_timeout_s=settings.http.read_timeout_s,
        too_slow=limits.too_slow,
    )
    if settings.http.trusted_proxies:
        app.add_middleware(
            ProxyHeadersMiddleware,
            trusted_hosts=[str(net) for net in settings.http.trusted_proxies],
        )
    return app


def _lifespan(settings: ApiSettings) -> Callable[[FastAPI], AbstractAsyncContextManager[State]]:
    """The app's resources for its life: made before the first request, closed after the last."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[State]:
        key = access.signing_key(settings.auth)  # before anything is opened: may refuse
        capacity = Capacity(settings.capacity)  # threads and pools sized together
        capacity.budget.apply_threads()
        await anyio.to_thread.run_sync(web.load_templates)
        url = settings.ledger_url
        # checks the schema
        engine = ledger.make_engine(url, writer=False, pool=capacity.budget.reader_pool())
        try:
            writer = ledger.make_engine(
                url, writer=True, migrate=False, pool=capacity.budget.writer_pool(url)
            )
        except BaseException:
            engine.dispose()
            raise
        influx = Influx(settings.influx)
        # /health's own: no connection is opened until it probes (migrate=False)
        probe_engine = ledger.make_engine(url, writer=False, migrate=False, pool=HEALTH_POOL)
        desk = HealthDesk(
            probe_engine, settings.capacity.health_ttl_s, health.probe(settings, influx)
        )
        hasher = gated_hasher(
            settings.auth, threads=settings.capacity.logins, nice=settings.capacity.login_nice
        )
        try:
            yield {
                "settings": settings,
                "engine": engine,
                "writer": writer,
                "influx": influx,
                "signing_key": key,
                "hasher": hasher,
                "capacity": capacity,
                "health": desk,
            }
        finally:
            await influx.aclose()
            hasher.close()
            desk.close()
            writer.dispose()
            engine.dispose()

    return lifespan
