"""The API keeps answering under load (issue 13, api/capacity.py): admission with 503 and
Retry-After instead of a hang, /health never queued, a cap on password hashing, threads and
pools sized together, and nothing on the event loop that waits for a connection or a file.

Saturation is made by holding what requests need (a gate's slots, every worker thread, every
pooled connection), never by timing: no assertion here depends on how fast the machine is.
The figures under real load are bench/api.py's (docs/scaling.md)."""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from traceback import walk_stack
from types import ModuleType
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.pool import Pool

from api import capacity
from api.app import create_app
from api.capacity import Gate, GatedHasher, HashingOutsideLoginSlot, Saturated
from api.settings import ApiSettings, CapacitySettings, HttpSettings
from tests.auth_helpers import (
    PASSWORD,
    PIN,
    add_users,
    api_settings,
    auth_settings,
    login,
    with_csrf,
)
from tests.conftest import eventually, held_requests
from tests.test_authz_matrix import MATRIX, Env
from tests.test_authz_matrix import env as env  # noqa: F401 - its fixture, for the route audit
from tests.test_authz_matrix import test_cell as run_cell
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.http_limits import BUSY

API = Path(__file__).resolve().parent.parent / "api"

# ---- the gate alone ---------------------------------------------------------------------------


async def test_a_full_gate_refuses_at_once_when_its_queue_is_full() -> None:
    gate = Gate("requests", limit=1, queue=0, wait_s=60)
    await gate.acquire()
    with pytest.raises(Saturated) as refused:
        await gate.acquire()  # no room to wait: refused without waiting out the 60 s
    assert refused.value.reason == "queue_full"
    assert gate.snapshot() == {
        "limit": 1,
        "in_flight": 1,
        "waiting": 0,
        "admitted": 1,
        "refused": {"queue_full": 1},
    }
    gate.release()
    await gate.acquire()  # a released slot is taken again
    assert gate.in_flight == 1


async def test_a_waiter_gets_the_next_slot_or_is_refused_after_its_wait() -> None:
    gate = Gate("requests", limit=1, queue=1, wait_s=0.05)
    await gate.acquire()
    with pytest.raises(Saturated) as refused:
        await gate.acquire()  # waited its wait_s behind the holder
    assert refused.value.reason == "wait"

    gate.wait_s = 60
    waiter = asyncio.create_task(gate.acquire())
    while gate.waiting == 0:
        await asyncio.sleep(0)
    with pytest.raises(Saturated):  # one waits already: the queue (1) is full
        await gate.acquire()
    gate.release()
    await waiter  # first come, first served: the waiter has the slot
    assert (gate.in_flight, gate.waiting) == (1, 0)
    assert dict(gate.refused) == {"wait": 1, "queue_full": 1}


# ---- /health's shared probe ------------------------------------------------------------------


async def test_the_health_probe_is_shared_and_answers_from_its_last_result() -> None:
    runs: list[asyncio.Event] = []

    async def probe() -> int:
        release = asyncio.Event()
        runs.append(release)
        await release.wait()
        return len(runs)

    shared = capacity.SharedProbe(probe, ttl_s=0, stale_s=3600)
    first = [asyncio.create_task(shared.get()) for _ in range(3)]
    while not runs:
        await asyncio.sleep(0)
    runs[0].set()
    assert [await t for t in first] == [1, 1, 1]  # three callers, one probe
    assert len(runs) == 1
    # older than ttl_s, younger than stale_s: the last result at once, a new probe behind it
    assert await shared.get() == 1
    while len(runs) < 2:
        await asyncio.sleep(0)
    assert await shared.get() == 1  # the new probe is still running: no third one
    for _ in range(3):
        await asyncio.sleep(0)
    assert len(runs) == 2
    runs[1].set()
    while len(runs) < 3:  # done: its result is answered, and the next probe started behind it
        got = await shared.get()
        await asyncio.sleep(0)
    assert got == 2

    waited = capacity.SharedProbe(probe, ttl_s=0, stale_s=0)  # no stale answers: each waits
    runs.clear()
    task = asyncio.create_task(waited.get())
    while not runs:
        await asyncio.sleep(0)
    runs[0].set()
    assert await task == 1
    task = asyncio.create_task(waited.get())
    while len(runs) < 2:
        await asyncio.sleep(0)
    assert not task.done()
    runs[1].set()
    assert await task == 2


