"""`wastebank demo`: the whole system on one machine, simulated devices included.

Starts Mosquitto and InfluxDB (installing them if needed), seeds the demo city, then runs every
process as its own child, exactly as they would run on separate machines: one simulated kiosk
scale and one gateway per waste bank, two TPS fill sensors, the ingester, the TPS alert watcher
and the API. Prints the URL of a member's balance page and the member's login (member number
and a PIN made for this run). Ctrl-C (or any child dying) stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from wastebank import services
from wastebank.config import RUN_DIR, load_settings
from wastebank.seed import seed_demo

log = logging.getLogger("wastebank.demo")

API_PORT = int(os.environ.get("WASTEBANK_DEMO_PORT", "8000"))
STOP_TIMEOUT_S = 10.0


@dataclass
class Child:
    name: str
    proc: asyncio.subprocess.Process


async def _spawn(name: str, args: list[str], env: dict[str, str], logs: Path) -> Child:
    out = (logs / f"{name}.log").open("ab")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wastebank.cli",
        *args,
        env={**os.environ, **env},
        stdout=out,
        stderr=out,
        start_new_session=True,
    )
    out.close()
    log.info("mulai / started %s (pid %d), log %s", name, proc.pid, logs / f"{name}.log")
    return Child(name, proc)


async def _stop(children: list[Child]) -> None:
    for child in children:
        if child.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGTERM)
    for child in children:
        try:
            await asyncio.wait_for(child.proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                child.proc.kill()
            await child.proc.wait()


def demo_login(ledger_url: str, member_no: str) -> str:
    """Give ``member_no`` a citizen login with a new random PIN (each run makes a new one: a
    hash cannot be read back); return the PIN."""
    from sqlalchemy.orm import Session

    from wastebank import access, ledger

    pin = access.generate_pin()
    hasher = access.password_hasher(access.AuthSettings())
    actor = access.Actor(name="demo", role="cli", user_agent="wastebank demo")
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as session:
            if access.find_login(session, member_no) is None:
                access.add_user(
                    session,
                    role=access.Role.CITIZEN,
                    member_no=member_no,
                    secret=pin,
                    hasher=hasher,
                    actor=actor,
                )
            else:
                access.set_secret(session, member_no, pin, hasher, actor)
                access.set_active(session, member_no, True, actor)
            session.commit()
    finally:
        engine.dispose()
    return pin


async def run() -> None:
    # Ctrl-C arrives as SIGINT (asyncio.run cancels us); treat SIGTERM and SIGHUP the same way, so
    # `kill` or a closed terminal also stops every child instead of orphaning them.
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    assert me is not None
    for sig in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, me.cancel)
    services.up(load_settings(services.ServicesSettings))
    demo_dir = RUN_DIR / "demo"
    logs = demo_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    ledger_url = f"sqlite:///{demo_dir / 'ledger.db'}"
    summary = seed_demo(ledger_url)
    log.info("data contoh / demo data: %s", summary)
    member_no = next(iter(summary.members))
    pin = demo_login(ledger_url, member_no)

    common = {"WASTEBANK_LEDGER_URL": ledger_url}
    children: list[Child] = []
    try:
        children.append(await _spawn("ingest", ["ingest"], common, logs))
        children.append(await _spawn("tps-watch", ["tps", "watch"], common, logs))
        children.append(
            await _spawn(
                "api",
                ["api"],
                {**common, "WASTEBANK_PORT": str(API_PORT)},
                logs,
            )
        )
        for n, bank in enumerate(summary.banks, start=1):
            link = demo_dir / f"kiosk-{bank}.tty"
            cards = [
                uid
                for member_no, uids in summary.members.items()
                if summary.member_banks[member_no] == bank
                for uid in uids
            ]
            children.append(
                await _spawn(
                    f"kiosk-{bank}",
                    [
                        "sim",
                        "kiosk",
                        "--link",
                        str(link),
                        "--cards",
                        ",".join(cards),
                        "--categories",
                        ",".join(summary.categories),
                        "--interval",
                        "6",
                    ],
                    {},
                    logs,
                )
            )
            site = demo_dir / f"site-gw-{n:02d}.toml"
            site.write_text(
                tomli_w.dumps(
                    {
                        "gateway_id": f"gw-{n:02d}",
                        "bank_code": bank,
                        "http_port": 8080 + n,
                        "outbox": {"path": str(demo_dir / f"outbox-gw-{n:02d}.db")},
                        "scales": [{"id": "kiosk-01", "port": str(link), "flow": "kiosk"}],
                    }
                )
            )
            children.append(
                await _spawn(f"gateway-{bank}", ["gateway", "--config", str(site)], {}, logs)
            )
        for tps, sensor in (("tps-batu-merah", "us-01"), ("tps-benteng", "us-02")):
            children.append(
                await _spawn(
                    f"tps-{tps}",
                    ["sim", "tps", "--tps", tps, "--sensor", sensor, "--interval", "5"],
                    {},
                    logs,
                )
            )

        base = f"http://127.0.0.1:{API_PORT}"
        print(  # noqa: T201 - the demo's whole point is to print this
            "\n"
            f"  Saldo nasabah / member balance:  {base}/nasabah/{member_no}\n"
            f"  Masuk / log in:                  nomor nasabah {member_no}, PIN {pin}\n"
            f"  JSON:                            curl -d username={member_no} -d password={pin} "
            f"{base}/api/token\n"
            f"                                   then {base}/api/members/{member_no}/balance\n"
            "                                   with 'Authorization: Bearer <access_token>'\n"
            f"  Kesehatan / health:              {base}/health\n"
            f"  Log:                             {logs}\n"
            "  Tekan Ctrl-C untuk berhenti / press Ctrl-C to stop.\n",
            flush=True,
        )
        waits = [asyncio.create_task(c.proc.wait(), name=c.name) for c in children]
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            log.error(
                "%s berhenti / exited with %s; lihat / see %s",
                task.get_name(),
                task.result(),
                logs / f"{task.get_name()}.log",
            )
        for task in waits:
            task.cancel()
    finally:
        await _stop(children)
