"""The fleet after the second independent review of issue 16 (docs/fleet.md): a health report
listing one sensor twice is refused, `wastebank fleet` beside the demo reads the demo's data (and
says so when it reads a ledger with no bank and no TPS), the scale states in the gateway's own
words, a clock offset an English reader does not misread, and every JSON field documented."""

from __future__ import annotations

import asyncio
import re
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api.settings import ApiSettings
from gateway.scale_state import STATE_TEXT
from ingest.consumer import Ingester
from tests.conftest import LedgerFactory
from tests.gateway_helpers import gateway_settings
from tests.test_fleet import NOW, SETTINGS, SYNCED, _maxbotix, health, scale, stored
from tests.test_fleet import ingester as ingester  # the fixture: the ingester's handle()
from wastebank import demo, devices, fleet, ledger, services
from wastebank.cli import app as cli
from wastebank.config import load_settings
from wastebank.fleet.view import Inputs, Site
from wastebank.formats import Lang
from wastebank.messages import GatewayHealth, ScaleState, Topics
from wastebank.structs import Invalid, decode_json, encode_json

ROOT = Path(__file__).resolve().parent.parent
NO_INFLUX = {"WASTEBANK_INFLUX__URL": "http://127.0.0.1:9"}  # unreachable: readings unknown
BANKS = {"bs-a": Site("bs-a", "Bank A", "Asia/Jayapura")}


# ---- 5. one sensor listed twice -----------------------------------------------------------------


async def test_a_health_report_listing_one_sensor_twice_is_a_dead_letter_naming_it(
    ingester: Ingester, ledger_url: str
) -> None:
    us02 = {**_maxbotix("us-02", 0, None), "tps_code": "tps-benteng"}
    elsewhere = {**us02, "tps_code": "tps-batu-merah"}  # one id at two TPS: two sensors
    payload: dict[str, Any] = decode_json(encode_json(health("gw-a", "bs-rijali")), dict)
    both_ways = [
        [us02, {**us02, "connected": False}, elsewhere],
        [{**us02, "connected": False}, elsewhere, us02],  # the reviewer's order swapped
    ]
    for sensors in both_ways:
        twice = encode_json({**payload, "sensors": sensors})
        with pytest.raises(Invalid, match="listed twice: tps-benteng/us-02$"):
            decode_json(twice, GatewayHealth)
        topic = Topics("").gateway_health("bs-rijali", "gw-a")
        assert await ingester.handle(topic, twice) == []
    assert ingester.stats.dead_lettered == 2
    once = encode_json({**payload, "sensors": [us02, elsewhere]})
    assert len(decode_json(once, GatewayHealth).sensors) == 2
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            assert s.scalars(select(fleet.DeviceReport)).all() == []
            letters = s.scalars(select(ledger.DeadLetter)).all()
            said = "sensors: each (tps_code, sensor_id) once; listed twice: tps-benteng/us-02"
            assert [said in letter.error for letter in letters] == [True, True]
    finally:
        engine.dispose()


def test_a_gateways_site_file_refuses_one_sensor_id_twice_even_at_two_tps(tmp_path: Path) -> None:
    """So the gateway, one health entry per configured sensor, never sends one twice."""

    def sensor(tps: str, port: str) -> dict[str, Any]:
        return {
            "id": "us-02",
            "tps_code": tps,
            "kind": "maxbotix",
            "port": tmp_path / port,
            "empty_distance_mm": 2000,
            "full_distance_mm": 300,
        }

    one = gateway_settings(tmp_path, sensors=[sensor("tps-benteng", "tty-us")])
    assert [s.id for s in one.sensors] == ["us-02"]
    with pytest.raises(Exception, match="unique"):
        gateway_settings(
            tmp_path, sensors=[sensor("tps-benteng", "tty-a"), sensor("tps-batu-merah", "tty-b")]
        )


# ---- 7. the CLI beside the demo -----------------------------------------------------------------