# ---- the hashing cap --------------------------------------------------------------------------


def test_the_api_hasher_refuses_to_hash_outside_a_login_slot() -> None:
    hasher = capacity.gated_hasher(auth_settings(), nice=10)
    assert isinstance(hasher, GatedHasher)
    with pytest.raises(HashingOutsideLoginSlot):
        hasher.hash(PIN)
    token = capacity._in_login_slot.set(True)
    try:
        assert hasher.verify(hasher.hash(PIN), PIN)
    finally:
        capacity._in_login_slot.reset(token)
    with pytest.raises(HashingOutsideLoginSlot):
        hasher.verify("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA", PIN)
    # its threads yield the cores to the rest of the API (Linux: a nice value of their own)
    niceness = hasher._threads.submit(os.getpriority, os.PRIO_PROCESS, 0).result()
    own = os.getpriority(os.PRIO_PROCESS, 0)
    hasher.close()
    if sys.platform == "linux":
        assert niceness == min(19, own + 10)


# ---- the app ----------------------------------------------------------------------------------


@asynccontextmanager
async def served(settings: ApiSettings) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    """The app on this test's event loop, and its lifespan state (what the gates, pools and
    limiters of this process are), as uvicorn serves it: each request gets a copy of it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app) as made:
        assert made is not None
        state = dict(made)

        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, state


def settings_for(
    mqtt: MqttSettings, influx: InfluxSettings, ledger_url: str, **limits: Any
) -> ApiSettings:
    return api_settings(
        mqtt=mqtt, influx=influx, ledger_url=ledger_url, capacity=CapacitySettings(**limits)
    )


def assert_busy(resp: httpx.Response, retry_after: int = 2) -> None:
    assert resp.status_code == 503, resp.text
    assert resp.headers["retry-after"] == str(retry_after)
    assert resp.json()["detail"] == BUSY


@pytest.mark.integration
async def test_threads_and_pools_are_sized_together(
    mqtt_settings: MqttSettings, influx_settings: InfluxSettings, ledger_url: str
) -> None:
    settings = settings_for(mqtt_settings, influx_settings, ledger_url, requests=6, logins=2)
    async with served(settings) as (_client, state):
        assert anyio.to_thread.current_default_thread_limiter().total_tokens == 8
        reader, writer = state["engine"].pool, state["writer"].pool
        assert (reader.size(), reader._max_overflow) == (8, 6)  # a page may hold two
        # SQLite lets one writer in: its writes take turns in the pool's queue
        sqlite = state["writer"].dialect.name == "sqlite"
        assert (writer.size(), writer._max_overflow) == ((1 if sqlite else 6), 0)
        assert reader._timeout == writer._timeout == settings.capacity.wait_s


@pytest.mark.integration
async def test_a_saturated_api_answers_503_at_once_and_health_still_answers(
    mqtt_settings: MqttSettings, influx_settings: InfluxSettings, ledger_url: str
) -> None:
    add_users(ledger_url, ("citizen_a", "admin"))
    settings = settings_for(mqtt_settings, influx_settings, ledger_url, requests=1, queue=0)
    async with served(settings) as (client, state):
        siti = await login(client, "AMB-0001", PIN)
        admin = await login(client, "admin", PASSWORD)
        gate: Gate = state["capacity"].requests
        await gate.acquire()  # the one request slot is taken (a request that does not end)
        try:
            assert_busy(await client.get("/api/members/AMB-0001/balance", headers=siti))
            assert_busy(await client.get("/nasabah/AMB-0001"))  # pages too
            health = await client.get("/health", headers=admin)  # never queued
            assert health.status_code == 200, health.text
            seen = health.json()["capacity"]  # an admin's: the refusals are counted
            assert seen["requests"]["in_flight"] == 1
            assert seen["requests"]["refused"] == {"queue_full": 2}
            assert (await client.get("/static/app.css")).status_code != 503
        finally:
            gate.release()
        assert (await client.get("/api/members/AMB-0001/balance", headers=siti)).status_code == 200
        assert "capacity" not in (await client.get("/health", headers=siti)).json()


@pytest.mark.integration
async def test_with_every_worker_thread_busy_requests_get_503_and_health_answers(
    mqtt_settings: MqttSettings, influx_settings: InfluxSettings, ledger_url: str
) -> None:
    """The saturation of issue 13: every worker thread taken. The two admitted requests wait
    for a thread (in the loop: nothing blocks it), the next waits its wait_s in the queue and
    is refused, one more finds the queue full; /health answers meanwhile."""
    add_users(ledger_url, ("citizen_a",))
    settings = settings_for(
        mqtt_settings, influx_settings, ledger_url, requests=2, queue=1, wait_s=0.1, logins=1
    )
    async with served(settings) as (client, state):
        siti = await login(client, "AMB-0001", PIN)
        limiter = anyio.to_thread.current_default_thread_limiter()
        borrowers = [object() for _ in range(int(limiter.total_tokens))]
        for b in borrowers:
            await limiter.acquire_on_behalf_of(b)
        gate: Gate = state["capacity"].requests
        try:

            def transactions() -> Any:  # a sync route: needs a worker thread
                return client.get("/api/members/AMB-0001/transactions", headers=siti)

            stuck = [asyncio.create_task(transactions()) for _ in range(2)]

            async def both_in_flight() -> bool:
                return gate.in_flight >= 2

            await eventually(both_in_flight)
            waited = asyncio.create_task(transactions())
            while gate.waiting < 1 and not waited.done():
                await asyncio.sleep(0)
            assert_busy(await transactions())  # the queue (1) is full
            assert_busy(await waited)  # waited 0.1 s for a slot
            health = await client.get("/health")
            assert health.status_code == 200, health.text
            assert not any(t.done() for t in stuck)  # still waiting for a thread
        finally:
            for b in borrowers:
                limiter.release_on_behalf_of(b)
        assert [(await t).status_code for t in stuck] == [200, 200]
        assert dict(gate.refused) == {"queue_full": 1, "wait": 1}


@pytest.mark.integration
async def test_with_every_connection_taken_a_request_gets_503_not_a_hang(
    mqtt_settings: MqttSettings, influx_settings: InfluxSettings, ledger_url: str
) -> None:
    add_users(ledger_url, ("citizen_a",))
    settings = settings_for(mqtt_settings, influx_settings, ledger_url, wait_s=0.1)
    async with served(settings) as (client, state):
        siti = await login(client, "AMB-0001", PIN)
        engine = state["engine"]
        held = [engine.connect() for _ in range(engine.pool.size() + engine.pool._max_overflow)]
        try:
            assert_busy(await client.get("/api/members/AMB-0001/balance", headers=siti))
            health = await client.get("/health")  # its own connection: the ledger is fine
            assert health.status_code == 200, health.text
            assert health.json()["ledger"] == {"ok": True}
        finally:
            for conn in held:
                conn.close()
        assert (await client.get("/api/members/AMB-0001/balance", headers=siti)).status_code == 200


@pytest.mark.integration
async def test_logins_beyond_the_hashing_cap_get_503_and_reads_go_on(
    mqtt_settings: MqttSettings, influx_settings: InfluxSettings, ledger_url: str
) -> None:
    add_users(ledger_url, ("citizen_a", "citizen_b"))
    settings = settings_for(
        mqtt_settings, influx_settings, ledger_url, logins=1, login_queue=0, retry_after_s=5
    )
    async with served(settings) as (client, state):
        siti = await login(client, "AMB-0001", PIN)
        logins: Gate = state["capacity"].logins
        await logins.acquire()  # a password being hashed
        try:
            token = await client.post("/api/token", data={"username": "AMB-0002", "password": PIN})
            assert_busy(token, retry_after=5)
            form = await with_csrf(client, {"username": "AMB-0002", "password": PIN})
            assert_busy(await client.post("/masuk", data=form), retry_after=5)
            # reads are another class: no login takes their slots
            balance = await client.get("/api/members/AMB-0001/balance", headers=siti)
            assert balance.status_code == 200, balance.text
        finally:
            logins.release()
        assert dict(logins.refused) == {"queue_full": 2}
        assert state["capacity"].requests.refused == {}
        await login(client, "AMB-0002", "975318")  # the slot is free again


@pytest.mark.integration
async def test_logins_whose_bodies_never_come_take_no_login_slot_and_end_in_408(
    mqtt_settings: MqttSettings, influx_settings: InfluxSettings, ledger_url: str
) -> None:
    """The second review's attack: ten POST /api/token that send their head and never their
    body held the one login slot and its queue, and every real login got 503."""
    add_users(ledger_url, ("citizen_a",))
    settings = api_settings(
        mqtt=mqtt_settings,
        influx=influx_settings,
        ledger_url=ledger_url,
        capacity=CapacitySettings(logins=1, login_queue=0, per_client=20),
        http=HttpSettings(read_timeout_s=1.0),
    )
    async with served(settings) as (client, state):
        held, _ = await held_requests(client, "/api/token", 10)
        await login(client, "AMB-0001", PIN)  # the slot is free: they wait outside it
        answers = await asyncio.gather(*held)
        assert {r.status_code for r in answers} == {408}
        assert "tidak utuh dalam 1 detik" in answers[0].json()["detail"]
        assert state["capacity"].logins.refused == {}


@pytest.mark.integration
async def test_one_client_cannot_take_every_slot(
    mqtt_settings: MqttSettings, influx_settings: InfluxSettings, ledger_url: str
) -> None:
    """The third review: 90 anonymous requests whose bodies never came held every slot, and
    every page got 503. One client address has ``[capacity] per_client`` at once."""
    settings = api_settings(
        mqtt=mqtt_settings,
        influx=influx_settings,
        ledger_url=ledger_url,
        capacity=CapacitySettings(per_client=2),
        http=HttpSettings(read_timeout_s=1.0),
    )
    async with served(settings) as (client, state):
        held, _ = await held_requests(client, "/api/token", 2)
        assert_busy(await client.get("/masuk"))  # this address's share is taken
        assert (await client.get("/health")).status_code == 200  # free paths are not counted
        transport: Any = client._transport
        other = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=transport.app, client=("10.0.0.9", 5000)),
            base_url="http://test",
        )
        async with other:
            assert (await other.get("/masuk")).status_code == 200
        assert {r.status_code for r in await asyncio.gather(*held)} == {408}
        assert (await client.get("/masuk")).status_code == 200  # its share came back
        assert state["capacity"].snapshot()["per_client_refused"] >= 1


# ---- nothing on the event loop ----------------------------------------------------------------


def _api_modules() -> list[ModuleType]:
    import api

    names = sorted(p.stem for p in API.glob("*.py") if p.stem != "__init__")
    return [__import__(f"api.{n}", fromlist=["_"]) for n in names] + [api]


SYNC_DB_CALLS = frozenset({"connect", "execute", "scalar", "scalars", "commit", "flush", "begin"})
SYNC_DB_NAMES = frozenset({"Session", "write_session", "read_session"})


def _loop_calls(fn: ast.AsyncFunctionDef) -> list[str]:
    """Calls in ``fn``'s own body (not in the functions and lambdas it defines: those run
    where they are handed, a worker thread) that use the sync engine."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(child, ast.Call):
                f = child.func
                if isinstance(f, ast.Name) and f.id in SYNC_DB_NAMES:
                    found.append(f"{f.id}() line {child.lineno}")
                if isinstance(f, ast.Attribute) and f.attr in SYNC_DB_CALLS | {"write"}:
                    found.append(f".{f.attr}() line {child.lineno}")
            visit(child)

    visit(fn)
    return found


