"""`wastebank demo`: the whole system on one machine, simulated devices included.

Starts Mosquitto and InfluxDB (installing them if needed), seeds the demo city, then runs every
process as its own child, exactly as they would run on separate machines: per waste bank a
simulated kiosk scale, a simulated indicator at the attendant's desk and a gateway serving both
(and the attendant pages), two TPS fill sensors, the ingester, the TPS alert watcher and the API;
with SMS (``wastebank demo --with-sms``, or ``WASTEBANK_GAMMU_SMSD=true``) also Gammu SMSD on its
dummy phone (an apt install of ``gammu-smsd`` the first time: why it is not on by default) and
``wastebank sms run``. Prints the URL of each page (citizen, DLH, admin, each bank's attendant
pages) with a login made for this run, two attendants per bank. Ctrl-C (or any child dying)
stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shlex
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from wastebank import devices, services
from wastebank.config import RUN_DIR, load_settings
from wastebank.formats import rupiah
from wastebank.money_rules import MoneyRules
from wastebank.seed import SeedSummary, seed_demo

log = logging.getLogger("wastebank.demo")

API_PORT = int(os.environ.get("WASTEBANK_DEMO_PORT", "8000"))
STOP_TIMEOUT_S = 10.0
SECOND_PERSON_ENV = "WASTEBANK_MONEY__SECOND_APPROVAL_ABOVE_IDR"
DEMO_SECOND_PERSON_IDR = 50_000
"""The demo's second-person limit (the default is Rp1.000.000): simulated deposits reach it in
minutes, so a withdrawal above it, approved by one attendant and paid by the other, can be
shown. ``WASTEBANK_MONEY__SECOND_APPROVAL_ABOVE_IDR`` set in the environment wins."""
ATTENDANT_PAGES = (
    ("", "timbang / weighing, receipts 58 mm"),
    ("/penarikan", "withdrawals"),
    ("/nasabah", "members, cards, PIN, SMS"),
    ("/stok", "sales, stock"),
    ("/hari-ini", "today, day close"),
)
"""The attendant's pages on each gateway (under /petugas), as the demo lists them."""


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


@dataclass
class Login:
    username: str
    secret: str  # a PIN (citizen) or a password (staff), new each run


