"""Keeping the API answering under load: what it takes on at once, how it refuses the rest, and a
/health that answers whatever the rest of the API is doing (the figures: docs/scaling.md, "The
API under a mixed load").

**Admission** (:class:`Admission`, a pure ASGI middleware): every request but the free ones
takes a slot of its class before the app sees it, and gives it back when its answer is sent.

  free      GET /health, /metrics, /static/...: no slot. They touch no pooled connection
            (/health probes the ledger on a connection and a thread of its own, see
            :class:`SharedProbe`), so a monitor sees the service even when it is saturated.
  logins    POST /api/token, POST /masuk, POST /api/members/{no}/pin (a PIN issued): an
            argon2id hash each, costly in memory and CPU by design (docs/operations.md,
            ``[capacity]``): at most ``capacity.logins`` at once (default: half the cores), so
            that a burst of logins cannot take the cores from balance reads.
  requests  every other request: at most ``capacity.requests`` at once.

Beyond its class's limit a request waits, in the event loop (no thread, no connection), at most
``wait_s`` (``login_wait_s``) and behind at most ``queue`` (``login_queue``) others; past either
it is answered **503 with Retry-After** at once, counted by class and reason, and logged (one
warning per class per ten seconds with the counts). Admission is fair: first come, first served.

**The hashing cap is enforced, not only arranged**: the API's password hasher
(:class:`GatedHasher`) refuses to hash outside a login slot, so a new route that hashes without
being a login route fails its tests instead of hashing unbounded. It hashes in threads of its
own, one per login slot, at a lower CPU priority (``capacity.login_nice``): argon2id runs its
lanes in threads of its own (four at production cost), which would otherwise take both cores of
a small machine from the process that answers balance reads.

**Threads and connections are sized from the same settings** (:class:`Budget`): each admitted
request does its sync work in at most one worker thread at a time, so ``requests + logins``
threads (anyio's default limiter, which FastAPI's sync routes and dependencies use, and the
event loop's default executor, which ``asyncio.to_thread`` uses) are never all busy, and no
request waits for a thread it was admitted for. The read engine's pool keeps ``requests +
logins`` connections and may open ``requests`` more (a page may hold its sign-in's connection
while its work reads on another); the write engine keeps ``requests`` on PostgreSQL (a write
holds one) and one on SQLite, where writes take turns (:meth:`Budget.writer_pool`). So a read's
checkout never waits while admission holds, and a write waits only for the write before it;
longer than ``wait_s``, the request is answered 503 too (:func:`pool_timeout`), never hung.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import anyio.to_thread
from argon2 import PasswordHasher
from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, make_url
from starlette.types import ASGIApp, Receive, Scope, Send

from api.settings import CapacitySettings
from wastebank.access import AuthSettings
from wastebank.errors import SetupError, Unavailable
from wastebank.http_limits import BUSY, read_whole, send_detail

log = logging.getLogger("api.capacity")
T = TypeVar("T")

per_client_refused: Counter[str] = Counter()
"""This process's 503s for a client over ``[capacity] per_client`` (``busy``; api/app.py):
an admin's ``GET /health`` shows them (``capacity.per_client_refused``)."""

FREE_PATHS = ("/health", "/metrics")
FREE_PREFIXES = ("/static/",)
LOGIN_ROUTES = frozenset({("POST", "/api/token"), ("POST", "/masuk")})
# Routes with a path parameter that hash a secret too: a PIN issued at the bank (api/member_desk.py)
LOGIN_PATTERNS = (("POST", re.compile(r"^/api/members/[^/]+/pin$")),)


