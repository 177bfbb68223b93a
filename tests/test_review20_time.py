"""Review 20b, time: every timestamp on the wire within 2000-01-01..2100-12-31 (findings 1, 2,
7), deposits stamped ahead of the ledger told apart (finding 1), a status not dropped for its
clock (finding 5), the fleet's words, its ?tampil and its exit statuses (findings 8, 9)."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from ingest.consumer import Ingester
from tests.auth_helpers import ApiEnv
from tests.conftest import deposit_event
from tests.test_fleet import health, scale, status
from tests.test_fleet import ingester as ingester  # the fixture: the ingester's handle()
from tests.test_fleet_review import _api
from tests.test_reports import FakeEstimator
from wastebank import fleet, formats, ledger, reports, wire_schema
from wastebank.broker_events import Refusal
from wastebank.cli import app as cli
from wastebank.fleet.words import offset
from wastebank.messages import TIME_MAX, TIME_MIN, Topics
from wastebank.structs import Invalid, decode_json, encode_json, replace, to_builtins

RANGE = "2000-01-01T00:00:00Z..2100-12-31T00:00:00Z"
REVIEWERS = ("9999-12-31T10:00:00+09:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00")
US = timedelta(microseconds=1)
WIT = ZoneInfo("Asia/Jayapura")

# ---- 1. one bound for every timestamp on the wire ----------------------------------------------

_AT = "2026-12-07T10:00:00+09:00"
SAMPLES: dict[type[Any], dict[str, Any]] = {
    **{
        model: sample
        for model, sample in (
            (wire_schema.MESSAGES["deposit"], to_builtins(deposit_event(1))),
            (
                wire_schema.MESSAGES["fill"],
                {
                    "reading_id": "us-01-1",
                    "sensor_id": "us-01",
                    "seq": 1,
                    "tps_code": "tps-1",
                    "measured_at": _AT,
                    "distance_mm": 800,
                    "fillingLevel": 0.5,
                },
            ),
            (wire_schema.MESSAGES["status"], {"state": "online", "device_id": "gw-01", "at": _AT}),
            (
                wire_schema.MESSAGES["health"],
                {
                    **to_builtins(health("gw-01", "bs-a")),
                    "scales": [scale(state_since=_AT)],
                    "sensors": [
                        {
                            "sensor_id": "us-01",
                            "tps_code": "tps-1",
                            "kind": "maxbotix",
                            "connected": True,
                            "samples_accepted": 1,
                            "samples_rejected": 0,
                            "readings": 1,
                            "no_target_since": _AT,
                        }
                    ],
                    "clock": {"synchronized": True, "source": "chrony", "synced_at": _AT},
                    "alerts_active": [{"code": "zero_drift", "subject": "scale-01", "since": _AT}],
                },
            ),
            (
                wire_schema.MESSAGES["alert"],
                {
                    "alert_id": "gw-01-1",
                    "gateway_id": "gw-01",
                    "seq": 1,
                    "bank_code": "bs-a",
                    "code": "zero_drift",
                    "state": "raised",
                    "subject": "scale-01",
                    "at": _AT,
                    "message": "nol bergeser",
                },
            ),
            (
                wire_schema.MESSAGES["tps_alert"],
                {
                    "alert_id": 1,
                    "tps_code": "tps-1",
                    "sensor_id": "us-01",
                    "code": "fill_high",
                    "state": "cleared",
                    "raised_at": _AT,
                    "cleared_at": _AT,
                    "at": _AT,
                    "message": "TPS hampir penuh",
                },
            ),
            (
                Refusal,
                {
                    "reason": "foreign_client_id",
                    "username": "gw-02",
                    "client_id": "gw-01",
                    "owner": "gw-01",
                    "address": None,
                    "at": _AT,
                    "count": 1,
                    "unreported": 0,
                    "truncated": False,
                },
            ),
        )
    }
}
"""A valid payload of every message on the wire (the broker's events too), every timestamp
field set (nested ones in their list's first item)."""


def _time_paths(t: msgspec.inspect.Type, path: tuple[str | int, ...] = ()) -> Iterator[Any]:
    """Where ``t`` holds a datetime, as paths of field names and list indexes."""
    mi = msgspec.inspect
    if isinstance(t, mi.DateTimeType):
        yield path
    elif isinstance(t, mi.Metadata):
        yield from _time_paths(t.type, path)
    elif isinstance(t, mi.UnionType):
        for member in t.types:
            yield from _time_paths(member, path)
    elif isinstance(t, mi.ListType):
        yield from _time_paths(t.item_type, (*path, 0))
    elif isinstance(t, mi.StructType):
        for f in t.fields:
            yield from _time_paths(f.type, (*path, f.encode_name))


CASES = [
    (model, path) for model in SAMPLES for path in _time_paths(msgspec.inspect.type_info(model))
]


def _with(sample: dict[str, Any], path: tuple[str | int, ...], value: str) -> bytes:
    data = copy.deepcopy(sample)
    where: Any = data
    for step in path[:-1]:
        where = where[step]
    where[path[-1]] = value
    return json.dumps(data).encode()


def test_every_message_with_a_time_is_sampled() -> None:
    assert set(SAMPLES) == {*wire_schema.MESSAGES.values(), Refusal}
    assert len(CASES) == 13  # a new timestamp field gets a case here, bounded by check_times


@pytest.mark.parametrize(("model", "path"), CASES, ids=lambda c: getattr(c, "__name__", str(c)))
def test_every_timestamp_on_the_wire_is_bounded(
    model: type[Any], path: tuple[str | int, ...]
) -> None:
    sample = SAMPLES[model]
    decode_json(json.dumps(sample), model)  # the sample is valid
    edges = (TIME_MIN.isoformat(), TIME_MAX.isoformat(), "2100-12-31T09:00:00+09:00")
    for inside in edges:
        decode_json(_with(sample, path, inside), model)
    outside = ((TIME_MIN - US).isoformat(), (TIME_MAX + US).isoformat(), *REVIEWERS)
    for far in outside:
        with pytest.raises(Invalid) as caught:
            decode_json(_with(sample, path, far), model)
        text = str(caught.value)
        assert f"{path[-1]}: " in text, text
        assert RANGE in text, text
        assert caught.value.problems[0][0] == path[:-1], text  # located at its Struct


def test_the_wire_schema_states_the_range() -> None:
    for name in wire_schema.MESSAGES:
        described = wire_schema.json_schema(name)["description"]
        assert "from 2000-01-01T00:00:00Z to 2100-12-31T00:00:00Z (both included)" in described


def _payload(sample: dict[str, Any], **changes: Any) -> bytes:
    return json.dumps({**sample, **changes}).encode()


async def test_a_deposit_or_report_out_of_range_is_a_dead_letter_and_nothing_else(
    ingester: Ingester, ledger_url: str
) -> None:
    """Finding 1: the 9999 deposit was credited Rp5.000 and then dead-lettered by InfluxDB;
    finding 7: a health report of year 9999 was both in the fleet and a dead letter."""
    topics = Topics("")
    deposit = _payload(to_builtins(deposit_event(1)), measured_at=REVIEWERS[0])
    assert await ingester.handle(topics.deposit("bs-batu-merah", "gw-01"), deposit) == []
    h = to_builtins(health("gw-01", "bs-batu-merah"))
    h_topic = topics.gateway_health("bs-batu-merah", "gw-01")
    assert await ingester.handle(h_topic, _payload(h, at="9999-12-31T10:00:00+09:00")) == []
    since = SAMPLES[wire_schema.MESSAGES["health"]]["scales"]
    scales = [{**since[0], "state_since": REVIEWERS[1]}]
    assert await ingester.handle(h_topic, _payload(h, scales=scales)) == []
    assert ingester.stats.dead_lettered == 3
    assert ingester.stats.deposits_applied == 0
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            assert s.scalars(select(ledger.Deposit)).all() == []
            assert s.scalars(select(fleet.DeviceReport)).all() == []
            errors = [d.error for d in ledger.dead_letters(s)]
    finally:
        engine.dispose()
    assert len(errors) == 3
    assert all(RANGE in e for e in errors), errors
    assert "measured_at: 9999-12-31T10:00:00+09:00" in errors[0]
    assert "scales.0: state_since: 0001-01-01T00:00:00+14:00" in errors[2]


# ---- 1b. the fleet renders any time it has stored ------------------------------------------------


def test_a_time_beyond_the_zones_renders_in_its_own_offset() -> None:
    far = [datetime.fromisoformat(t) for t in REVIEWERS[1:]]
    assert formats.tanggal_waktu(far[0], WIT) == "1 Jan 1 00.00 UTC+14:00"
    assert formats.tanggal_waktu(far[1], WIT, "en") == "31 Dec 9999 23.59 UTC-12:00"
    assert formats.tanggal_waktu(datetime(2026, 12, 7, 1, tzinfo=UTC), WIT) == (
        "7 Des 2026 10.00 WIT"
    )


@pytest.fixture
def api(ledger_url: str, tmp_path: Path) -> Iterator[ApiEnv]:
    with _api(ledger_url, tmp_path / "run") as env:
        yield env


def test_a_report_stored_before_the_bound_renders_everywhere(api: ApiEnv, ledger_url: str) -> None:
    """Finding 2: one gateway's retained health with a year-1 time made /armada 500 and
    `wastebank fleet` a traceback, for the whole city."""
    h = to_builtins(health("gw-x", "bs-batu-merah"))
    h["scales"] = [{**SAMPLES[wire_schema.MESSAGES["health"]]["scales"][0]}]
    h["scales"][0]["state_since"] = REVIEWERS[1]
    h["alerts_active"] = [{"code": "zero_drift", "subject": "scale-01", "since": REVIEWERS[2]}]
    with Session(api.engine) as session, session.begin():
        session.add(
            fleet.DeviceReport(
                device_type="gateway",
                site="bs-batu-merah",
                device_id="gw-x",
                health=json.dumps(h),
                health_received_at=datetime.now(UTC),
            )
        )
    for who in ("admin", "dlh"):
        page = api.client.get("/armada", headers=api.cookie(who))
        assert page.status_code == 200, page.text
        assert "laporan tersimpan tak terbaca" in unescape(page.text)
    assert api.client.get("/api/fleet", headers=api.bearer("admin")).status_code == 200
    env = {"WASTEBANK_INFLUX__URL": "http://127.0.0.1:9"}
    shown = CliRunner().invoke(cli, ["fleet", "--ledger-url", ledger_url], env=env)
    assert shown.exit_code == 1, shown.output  # not ok: a traceback would be another status
    assert shown.exception is None or isinstance(shown.exception, SystemExit)
    assert "GANGGUAN" in shown.stdout
    assert "gw-x" in shown.stdout


# ---- 2. deposits stamped ahead of the ledger -----------------------------------------------------


def test_deposits_stamped_ahead_are_kept_and_counted(ledger_url: str) -> None:
    ahead_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    ahead = replace(deposit_event(1, at=ahead_at), clock_synced=True)
    near = deposit_event(2, at=datetime.now(UTC) + timedelta(seconds=30))  # within tolerance
    engine = ledger.make_engine(ledger_url)
    try:
        with ledger.Session(engine) as session:
            ledger.apply_deposits(session, [ahead, near])
            session.commit()
            assert ledger.clock_ahead_deposits(session) == {"gw-01": 1}
            stored = session.scalar(
                select(ledger.Deposit.measured_at).where(ledger.Deposit.event_id == "gw-01-1")
            )
            assert stored == ahead_at  # kept as stamped
            month = ahead_at.astimezone(WIT).strftime("%Y-%m")
            report = reports.monthly_report(
                session, reports.load_scope(session), month, estimator=FakeEstimator()
            )
    finally:
        engine.dispose()
    assert report.clock_ahead_deposits == 1
    assert report.unsynced_clock_deposits == 0
    line = (
        "1 setoran dicap waktu di depan saat diterima / 1 deposit stamped ahead of when the "
        "ledger received them"
    )
    assert ("Jam gateway / Gateway clock", line) in reports.wording.notes(report)
    result = CliRunner().invoke(cli, ["ledger", "verify", "--ledger-url", ledger_url])
    assert result.exit_code == 0, result.output
    assert f"{line} (gw-01 1): docs/operations.md, Clock honesty" in result.output


def test_the_clock_notes_say_one_deposit_in_the_singular() -> None:
    assert "/ 1 deposit stamped before" in ledger.clock_note(1)
    assert "/ 2 deposits stamped before" in ledger.clock_note(2)
    assert "/ 1.234 deposits stamped ahead" in ledger.clock_note(1234, ahead=True)


# ---- 3. a status is never dropped for its clock -------------------------------------------------


async def test_a_clean_offline_stamped_earlier_wins_and_a_late_copy_is_counted(
    ingester: Ingester, ledger_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 5's sequence: one boot, `online` stamped 2027-01-01 (clock ahead), then a clean
    `offline` stamped 2026-12-07 (NTP stepped the clock back): the fleet said online."""
    topic = Topics("").gateway_status("bs-a", "gw-a")
    online = status("gw-a", "online", datetime(2027, 1, 1, tzinfo=UTC))
    offline = status("gw-a", "offline", datetime(2026, 12, 7, 10, tzinfo=UTC))
    await ingester.handle(topic, online.encode())
    await ingester.handle(topic, offline.encode())
    assert _status(ledger_url) == offline
    # a copy of the same state stamped earlier still (a QoS 1 redelivery): kept out, said so
    with caplog.at_level(logging.WARNING, logger="wastebank.fleet"):
        late = status("gw-a", "offline", datetime(2026, 12, 7, 9, tzinfo=UTC))
        await ingester.handle(topic, late.encode())
        h_topic = Topics("").gateway_health("bs-a", "gw-a")
        await ingester.handle(h_topic, encode_json(health("gw-a", "bs-a", uptime_s=100)))
        await ingester.handle(h_topic, encode_json(health("gw-a", "bs-a", uptime_s=50)))
    assert _status(ledger_url) == offline
    assert ingester.stats.reports_late == 2
    said = [r.getMessage() for r in caplog.records if "late report kept out" in r.getMessage()]
    assert len(said) == 2
    assert "gateway bs-a/gw-a status" in said[0]
    assert "gateway bs-a/gw-a health" in said[1]


def _status(ledger_url: str) -> str | None:
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            return s.scalar(select(fleet.DeviceReport.status))
    finally:
        engine.dispose()


# ---- 4. the fleet's words, ?tampil and exit statuses --------------------------------------------


def test_any_clock_offset_reads_sensibly_in_both_languages() -> None:
    assert offset(-(10**12), "id") == "mundur lebih dari 1 tahun"
    assert offset(-(10**12), "en") == "over a year behind"
    assert offset(10**12, "id") == "maju lebih dari 1 tahun"
    assert offset(10**12, "en") == "over a year ahead"
    assert offset(-4321, "en") == "-4 s 321 ms"  # as before below a year
    assert offset(-365 * 86400 * 1000, "id") == "-365 hari"


def test_tampil_given_twice_is_refused_whatever_the_order(api: ApiEnv) -> None:
    for first, second in (("zzz", "masalah"), ("masalah", "zzz"), ("masalah", "masalah")):
        resp = api.client.get(f"/armada?tampil={first}&tampil={second}", headers=api.cookie("dlh"))
        assert resp.status_code == 422, (first, second)
        assert "Pilihan tampil diberikan 2 kali" in unescape(resp.text)
    english = api.client.get("/armada?tampil=semua&tampil=semua&lang=en", headers=api.cookie("dlh"))
    assert "Show option given 2 times" in unescape(english.text)


def test_the_fleet_commands_help_names_every_rank_and_exit_status() -> None:
    shown = CliRunner().invoke(cli, ["fleet", "--help"])
    text = " ".join(shown.output.split())
    assert "(offline, fault, clock not synchronized, unknown, ok)" in text
    assert "2 a bad option or setting" in text
    assert "3 the ledger has no bank and no TPS" in text


def test_a_bad_fleet_setting_exits_2(tmp_path: Path) -> None:
    env = {"WASTEBANK_FLEET__SENSOR_OFFLINE_AFTER_S": "zz"}
    shown = CliRunner().invoke(cli, ["fleet"], env=env)
    assert shown.exit_code == 2, shown.output
    assert "fleet.sensor_offline_after_s" in shown.output
