"""API read path: balance and statement latency and throughput on a city-sized ledger.

Each figure is measured here, now, against `wastebank api --workers N` (uvicorn; by default one
worker per core, as a city server runs it; `--workers 1` for a single process) on a ledger of
N members and M deposits, each deposit with its two journal entries (the member credited, the
bank's purchases debited): 100,000 members and 1,000,000 deposits, 2,000,000 journal entries by
default. Every member has a citizen login; requests carry
bearer tokens of a random sample of them (each a citizen reading their own account), so each
request decodes a JWT and loads its user, as every API request does.

a. the client's own ceiling: the load generator below against a bare asyncio HTTP server in
   another process answering a fixed 200 (no framework): what this client can drive at most;
b. uvicorn's ceiling: a bare ASGI app (no FastAPI, no database) under `uvicorn`, same workers;
c. GET /api/members/{no}/balance and GET /api/members/{no}/statement, each:
   - unloaded: one request at a time (service time), p50 / p99;
   - peak: C concurrent keep-alive connections, closed loop: requests/s (and p50 / p99);
   - open loop at the goal rate (1,000 requests/s), or at 70 % of the peak when that is lower
     (beyond the peak the backlog only grows): latency from each request's scheduled time, so
     a stall counts against every request it delays;
   and for each, the API process's CPU time per request (psutil), which depends far less than
   the rates on what else the machine runs;
d. POST /api/token for a few citizens (argon2id at argon2-cffi's cost, as production runs it):
   the cost of a login, paid once per token, never per request;
e. open loops of several kinds at fixed offered rates (issue 13; requests sent on schedule, not
   after the previous answer; latency from the scheduled time; a request unanswered after
   --timeout is a timeout), each followed by --after-seconds of GET /health alone:
   - reads: balances and statements only, at the mix's total rate: the baseline;
   - mixed: balances, statements, manual deposits (by an attendant of the member's bank),
     withdrawal requests (by the citizen) and logins at MIX's rates (150/s in all by default);
   - storm: balances at the mix's rate beside 30 logins a second;
   each kind's p50 / p99 / max, answers by status (503: refused by the API's admission control,
   an answer, not a timeout), timeouts, its ratios against the baseline's, and GET /health
   (each on a new connection, 10 a second, as a monitor probes) during and after.

The load generator is a minimal HTTP/1.1 keep-alive client on asyncio streams (the API answers
with Content-Length), so that it is not the bottleneck: (a) shows its ceiling, and each API
figure is printed as a ratio of it. Seeding is bulk: SQLAlchemy Core executemany on SQLite,
COPY on PostgreSQL (then VACUUM ANALYZE); the schema is the migrations' (`ledger.make_engine`),
the demo city on top; then `sync`, so that the kernel's write-back of the load is not measured.
Deposits' stock entries and the daily summary are not seeded: neither read measured uses them.

Run after `make services` (add `--with postgresql` for `--ledger postgresql`):
    .venv/bin/python bench/api.py [--members 100000] [--deposits 1000000] [--ledger sqlite]
    [--keep DIR]  (SQLite: keep the seeded ledger in DIR and reuse it on the next run)
    [--workers 1 --mixed-only]  (issue 13's target: one worker; the open loops (e) only)
    [--quick]  (a small ledger and short runs: QUICK below)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import Engine, event, func, make_url, select, text
from sqlalchemy.orm import Session

from api.settings import CapacitySettings, HttpSettings
from wastebank import access, ledger, services
from wastebank.config import load_settings
from wastebank.seed import load_city, seed

GOAL_BALANCE_P99_MS = 10.0
GOAL_RATE_S = 1_000
PIN = "246810"
CHUNK = 50_000
DEPOSITS_SINCE = timedelta(days=730)  # deposits spread over the last two years


def progress(text: str) -> None:
    print(f"  … {text}", file=sys.stderr, flush=True)


# ---- seeding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    url: str
    members: int
    deposits: int
    entries: int
    seconds: float


def seed_ledger(url: str, n_members: int, n_deposits: int) -> Seeded:
    """The migrated schema and the demo city, then ``n_members`` members (each with a citizen
    login), ``n_deposits`` deposits round-robin over them and their journal entries."""
    t0 = time.monotonic()
    engine = ledger.make_engine(url)  # migrates to head
    try:
        seed(engine, load_city())
        with Session(engine) as s:
            banks = list(s.scalars(select(ledger.Bank).order_by(ledger.Bank.id)))
            now = datetime.now(UTC)
            priced = []  # (bank, category, price) for each kg category the bank buys
            for bank in banks:
                for cat in s.scalars(select(ledger.Category).where(ledger.Category.unit == "kg")):
                    price = ledger.price_in_force(s, bank.id, cat.id, now)
                    if price:
                        priced.append((bank.id, bank.code, cat.id, cat.code, price))
            hasher = access.password_hasher(access.AuthSettings())
            pin_hash = hasher.hash(PIN)  # production cost; one hash shared by every login
    finally:
        engine.dispose()
    by_bank: dict[int, list[tuple[int, str, int, str, int]]] = {}
    for row in priced:
        by_bank.setdefault(row[0], []).append(row)
    bank_ids = sorted(by_bank)
    if not bank_ids:
        raise SystemExit("the demo city has no bank with a kg price")

    bulk = _bulk_engine(url)
    try:
        with bulk.begin() as conn:
            first_id = (conn.scalar(select(func.max(ledger.Member.id))) or 0) + 1
        member_bank = [bank_ids[i % len(bank_ids)] for i in range(n_members)]
        members = (
            {
                "id": first_id + i,
                "member_no": member_no(i),
                "name": f"Nasabah Uji {i}",
                "bank_id": member_bank[i],
                "kind": "individual",
            }
            for i in range(n_members)
        )
        _insert(bulk, ledger.Member.__table__, members, n_members, "members")
        users = (
            {
                "username": member_no(i),
                "role": "citizen",
                "name": f"Nasabah Uji {i}",
                "secret_hash": pin_hash,
                "member_id": first_id + i,
                "active": True,
                "token_version": 0,
                "created_at": now,
            }
            for i in range(n_members)
        )
        _insert(bulk, access.User.__table__, users, n_members, "citizen logins")
        rng = random.Random(20261130)
        since = now - DEPOSITS_SINCE
        step = DEPOSITS_SINCE / max(n_deposits, 1)
        plan = []  # (member index, bank row, net_g, measured_at) per deposit, in time order
        for d in range(n_deposits):
            m = d % n_members
            _b, bank_code, cat_id, cat_code, price = rng.choice(by_bank[member_bank[m]])
            plan.append((m, member_bank[m], bank_code, cat_id, cat_code, price, d))
        with bulk.begin() as conn:
            first_dep = (conn.scalar(select(func.max(ledger.Deposit.id))) or 0) + 1

        def deposits() -> Iterator[dict[str, Any]]:
            for m, bank_id, _code, cat_id, _cat, price, d in plan:
                net_g = 500 + (d * 7919) % 20_000
                yield {
                    "id": first_dep + d,
                    "event_id": f"bench-{d}",
                    "member_id": first_id + m,
                    "bank_id": bank_id,
                    "category_id": cat_id,
                    "net_g": net_g,
                    "tare_g": 0,
                    "price_per_kg_idr": price,
                    "amount_idr": ledger.amount_for(net_g, price),
                    "measured_at": since + step * d,
                    "recorded_at": since + step * d,
                    "gateway_id": f"gw-bench-{bank_id}",
                    "scale_id": "scale-01",
                    "protocol": "gs_nt",
                    "stable": True,
                    "raw_frames": "[]",
                    "flow": "kiosk",
                    "manual": False,
                }

        def entries() -> Iterator[dict[str, Any]]:
            for m, _bank_id, code, _cat, cat_code, price, d in plan:
                net_g = 500 + (d * 7919) % 20_000
                amount = ledger.amount_for(net_g, price)
                txn, memo = f"deposit:bench-{d}", f"{cat_code} {net_g} g @ Rp{price}/kg"
                at = since + step * d
                yield {
                    "txn_ref": txn,
                    "account": ledger.member_account(member_no(m)),
                    "amount_idr": amount,
                    "created_at": at,
                    "memo": memo,
                }
                yield {
                    "txn_ref": txn,
                    "account": ledger.bank_purchase_account(code),
                    "amount_idr": -amount,
                    "created_at": at,
                    "memo": memo,
                }

        _insert(bulk, ledger.Deposit.__table__, deposits(), n_deposits, "deposits")
        _insert(bulk, ledger.JournalEntry.__table__, entries(), 2 * n_deposits, "journal entries")
        if bulk.dialect.name == "postgresql":
            # now, not by autovacuum during the runs (as it would soon after such a load)
            progress("VACUUM ANALYZE")
            with bulk.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        with bulk.connect() as conn:
            counted = conn.scalar(select(func.count()).select_from(ledger.JournalEntry.__table__))
    finally:
        bulk.dispose()
    seconds = time.monotonic() - t0
    # The kernel writes the load's dirty pages back for a minute or so after it; measured then,
    # the API's figures were a third lower. Wait for them first.
    progress("sync: the seeded ledger to disk")
    os.sync()
    return Seeded(url, n_members, n_deposits, int(counted or 0), seconds)


def member_no(i: int) -> str:
    return f"BX-{i:06d}"


def _bulk_engine(url: str) -> Engine:
    """An engine for loading only: on SQLite without fsync per commit (the API's own engine
    keeps the ledger's settings)."""
    engine = ledger.plain_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _fast(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _insert(
    engine: Engine, table: Any, rows: Iterable[dict[str, Any]], total: int, what: str
) -> None:
    """``rows`` into ``table``: COPY on PostgreSQL, executemany (Core) elsewhere."""
    t0, done = time.monotonic(), 0
    for chunk in _chunks(rows, CHUNK):
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                cols = list(chunk[0])
                cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                names = ", ".join(f'"{c}"' for c in cols)
                with cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
                    for row in chunk:
                        copy.write_row([row[c] for c in cols])
            else:
                conn.execute(table.insert(), chunk)
        done += len(chunk)
        if done == total or done % (10 * CHUNK) == 0:
            rate = done / max(time.monotonic() - t0, 1e-9)
            progress(f"{what}: {done:,} / {total:,} ({rate:,.0f} rows/s)")


# ---- the load generator: HTTP/1.1 keep-alive on asyncio streams -------------------------------

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class Conn:
    """One keep-alive connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = 0.0

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> int:
        """Send the prepared request ``raw``; the response's status (its body read and dropped)."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        m = _CONTENT_LENGTH.search(head)
        if m is None:
            raise RuntimeError(f"no Content-Length: {head[:200]!r}")
        await self.reader.readexactly(int(m.group(1)))
        return int(head[9:12])

    def close(self) -> None:
        self.writer.close()


def raw_get(path: str, token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode()


@dataclass
class Run:
    label: str
    mode: str  # unloaded | peak | rate
    seconds: float
    latencies_ms: list[float]
    errors: int
    statuses: dict[int, int]
    server_cpu_s: float = 0.0  # the server process's CPU time (user + system) during the run
    offered: float = 0.0  # open loop: the rate requests were sent at

    @property
    def cpu_ms(self) -> float:
        """The server's CPU per request: what a run costs whatever else the machine runs."""
        return self.server_cpu_s * 1000 / self.count if self.count else float("nan")

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(q * len(xs)))]


async def closed_loop(
    port: int, requests: Sequence[bytes], concurrency: int, seconds: float, label: str, mode: str
) -> Run:
    """``concurrency`` connections, each sending the next request as soon as it has its answer."""
    conns = [await Conn.open(port) for _ in range(concurrency)]
    lat: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(k: int, conn: Conn) -> None:
        nonlocal errors
        i = k * 7919
        while time.perf_counter() < deadline:
            raw = requests[i % len(requests)]
            i += 1
            t = time.perf_counter()
            status = await conn.request(raw)
            lat.append((time.perf_counter() - t) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
            if status != 200:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k, c) for k, c in enumerate(conns)))
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.close()
    return Run(label, mode, elapsed, lat, errors, statuses)