# ---- the budget -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """Threads and pooled connections for a process admitting ``settings``' requests and
    logins at once (see the module's docstring for why these sizes)."""

    settings: CapacitySettings

    @property
    def threads(self) -> int:
        return self.settings.requests + self.settings.logins

    def reader_pool(self) -> dict[str, Any]:
        return {
            "pool_size": self.threads,
            "max_overflow": self.settings.requests,
            "pool_timeout": self.settings.wait_s,
        }

    def writer_pool(self, url: str) -> dict[str, Any]:
        """On SQLite one connection: SQLite lets one writer in at a time, and the pool's queue
        hands the connection on as soon as it is back, in turn, where SQLite's busy handler
        would have the others retry after sleeps of up to 100 ms, favouring nobody: writes
        then waited seconds, holding their request slots (docs/scaling.md). PostgreSQL locks
        rows: a connection per request."""
        sqlite = make_url(url).get_backend_name() == "sqlite"
        return {
            "pool_size": 1 if sqlite else self.settings.requests,
            "max_overflow": 0,
            "pool_timeout": self.settings.wait_s,
        }

    def apply_threads(self) -> None:
        """Size this event loop's worker threads: anyio's default limiter, which FastAPI's sync
        routes and dependencies and the API's own hand-offs (``anyio.to_thread.run_sync``) use;
        anyio's own default is 40."""
        anyio.to_thread.current_default_thread_limiter().total_tokens = self.threads


# ---- admission --------------------------------------------------------------------------------


class Saturated(Unavailable):
    """No slot within the wait budget (``reason``: ``queue_full`` or ``wait``): answered 503
    with Retry-After by :class:`Admission`."""

    def __init__(self, gate: str, reason: str) -> None:
        super().__init__(f"{gate}: {reason}")
        self.gate, self.reason = gate, reason


class Gate:
    """At most ``limit`` holders; up to ``queue`` more wait, each at most ``wait_s``."""

    def __init__(self, name: str, limit: int, queue: int, wait_s: float) -> None:
        self.name, self.limit, self.queue, self.wait_s = name, limit, queue, wait_s
        self._slots = asyncio.Semaphore(limit)
        self.in_flight = 0
        self.waiting = 0
        self.admitted = 0
        self.refused: Counter[str] = Counter()
        self._warned_at = 0.0
        self._warned: Counter[str] = Counter()

    async def acquire(self) -> None:
        """A slot, or :class:`Saturated`."""
        if self._slots.locked() and self.waiting >= self.queue:
            self._refuse("queue_full")
        self.waiting += 1
        try:
            async with asyncio.timeout(self.wait_s):
                await self._slots.acquire()
        except TimeoutError:
            self._refuse("wait")
        finally:
            self.waiting -= 1
        self.in_flight += 1
        self.admitted += 1

    def release(self) -> None:
        self.in_flight -= 1
        self._slots.release()

    def _refuse(self, reason: str) -> None:
        self.refused[reason] += 1
        now = time.monotonic()
        if now - self._warned_at >= 10:
            since = self.refused - self._warned
            log.warning(
                "API jenuh / saturated: %s refused %s (limit %d, waiting %d, wait %.1f s)",
                self.name,
                dict(since),
                self.limit,
                self.waiting,
                self.wait_s,
            )
            self._warned_at, self._warned = now, Counter(self.refused)
        raise Saturated(self.name, reason)

    def snapshot(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "in_flight": self.in_flight,
            "waiting": self.waiting,
            "admitted": self.admitted,
            "refused": dict(self.refused),
        }


_in_login_slot: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "in_login_slot", default=False
)


class Capacity:
    """One process's gates and budget (made in the app's lifespan, on the loop that serves)."""

    def __init__(self, settings: CapacitySettings) -> None:
        self.settings = settings
        self.budget = Budget(settings)
        self.requests = Gate("requests", settings.requests, settings.queue, settings.wait_s)
        self.logins = Gate("logins", settings.logins, settings.login_queue, settings.login_wait_s)

    def gate_for(self, method: str, path: str) -> Gate | None:
        if path in FREE_PATHS or path.startswith(FREE_PREFIXES):
            return None
        if (method, path) in LOGIN_ROUTES or any(
            method == m and pattern.match(path) for m, pattern in LOGIN_PATTERNS
        ):
            return self.logins
        return self.requests

    def snapshot(self) -> dict[str, Any]:
        return {
            "threads": self.budget.threads,
            "requests": self.requests.snapshot(),
            "logins": self.logins.snapshot(),
            "per_client": self.settings.per_client,
            "per_client_refused": sum(per_client_refused.values()),
        }


