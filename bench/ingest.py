"""Ingest throughput: the ingester against raw clients, one run, same broker, InfluxDB, payloads.

Each figure is measured here, now, on the broker and InfluxDB of `wastebank services up`:

a. raw aiomqtt receive rate at QoS 1: a bare subscriber counting N fill readings while a
   pipelined publisher in another process publishes them at QoS 1;
b. raw paho-mqtt receive rate at QoS 1, the same way (paho's threaded loop);
c. raw InfluxDB write rate: the same N readings as prebuilt line protocol, 5,000 lines a POST;
d. the ingester end to end (a separate `wastebank ingest` process, QoS 1, validated, durable):
   N fill readings, then M deposits against a seeded SQLite ledger; each timed from the first
   publish until InfluxDB (and, for deposits, the ledger) holds them all;
e. the ingester's peak RSS (psutil), per phase;
f. backlog drain: ingester stopped, B readings published, ingester started with the same client
   id; timed from its start until InfluxDB holds all B;
g. two telemetry ingesters (`WASTEBANK_KINDS` without deposits) sharing one subscription
   (`WASTEBANK_SHARED_GROUP`), N readings end to end, and each one's peak RSS.

Rates are from the publisher's first PUBLISH to the last message received / counted, so they
include the publisher's own ramp (small: it is a raw-socket pipelined publisher, 5,000 in flight).
The Node-RED figure is the one issue 4 states for this machine; it is not measured here.

Run after `make services` (psutil is in the `bench` extra):
    .venv/bin/python bench/ingest.py [--n 100000] [--m 10000] [--backlog 100000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import select
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import httpx
import paho.mqtt.client as paho
import psutil  # type: ignore[import-untyped, unused-ignore]
from paho.mqtt.enums import CallbackAPIVersion

from wastebank import services
from wastebank.config import MqttSettings, load_settings
from wastebank.influx import fill_line
from wastebank.messages import DepositEvent, FillReading, Topics
from wastebank.mqtt import client_id as broker_client_id
from wastebank.seed import seed_demo
from wastebank.structs import encode_json

NODE_RED_POINTS_S = 17_600  # issue 4: Node-RED on this machine, QoS 1, end to end (not ours)
GOAL_TELEMETRY_X = 1.5
GOAL_RSS_MB = 70
GOAL_DEPOSITS_S = 2_000
GOAL_BACKLOG_S = 60
INFLUX_BATCH = 5_000
PUBLISH_WINDOW = 5_000  # QoS 1 PUBLISHes the publisher keeps un-acknowledged
SENSORS = 50
GATEWAYS = 10
MB = 1024 * 1024
DROPPED_NOTICE = b"Outgoing messages are being dropped"  # Mosquitto 2.0, NOTICE
STALL_S = 30.0  # no progress for this long: the rest is not coming
BENCH_USER = "test"  # the broker identity of tests and benchmarks (docs/operations.md)

Message = tuple[str, bytes]  # topic without prefix, payload


def progress(text: str) -> None:
    print(f"  … {text}", file=sys.stderr, flush=True)


# ---- payloads: built once, identical for every consumer -------------------------------------


def fill_readings(n: int, tps: str, base: datetime) -> list[FillReading]:
    """``n`` valid, distinct readings from SENSORS sensors at ``tps``, one a second per sensor."""
    out = []
    for i in range(n):
        sensor, seq = f"fs-{i % SENSORS:02d}", i // SENSORS
        out.append(
            FillReading(
                reading_id=f"{sensor}-{seq}",
                sensor_id=sensor,
                seq=seq,
                tps_code=tps,
                measured_at=base + timedelta(seconds=seq),
                distance_mm=400 + i % 1500,
                fillingLevel=(i % 101) / 100,
                temperature_c=27.5,
                battery_pct=80 + i % 20,
            )
        )
    return out


def fill_messages(readings: list[FillReading]) -> list[Message]:
    topics = Topics("")
    return [(topics.fill(r.tps_code, r.sensor_id), encode_json(r)) for r in readings]


def deposit_messages(m: int, base: datetime) -> list[Message]:
    """``m`` valid deposits by member AMB-0001 (demo city) from GATEWAYS gateways."""
    topics = Topics("")
    out = []
    for i in range(m):
        # A distinct time for each: a deposit's point is (bank, kecamatan, category, source,
        # time + seq), so two gateways of one bank must not share a millisecond and a seq.
        gateway, seq = f"gw-b{i % GATEWAYS:02d}", i // GATEWAYS
        ev = DepositEvent(
            event_id=f"{gateway}-{seq}",
            gateway_id=gateway,
            seq=seq,
            bank_code="bs-batu-merah",
            scale_id="scale-01",
            card_uid="04A1B2C3D4",
            category_code="pet",
            net_g=500 + i % 2000,
            stable=True,
            protocol="gs_nt",
            measured_at=base + timedelta(seconds=i),
            raw_frames=["ST,GS,+0001.25kg"],
        )
        out.append((topics.deposit(ev.bank_code, gateway), encode_json(ev)))
    return out


def write_messages(path: Path, messages: list[Message]) -> Path:
    with path.open("wb") as fh:
        for topic, payload in messages:
            t = topic.encode()
            fh.write(struct.pack("!HI", len(t), len(payload)) + t + payload)
    return path


def read_messages(path: Path) -> list[tuple[bytes, bytes]]:
    data, out, pos = path.read_bytes(), [], 0
    while pos < len(data):
        tlen, plen = struct.unpack_from("!HI", data, pos)
        pos += 6
        out.append((data[pos : pos + tlen], data[pos + tlen : pos + tlen + plen]))
        pos += tlen + plen
    return out


# ---- the publisher: raw MQTT 3.1.1 over a socket, in its own process --------------------------


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, byte = divmod(n, 128)
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def broker_login(credentials: Path, user: str = BENCH_USER) -> tuple[str, str]:
    """``user``'s username and password on this checkout's broker, which lets nobody in
    anonymously: the password `services up` keeps in ``credentials`` (.run/secrets/mqtt)."""
    mqtt = MqttSettings(username=user, credentials_dir=credentials).as_user(None)
    if mqtt.password is None:
        raise SystemExit(f"no broker password for {user!r} in {credentials}: run `services up`")
    return user, mqtt.password.get_secret_value()


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def publisher_main(host: str, port: int, prefix: str, path: Path, credentials: Path) -> None:
    """Publish every message in ``path`` at QoS 1, PUBLISH_WINDOW in flight; report on stdout.

    Prints ``first <epoch>`` just before the first PUBLISH and ``done <epoch> <acked>`` after
    the last PUBACK. Raw packets keep this process cheap, so it outpaces the consumers measured.
    """
    messages = read_messages(path)
    heads = []
    for topic, payload in messages:
        t = prefix.encode() + topic
        length = 2 + len(t) + 2 + len(payload)
        heads.append(b"\x32" + _remaining_length(length) + struct.pack("!H", len(t)) + t)
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    user, password = broker_login(credentials)
    # CONNECT flags 0xC2: a username, a password, a clean session.
    body = b"\x00\x04MQTT\x04\xc2" + struct.pack("!H", 60)
    body += _string(broker_client_id(user, f"bench-pub-{os.getpid()}"))
    body += _string(user) + _string(password)
    sock.sendall(b"\x10" + _remaining_length(len(body)) + body)
    connack = sock.recv(4)
    if connack[:1] != b"\x20" or connack[3:4] != b"\x00":
        raise SystemExit(f"CONNACK refused: {connack!r}")
    total, sent, acked, buf = len(messages), 0, 0, b""
    print(f"first {time.time()}", flush=True)
    while acked < total:
        room = PUBLISH_WINDOW - (sent - acked)
        if sent < total and room > 0:
            k = min(room, 500, total - sent)
            sock.sendall(
                b"".join(
                    heads[i] + struct.pack("!H", i % 65535 + 1) + messages[i][1]
                    for i in range(sent, sent + k)
                )
            )
            sent += k
            if not select.select([sock], [], [], 0)[0]:
                continue
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise SystemExit(f"broker closed the connection after {acked} PUBACKs")
        buf += chunk
        whole = len(buf) - len(buf) % 4  # only PUBACKs (0x40 0x02 id id) come back
        acked += whole // 4
        buf = buf[whole:]
    print(f"done {time.time()} {acked}", flush=True)
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()


@dataclass
class Publisher:
    proc: asyncio.subprocess.Process
    first: float  # epoch of the first PUBLISH

    async def finished(self) -> float:
        """Epoch of the last PUBACK."""
        assert self.proc.stdout is not None
        line = (await self.proc.stdout.readline()).decode().split()
        await self.proc.wait()
        if not line or line[0] != "done":
            raise RuntimeError(f"publisher failed (exit {self.proc.returncode})")
        return float(line[1])


async def start_publisher(run: Run, prefix: str, path: Path) -> Publisher:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "_publish", run.host, str(run.mqtt_port), prefix, str(path),
        str(run.credentials),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await proc.stdout.readline()).decode().split()
    if not line or line[0] != "first":
        await proc.wait()
        raise RuntimeError(f"publisher did not start (exit {proc.returncode})")
    return Publisher(proc, float(line[1]))


# ---- results ----------------------------------------------------------------------------------


@dataclass
class Figure:
    name: str
    count: int
    seconds: float
    expected: int = 0  # 0: count is complete

    @property
    def complete(self) -> bool:
        return not self.expected or self.count >= self.expected

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        note = "" if self.complete else f"  INCOMPLETE: {self.count:,} of {self.expected:,}"
        return (
            f"  {self.name:<44} {self.count:>9,} in {self.seconds:7.2f} s"
            f"  {self.rate:>10,.0f} /s{note}"
        )


@dataclass
class Run:
    host: str
    mqtt_port: int
    influx_url: str
    credentials: Path  # the broker passwords of `services up` (.run/secrets/mqtt)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    timeout_s: float = 300.0

    def prefix(self, phase: str) -> str:
        return f"bench-{self.run_id}-{phase}/"


# ---- a, b: raw subscribers --------------------------------------------------------------------


async def raw_aiomqtt(run: Run, n: int, path: Path) -> Figure:
    prefix = run.prefix("aiomqtt")
    user, password = broker_login(run.credentials)
    async with aiomqtt.Client(
        run.host,
        run.mqtt_port,
        username=user,
        password=password,
        identifier=broker_client_id(user, f"bench-aio-{run.run_id}"),
    ) as c:
        await c.subscribe(Topics(prefix).fill_filter, qos=1)
        pub = await start_publisher(run, prefix, path)
        count, end = 0, time.time()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(run.timeout_s):
                async for _ in c.messages:
                    count += 1
                    if count == n:
                        break
        end = time.time()
        await pub.finished()
    return Figure("raw aiomqtt receive, QoS 1", count, end - pub.first, n)


async def raw_paho(run: Run, n: int, path: Path) -> Figure:
    prefix = run.prefix("paho")
    count, end = 0, 0.0
    subscribed, all_in = threading.Event(), threading.Event()

    def on_message(*_: object) -> None:
        nonlocal count, end
        count += 1
        if count == n:
            end = time.time()
            all_in.set()

    user, password = broker_login(run.credentials)
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=broker_client_id(user, f"bench-paho-{run.run_id}")
    )
    client.username_pw_set(user, password)
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(run.host, run.mqtt_port)
    client.loop_start()
    try:
        client.subscribe(Topics(prefix).fill_filter, qos=1)
        await asyncio.to_thread(subscribed.wait, 10)
        pub = await start_publisher(run, prefix, path)
        if not await asyncio.to_thread(all_in.wait, run.timeout_s):
            end = time.time()
        await pub.finished()
    finally:
        client.disconnect()
        client.loop_stop()
    return Figure("raw paho-mqtt receive, QoS 1 (threaded loop)", count, end - pub.first, n)


# ---- c: raw InfluxDB --------------------------------------------------------------------------


async def influx_query(http: httpx.AsyncClient, url: str, db: str, q: str) -> int:
    resp = await http.get(f"{url}/query", params={"db": db, "q": q})
    resp.raise_for_status()
    result = resp.json()["results"][0]
    if "error" in result:
        raise RuntimeError(result["error"])
    return sum(int(row[1]) for s in result.get("series", []) for row in s["values"])


async def influx_post(http: httpx.AsyncClient, url: str, q: str) -> None:
    (await http.post(f"{url}/query", params={"q": q})).raise_for_status()


async def raw_influx(run: Run, http: httpx.AsyncClient, db: str, lines: list[str]) -> Figure:
    await influx_post(http, run.influx_url, f'CREATE DATABASE "{db}"')
    bodies = [
        "\n".join(lines[i : i + INFLUX_BATCH]).encode() for i in range(0, len(lines), INFLUX_BATCH)
    ]
    t0 = time.perf_counter()
    for body in bodies:
        resp = await http.post(
            f"{run.influx_url}/write", params={"db": db, "precision": "ns"}, content=body
        )
        if resp.status_code != 204:
            raise RuntimeError(f"InfluxDB /write {resp.status_code}: {resp.text[:200]}")
    seconds = time.perf_counter() - t0
    count = await influx_query(
        http, run.influx_url, db, 'SELECT count("filling_level") FROM "fill_level"'
    )
    return Figure(f"raw InfluxDB /write, {INFLUX_BATCH:,}-line batches", count, seconds, len(lines))


# ---- d, e, f: the ingester --------------------------------------------------------------------


class Ingester:
    """`wastebank ingest` as a child process, with its RSS sampled while it runs."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: asyncio.subprocess.Process | None = None
        self.peak_rss = 0  # since start or the last take_peak()
        self.max_rss = 0
        self.idle_rss = 0  # right after it subscribed, before any message
        self.startup_s = 0.0  # process start to "subscribed", last start
        self._sampler: asyncio.Task[None] | None = None

    async def start(self) -> float:
        """Start; return the epoch of the start, once its log says it subscribed."""
        started = time.time()
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as fh:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "wastebank.cli", "ingest",
                env={**os.environ, **self.env},
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self._sampler = asyncio.create_task(self._sample(psutil.Process(self.proc.pid)))
        deadline = time.monotonic() + 60
        while b"subscribed" not in self.log.read_bytes()[offset:]:
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ingester did not subscribe:\n{self.tail()}")
            await asyncio.sleep(0.02)
        self.startup_s = time.time() - started
        with contextlib.suppress(psutil.Error):
            self.idle_rss = self.idle_rss or psutil.Process(self.proc.pid).memory_info().rss
        return started

    async def _sample(self, proc: psutil.Process) -> None:
        with contextlib.suppress(psutil.Error):
            while True:
                rss = proc.memory_info().rss
                self.peak_rss, self.max_rss = max(self.peak_rss, rss), max(self.max_rss, rss)
                await asyncio.sleep(0.1)

    def take_peak(self) -> float:
        """The peak RSS in MB since the last call (one phase), and start afresh."""
        peak, self.peak_rss = self.peak_rss, 0
        return peak / MB

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