def test_no_async_function_of_the_api_uses_the_sync_engine() -> None:
    """Every ``async def`` of the api package runs on the event loop: a route, an async
    dependency, a helper they await. None may open a session, check out a connection or
    write: that is a worker thread's (``anyio.to_thread.run_sync``)."""
    offenders: dict[str, list[str]] = {}
    for path in sorted(API.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.AsyncFunctionDef) and (calls := _loop_calls(node)):
                offenders[f"{path.name}:{node.name}"] = calls
    assert offenders == {}


def test_the_audit_finds_what_it_looks_for() -> None:
    src = textwrap.dedent(
        """
        async def route(state):
            def work():
                with Session(state["engine"]) as s:  # in a thread: fine
                    return s.scalar(1)
            with Session(state["engine"]) as session:
                session.execute("SELECT 1")
            return await run(work)
        """
    )
    (fn,) = [n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.AsyncFunctionDef)]
    assert _loop_calls(fn) == ["Session() line 6", ".execute() line 7"]


def test_every_async_route_and_dependency_is_seen_by_the_audit() -> None:
    """The audit above reads api/*.py: every coroutine function the app calls (routes and
    dependencies) is defined there, so none escapes it."""
    from fastapi.dependencies.models import Dependant

    app = create_app(api_settings())
    outside: set[str] = set()

    def walk(dep: Dependant) -> None:
        call = dep.call
        if call is not None and inspect.iscoroutinefunction(call):
            module = getattr(call, "__module__", "") or ""
            if not module.startswith("api.") and not module.startswith("fastapi"):
                outside.add(f"{module}.{call.__qualname__}")
        for sub in dep.dependencies:
            walk(sub)

    routes: list[Any] = list(app.routes)
    try:
        from fastapi.routing import iter_route_contexts

        routes = list(iter_route_contexts(routes))
    except ImportError:
        pass
    for route in routes:
        dependant = getattr(route, "dependant", None)
        if dependant is not None:
            walk(dependant)
    assert outside == set()