async def open_loop(
    port: int, requests: Sequence[bytes], rate: float, seconds: float, label: str, pool: int = 64
) -> Run:
    """Requests sent at ``rate`` per second whether earlier ones are answered or not (up to
    ``pool`` at once); each latency is from the request's scheduled time."""
    idle: asyncio.Queue[Conn] = asyncio.Queue()
    conns = [await Conn.open(port) for _ in range(pool)]
    for c in conns:
        idle.put_nowait(c)
    lat: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    total = int(rate * seconds)

    async def one(raw: bytes, scheduled: float) -> None:
        nonlocal errors
        conn = await idle.get()
        try:
            status = await conn.request(raw)
        finally:
            idle.put_nowait(conn)
        lat.append((time.perf_counter() - scheduled) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        if status != 200:
            errors += 1

    tasks = []
    t0 = time.perf_counter()
    for i in range(total):
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(requests[(i * 7919) % len(requests)], scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.close()
    return Run(label, "rate", elapsed, lat, errors, statuses)


# ---- the mixed load (issue 13): open loop, several kinds at fixed rates ------------------------

# Requests per second of each kind in the mixed scenario (150 in all; --mixed-rate scales them).
# A login costs an argon2id hash (~0.25 s of CPU at production cost on this machine): a few a
# second is what a city's API sees; a storm of them is the separate `storm` run below.
MIX: dict[str, float] = {
    "balance": 70.0,
    "statement": 30.0,
    "deposit": 25.0,
    "withdrawal": 22.0,
    "login": 3.0,
}
READS = ("balance", "statement")
EXPECTED = {"balance": 200, "statement": 200, "deposit": 201, "withdrawal": 201, "login": 200}
GOAL_MIXED_RATE = 150
GOAL_MAX_MS = 2_000.0
GOAL_HEALTH_P99_MS = 100.0
HEALTH_RATE = 10.0  # /health probes a second, each on a new connection (a monitor, a balancer)
WITHDRAWAL_IDR = 25_000  # the largest minimum of the demo city's banks


def raw_post(path: str, body: bytes, content_type: str, token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def mixed_requests(
    url: str, key: bytes, issued: Sequence[tuple[str, str]]
) -> dict[str, list[bytes]]:
    """The prepared requests of each kind: reads and withdrawals by the sampled citizens
    themselves, deposits for them by an attendant of their bank (a login of each bank's first
    attendant is added once, with a token issued as /api/token does), logins with their PIN."""
    engine = ledger.plain_engine(url)
    try:
        with Session(engine) as s:
            bank_of: dict[str, str] = {
                no: code
                for no, code in s.execute(
                    select(ledger.Member.member_no, ledger.Bank.code)
                    .join(ledger.Bank, ledger.Member.bank_id == ledger.Bank.id)
                    .where(ledger.Member.member_no.in_([no for no, _ in issued]))
                )
            }
            staff: dict[str, str] = {}
            for code, staff_id in s.execute(
                select(ledger.Bank.code, ledger.Attendant.staff_id)
                .join(ledger.Bank, ledger.Attendant.bank_id == ledger.Bank.id)
                .where(ledger.Attendant.active.is_(True))
                .order_by(ledger.Attendant.id)
            ):
                staff.setdefault(code, staff_id)
            cheap = access.password_hasher(
                access.AuthSettings(argon2_time_cost=1, argon2_memory_kib=8, argon2_parallelism=1)
            )
            tokens_of: dict[str, str] = {}
            for code, staff_id in staff.items():
                user = s.scalar(select(access.User).where(access.User.username == staff_id))
                if user is None:  # never logs in: its token is issued here
                    user = access.add_user(
                        s,
                        role="attendant",
                        username=staff_id,
                        name=staff_id,
                        secret=secrets.token_urlsafe(16),
                        hasher=cheap,
                        actor=access.Actor("bench", "cli"),
                    )
                    s.commit()
                tokens_of[code] = access.issue_token(user, key, timedelta(hours=2), "access")
    finally:
        engine.dispose()
    out: dict[str, list[bytes]] = {
        "balance": [raw_get(f"/api/members/{no}/balance", tok) for no, tok in issued],
        "statement": [raw_get(f"/api/members/{no}/statement", tok) for no, tok in issued],
        "withdrawal": [
            raw_post(
                f"/api/members/{no}/withdrawals",
                json.dumps({"amount_idr": WITHDRAWAL_IDR, "method": "cash"}).encode(),
                "application/json",
                tok,
            )
            for no, tok in issued
        ],
        "login": [
            raw_post(
                "/api/token",
                f"username={no}&password={PIN}".encode(),
                "application/x-www-form-urlencoded",
            )
            for no, _tok in issued
        ],
        "deposit": [],
    }
    for i, (no, _tok) in enumerate(issued):
        bank = bank_of.get(no)
        if bank is None or bank not in tokens_of:
            continue
        body = {
            "member_no": no,
            "category": "pet",
            "net_g": 500 + (i * 7919) % 20_000,
            "reason": "bench: setoran manual / manual deposit",
        }
        out["deposit"].append(
            raw_post(
                f"/api/banks/{bank}/deposits",
                json.dumps(body).encode(),
                "application/json",
                tokens_of[bank],
            )
        )
    if not out["deposit"]:
        raise SystemExit("no sampled member's bank has an attendant: no deposits to send")
    return out


@dataclass
class Mixed:
    """One open-loop run of several kinds at once, and /health probed during and after it."""

    label: str
    seconds: float
    offered: dict[str, float]  # requests/s of each kind
    runs: dict[str, Run]  # each kind's answered requests (latency from the scheduled time)
    timeouts: dict[str, int]  # each kind's requests with no answer within the client's timeout
    health_during: Run
    health_after: Run
    health_timeouts: tuple[int, int]  # during, after
    server_cpu_s: float = 0.0
    recovered_s: float | None = None  # after the last answer: until /health answered in < 1 s
    error_kinds: dict[str, int] = field(default_factory=dict)  # connection errors by exception

    def all_latencies(self) -> list[float]:
        return [x for run in self.runs.values() for x in run.latencies_ms]

    @property
    def max_ms(self) -> float:
        return max(self.all_latencies(), default=0.0)

    @property
    def total_timeouts(self) -> int:
        return sum(self.timeouts.values())


KEEP_ALIVE_S = 4.0  # uvicorn closes a connection idle for 5 s (--timeout-keep-alive)


class _Conns:
    """Keep-alive connections for an open loop: an idle one if there is one, else a new one
    (up to ``limit`` open at once, then wait for one to come back)."""

    def __init__(self, port: int, limit: int) -> None:
        self.port, self.limit = port, limit
        self.idle: list[Conn] = []
        self.open = 0
        self.freed = asyncio.Condition()

    async def get(self) -> Conn:
        async with self.freed:
            while not self.idle and self.open >= self.limit:
                await self.freed.wait()
            while self.idle:
                conn = self.idle.pop()
                if time.monotonic() - conn.idle_since < KEEP_ALIVE_S:
                    return conn
                conn.close()  # the server may be closing it: a request on it could be lost
                self.open -= 1
            self.open += 1
        try:
            return await Conn.open(self.port)
        except BaseException:
            await self.drop(None)
            raise

    async def put(self, conn: Conn) -> None:
        conn.idle_since = time.monotonic()
        async with self.freed:
            self.idle.append(conn)
            self.freed.notify()

    async def drop(self, conn: Conn | None) -> None:
        """A connection that timed out or broke: closed (its late answer must not be read as the
        next request's), and room for a new one."""
        if conn is not None:
            conn.close()
        async with self.freed:
            self.open -= 1
            self.freed.notify()

    def close(self) -> None:
        for c in self.idle:
            c.close()


async def open_loop_mixed(
    port: int,
    kinds: dict[str, tuple[float, Sequence[bytes]]],
    seconds: float,
    label: str,
    *,
    timeout_s: float,
    after_s: float,
    max_conns: int = 512,
) -> Mixed:
    """Each kind's requests sent at its rate (kind -> (rate, requests)), on schedule whether
    earlier ones are answered or not, for ``seconds``; each latency from its scheduled time.
    Meanwhile and for ``after_s`` after the last request was sent, GET /health at HEALTH_RATE,
    each on a new connection. A request unanswered ``timeout_s`` after its scheduled time is a
    timeout (its connection closed)."""
    plan = sorted(
        (i / rate, kind, i)
        for kind, (rate, reqs) in kinds.items()
        if rate > 0 and reqs
        for i in range(int(rate * seconds))
    )
    conns = _Conns(port, max_conns)
    runs = {kind: Run(kind, "mixed", seconds, [], 0, {}) for kind in kinds}
    timeouts = dict.fromkeys(kinds, 0)
    error_kinds: Counter[str] = Counter()
    loop = asyncio.get_running_loop()

    async def one(kind: str, raw: bytes, scheduled: float) -> None:
        run = runs[kind]
        conn: Conn | None = None
        try:
            async with asyncio.timeout_at(scheduled + timeout_s):
                conn = await conns.get()
                status = await conn.request(raw)
        except TimeoutError:
            timeouts[kind] += 1
            if conn is not None:
                await conns.drop(conn)
            return
        except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
            run.errors += 1
            error_kinds[type(exc).__name__] += 1
            if conn is not None:
                await conns.drop(conn)
            return
        await conns.put(conn)
        run.latencies_ms.append((loop.time() - scheduled) * 1000)
        run.statuses[status] = run.statuses.get(status, 0) + 1

    health = {
        "during": Run("health", "during", seconds, [], 0, {}),
        "after": Run("health", "after", after_s, [], 0, {}),
    }
    health_timeouts = {"during": 0, "after": 0}
    health_get = raw_get("/health")

    async def probe(scheduled: float, phase: str) -> None:
        run = health[phase]
        conn: Conn | None = None
        try:
            async with asyncio.timeout_at(scheduled + timeout_s):
                conn = await Conn.open(port)
                status = await conn.request(health_get)
        except TimeoutError:
            health_timeouts[phase] += 1
            return
        except (OSError, asyncio.IncompleteReadError, RuntimeError):
            run.errors += 1
            return
        finally:
            if conn is not None:
                conn.close()
        run.latencies_ms.append((loop.time() - scheduled) * 1000)
        run.statuses[status] = run.statuses.get(status, 0) + 1

    tasks: list[asyncio.Task[None]] = []
    t0 = loop.time() + 0.05

    async def probes() -> None:
        n = int((seconds + after_s) * HEALTH_RATE)
        for i in range(n):
            at = t0 + i / HEALTH_RATE
            await asyncio.sleep(max(0.0, at - loop.time()))
            phase = "during" if at - t0 < seconds else "after"
            tasks.append(asyncio.create_task(probe(at, phase)))

    prober = asyncio.create_task(probes())
    counters = dict.fromkeys(kinds, 0)
    for offset, kind, _i in plan:
        at = t0 + offset
        await asyncio.sleep(max(0.0, at - loop.time()))
        reqs = kinds[kind][1]
        raw = reqs[(counters[kind] * 7919) % len(reqs)]
        counters[kind] += 1
        tasks.append(asyncio.create_task(one(kind, raw, at)))
    await prober
    await asyncio.gather(*tasks)
    conns.close()
    return Mixed(
        label,
        seconds,
        {kind: rate for kind, (rate, _reqs) in kinds.items()},
        runs,
        timeouts,
        health["during"],
        health["after"],
        (health_timeouts["during"], health_timeouts["after"]),
        error_kinds=dict(error_kinds),
    )


# ---- servers ----------------------------------------------------------------------------------

# What the bare servers answer: a balance-sized JSON body, with its length.
BARE_BODY = json.dumps(
    {
        "member_no": "BX-000001",
        "name": "Nasabah Uji 1",
        "bank_code": "bs-batu-merah",
        "balance_idr": 123456,
        "available_idr": 123456,
        "deposits": 10,
        "as_of": "2026-11-30T00:00:00Z",
    }
)

BARE_SERVER = """
import asyncio, sys
BODY = sys.argv[2].encode()
HEAD = b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: "
RESP = HEAD + str(len(BODY)).encode() + b"\\r\\n\\r\\n" + BODY
async def handle(r, w):
    try:
        while True:
            await r.readuntil(b"\\r\\n\\r\\n")
            w.write(RESP)
    except (asyncio.IncompleteReadError, ConnectionError):
        w.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""

BARE_ASGI = """
import os
BODY = os.environ["BARE_BODY"].encode()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
"""


def bare_asgi(tmp: Path, port: int, workers: int) -> list[str]:
    """uvicorn serving BARE_ASGI with ``workers`` processes, as `wastebank api` would."""
    (tmp / "bare_asgi.py").write_text(BARE_ASGI)
    return [
        sys.executable, "-m", "uvicorn", "bare_asgi:app", "--app-dir", str(tmp),
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "info",
    ]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def server(
    args: list[str], port: int, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process of our own, until it answers on ``port``; stopped (SIGTERM) after."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{args[:3]} exited {proc.returncode}:\n{log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{args[:3]} did not listen on {port}") from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- the benchmark ----------------------------------------------------------------------------


@dataclass
class Results:
    seeded: Seeded
    backend: str
    client_ceiling: Run
    uvicorn_ceiling: Run
    runs: dict[str, dict[str, Run]]  # endpoint -> mode -> run
    login_ms: list[float]
    api_rss_mb: float
    load_before: tuple[float, float, float]
    mixed: dict[str, Mixed]  # reads (the baseline), mixed, storm


def ledger_url(args: argparse.Namespace, tmp: Path) -> tuple[str, bool]:
    """The ledger's URL, and whether it still has to be seeded."""
    if args.ledger == "postgresql":
        settings = load_settings(services.ServicesSettings)
        name = f"bench_api_{uuid.uuid4().hex[:8]}"
        # As the superuser (the ledger's role may not create databases), given to that role.
        with services.connect_postgresql(settings, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" OWNER "{services.LEDGER_ROLE}"'.encode())
        return services.postgresql_url(settings, name), True
    where = Path(args.keep) if args.keep else tmp
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"ledger-{args.members}-{args.deposits}.db"
    return f"sqlite:///{path}", not path.exists()


def drop_postgresql(url: str) -> None:
    settings = load_settings(services.ServicesSettings)
    with services.connect_postgresql(settings, autocommit=True) as conn:
        name = make_url(url).database
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def tokens(url: str, key: bytes, count: int) -> list[tuple[str, str]]:
    """(member number, bearer token) of ``count`` random citizens, issued as /api/token does."""
    engine = ledger.plain_engine(url)
    try:
        with Session(engine) as s:
            users = list(
                s.scalars(
                    select(access.User)
                    .where(access.User.role == "citizen", access.User.username.like("BX-%"))
                    .order_by(func.random())
                    .limit(count)
                )
            )
            ttl = timedelta(hours=2)
            return [(u.username, access.issue_token(u, key, ttl, "access")) for u in users]
    finally:
        engine.dispose()


async def bench(args: argparse.Namespace) -> Results:
    tmp = Path(tempfile.mkdtemp(prefix="wastebank-bench-api-"))
    url, fresh = ledger_url(args, tmp)
    try:
        if fresh:
            progress(
                f"seeding {args.members:,} members, {args.deposits:,} deposits ({args.ledger})"
            )
            seeded = seed_ledger(url, args.members, args.deposits)
        else:
            progress(f"reusing {url} (migrated to this release first)")
            ledger.make_engine(url).dispose()  # a writer: brings a kept ledger's schema up
            engine = ledger.plain_engine(url)
            with engine.connect() as conn:
                n_m = conn.scalar(select(func.count()).select_from(ledger.Member.__table__))
                n_d = conn.scalar(select(func.count()).select_from(ledger.Deposit.__table__))
                n_e = conn.scalar(select(func.count()).select_from(ledger.JournalEntry.__table__))
            engine.dispose()
            seeded = Seeded(url, int(n_m or 0), int(n_d or 0), int(n_e or 0), 0.0)
        return await measure(args, url, seeded, tmp)
    finally:
        if args.ledger == "postgresql" and not args.keep_postgresql:
            drop_postgresql(url)
        shutil.rmtree(tmp, ignore_errors=True)  # the logs, and the SQLite ledger unless --keep


async def measure(args: argparse.Namespace, url: str, seeded: Seeded, tmp: Path) -> Results:
    load_before = os.getloadavg()
    secret = secrets.token_urlsafe(48)
    issued = tokens(url, secret.encode(), args.tokens)
    services_settings = load_settings(services.ServicesSettings)
    secs = args.seconds

    progress("client ceiling: the load generator against a bare asyncio server")
    port = free_port()
    fixed = [raw_get("/x")]
    with server([sys.executable, "-c", BARE_SERVER, str(port), BARE_BODY], port, tmp / "bare.log"):
        client = await closed_loop(port, fixed, args.concurrency, secs, "bare server", "peak")

    progress(f"uvicorn's ceiling: a bare ASGI app, {args.workers} worker(s)")
    port = free_port()
    bare = bare_asgi(tmp, port, args.workers)
    with server(bare, port, tmp / "asgi.log", {"BARE_BODY": BARE_BODY}):
        uv = await closed_loop(port, fixed, args.concurrency, secs, "bare uvicorn", "peak")

    port = free_port()
    env = {
        "WASTEBANK_LEDGER_URL": url,
        "WASTEBANK_PORT": str(port),
        "WASTEBANK_AUTH__SECRET_KEY": secret,
        "WASTEBANK_MQTT__PORT": str(args.mqtt_port or services_settings.mqtt_port),
        "WASTEBANK_INFLUX__URL": f"http://127.0.0.1:{services_settings.influx_port}",
        # every load comes from this one address: its shares are the whole (a share may not
        # be more than its total)
        "WASTEBANK_CAPACITY__PER_CLIENT": str(CapacitySettings().total),
        "WASTEBANK_HTTP__MAX_CONNECTIONS_PER_CLIENT": str(HttpSettings().max_connections),
    }
    wastebank = Path(sys.executable).parent / "wastebank"
    runs: dict[str, dict[str, Run]] = {}
    login_ms: list[float] = []
    api = [str(wastebank), "api", "--workers", str(args.workers)]
    with server(api, port, tmp / "api.log", env) as proc:
        endpoints = {
            "balance": [raw_get(f"/api/members/{no}/balance", tok) for no, tok in issued],
            "statement": [raw_get(f"/api/members/{no}/statement", tok) for no, tok in issued],
        }
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            first = await http.get(
                f"/api/members/{issued[0][0]}/balance", headers=_bearer(issued[0][1])
            )
            if first.status_code != 200:
                raise SystemExit(f"balance: {first.status_code} {first.text}")
            body = first.json()
            progress(f"a balance: {json.dumps(body)}")
            # warm up: every token's user once (the first reads of a cold page cache are slow)
            await closed_loop(port, endpoints["balance"], 8, min(3.0, secs), "warm-up", "peak")
            for name, reqs in ({} if args.mixed_only else endpoints).items():
                progress(f"{name}: unloaded, one at a time")
                unloaded = await timed(proc.pid, closed_loop(port, reqs, 1, secs, name, "unloaded"))
                progress(f"{name}: peak, {args.concurrency} connections")
                peak = await timed(
                    proc.pid, closed_loop(port, reqs, args.concurrency, secs, name, "peak")
                )
                # at the goal rate; below the peak (else the backlog only grows): at 70 % of it
                rate = min(float(args.rate), 0.7 * peak.rate)
                progress(f"{name}: open loop at {rate:,.0f} requests/s")
                at_rate = await timed(proc.pid, open_loop(port, reqs, rate, secs, name))
                at_rate.offered = rate
                runs[name] = {"unloaded": unloaded, "peak": peak, "rate": at_rate}
            progress("logins: POST /api/token (argon2id at production cost)")
            for no, _tok in issued[: args.logins]:
                t = time.perf_counter()
                resp = await http.post("/api/token", data={"username": no, "password": PIN})
                login_ms.append((time.perf_counter() - t) * 1000)
                if resp.status_code != 200:
                    raise SystemExit(f"login: {resp.status_code} {resp.text}")
        mixed = await mixed_runs(args, port, proc.pid, url, secret.encode(), issued)
        rss = _rss_mb(proc.pid)
    return Results(seeded, args.ledger, client, uv, runs, login_ms, rss, load_before, mixed)


async def mixed_runs(
    args: argparse.Namespace,
    port: int,
    pid: int,
    url: str,
    key: bytes,
    issued: Sequence[tuple[str, str]],
) -> dict[str, Mixed]:
    """The reads-only baseline (balances and statements in the mix's proportion, at the mix's
    total rate), the mix, and a login storm beside the mix's balance rate; each open loop."""
    reqs = mixed_requests(url, key, issued)
    mix = args.mix or MIX
    scale = args.mixed_rate / sum(mix.values())
    reads = sum(mix.get(k, 0.0) for k in READS)
    plans = {
        "reads": {k: args.mixed_rate * mix.get(k, 0.0) / reads for k in READS},
        "mixed": {k: rate * scale for k, rate in mix.items()},
        "storm": {"balance": mix.get("balance", 0.0) * scale, "login": float(args.storm_logins)},
    }
    lengths = {
        "reads": args.mixed_seconds,
        "mixed": args.mixed_seconds,
        "storm": args.storm_seconds,
    }
    out: dict[str, Mixed] = {}
    for name, rates in plans.items():
        offered = sum(rates.values())
        progress(
            f"{name}: open loop, {offered:,.0f} requests/s for {lengths[name]:.0f} s, "
            f"then /health for {args.after_seconds:.0f} s"
        )
        procs = _tree(pid)
        before = _cpu_s(procs)
        out[name] = await open_loop_mixed(
            port,
            {k: (rate, reqs[k]) for k, rate in rates.items()},
            lengths[name],
            name,
            timeout_s=args.timeout,
            after_s=args.after_seconds,
        )
        out[name].server_cpu_s = _cpu_s(procs) - before
        out[name].recovered_s = await settle(port, args.settle_seconds)
    return out


async def settle(port: int, limit_s: float) -> float | None:
    """Seconds until GET /health is answered within 1 s (None: not within ``limit_s``), so that
    a run does not measure what the one before left behind."""
    t0 = time.perf_counter()
    while (waited := time.perf_counter() - t0) < limit_s:
        conn: Conn | None = None
        try:
            async with asyncio.timeout(1.0):
                conn = await Conn.open(port)
                if await conn.request(raw_get("/health")) == 200:
                    return waited
        except (TimeoutError, OSError, asyncio.IncompleteReadError, RuntimeError):
            pass
        finally:
            if conn is not None:
                conn.close()
        await asyncio.sleep(0.5)
    return None


async def timed(pid: int, run: Coroutine[Any, Any, Run]) -> Run:
    """``run``, with the CPU time the process ``pid`` and its workers spent meanwhile."""
    procs = _tree(pid)
    before = _cpu_s(procs)
    result = await run
    result.server_cpu_s = _cpu_s(procs) - before
    return result


def _tree(pid: int) -> list[psutil.Process]:
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def _cpu_s(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _rss_mb(pid: int) -> float:
    """The API's resident memory: the process and its workers (multiprocessing's resource
    tracker included, a few MB)."""
    total = 0.0
    for p in _tree(pid):
        with contextlib.suppress(psutil.Error):
            total += float(p.memory_info().rss) / (1024 * 1024)
    return total


# ---- the report -------------------------------------------------------------------------------


def report(r: Results, args: argparse.Namespace) -> None:
    s = r.seeded
    print(
        f"\nAPI read benchmark: {s.members:,} members, {s.deposits:,} deposits, "
        f"{s.entries:,} journal entries, {r.backend} ledger; {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(
        f"({os.cpu_count()} cores; load average {_load(r.load_before)} before the runs, "
        f"{_load(os.getloadavg())} after; `wastebank api --workers {args.workers}`; "
        f"{args.seconds:.0f} s a run)\n"
    )
    if s.seconds:
        print(f"  {'seeding (bulk, schema and demo city included)':<48} {s.seconds:>9.1f} s")
    print(f"  {'API processes RSS after the runs (all workers)':<48} {r.api_rss_mb:>9.1f} MB\n")
    print(f"  {'':<38} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'CPU ms/req':>11}")
    conns = f"{args.concurrency} conns"
    print(_row(f"client ceiling ({conns})", r.client_ceiling))
    print(_row(f"bare uvicorn ASGI ({conns})", r.uvicorn_ceiling))
    for name, modes in r.runs.items():
        print(_row(f"{name}: unloaded (1 conn)", modes["unloaded"]))
        print(_row(f"{name}: peak ({conns})", modes["peak"]))
        print(_row(f"{name}: open loop at {modes['rate'].offered:,.0f}/s", modes["rate"]))
    if r.login_ms:
        xs = sorted(r.login_ms)
        print(
            f"  {'login: POST /api/token (argon2id)':<38} {'':>8} {xs[len(xs) // 2]:>8.1f} "
            f"{xs[-1]:>8.1f}   (max of {len(xs)}; once per token, never per request)"
        )
    ceiling = r.client_ceiling.rate
    print("\nRatios (peak requests/s):")
    for name, modes in r.runs.items():
        peak = modes["peak"].rate
        print(f"  {name:<12} / {'client ceiling':<16} {peak / ceiling:6.3f}x")
        print(f"  {name:<12} / {'bare uvicorn':<16} {peak / r.uvicorn_ceiling.rate:6.3f}x")
    print(
        f"  {'bare uvicorn':<12} / {'client ceiling':<16} {r.uvicorn_ceiling.rate / ceiling:6.3f}x"
        "   (well below 1: the client is not what limits the figures above)"
    )
    if "balance" in r.runs:
        bal = r.runs["balance"]
        at_rate = bal["rate"]
        print("\nGoals (issue 5):")
        print(
            _goal(
                f"balance p99 < {GOAL_BALANCE_P99_MS:.0f} ms at {args.rate:,} requests/s (open "
                f"loop): {at_rate.pct(0.99):.1f} ms at {at_rate.offered:,.0f}/s",
                at_rate.offered >= args.rate
                and at_rate.errors == 0
                and at_rate.pct(0.99) < GOAL_BALANCE_P99_MS,
            )
        )
        print(
            _goal(
                f"balance p99 < {GOAL_BALANCE_P99_MS:.0f} ms, one request at a time: "
                f"{bal['unloaded'].pct(0.99):.1f} ms",
                bal["unloaded"].errors == 0 and bal["unloaded"].pct(0.99) < GOAL_BALANCE_P99_MS,
            )
        )
        print(
            _goal(
                f"balance >= {GOAL_RATE_S:,} requests/s: {bal['peak'].rate:,.0f}",
                bal["peak"].errors == 0 and bal["peak"].rate >= GOAL_RATE_S,
            )
        )
    for m in r.mixed.values():
        report_mixed(m, r.mixed["reads"], args)
    if r.mixed:
        mixed = r.mixed["mixed"]
        print(f"\nGoals (issue 13), `wastebank api --workers {args.workers}`, {r.backend}:")
        offered = sum(mixed.offered.values())
        print(
            _goal(
                f"{GOAL_MIXED_RATE} requests/s mixed for 60 s (offered {offered:,.0f}/s for "
                f"{mixed.seconds:.0f} s): no request over {GOAL_MAX_MS:,.0f} ms: max "
                f"{mixed.max_ms:,.0f} ms",
                offered >= GOAL_MIXED_RATE
                and mixed.seconds >= 60
                and mixed.max_ms <= GOAL_MAX_MS
                and mixed.total_timeouts == 0,
            )
        )
        print(_goal(f"0 timeouts: {mixed.total_timeouts}", mixed.total_timeouts == 0))
        for phase, run, lost in (
            ("during", mixed.health_during, mixed.health_timeouts[0]),
            ("after", mixed.health_after, mixed.health_timeouts[1]),
        ):
            print(
                _goal(
                    f"/health p99 < {GOAL_HEALTH_P99_MS:.0f} ms {phase}: {run.pct(0.99):,.1f} ms "
                    f"({lost} timeouts)",
                    lost == 0 and run.count > 0 and run.pct(0.99) < GOAL_HEALTH_P99_MS,
                )
            )
    errors = {
        f"{n} {m}": run.statuses
        for n, modes in r.runs.items()
        for m, run in modes.items()
        if run.errors
    }
    if errors:
        print(f"\nNon-200 answers: {errors}")


def report_mixed(m: Mixed, base: Mixed, args: argparse.Namespace) -> None:
    offered = sum(m.offered.values())
    cpu = m.server_cpu_s * 1000 / max(1, sum(r.count for r in m.runs.values()))
    print(
        f"\n{m.label}: open loop, {offered:,.0f} requests/s offered for {m.seconds:.0f} s "
        f"(client timeout {args.timeout:.0f} s; API CPU {cpu:.2f} ms/request)"
    )
    print(
        f"  {'':<11} {'offered/s':>9} {'answered':>8} {'ok':>6} {'503':>5} {'other':>5} "
        f"{'timeout':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'>2 s':>5}  vs reads p50/p99"
    )
    for kind, run in m.runs.items():
        ok = run.statuses.get(EXPECTED[kind], 0)
        shed = run.statuses.get(503, 0)
        other = run.count - ok - shed + run.errors
        slow = sum(1 for x in run.latencies_ms if x > GOAL_MAX_MS)
        ratio = ""
        b = base.runs.get(kind)
        if b is not None and m is not base:
            ratio = (
                f"  {run.pct(0.5) / b.pct(0.5):6.2f}x {run.pct(0.99) / b.pct(0.99):6.2f}x"
                if b.count and run.count
                else "  n/a"
            )
        print(
            f"  {kind:<11} {m.offered[kind]:>9,.1f} {run.count:>8,} {ok:>6,} {shed:>5,} "
            f"{other:>5,} {m.timeouts[kind]:>7,} {run.pct(0.5):>8.1f} {run.pct(0.99):>8.1f} "
            f"{max(run.latencies_ms, default=0):>8.1f} {slow:>5,}{ratio}"
        )
    for phase, run, lost in (
        ("during", m.health_during, m.health_timeouts[0]),
        (f"{args.after_seconds:.0f} s after", m.health_after, m.health_timeouts[1]),
    ):
        print(
            f"  /health {phase:<10} {HEALTH_RATE:>7,.0f}/s {run.count:>8,} "
            f"{run.statuses.get(200, 0):>6,} {run.statuses.get(503, 0):>5,} "
            f"{run.count - run.statuses.get(200, 0) - run.statuses.get(503, 0) + run.errors:>5,} "
            f"{lost:>7,} {run.pct(0.5):>8.1f} {run.pct(0.99):>8.1f} "
            f"{max(run.latencies_ms, default=0):>8.1f}"
        )
    if m.recovered_s is None:
        print(f"  /health still not answered within 1 s {args.settle_seconds:.0f} s later")
    else:
        print(f"  /health answered within 1 s again {m.recovered_s:.1f} s after the last answer")
    odd = {
        kind: {**run.statuses, "connection errors": run.errors}
        for kind, run in m.runs.items()
        if set(run.statuses) - {EXPECTED[kind], 503} or run.errors
    }
    if odd:
        print(f"  other answers: {odd}; connection errors by kind: {m.error_kinds}")


def _load(avg: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in avg)


def _row(what: str, run: Run) -> str:
    cpu = f"{run.cpu_ms:>11.2f}" if run.server_cpu_s else f"{'':>11}"
    return (
        f"  {what:<38} {run.rate:>8,.0f} {run.pct(0.5):>8.2f} {run.pct(0.99):>8.2f} "
        f"{run.errors:>7} {cpu}"
    )


def _goal(text: str, met: bool) -> str:
    return f"  [{'met' if met else 'NOT met'}] {text}"


def _mix(text: str) -> dict[str, float]:
    out = {}
    for part in text.split(","):
        kind, _, rate = part.partition("=")
        if kind.strip() not in EXPECTED:
            raise argparse.ArgumentTypeError(f"{kind!r}: one of {', '.join(EXPECTED)}")
        out[kind.strip()] = float(rate)
    if not any(out.get(k) for k in READS):
        raise argparse.ArgumentTypeError("the mix needs balances or statements (the baseline)")
    return out


# --quick: a small ledger and short runs, every kind of figure still measured.
QUICK = {
    "members": 5_000,
    "deposits": 50_000,
    "tokens": 1_000,
    "seconds": 3,
    "logins": 2,
    "mixed_seconds": 10,
    "storm_seconds": 5,
    "after_seconds": 3,
    "settle_seconds": 60,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--deposits", type=int, default=1_000_000, help="two entries each")
    parser.add_argument("--ledger", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--keep", help="SQLite: keep (and reuse) the seeded ledger in this dir")
    parser.add_argument("--keep-postgresql", action="store_true", help="do not drop the database")
    parser.add_argument("--tokens", type=int, default=5_000, help="citizens whose tokens are used")
    parser.add_argument("--concurrency", type=int, default=32, help="connections for peak runs")
    parser.add_argument("--rate", type=int, default=GOAL_RATE_S, help="open-loop requests/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--logins", type=int, default=5, help="POST /api/token, timed")
    parser.add_argument(
        "--mixed-rate", type=float, default=GOAL_MIXED_RATE, help="mixed: requests/s in all"
    )
    parser.add_argument("--mixed-seconds", type=float, default=60.0, help="mixed: length")
    parser.add_argument(
        "--mix",
        type=_mix,
        default=None,
        help="the mix's shares, e.g. balance=85,statement=35,deposit=15,withdrawal=12,login=3 "
        "(scaled to --mixed-rate; default MIX)",
    )
    parser.add_argument("--storm-logins", type=float, default=30.0, help="storm: logins/s")
    parser.add_argument("--storm-seconds", type=float, default=20.0, help="storm: length")
    parser.add_argument(
        "--after-seconds", type=float, default=20.0, help="/health probed after each open loop"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="open loops: client timeout")
    parser.add_argument(
        "--mqtt-port",
        type=int,
        default=0,
        help="the broker /health checks (default: `wastebank services up`'s); a closed port "
        "(1) makes its check fail at once, so that /health's figures are the API's own",
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=300.0,
        help="after each open loop, wait at most this long for /health to answer again",
    )
    parser.add_argument(
        "--mixed-only",
        action="store_true",
        help="skip the read runs (unloaded, peak, open loop at the goal rate): only the "
        "reads-only baseline, the mix and the storm",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="`wastebank api --workers` (and the bare uvicorn ceiling's); default one per core",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small ledger and short runs (QUICK in this file; options given win): a "
        "before/after comparison's short mode (bench/before_after.py)",
    )
    args = parser.parse_args()
    if args.quick:  # as defaults, so that an explicit option still wins
        parser.set_defaults(**QUICK)
        args = parser.parse_args()
    results = asyncio.run(bench(args))
    report(results, args)


if __name__ == "__main__":
    main()