def demo_logins(ledger_url: str, member_no: str) -> dict[str, Login]:
    """Logins for the demo, with new random secrets each run (a hash cannot be read back):
    ``citizen`` (``member_no``, a PIN), ``admin``, ``dlh`` (of the ledger's first city) and
    ``attendant:<bank>:<staff id>`` for each active attendant of each bank (in the order they
    were made: the bank's first attendant first)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from wastebank import access, ledger

    hasher = access.password_hasher(access.AuthSettings())
    actor = access.Actor(name="demo", role="cli", user_agent="wastebank demo")
    engine = ledger.make_engine(ledger_url)
    out: dict[str, Login] = {}
    try:
        with Session(engine) as session:
            city = ledger.first_city(session)
            assert city is not None, "seed the demo city first"
            city_code = city.code
            wanted: list[tuple[str, str, dict[str, str]]] = [
                ("citizen", access.Role.CITIZEN, {"member_no": member_no}),
                ("admin", access.Role.ADMIN, {"username": "admin"}),
                ("dlh", access.Role.DLH, {"username": f"dlh-{city_code}", "city_code": city_code}),
            ]
            for staff_id, bank_code in session.execute(
                select(ledger.Attendant.staff_id, ledger.Bank.code)
                .join(ledger.Bank, ledger.Attendant.bank_id == ledger.Bank.id)
                .where(ledger.Attendant.active)
                .order_by(ledger.Attendant.id)
            ):
                wanted.append(
                    (
                        f"attendant:{bank_code}:{staff_id}",
                        access.Role.ATTENDANT,
                        {"username": staff_id},
                    )
                )
            for key, role, args in wanted:
                username = args.get("username") or args["member_no"]
                secret = (
                    access.generate_pin()
                    if role == access.Role.CITIZEN
                    else secrets.token_urlsafe(9)
                )
                if access.find_login(session, username) is None:
                    access.add_user(
                        session, role=role, secret=secret, hasher=hasher, actor=actor, **args
                    )
                else:
                    access.set_secret(session, username, secret, hasher, actor)
                    access.set_active(session, username, True, actor)
                out[key] = Login(username, secret)
            session.commit()
    finally:
        engine.dispose()
    return out


def attendants_of(logins: dict[str, Login], bank: str) -> list[Login]:
    """The bank's attendants' logins (:func:`demo_logins`), the first attendant first."""
    return [login for key, login in logins.items() if key.startswith(f"attendant:{bank}:")]


def _attendant_lines(bank: str, url: str, logins: list[Login]) -> list[str]:
    """A bank's attendant pages on its gateway and its attendants' logins."""
    lines = [f"  {'Petugas ' + bank + ':':<25}{url}  ({ATTENDANT_PAGES[0][1]})"]
    for path, what in ATTENDANT_PAGES[1:]:
        lines.append(f"      {path[1:] + ':':<21}{url}{path}  ({what})")
    for n, login in enumerate(logins):
        label = "masuk / log in:" if n == 0 else "petugas kedua / 2nd:"
        lines.append(f"      {label:<21}{login.username} / {login.secret}")
    return lines


def _banner(
    base: str,
    logins: dict[str, Login],
    attendant_pages: list[tuple[str, str]],
    logs: Path,
    *,
    second_person_idr: int | None = None,
    sms_sent: Path | None = None,
    fleet_cli: str | None = None,
) -> str:
    """What the demo prints: each page's URL with the login made for this run; the
    second-person limit in force, with SMS where the texts land, and how to run
    `wastebank fleet` on the demo's data (:func:`fleet_command`)."""
    citizen, dlh, admin = logins["citizen"], logins["dlh"], logins["admin"]
    lines = [
        "",
        f"  Nasabah / citizen:       {base}/nasabah/{citizen.username}",
        f"      masuk / log in:      nomor nasabah {citizen.username}, PIN {citizen.secret}",
        f"  DLH:                     {base}/dlh",
        f"      masuk / log in:      {dlh.username} / {dlh.secret}",
        f"  Admin:                   {base}/admin",
        f"      masuk / log in:      {admin.username} / {admin.secret}",
    ]
    for bank, url in attendant_pages:
        lines += _attendant_lines(bank, url, attendants_of(logins, bank))
    if second_person_idr is not None:
        limit, default = rupiah(second_person_idr), rupiah(MoneyRules().second_approval_above_idr)
        lines += [
            f"  Dua petugas / two:       penarikan di atas / withdrawals above {limit} "
            f"(demo; bawaan / default {default}):",
            "                           satu petugas menyetujui, yang lain membayar / one "
            "attendant approves, the other pays",
        ]
    if sms_sent is not None:
        lines += [
            f"  SMS (Gammu dummy):       {sms_sent}  (wastebank sms list)",
            "                           nyalakan / switch on 'Struk lewat SMS' di / on "
            "/petugas/nasabah",
        ]
    lines += [
        f"  JSON:                    curl -d username={citizen.username} "
        f"-d password={citizen.secret} {base}/api/token",
        f"                           then {base}/api/members/{citizen.username}/balance",
        "                           with 'Authorization: Bearer <access_token>'",
        f"  Kesehatan / health:      {base}/health",
    ]
    if fleet_cli is not None:
        lines += [
            f"  Armada / fleet:          {base}/armada (admin, DLH); di terminal / in a shell:",
            f"                           {fleet_cli}",
        ]
    lines += [
        f"  Log:                     {logs}",
        "  Tekan Ctrl-C untuk berhenti / press Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


def _device_login(broker: services.ServicesSettings, bank: str, gateway: str) -> dict[str, str]:
    """A new password for the demo's ``gateway`` (registered as a device of ``bank``)."""
    registry = devices.Registry(devices.broker_auth_files(broker.run_dir))
    known = registry.get(gateway)
    if known is not None and known.site != bank:
        registry.remove(gateway)
        known = None
    issued = registry.add(devices.Device("gateway", bank, gateway), rotate=known is not None)
    return {"username": gateway, "password": issued.password}


def api_env(common: dict[str, str], broker: services.ServicesSettings) -> dict[str, str]:
    """The demo API's settings: the children's, its port, and the broker's registry (its run
    dir: the fleet and /admin/perangkat read the devices there)."""
    return {
        **common,
        "WASTEBANK_PORT": str(API_PORT),
        "WASTEBANK_PAGES__BROKER_RUN_DIR": str(broker.run_dir),
        "WASTEBANK_RUN_DIR": str(broker.run_dir.resolve()),
    }


FLEET_CLI_ENV = ("WASTEBANK_RUN_DIR", "WASTEBANK_LEDGER_URL", "WASTEBANK_PAGES__BROKER_RUN_DIR")
"""What `wastebank fleet` needs of the demo API's settings to read what the page /armada does,
from any directory: the services' run dir (their ports and the API's InfluxDB password: from
elsewhere `.run` is another folder, and InfluxDB answered 401 to an anonymous reader), the
demo's ledger (not the default one under .run) and the broker's registry."""


def fleet_command(env: dict[str, str]) -> str:
    """`wastebank fleet` against the demo's data, from the demo API's settings (:func:`api_env`),
    as a shell line; the command is this environment's (the shell may not have .venv on PATH)."""
    cli = shlex.quote(str(Path(sys.executable).with_name("wastebank")))
    return " ".join([*(f"{k}={shlex.quote(env[k])}" for k in FLEET_CLI_ENV), cli, "fleet"])


def demo_env(ledger_url: str) -> dict[str, str]:
    """The settings every child shares: the demo's ledger and its second-person limit."""
    limit = os.environ.get(SECOND_PERSON_ENV, str(DEMO_SECOND_PERSON_IDR))
    return {"WASTEBANK_LEDGER_URL": ledger_url, SECOND_PERSON_ENV: limit}


async def run(*, with_sms: bool = False) -> None:
    # Ctrl-C arrives as SIGINT (asyncio.run cancels us); treat SIGTERM and SIGHUP the same way, so
    # `kill` or a closed terminal also stops every child instead of orphaning them.
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    assert me is not None
    for sig in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, me.cancel)
    overrides = {"gammu_smsd": True} if with_sms else {}
    broker = load_settings(services.ServicesSettings, None, **overrides)
    services.up(broker)  # with SMS: gammu-smsd installed (apt) and started on its dummy phone
    demo_dir = RUN_DIR / "demo"
    logs = demo_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    ledger_url = f"sqlite:///{demo_dir / 'ledger.db'}"
    summary = seed_demo(ledger_url)
    log.info("data contoh / demo data: %s", summary)
    member_no = next(iter(summary.members))
    logins = demo_logins(ledger_url, member_no)
    base = f"http://127.0.0.1:{API_PORT}"

    common = demo_env(ledger_url)
    children: list[Child] = []
    attendant_pages: list[tuple[str, str]] = []  # (bank, URL of its gateway's attendant page)
    try:
        children.append(await _spawn("ingest", ["ingest"], common, logs))
        children.append(await _spawn("tps-watch", ["tps", "watch"], common, logs))
        api = api_env(common, broker)
        children.append(await _spawn("api", ["api"], api, logs))
        for n, bank in enumerate(summary.banks, start=1):
            page = await _start_bank(n, bank, summary, broker, base, demo_dir, children)
            attendant_pages.append((bank, page))
        for tps, sensor in (("tps-batu-merah", "us-01"), ("tps-benteng", "us-02")):
            children.append(
                await _spawn(
                    f"tps-{tps}",
                    ["sim", "tps", "--tps", tps, "--sensor", sensor, "--interval", "5"],
                    {},
                    logs,
                )
            )

        sms_sent = await _start_sms(broker, common, logs, children)
        banner = _banner(
            base,
            logins,
            attendant_pages,
            logs,
            second_person_idr=int(common[SECOND_PERSON_ENV]),
            sms_sent=sms_sent,
            fleet_cli=fleet_command(api),
        )
        print(banner, flush=True)  # noqa: T201
        await _until_one_exits(children, logs)
    finally:
        await _stop(children)


