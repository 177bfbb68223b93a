"""Gateway footprint and outbox drain rate, each against a baseline measured in the same run.

1. Footprint: a real `wastebank gateway` process reads a 10 Hz indicator (gs_nt) and 20 JSN-SR04T
   fill sensors (10 Hz each), all simulated on real pseudo-terminals, for DURATION_S; we take its
   peak RSS (the kernel's VmHWM over the window) and CPU time (psutil). Baseline: a bare pyserial
   loop reading the same 21 ports and discarding the bytes (what the I/O alone costs). Goals:
   RSS < 50 MB, CPU < 3 % of a core.
   Three configurations: the gateway alone; with its local attendant endpoint, unused; with the
   attendant page in use (signed in from the offline login cache, every page of the day opened,
   the live weight streaming), and the peak RSS while that login's password was verified
   (argon2's working memory, the gateway's own parameters, held for the hash's ~0.1 s).
2. Drain: an outbox pre-filled with N deposit events (as after an outage) is drained by a gateway
   process to the real Mosquitto, each row deleted after its PUBACK. Baseline: raw aiomqtt
   publishing the same N payloads at QoS 1 from this process, 64 in flight (the gateway's window).
   Goal: >= 5,000 msg/s.

Run after `make services`:
    .venv/bin/python bench/gateway_footprint.py [--duration 30] [--rows 20000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import httpx
import msgspec
import psutil
import tomli_w

from firmware_sim.kiosk import KioskSimulator
from firmware_sim.tps import SerialFillSensorSim
from gateway.outbox import Outbox
from wastebank import devices, services
from wastebank.config import MqttSettings, load_settings
from wastebank.messages import DepositEvent, Topics
from wastebank.mqtt import client_id
from wastebank.structs import encode_json

SENSORS = 20
ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
BENCH_USER = "test"  # the broker identity of tests and benchmarks (docs/operations.md)


def progress(text: str) -> None:
    print(f"  … {text}", file=sys.stderr, flush=True)


def reset_peak(proc: psutil.Process) -> None:
    """Start ``proc``'s resident high-water mark (VmHWM) afresh from its current RSS (Linux:
    ``clear_refs`` 5). The kernel then keeps the true peak, which a poll every so often misses
    (a login's argon2 memory lives ~0.1 s)."""
    Path(f"/proc/{proc.pid}/clear_refs").write_text("5")


def peak_rss(proc: psutil.Process) -> float:
    """``proc``'s peak RSS (MB) since :func:`reset_peak`."""
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / MB
    raise RuntimeError("no VmHWM in /proc/<pid>/status")


def pydantic_mapped(proc: psutil.Process) -> bool:
    """Whether pydantic's core library is mapped into ``proc`` (it was imported, however)."""
    return any("pydantic_core" in m.path for m in proc.memory_maps())


def sample(proc: psutil.Process, duration_s: float) -> tuple[float, float]:
    """(peak RSS in MB, CPU % of one core) of ``proc`` over ``duration_s`` (after a warm-up)."""
    time.sleep(3)  # warm-up: imports, port opening, first detection
    reset_peak(proc)
    cpu0 = proc.cpu_times()
    t0 = time.monotonic()
    time.sleep(duration_s)
    cpu1 = proc.cpu_times()
    used = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return peak_rss(proc), 100.0 * used / (time.monotonic() - t0)


BASELINE_READER = r"""
import selectors, sys, serial
ports = [serial.Serial(p, 9600, timeout=0) for p in sys.argv[1:]]
sel = selectors.DefaultSelector()
for p in ports:
    sel.register(p.fileno(), selectors.EVENT_READ, p)
while True:
    for key, _ in sel.select():
        key.data.read(4096)
"""


@contextlib.contextmanager
def registered_gateway(
    run_dir: Path, gateway_id: str, prefix: str, serves: Iterable[tuple[str, str]] = ()
) -> Iterator[None]:
    """``gateway_id`` registered on this checkout's broker, which lets nobody in anonymously (as
    `wastebank device add` does), its password where the gateway looks; removed afterwards."""
    registry = devices.Registry(services.broker_auth_files(run_dir))
    if registry.get(gateway_id) is not None:  # left by an interrupted run
        registry.remove(gateway_id)
    device = devices.Device(
        "gateway", "bs-bench", gateway_id, topic_prefix=prefix, serves=tuple(serves)
    )
    secret = services.mqtt_secrets_dir(run_dir) / gateway_id
    devices.write_secret(secret, registry.add(device).password + "\n")
    settings = services.ServicesSettings(run_dir=run_dir)
    services.reload_mosquitto(settings)
    try:
        yield
    finally:
        registry.remove(gateway_id)
        secret.unlink(missing_ok=True)
        services.reload_mosquitto(settings)


@contextlib.contextmanager
def child(args: list[str], env: dict[str, str] | None = None) -> Iterator[psutil.Process]:
    proc = subprocess.Popen(
        args,
        # this checkout's code (a worktree's too): the gateway's exec'd `python -P -m gateway`
        # does not look in the working directory
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield psutil.Process(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def footprint(work: Path, mqtt: MqttSettings, duration_s: float, run_dir: Path) -> None:
    scale_link = work / "scale.tty"
    links = [work / f"jsn-{i:02d}.tty" for i in range(SENSORS)]
    site = work / "footprint.toml"
    scale = {"id": "scale-01", "port": str(scale_link), "protocol": "gs_nt"}
    config = {
        "gateway_id": "gw-bench",
        "bank_code": "bs-bench",
        "http_port": 0,
        "mqtt": {"port": mqtt.port, "topic_prefix": "bench/"},
        "outbox": {"path": str(work / "footprint-outbox.db")},
        "scales": [scale],
        "sensors": [
            {
                "id": f"us-{i:02d}",
                "tps_code": "tps-bench",
                "kind": "jsn_sr04t",
                "port": str(link),
                "empty_distance_mm": 1400,
                "full_distance_mm": 250,
                "report_interval_s": 60,
            }
            for i, link in enumerate(links)
        ],
    }
    site.write_text(tomli_w.dumps(config))
    # The attendant page serves the attendant's scales only (a kiosk scale is the kiosk's).
    page_site = work / "footprint-page.toml"
    page_site.write_text(tomli_w.dumps({**config, "scales": [{**scale, "flow": "attendant"}]}))
    async with contextlib.AsyncExitStack() as stack:
        serves = [("tps-bench", f"us-{i:02d}") for i in range(SENSORS)]
        stack.enter_context(registered_gateway(run_dir, "gw-bench", "bench/", serves))
        await stack.enter_async_context(KioskSimulator(scale_link, seed=1))
        for i, link in enumerate(links):
            await stack.enter_async_context(
                SerialFillSensorSim(link, kind="jsn", seed=i, period_s=0.1)
            )
        progress(f"baseline: pyserial reading the same {1 + SENSORS} ports for {duration_s:.0f} s")
        reader = [sys.executable, "-c", BASELINE_READER, str(scale_link), *map(str, links)]
        with child(reader) as proc:
            base_rss, base_cpu = await asyncio.to_thread(sample, proc, duration_s)
        progress(f"gateway: the same ports for {duration_s:.0f} s")
        gateway = [sys.executable, "-m", "wastebank.cli", "gateway", "--config", str(site)]
        with child(gateway) as proc:
            gw_rss, gw_cpu = await asyncio.to_thread(sample, proc, duration_s)
        progress(f"gateway with its local attendant endpoint for {duration_s:.0f} s")
        with child(gateway, {"WASTEBANK_HTTP_PORT": "18081"}) as proc:
            http_rss, http_cpu = await asyncio.to_thread(sample, proc, duration_s)
        progress(f"gateway with the attendant page in use for {duration_s:.0f} s")
        seed_offline_login(work / "footprint-outbox.db")
        env = {"WASTEBANK_HTTP_PORT": "18081", "WASTEBANK_API_URL": UNREACHABLE_API}
        page_gateway = [*gateway[:-1], str(page_site)]
        with child(page_gateway, env) as proc:
            async with attendant_in("http://127.0.0.1:18081", proc) as login_peak:
                page_rss, page_cpu = await asyncio.to_thread(sample, proc, duration_s)
                pydantic_in = pydantic_mapped(proc)

    print(f"\nFootprint: 1 indicator at 10 Hz + {SENSORS} JSN-SR04T at 10 Hz, {duration_s:.0f} s")
    print(f"  {'':34} {'RSS MB':>8} {'CPU % core':>11}")
    print(f"  {'baseline: bare pyserial reader':34} {base_rss:8.1f} {base_cpu:11.2f}")
    print(f"  {'wastebank gateway':34} {gw_rss:8.1f} {gw_cpu:11.2f}")
    print(f"  {'  + local attendant endpoint':34} {http_rss:8.1f} {http_cpu:11.2f}")
    print(f"  {'  + attendant page in use':34} {page_rss:8.1f} {page_cpu:11.2f}")
    print(f"  {'    peak during a login (argon2)':34} {login_peak[0]:8.1f}")
    print(f"  pydantic in the gateway's process: {'yes' if pydantic_in else 'no'}")
    print(
        f"  ratio gateway / baseline:          {gw_rss / base_rss:8.2f} "
        f"{gw_cpu / max(base_cpu, 0.01):11.2f}"
    )
    print(f"  goals: RSS < 50 MB: {'met' if gw_rss < 50 else 'NOT met'};"
          f" CPU < 3 %: {'met' if gw_cpu < 3 else 'NOT met'}")  # fmt: skip
    print(f"  goals with the page in use: RSS <= 50 MB: {'met' if page_rss <= 50 else 'NOT met'};"
          f" CPU < 3 %: {'met' if page_cpu < 3 else 'NOT met'}")  # fmt: skip


UNREACHABLE_API = "http://127.0.0.1:9"  # discard: refused at once, so logins use the cache
ATTENDANT, PASSWORD = "bench-petugas", "bench-password-1"


def seed_offline_login(outbox_path: Path) -> None:
    """An attendant of bs-bench in the gateway's login cache, as after an online login: the
    page is then used as at a bank whose internet is down (httpx, argon2, the session's JWT and
    the templates all loaded, as in a working day)."""
    from argon2 import PasswordHasher

    from gateway.attendant_store import AttendantDb
    from gateway.settings import AttendantSettings

    # The gateway's own argon2 parameters: a login verifies with those the hash names.
    a = AttendantSettings()
    hasher = PasswordHasher(a.argon2_time_cost, a.argon2_memory_kib, a.argon2_parallelism)
    outbox = Outbox(outbox_path)
    try:
        AttendantDb(outbox).logins.put(
            ATTENDANT,
            hasher.hash(PASSWORD),
            role="attendant",
            name="Petugas Bench",
            bank_codes=["bs-bench"],
            now=datetime.now(UTC),
            ttl=timedelta(days=1),
        )
    finally:
        outbox.close()


@contextlib.asynccontextmanager
async def attendant_in(base: str, proc: psutil.Process) -> AsyncIterator[list[float]]:
    """Signed in, every page of the attendant's day opened once, and the scale's live weight
    streaming (as on the bank's tablet) while the caller samples. Yields [the peak RSS in MB
    while the login was verified]."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for _ in range(100):  # the endpoint listens a moment after the process starts
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/health")).status_code == 200:
                    break
            await asyncio.sleep(0.1)
        reset_peak(proc)
        login = await client.post(
            "/petugas/api/session", json={"username": ATTENDANT, "password": PASSWORD}
        )
        login.raise_for_status()
        login_peak = [peak_rss(proc)]
        for page in ("/petugas", "/petugas/nasabah", "/petugas/penarikan", "/petugas/stok",
                     "/petugas/hari-ini"):  # fmt: skip
            (await client.get(page)).raise_for_status()

        async def watch() -> None:
            async with client.stream("GET", "/petugas/api/scales/scale-01/live") as live:
                live.raise_for_status()
                async for _ in live.aiter_lines():
                    pass

        task = asyncio.create_task(watch())
        try:
            yield login_peak
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task  # a stream that failed raises here


def payloads(rows: int, topics: Topics) -> list[tuple[str, bytes]]:
    now = datetime.now(UTC)
    topic = topics.deposit("bs-bench", "gw-drain")
    out = []
    for seq in range(1, rows + 1):
        ev = DepositEvent(
            event_id=f"gw-drain-{seq}",
            gateway_id="gw-drain",
            seq=seq,
            bank_code="bs-bench",
            scale_id="scale-01",
            card_uid="04A1B2C3D4",
            category_code="pet",
            net_g=1250,
            stable=True,
            protocol="gs_nt",
            measured_at=now,
            raw_frames=["#K,1,CARD,04A1B2C3D4*71", "ST,GS,+0001.25kg", "#K,3,OK*7E"],
        )
        out.append((topic, encode_json(ev)))
    return out


def fixed_row(topic: str, payload: bytes) -> Callable[[int], tuple[str, bytes]]:
    """An outbox row's builder: this topic and payload, whatever its number."""
    return lambda _seq: (topic, payload)


async def raw_publish_rate(mqtt: MqttSettings, items: list[tuple[str, bytes]]) -> float:
    window = asyncio.Semaphore(64)
    login = msgspec.structs.replace(mqtt, username=BENCH_USER).as_user(None)
    client = aiomqtt.Client(
        mqtt.host,
        mqtt.port,
        username=login.username,
        password=login.password.get_secret_value() if login.password else None,
        identifier=client_id(login.username, f"bench-raw-{secrets.token_hex(4)}"),
        max_inflight_messages=64,
    )
    client.pending_calls_threshold = 100  # 64 in flight on purpose
    async with client:

        async def one(topic: str, payload: bytes) -> None:
            async with window:
                await client.publish(topic, payload, qos=1)

        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for topic, payload in items:
                tg.create_task(one(topic, payload))
        return len(items) / (time.perf_counter() - t0)


async def drain(work: Path, mqtt: MqttSettings, rows: int, run_dir: Path) -> None:
    topics = Topics("bench-drain/")
    items = payloads(rows, topics)
    progress(f"baseline: raw aiomqtt, {rows} QoS 1 publishes, 64 in flight")
    raw = await raw_publish_rate(mqtt, items)

    path = work / "drain-outbox.db"
    outbox = Outbox(path, max_rows=rows + 1)
    for topic, payload in items:
        outbox.add(fixed_row(topic, payload))
    outbox.close()
    site = work / "drain.toml"
    site.write_text(
        tomli_w.dumps(
            {
                "gateway_id": "gw-drain",
                "bank_code": "bs-bench",
                "http_port": 0,
                "mqtt": {"port": mqtt.port, "topic_prefix": "bench-drain/"},
                "outbox": {"path": str(path), "max_rows": rows + 1, "drain_rate_per_s": 1e6},
                "scales": [{"id": "scale-01", "port": str(work / "absent.tty")}],
            }
        )
    )
    progress(f"gateway: draining {rows} rows")
    gateway = [sys.executable, "-m", "wastebank.cli", "gateway", "--config", str(site)]
    reader = Outbox(path)
    with registered_gateway(run_dir, "gw-drain", "bench-drain/"), child(gateway):
        t0 = time.perf_counter()
        first = None
        while (left := len(reader)) > 0:
            if first is None and left < rows:
                first = time.perf_counter()  # publishing has begun (start-up excluded)
            await asyncio.sleep(0.05)
        done = time.perf_counter()
    reader.close()
    gw = rows / (done - (first or t0))
    print(f"\nOutbox drain after an outage: {rows} deposits, QoS 1, row deleted after PUBACK")
    print(f"  baseline: raw aiomqtt publish      {raw:10.0f} msg/s")
    print(f"  wastebank gateway outbox drain     {gw:10.0f} msg/s")
    print(f"  ratio gateway / baseline:          {gw / raw:10.2f}")
    print(f"  goal >= 5,000 msg/s: {'met' if gw >= 5000 else 'NOT met'}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--mqtt-port", type=int, default=MqttSettings().port)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="--duration 5 --rows 5000 (options given win): a before/after comparison's short "
        "mode (bench/before_after.py)",
    )
    args = parser.parse_args()
    if args.quick:  # as defaults, so that an explicit --duration or --rows still wins
        parser.set_defaults(duration=5.0, rows=5_000)
        args = parser.parse_args()
    run_dir = load_settings(services.ServicesSettings).run_dir
    mqtt = MqttSettings(port=args.mqtt_port, credentials_dir=services.mqtt_secrets_dir(run_dir))
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        await footprint(Path(tmp), mqtt, args.duration, run_dir)
        await drain(Path(tmp), mqtt, args.rows, run_dir)


if __name__ == "__main__":
    # A SIGTERM (kill, a CI timeout) stops it like Ctrl-C: the processes it started (gateways,
    # ingesters, each bench's own) are stopped by its handlers instead of left running, where
    # a stale gateway reopens whatever pty now has its link's number.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    asyncio.run(main())