async def until(
    label: str, target: int, probe: Callable[[], Awaitable[int]], timeout_s: float
) -> tuple[int, float]:
    """Poll ``probe()`` until it returns >= ``target``; give up after ``timeout_s``, or after
    STALL_S without progress (messages lost: waiting longer would only hide it).

    Returns (last value, epoch it was first seen). Polls every 0.2 s: small on runs of seconds.
    """
    deadline = time.monotonic() + timeout_s
    last, seen, changed, reported = -1, time.time(), time.monotonic(), time.monotonic()
    while True:
        value = await probe()
        if value != last:
            last, seen, changed = value, time.time(), time.monotonic()
        if value >= target:
            return value, seen
        if time.monotonic() > deadline or time.monotonic() - changed > STALL_S:
            progress(f"{label}: gave up at {value:,} of {target:,}")
            return value, seen
        if time.monotonic() - reported > 5:
            progress(f"{label}: {value:,} of {target:,}")
            reported = time.monotonic()
        await asyncio.sleep(0.2)


def ledger_deposits(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        return int(db.execute("SELECT count(*) FROM deposit").fetchone()[0])


async def forget_session(run: Run, client_id: str) -> None:
    """Remove an ingester's persistent session from the shared broker (connect with clean
    session): as ``ingest``, the only identity that may use its client id."""
    user, password = broker_login(run.credentials, "ingest")
    with contextlib.suppress(aiomqtt.MqttError):
        async with aiomqtt.Client(
            run.host,
            run.mqtt_port,
            username=user,
            password=password,
            identifier=broker_client_id(user, client_id),
            clean_session=True,
        ):
            pass


# ---- the run ----------------------------------------------------------------------------------


@dataclass
class Results:
    figures: dict[str, Figure] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    idle_rss_mb: float = 0.0
    phase_rss_mb: dict[str, float] = field(default_factory=dict)
    shared_rss_mb: list[float] = field(default_factory=list)
    shared_idle_mb: list[float] = field(default_factory=list)
    startup_s: float = 0.0
    dropped_notices: int = 0


async def bench(args: argparse.Namespace) -> Results:
    settings = load_settings(services.ServicesSettings)
    progress("services up (Mosquitto, InfluxDB)")
    services.up(settings)
    host = "127.0.0.1" if settings.bind in ("", "0.0.0.0") else settings.bind  # noqa: S104
    run = Run(
        host,
        settings.mqtt_port,
        f"http://{host}:{settings.influx_port}",
        services.mqtt_secrets_dir(settings.run_dir),
        timeout_s=args.timeout,
    )
    results = Results()
    broker_log = services._services(settings)[0].log_file  # noqa: SLF001
    log_offset = broker_log.stat().st_size if broker_log.exists() else 0
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)

    with tempfile.TemporaryDirectory(prefix="wastebank-bench-") as tmp_name:
        tmp = Path(tmp_name)
        progress(
            f"building payloads: {args.n:,} readings, {args.m:,} deposits, {args.backlog:,} backlog"
        )
        readings = fill_readings(args.n, "tps-bench", base)
        fills = write_messages(tmp / "fills.bin", fill_messages(readings))
        lines = [fill_line(r) for r in readings]
        deposits = write_messages(tmp / "deposits.bin", deposit_messages(args.m, base))
        backlog = write_messages(
            tmp / "backlog.bin", fill_messages(fill_readings(args.backlog, "tps-backlog", base))
        )
        shared_fills = write_messages(
            tmp / "shared.bin", fill_messages(fill_readings(args.n, "tps-shared", base))
        )
        del readings

        raw_db, ingest_db = f"bench_{run.run_id}_raw", f"bench_{run.run_id}"
        ledger = tmp / "ledger.db"
        seed_demo(f"sqlite:///{ledger}")
        client_id = f"bench-ingest-{run.run_id}"
        env = {
            "WASTEBANK_MQTT__HOST": run.host,
            "WASTEBANK_MQTT__PORT": str(run.mqtt_port),
            "WASTEBANK_MQTT__TOPIC_PREFIX": run.prefix("ingest"),
            "WASTEBANK_INFLUX__URL": run.influx_url,
            "WASTEBANK_INFLUX__DATABASE": ingest_db,
            "WASTEBANK_LEDGER_URL": f"sqlite:///{ledger}",
            "WASTEBANK_CLIENT_ID": client_id,
        }
        ingester = Ingester(env, tmp / "ingest.log")
        shared = [
            Ingester(
                {
                    **env,
                    "WASTEBANK_MQTT__TOPIC_PREFIX": run.prefix("shared"),
                    "WASTEBANK_CLIENT_ID": f"{client_id}-shared-{i}",
                    "WASTEBANK_SHARED_GROUP": f"bench-{run.run_id}",
                    "WASTEBANK_KINDS": '["fill", "health", "alert"]',
                },
                tmp / f"ingest-shared-{i}.log",
            )
            for i in range(2)
        ]
        figs = results.figures
        services.prepare_influxdb(settings, [ingest_db])  # the ingester logs in as ingest
        admin = services.influx_admin_settings(settings)
        assert admin.username is not None
        assert admin.password is not None
        login = (admin.username, admin.password.get_secret_value())
        async with httpx.AsyncClient(timeout=120, auth=login) as http:
            try:
                progress(f"(a) raw aiomqtt subscriber, {args.n:,} messages")
                figs["aiomqtt"] = await raw_aiomqtt(run, args.n, fills)
                progress(f"(b) raw paho-mqtt subscriber, {args.n:,} messages")
                figs["paho"] = await raw_paho(run, args.n, fills)
                progress(f"(c) raw InfluxDB writes, {args.n:,} lines")
                figs["influx"] = await raw_influx(run, http, raw_db, lines)

                async def fill_count(tps: str) -> int:
                    where = f"\"tps\" = '{tps}'"  # our own constant codes
                    q = f'SELECT count("filling_level") FROM "fill_level" WHERE {where}'  # noqa: S608
                    return await influx_query(http, run.influx_url, ingest_db, q)

                async def deposits_done() -> int:
                    in_ledger = await asyncio.to_thread(ledger_deposits, ledger)
                    q = 'SELECT count("net_g") FROM "deposit"'
                    in_influx = await influx_query(http, run.influx_url, ingest_db, q)
                    return min(in_ledger, in_influx)

                progress("(d) starting `wastebank ingest`")
                await ingester.start()
                progress(f"(d) ingester, {args.n:,} fill readings end to end")
                pub = await start_publisher(run, run.prefix("ingest"), fills)
                count, end = await until(
                    "telemetry", args.n, lambda: fill_count("tps-bench"), run.timeout_s
                )
                await pub.finished()
                figs["telemetry"] = Figure(
                    "ingester telemetry end to end", count, end - pub.first, args.n
                )
                results.phase_rss_mb["telemetry"] = ingester.take_peak()
                progress(f"(d) ingester, {args.m:,} deposits end to end (ledger + InfluxDB)")
                pub = await start_publisher(run, run.prefix("ingest"), deposits)
                count, end = await until("deposits", args.m, deposits_done, run.timeout_s)
                await pub.finished()
                figs["deposits"] = Figure(
                    "ingester deposits end to end (SQLite ledger)", count, end - pub.first, args.m
                )
                results.phase_rss_mb["deposits"] = ingester.take_peak()

                progress(f"(f) backlog: ingester stopped, {args.backlog:,} published")
                await ingester.stop()
                pub = await start_publisher(run, run.prefix("ingest"), backlog)
                await pub.finished()
                progress("(f) backlog: ingester started again, draining")
                started = await ingester.start()
                count, end = await until(
                    "backlog", args.backlog, lambda: fill_count("tps-backlog"), run.timeout_s
                )
                figs["backlog"] = Figure(
                    f"backlog drain ({args.backlog:,}, from ingester start)",
                    count,
                    end - started,
                    args.backlog,
                )
                results.phase_rss_mb["backlog"] = ingester.take_peak()
                await ingester.stop()

                progress(f"(g) two telemetry ingesters in a shared group, {args.n:,} readings")
                for one in shared:
                    await one.start()
                    results.shared_idle_mb.append(one.idle_rss / MB)
                pub = await start_publisher(run, run.prefix("shared"), shared_fills)
                count, end = await until(
                    "shared", args.n, lambda: fill_count("tps-shared"), run.timeout_s
                )
                await pub.finished()
                figs["shared"] = Figure(
                    "2 telemetry ingesters, shared subscription", count, end - pub.first, args.n
                )
            finally:
                await ingester.stop()
                for one in shared:
                    await one.stop()
                    results.shared_rss_mb.append(one.max_rss / MB)
                results.peak_rss_mb = ingester.max_rss / MB
                results.idle_rss_mb = ingester.idle_rss / MB
                results.startup_s = ingester.startup_s
                if any(not f.complete for f in figs.values()):
                    progress(f"ingester log tail:\n{ingester.tail()}")
                progress("cleaning up (databases, broker session)")
                for cid in (client_id, *(f"{client_id}-shared-{i}" for i in range(2))):
                    await forget_session(run, cid)
                for db in (raw_db, ingest_db):
                    with contextlib.suppress(httpx.HTTPError):
                        await influx_post(http, run.influx_url, f'DROP DATABASE "{db}"')
    if broker_log.exists():
        with broker_log.open("rb") as fh:
            fh.seek(log_offset)
            ours = b"@bench-"  # our client ids: {username}@bench-...
            results.dropped_notices = sum(
                1 for line in fh if DROPPED_NOTICE in line and ours in line
            )
    return results