def test_the_demo_prints_how_to_run_wastebank_fleet_on_its_own_data(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = load_settings(services.ServicesSettings, run_dir=tmp_path / "run")
    line = demo.fleet_command(demo.api_env(demo.demo_env(ledger_url), broker))
    *assignments, command, verb = shlex.split(line)
    assert (Path(command).name, verb) == ("wastebank", "fleet")
    assert Path(command).is_file()  # this environment's, whatever the shell's PATH
    env = dict(a.split("=", 1) for a in assignments)
    assert set(env) == {
        "WASTEBANK_RUN_DIR",  # the services' ports and the API's InfluxDB password, from anywhere
        "WASTEBANK_LEDGER_URL",
        "WASTEBANK_PAGES__BROKER_RUN_DIR",
    }
    assert env["WASTEBANK_RUN_DIR"] == str(broker.run_dir.resolve())
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(ApiSettings)
    assert settings.ledger_url == ledger_url
    assert settings.pages.broker_run_dir == broker.run_dir
    logins = {
        key: demo.Login(key, "secret") for key in ("citizen", "dlh", "admin")
    }  # the banner's own logins are another test's (tests/test_demo.py)
    banner = demo._banner("http://127.0.0.1:8000", logins, [], tmp_path, fleet_cli=line)
    assert f"\n                           {line}\n" in banner
    assert "http://127.0.0.1:8000/armada" in banner


async def test_wastebank_fleet_with_the_demos_line_reads_its_ledger_and_registry(
    ingester: Ingester, ledger_url: str, tmp_path: Path
) -> None:
    broker = load_settings(services.ServicesSettings, run_dir=tmp_path / "run")
    registry = devices.Registry(devices.broker_auth_files(broker.run_dir))
    registry.add(devices.Device("gateway", "bs-rijali", "gw-a"))
    now = datetime.now(UTC)
    report = health("gw-a", "bs-rijali", at=now, clock=SYNCED, scales=[scale()])
    await ingester.handle(Topics("").gateway_health("bs-rijali", "gw-a"), encode_json(report))
    line = demo.fleet_command(demo.api_env(demo.demo_env(ledger_url), broker))
    env = dict(a.split("=", 1) for a in shlex.split(line)[:-2])
    shown = await asyncio.to_thread(CliRunner().invoke, cli, ["fleet"], env={**env, **NO_INFLUX})
    assert shown.exit_code == 0, shown.output
    assert "Gateway gw-a\tbs-rijali (Bank Sampah Unit Rijali)" in shown.stdout
    assert fleet.say("serving_unchecked", "id") not in shown.stdout  # the registry was read


async def test_wastebank_fleet_on_a_ledger_without_banks_or_tps_says_so_and_exits_3(
    ledger_factory: LedgerFactory, ledger_url: str
) -> None:
    empty = ledger_factory.new(seeded=False)
    try:
        for extra in ([], ["--json"], ["--en"]):
            args = ["fleet", "--ledger-url", empty, *extra]
            shown = await asyncio.to_thread(CliRunner().invoke, cli, args, env=NO_INFLUX)
            assert shown.exit_code == 3, shown.output
            lang: Lang = "en" if "--en" in extra else "id"
            assert fleet.say("no_sites", lang) in shown.stderr
            assert fleet.say("no_sites", lang) not in shown.stdout  # JSON stays JSON
        # the city's ledger with nothing heard yet: nothing is wrong
        args = ["fleet", "--ledger-url", ledger_url]
        shown = await asyncio.to_thread(CliRunner().invoke, cli, args, env=NO_INFLUX)
        assert shown.exit_code == 0, shown.output
        assert fleet.say("no_sites", "id") not in shown.output
    finally:
        ledger_factory.drop(empty)


# ---- 9. the words -------------------------------------------------------------------------------


def test_the_fleet_names_each_scale_state_as_the_gateway_and_its_page_do() -> None:
    """gateway/ may not be imported by wastebank/ (pyproject's import contracts): the fleet
    holds the same words, lower case, and this test holds them equal."""
    states = set(get_args(ScaleState))
    assert set(fleet.words.SCALE_STATE_TEXTS) == set(STATE_TEXT) == states
    for state in STATE_TEXT:
        id_, en = fleet.words.SCALE_STATE_TEXTS[state]
        assert f"{id_} / {en}".lower() == STATE_TEXT[state].lower(), state
        assert fleet.say(state, "id") == id_
    operations = (ROOT / "docs" / "operations.md").read_text()
    for state in states - {"ok", "unsettled", "disconnected"}:  # the page's own words for these
        assert f"| `{state}` | {STATE_TEXT[state]} |" in operations, state


def _gateway(offset_ms: int, *scales: dict[str, Any]) -> fleet.FleetDevice:
    clock = {**SYNCED, "source": "chrony", "offset_ms": offset_ms}
    h = health("gw-a", "bs-a", at=NOW, clock=clock, scales=list(scales))
    (d,) = fleet.build(Inputs([stored("gw-a", "bs-a", h, NOW)], BANKS, {}), NOW, SETTINGS).devices
    return d


def test_a_scale_state_and_problem_read_as_on_the_attendant_page() -> None:
    since = NOW - timedelta(minutes=3)
    d = _gateway(
        3,
        scale("overload", state_since=since),
        scale("ok", scale_id="scale-02"),
        scale("indicator_error", scale_id="scale-03"),
    )
    said = fleet.describe(d, NOW, "id")
    assert [(sc, text.split(" (")[0]) for sc, text, _ in said.scales] == [
        ("scale-01", "kelebihan beban"),
        ("scale-02", "stabil"),
        ("scale-03", "indikator galat"),
    ]
    assert said.problems[0].startswith("kelebihan beban: scale-01 (sejak")
    assert [text for _, text, _ in fleet.describe(d, NOW, "en").scales][1] == "stable"


@pytest.mark.parametrize(
    ("offset_ms", "id_", "en"),
    [
        (-4321, "-4 dtk 321 ms", "-4 s 321 ms"),  # the reviewer's: read "-4.321 ms" as ~4 ms
        (4000, "4 dtk", "4 s"),
        (-999, "-999 ms", "-999 ms"),
        (0, "0 ms", "0 ms"),
        (125_400, "2 mnt 5 dtk", "2 min 5 s"),
    ],
)
def test_a_clock_offset_has_no_separator_to_misread(offset_ms: int, id_: str, en: str) -> None:
    assert fleet.words.offset(offset_ms, "id") == id_
    assert fleet.words.offset(offset_ms, "en") == en
    d = _gateway(offset_ms)
    assert fleet.describe(d, NOW, "id").clock == f"tersinkron (chrony), selisih {id_}"
    assert fleet.describe(d, NOW, "en").clock == f"synchronized (chrony), offset {en}"


# ---- 10. every field documented -----------------------------------------------------------------


def _documented_fields() -> set[str]:
    """The JSON names docs/fleet.md's "Each field" table gives (``clock.source`` -> clock)."""
    text = (ROOT / "docs" / "fleet.md").read_text()
    table = text.split("## Each field", 1)[1].split("\n\n", 2)[1]
    names: set[str] = set()
    for row in table.splitlines()[2:]:
        json_column = row.split("|")[2]
        names |= {re.split(r"[.\[]", n)[0] for n in re.findall(r"`([a-z_.\[\]]+)`", json_column)}
    return names


def test_every_field_of_a_device_is_in_the_docs_and_always_in_the_json() -> None:
    assert set(fleet.FleetDevice.model_fields) <= _documented_fields()
    dumped = _gateway(3).model_dump(mode="json")
    assert set(dumped) == set(fleet.FleetDevice.model_fields)  # none left out when null
    assert dumped["offline_reason"] is None
    assert dumped["unknown_reason"] is None
    assert dumped["device_id"] == "gw-a"