class Admission:
    """The middleware of the module's docstring; a pass-through before the lifespan has made
    the :class:`Capacity` (``scope["state"]["capacity"]``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        capacity: Capacity | None = scope.get("state", {}).get("capacity")
        if scope["type"] != "http" or capacity is None:
            await self.app(scope, receive, send)
            return
        gate = capacity.gate_for(scope["method"], scope["path"])
        if gate is None:
            await self.app(scope, receive, send)
            return
        if gate is capacity.logins:
            # A login's body (a few hundred bytes) is read before it may take one of the few
            # login slots: a client that sends its head and never its body waits outside
            # (BodyLimit, outside this, ends the wait at http.read_timeout_s with a 408).
            whole = await read_whole(receive)
            if whole is None:
                return
            receive = whole
        try:
            await gate.acquire()
        except Saturated:
            await _busy(send, capacity.settings.retry_after_s)
            return
        token = _in_login_slot.set(gate is capacity.logins)
        try:
            await self.app(scope, receive, send)
        finally:
            _in_login_slot.reset(token)
            gate.release()


async def _busy(send: Send, retry_after_s: int) -> None:
    await send_detail(send, 503, BUSY, [(b"retry-after", str(retry_after_s).encode())])


def pool_timeout(request: Request, _exc: Exception) -> JSONResponse:
    """A pooled connection not free within ``wait_s`` (SQLAlchemy's TimeoutError): the same
    503 as a refused admission. Admission should make this impossible; it is logged as an
    error, for the budget is wrong if it happens."""
    log.error("no ledger connection within the wait: %s %s", request.method, request.url.path)
    retry = request.state.capacity.settings.retry_after_s
    return JSONResponse({"detail": BUSY}, status_code=503, headers={"Retry-After": str(retry)})


# ---- the hashing cap --------------------------------------------------------------------------


class HashingOutsideLoginSlot(SetupError, RuntimeError):
    """A password hashed by a request that is not a login route (LOGIN_ROUTES): the code must
    be set up first, the route added there."""


def _require_login_slot() -> None:
    if not _in_login_slot.get():
        raise HashingOutsideLoginSlot(
            "password hashing outside a login slot: add the route to api/capacity.LOGIN_ROUTES"
        )


def _lower_priority(nice: int) -> None:
    """This thread's CPU priority ``nice`` steps lower (Linux; the threads it starts, argon2's
    lanes, inherit it): when the cores are busy a balance read goes first, and the hash takes
    what is left."""
    try:  # on Linux each thread has its nice value; who=0 is this thread
        os.setpriority(os.PRIO_PROCESS, 0, min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice))
    except (AttributeError, OSError):  # not Linux: the cap alone bounds the hashing
        log.debug("could not lower the hashing threads' priority", exc_info=True)


class GatedHasher(PasswordHasher):
    """The API's argon2id hasher. It hashes only inside a login slot (contextvars follow a
    request into its worker threads), and in threads of its own, one per login slot, at a lower
    CPU priority (``nice``): logins cannot take the cores from reads."""

    def __init__(self, *args: Any, threads: int = 1, nice: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._threads = ThreadPoolExecutor(
            threads, thread_name_prefix="api-hash", initializer=_lower_priority, initargs=(nice,)
        )

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        _require_login_slot()
        return self._threads.submit(super().hash, password, salt=salt).result()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:  # noqa: A002
        _require_login_slot()
        return self._threads.submit(super().verify, hash, password).result()

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)


def gated_hasher(settings: AuthSettings, threads: int = 1, nice: int = 0) -> GatedHasher:
    return GatedHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        threads=threads,
        nice=nice,
    )


# ---- /health ----------------------------------------------------------------------------------


class SharedProbe(Generic[T]):
    """``probe`` run for every caller at once: while it runs, later callers await the same run.
    A result younger than ``ttl_s`` is reused; one younger than ``stale_s`` is answered at once
    while a new probe runs behind it (so a caller waits for a probe only when there is no recent
    result: the first, or after ``stale_s`` of silence). A thousand monitors cost one probe a
    ``ttl_s``, and none of them waits for it."""

    def __init__(self, probe: Callable[[], Awaitable[T]], ttl_s: float, stale_s: float) -> None:
        self._probe, self._ttl, self._stale = probe, ttl_s, max(stale_s, ttl_s)
        self._task: asyncio.Task[T] | None = None
        self._result: tuple[float, T] | None = None

    async def get(self) -> T:
        age = (
            asyncio.get_running_loop().time() - self._result[0]
            if self._result is not None
            else None
        )
        if self._result is not None and age is not None and age < self._ttl:
            return self._result[1]
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        if self._result is not None and age is not None and age < self._stale:
            return self._result[1]
        return await asyncio.shield(self._task)

    async def _run(self) -> T:
        result = await self._probe()
        self._result = (asyncio.get_running_loop().time(), result)
        return result


class HealthDesk:
    """What GET /health needs to answer from the event loop whatever the requests are doing: a
    ledger engine of its own (one connection, never the request pools) used in threads of its
    own (never the request threads), and one :class:`SharedProbe` of every part."""

    def __init__(
        self, engine: Engine, ttl_s: float, probe: Callable[[HealthDesk], Awaitable[Any]]
    ) -> None:
        self.engine = engine
        self._threads = ThreadPoolExecutor(2, thread_name_prefix="api-health")
        self.shared: SharedProbe[Any] = SharedProbe(lambda: probe(self), ttl_s, HEALTH_STALE_S)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a health thread."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()


HEALTH_STALE_S = 10.0
"""/health answers at once with a check up to this old while it checks again."""

HEALTH_POOL: dict[str, Any] = {"pool_size": 1, "max_overflow": 1, "pool_timeout": 5}
"""The health engine's pool: its two threads each hold at most one connection."""