def report(results: Results, args: argparse.Namespace) -> None:
    f = results.figures
    print(f"\nIngest benchmark: N={args.n:,} readings, M={args.m:,} deposits", end="")
    print(f", backlog {args.backlog:,}; {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"({os.cpu_count()} cores, Mosquitto and InfluxDB on this machine)\n")
    for key in ("aiomqtt", "paho", "influx", "telemetry", "deposits", "backlog", "shared"):
        if key in f:
            print(f[key].line())
    print(
        f"  {'ingester peak RSS':<44} {results.peak_rss_mb:>9.1f} MB"
        f"  (idle, just subscribed: {results.idle_rss_mb:.1f} MB)"
    )
    for phase, mb in results.phase_rss_mb.items():
        print(f"  {'  peak during ' + phase:<44} {mb:>9.1f} MB")
    for i, mb in enumerate(results.shared_rss_mb):
        idle = results.shared_idle_mb[i] if i < len(results.shared_idle_mb) else 0.0
        print(
            f"  {f'telemetry ingester {i + 1} (shared) peak RSS':<44} {mb:>9.1f} MB"
            f"  (idle: {idle:.1f} MB)"
        )
    print(f"  {'ingester start to subscribed (in backlog)':<44} {results.startup_s:>9.2f} s")
    print(f"  {'broker drop notices for bench clients':<44} {results.dropped_notices:>9}")
    tele = f.get("telemetry")
    shared = f.get("shared")
    if shared is not None and shared.rate:
        print("\nRatios (two telemetry ingesters sharing a subscription):")
        if "paho" in f and f["paho"].rate:
            print(f"  / {'raw paho-mqtt receive':<40} {shared.rate / f['paho'].rate:6.2f}x")
        ratio = shared.rate / NODE_RED_POINTS_S
        print(f"  / {'Node-RED reference, 17,600 points/s':<40} {ratio:6.2f}x")
    if tele is not None:
        print("\nRatios (ingester telemetry end to end):")
        for key, label in (("aiomqtt", "raw aiomqtt"), ("paho", "raw paho-mqtt")):
            if key in f and f[key].rate:
                print(f"  / {label + ' receive':<40} {tele.rate / f[key].rate:6.2f}x")
        print(
            f"  / {'Node-RED reference, 17,600 points/s':<40} {tele.rate / NODE_RED_POINTS_S:6.2f}x"
            "   (figure stated in issue 4 for this machine, not measured here)"
        )
    print("\nGoals (issue 4):")
    goal = GOAL_TELEMETRY_X * NODE_RED_POINTS_S
    if tele is not None:
        met = tele.complete and tele.rate >= goal
        print(_goal(f"telemetry >= {goal:,.0f} /s, one ingester", met))
    if shared is not None:
        met = shared.complete and shared.rate >= goal
        print(_goal(f"telemetry >= {goal:,.0f} /s, two sharing a subscription", met))
    print(
        _goal(
            f"ingester (all kinds) RSS < {GOAL_RSS_MB} MB",
            0 < results.peak_rss_mb < GOAL_RSS_MB,
        )
    )
    if results.shared_rss_mb:
        print(
            _goal(
                f"each telemetry ingester RSS < {GOAL_RSS_MB} MB",
                all(0 < mb < GOAL_RSS_MB for mb in results.shared_rss_mb),
            )
        )
    if "deposits" in f:
        d = f["deposits"]
        print(
            _goal(f"deposits >= {GOAL_DEPOSITS_S:,} /s", d.complete and d.rate >= GOAL_DEPOSITS_S)
        )
    if "backlog" in f:
        b = f["backlog"]
        print(
            _goal(
                f"backlog of {args.backlog:,} drained < {GOAL_BACKLOG_S} s",
                b.complete and b.seconds < GOAL_BACKLOG_S,
            )
        )


def _goal(text: str, met: bool) -> str:
    return f"  [{'met' if met else 'NOT met'}] {text}"


def main() -> None:
    if len(sys.argv) == 7 and sys.argv[1] == "_publish":
        publisher_main(
            sys.argv[2], int(sys.argv[3]), sys.argv[4], Path(sys.argv[5]), Path(sys.argv[6])
        )
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=100_000, help="fill readings per phase")
    parser.add_argument("--m", type=int, default=10_000, help="deposit events")
    parser.add_argument("--backlog", type=int, default=100_000, help="backlog to drain")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per phase, at most")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="N=30,000, M=3,000, backlog 30,000 (options given win): a before/after comparison's "
        "short mode (bench/before_after.py)",
    )
    args = parser.parse_args()
    if args.quick:  # as defaults, so that an explicit --n etc. still wins
        parser.set_defaults(n=30_000, m=3_000, backlog=30_000)
        args = parser.parse_args()
    results = asyncio.run(bench(args))
    report(results, args)


if __name__ == "__main__":
    main()