CODE = (".py", ".pyc", ".so")
"""Files Python opens to run code: a lazy import, the source of a function that FastAPI
reads once to name it in errors. Once per process, not per request: not audited."""


@contextmanager
def on_loop_io() -> Iterator[list[str]]:
    """What checks out a pooled connection, connects, or opens a file while the current thread
    runs an event loop (the API's, in uvicorn's thread): each with the stack that did it."""
    seen: list[str] = []
    active = threading.Event()
    active.set()

    def on_loop() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return active.is_set()

    def record(what: str) -> None:
        # the frames by name only: reading their source lines would open files (and recurse)
        frames = [f"  {f.f_code.co_filename}:{n} {f.f_code.co_name}" for f, n in walk_stack(None)]
        seen.append("\n".join([what, *frames[2:16]]))

    def checkout(*_args: Any) -> None:
        if on_loop():
            record("pool checkout")

    def connect(*_args: Any) -> None:
        if on_loop():
            record("pool connect")

    def audit(name: str, args: tuple[Any, ...]) -> None:
        if name == "open" and on_loop() and not str(args[0]).endswith(CODE):
            record(f"open {args[0]!r}")

    event.listen(Pool, "checkout", checkout)
    event.listen(Pool, "connect", connect)
    sys.addaudithook(audit)  # cannot be removed: ``active`` turns it off
    try:
        yield seen
    finally:
        active.clear()
        event.remove(Pool, "checkout", checkout)
        event.remove(Pool, "connect", connect)


@pytest.mark.integration
def test_no_route_waits_on_the_event_loop_for_a_connection_or_a_file(env: Env) -> None:  # noqa: F811
    """Every route of the authorization matrix, once, as a role it serves: none checks out a
    pooled connection, connects, or opens a file in the thread that runs the event loop
    (``env``: test_authz_matrix's app, ledger and logins)."""
    offenders: dict[str, list[str]] = {}
    for route, case in sorted(MATRIX.items()):
        role = "admin" if "admin" in case.ok else sorted(case.ok)[0]
        with on_loop_io() as seen:
            run_cell(env, route, role)  # the matrix's own request, and its expectations
        if seen:
            offenders[" ".join(route)] = seen
    assert offenders == {}, "\n\n".join(f"{k}: {v[0]}" for k, v in offenders.items())


def test_the_loop_audit_sees_a_connection_taken_on_an_event_loop(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'audit.db'}")

    async def on_the_loop() -> None:
        with engine.connect():
            pass

    try:
        with on_loop_io() as seen:
            asyncio.run(on_the_loop())
            engine.connect().close()  # in no event loop's thread: not seen
    finally:
        engine.dispose()
    assert [s.split("\n")[0] for s in seen] == ["pool connect", "pool checkout"]