async def _start_bank(
    n: int,
    bank: str,
    summary: SeedSummary,
    broker: services.ServicesSettings,
    base: str,
    demo_dir: Path,
    children: list[Child],
) -> str:
    """A bank's devices and gateway: a self-service kiosk (card + keys) and a plain indicator
    at the attendant's desk, both on one gateway whose attendant page is on port 8080 + n.
    Each child started is added to ``children`` at once (to be stopped whatever happens next);
    returns the URL of the attendant page."""
    logs = demo_dir / "logs"
    kiosk_link = demo_dir / f"kiosk-{bank}.tty"
    desk_link = demo_dir / f"scale-{bank}.tty"
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
                str(kiosk_link),
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
    children.append(
        await _spawn(
            f"scale-{bank}",
            ["sim", "scale", "--link", str(desk_link), "--model", "a12e_chk"]
            + ["--interval", "20"],
            {},
            logs,
        )
    )
    http_port = 8080 + n
    site = demo_dir / f"site-gw-{n:02d}.toml"
    devices.write_secret(
        site,
        tomli_w.dumps(
            {
                "gateway_id": f"gw-{n:02d}",
                "bank_code": bank,
                # Its own broker login, as `wastebank device add` issues it.
                "mqtt": _device_login(broker, bank, f"gw-{n:02d}"),
                "http_port": http_port,
                "api_url": base,
                "attendant": {"timezone": summary.timezone},
                "outbox": {"path": str(demo_dir / f"outbox-gw-{n:02d}.db")},
                "scales": [
                    {"id": "kiosk-01", "port": str(kiosk_link), "flow": "kiosk"},
                    {
                        "id": "meja-01",
                        "port": str(desk_link),
                        "flow": "attendant",
                        "protocol": "a12e_chk",
                    },
                ],
            }
        ),
    )
    devices.reload_mosquitto(broker.run_dir)
    children.append(await _spawn(f"gateway-{bank}", ["gateway", "--config", str(site)], {}, logs))
    return f"http://127.0.0.1:{http_port}/petugas"


async def _start_sms(
    broker: services.ServicesSettings, common: dict[str, str], logs: Path, children: list[Child]
) -> Path | None:
    """With SMS among the services: `wastebank sms run` on the dummy SMSD that `services.up`
    started; the folder its sent texts land in. None without SMS."""
    if not broker.gammu_smsd:
        return None
    from wastebank.services.gammu_smsd import smsd_dir

    root = smsd_dir(broker)
    env = {**common, "WASTEBANK_SMS__SMSDRC": str(root / "smsdrc")}
    children.append(await _spawn("sms", ["sms", "run"], env, logs))
    return root / "sent"


async def _until_one_exits(children: list[Child], logs: Path) -> None:
    """Wait until any child exits (the demo is then stopped) and say which, with its log."""
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
