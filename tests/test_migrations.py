"""The ledger's schema migrations, on SQLite and PostgreSQL: the models and the migrations agree, a
ledger from before migrations is adopted, concurrent starts migrate once, readers only check."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, inspect, select, text, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.conftest import LedgerFactory, deposit_event, undo_0009
from tests.ledger_helpers import add_dead_letter, apply_deposit, journal_is_balanced
from wastebank import alerts, ledger, migrations, tables
from wastebank.cli import app

DATA = Path(__file__).parent / "data"
# The schema release 0.1 made with create_all (no alembic_version): its first commit, before
# deposit.flow / calibration_version and the dead-letter replay columns, and its last.
BEFORE_MIGRATIONS = ["9916b88", "9422384"]


@pytest.fixture
def empty_url(ledger_factory: LedgerFactory, ledger_backend: str, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it."""
    if ledger_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    url = ledger_factory.new(seeded=False)
    engine = ledger.plain_engine(url)
    with engine.begin() as conn:
        for table in ("alembic_version", *reversed(tables.metadata().sorted_tables)):
            conn.execute(text(f"DROP TABLE IF EXISTS {getattr(table, 'name', table)} CASCADE"))
    engine.dispose()
    yield url
    ledger_factory.drop(url)


def test_the_models_and_the_migrations_agree(empty_url: str) -> None:
    engine = ledger.make_engine(empty_url)
    try:
        assert migrations.current(engine) == migrations.head()
        assert migrations.differences(engine, tables.metadata()) == []
        assert migrations.upgrade(engine) is False  # at the head: nothing runs
    finally:
        engine.dispose()


def test_one_head_and_a_linear_history() -> None:
    script = migrations._script()
    revisions = list(reversed(list(script.walk_revisions())))
    assert script.get_heads() == [migrations.head()]
    # revisions() reads the file names, so that a current ledger is recognised without alembic
    assert tuple(r.revision for r in revisions) == migrations.revisions()
    assert migrations.revisions() == tuple(f"{n:04d}" for n in range(1, len(revisions) + 1))
    for rev, down in zip(revisions, [None, *migrations.revisions()], strict=False):
        assert Path(rev.path).name.startswith(f"r{rev.revision}_"), rev.path
        assert rev.down_revision == down, rev.path


@pytest.mark.parametrize("commit", BEFORE_MIGRATIONS)
def test_a_ledger_from_before_migrations_is_adopted(
    empty_url: str, ledger_backend: str, commit: str
) -> None:
    sqlite = ledger_backend == "sqlite"
    ddl = (DATA / f"ledger-{commit}.{ledger_backend}.sql").read_text()
    old = ledger.plain_engine(empty_url)
    with old.begin() as conn:
        code = "\n".join(line for line in ddl.splitlines() if not line.startswith("--"))
        for statement in code.split(";\n"):
            if statement.strip():
                conn.exec_driver_sql(statement)
        ts = "2026-11-01 01:00:00.000000" if sqlite else "2026-11-01 01:00:00+00"
        rows = {
            "city (id, code, name, timezone)": "(1, 'ambon', 'Kota Ambon', 'Asia/Jayapura')",
            "bank (id, code, name, city_id, kecamatan, kelurahan)": (
                "(1, 'bs-batu-merah', 'Bank Sampah Batu Merah', 1, 'Sirimau', 'Batu Merah')"
            ),
            "member (id, member_no, name, bank_id)": "(1, 'AMB-0001', 'Ibu Ana', 1)",
            "card (uid, member_id)": "('04A1B2C3D4', 1)",
            "category (id, code, name_id, name_en, unit)": (
                "(1, 'pet', 'Botol PET', 'PET bottles', 'kg')"
            ),
            "price (id, bank_id, category_id, price_per_kg_idr, effective_from)": (
                f"(1, 1, 1, 4000, '{ts}')"
            ),
            "deposit (id, event_id, member_id, bank_id, category_id, net_g, tare_g, "
            "price_per_kg_idr, amount_idr, measured_at, recorded_at, gateway_id, scale_id, "
            "protocol, stable, raw_frames)": (
                f"(1, 'gw-01-1', 1, 1, 1, 1250, 0, 4000, 5000, '{ts}', '{ts}', 'gw-01', "
                "'scale-01', 'gs_nt', true, '[]')"
            ),
            "journal_entry (id, txn_ref, account, amount_idr, created_at, memo)": (
                f"(1, 'deposit:gw-01-1', 'member:AMB-0001', 5000, '{ts}', 'pet'), "
                f"(2, 'deposit:gw-01-1', 'bank:bs-batu-merah:waste_purchases', -5000, '{ts}', "
                "'pet')"
            ),
        }
        for into, values in rows.items():
            conn.exec_driver_sql(f"INSERT INTO {into} VALUES {values}")  # noqa: S608
        conn.execute(
            text(
                "INSERT INTO dead_letter (id, topic, payload, error, received_at) "
                "VALUES (1, 't', :p, 'old', :ts)"
            ),
            {"p": b"\x00\xff", "ts": ts},
        )
        if not sqlite:  # ids were given: move the sequences on, as create_all's rows would have
            for table in ("city", "bank", "member", "category", "price", "deposit"):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 1)")
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('journal_entry', 'id'), 2)")
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('dead_letter', 'id'), 1)")
    old.dispose()

    engine = ledger.make_engine(empty_url)
    try:
        assert migrations.current(engine) == migrations.head()
        assert migrations.differences(engine, tables.metadata()) == []
        with Session(engine) as s:
            assert ledger.member_balance(s, "AMB-0001") == 5000
            (letter,) = ledger.dead_letters(s)
            assert (letter.payload, letter.replay_attempts, letter.replayed_at) == (
                b"\x00\xff",
                0,
                None,
            )
            assert letter.received_at == datetime(2026, 11, 1, 1, tzinfo=UTC)
            applied = apply_deposit(s, deposit_event(2, net_g=2000))
            assert (applied.outcome, applied.amount_idr) == (ledger.Outcome.APPLIED, 8000)
            assert ledger.member_balance(s, "AMB-0001") == 13000
            assert s.scalar(select(func.count()).select_from(ledger.Deposit)) == 2
            assert journal_is_balanced(s)
    finally:
        engine.dispose()


_RACER = """
import sys
from zoneinfo import ZoneInfo
from wastebank import ledger
url = sys.argv[1]
print("ready", flush=True)  # imports done: only the migration is left
sys.stdin.readline()  # the start line: every racer is released at once
ledger.make_engine(url).dispose()
"""


def test_processes_starting_at_once_migrate_once(empty_url: str) -> None:
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, empty_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for p in racers:  # blocks until each has imported everything (or died: "")
            assert p.stdout is not None
            assert p.stdout.readline() == "ready\n", p.communicate()
        for p in racers:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outcomes = [(p.wait(timeout=60), p.communicate()[1]) for p in racers]
    finally:
        for p in racers:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    engine = ledger.make_engine(empty_url, writer=False)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        assert migrations.differences(engine, tables.metadata()) == []
    finally:
        engine.dispose()


def test_a_new_ledger_waits_for_another_writer_before_it_turns_to_wal(tmp_path: Path) -> None:
    """SQLite switches a file to WAL under an exclusive lock it does not wait for when another
    connection holds the write lock of a still empty file: a process opening a new ledger while
    another had begun its first (IMMEDIATE) transaction failed at once with "database is
    locked" (seen in CI with three processes starting together). It now waits for the writer."""
    path = tmp_path / "new.db"
    path.touch()  # as make_engine leaves a new ledger: an empty file, 0600
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    finishing = threading.Timer(0.3, other.commit)
    finishing.start()
    try:
        engine = ledger.make_engine(f"sqlite:///{path}", migrate=False)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        engine.dispose()
    finally:
        finishing.join()
        other.close()


def test_a_reader_refuses_a_ledger_its_release_does_not_match(empty_url: str) -> None:
    with pytest.raises(migrations.LedgerSchemaError, match="ledger migrate"):
        ledger.make_engine(empty_url, writer=False)  # nothing there yet
    engine = ledger.make_engine(empty_url, migrate=False)
    migrations.upgrade(engine, "0001")
    with pytest.raises(migrations.LedgerSchemaError, match="at 0001"):
        ledger.make_engine(empty_url, writer=False)
    assert migrations.upgrade(engine) is True
    ledger.make_engine(empty_url, writer=False).dispose()  # at the head: fine

    with engine.begin() as conn:  # as a newer release would leave it
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    for writer in (False, True):
        with pytest.raises(migrations.LedgerSchemaError, match="newer than this release"):
            ledger.make_engine(empty_url, writer=writer)
    engine.dispose()


def test_foreign_keys_are_checked_again_after_a_migration_on_sqlite(tmp_path: Path) -> None:
    engine = ledger.make_engine(f"sqlite:///{tmp_path / 'fk.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_cli_current_and_migrate(empty_url: str) -> None:
    runner = CliRunner()
    base = ["--ledger-url", empty_url]
    before = runner.invoke(app, ["ledger", "current", *base])
    assert before.exit_code == 1
    assert "(kosong / none)" in before.output
    first = runner.invoke(app, ["ledger", "migrate", "--revision", "0001", *base])
    assert first.exit_code == 0, first.output
    assert "-> 0001" in first.output
    rest = runner.invoke(app, ["ledger", "migrate", *base])
    assert f"0001 -> {migrations.head()}" in rest.output
    again = runner.invoke(app, ["ledger", "migrate", *base])
    assert f"already at revision {migrations.head()}" in again.output
    after = runner.invoke(app, ["ledger", "current", *base])
    assert after.exit_code == 0, after.output
    assert "up to date" in after.output


def test_a_deposit_stamp_survives_the_round_trip_on_both(ledger_url: str) -> None:
    """Timestamps go in with any zone and come back in UTC, to the microsecond."""
    engine = ledger.make_engine(ledger_url)
    at = datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=UTC)
    try:
        with Session(engine) as s:
            apply_deposit(s, deposit_event(1, at=at))
            s.execute(update(ledger.Deposit).values(net_g=2**40))  # BIGINT, past 32 bits
            s.commit()
            deposit = s.scalars(select(ledger.Deposit)).one()
            assert deposit.measured_at == at
            assert deposit.measured_at.tzinfo is UTC
            assert deposit.net_g == 2**40
    finally:
        engine.dispose()


def test_0006_fills_the_monthly_roll_up_from_the_daily_summary(ledger_url: str) -> None:
    """A ledger at 0005 with deposits in two WIT months (one across the UTC month boundary, one
    voided, one entered by hand) gets the roll-up its daily summary implies from 0006."""
    wit = ZoneInfo("Asia/Jayapura")
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            ledger.apply_deposits(
                s,
                [
                    deposit_event(1, net_g=1000, at=datetime(2026, 10, 31, 23, 30, tzinfo=wit)),
                    deposit_event(2, net_g=2000, at=datetime(2026, 11, 1, 0, 30, tzinfo=wit)),
                    deposit_event(3, net_g=4000, at=datetime(2026, 11, 20, 9, 0, tzinfo=wit)),
                    deposit_event(4, net_g=8000, at=datetime(2026, 11, 21, 9, 0, tzinfo=wit)),
                ],
            )
            ledger.void_deposit(s, "gw-01-4", author="petugas-bm-01", reason="dobel / duplicate")
            ledger.record_manual_deposit(
                s,
                bank_code="bs-batu-merah",
                member_no="AMB-0001",
                category_code="pet",
                net_g=300,
                measured_at=datetime(2026, 11, 2, 8, 0, tzinfo=wit),
                author="petugas-bm-01",
                reason="timbangan rusak / scale down",
            )
            s.commit()
            dm = ledger.DepositMonth
            want = set(
                s.execute(
                    select(dm.month, dm.bank_id, dm.category_id, dm.manual, dm.net_g, dm.deposits)
                ).all()
            )
        undo_0009(engine)
        with engine.begin() as conn:  # back to 0005: the daily summary, no roll-up
            conn.execute(text("DROP TABLE deposit_month"))
            conn.execute(text("DROP TABLE tps_pickup"))  # 0008's
            conn.execute(text("UPDATE alembic_version SET version_num = '0005'"))
        assert migrations.upgrade(engine) is True
        with Session(engine) as s:
            got = set(
                s.execute(
                    select(dm.month, dm.bank_id, dm.category_id, dm.manual, dm.net_g, dm.deposits)
                ).all()
            )
            assert got == want
            pet = s.scalars(select(ledger.Category.id).where(ledger.Category.code == "pet")).one()
            bank = s.scalars(
                select(ledger.Bank.id).where(ledger.Bank.code == "bs-batu-merah")
            ).one()
            assert {
                (m, manual): (g, n) for m, b, c, manual, g, n in got if (b, c) == (bank, pet)
            } == {
                (date(2026, 10, 1), False): (1000, 1),
                (date(2026, 11, 1), False): (6000, 2),  # 2000 + 4000; 8000 voided
                (date(2026, 11, 1), True): (300, 1),
            }
            assert ledger.verify(s) == []
    finally:
        engine.dispose()


def test_0007_keeps_dead_letters_and_takes_topics_of_any_length(
    ledger_url: str, ledger_backend: str
) -> None:
    """At 0006 (VARCHAR(500)) PostgreSQL refuses a longer topic, which stopped the ingester;
    0007 makes the column TEXT and keeps the dead letters already there."""
    long = "wastebank/b/gateway/" + "g" * 65_000 + "/deposit"
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            first = add_dead_letter(s, "wastebank/b/gateway/gw-01/deposit", b"\x00", "bad")
            s.commit()
        undo_0009(engine)
        with engine.begin() as conn:  # back to 0006
            conn.execute(text("DROP TABLE tps_pickup"))  # 0008's
            if ledger_backend == "postgresql":
                conn.execute(text("ALTER TABLE dead_letter ALTER COLUMN topic TYPE VARCHAR(500)"))
            conn.execute(text("UPDATE alembic_version SET version_num = '0006'"))
        if ledger_backend == "postgresql":
            with pytest.raises(DataError, match="too long"), engine.begin() as conn:
                conn.execute(  # 0006's columns: the ORM's are 0009's
                    text(
                        "INSERT INTO dead_letter (topic, payload, error, received_at,"
                        " replay_attempts) VALUES (:topic, :payload, 'invalid', now(), 0)"
                    ),
                    {"topic": long, "payload": b"{}"},
                )
        assert migrations.upgrade(engine) is True
        assert migrations.differences(engine, tables.metadata()) == []
        with Session(engine) as s:
            second = add_dead_letter(s, long, b"{}", "invalid")
            rows = {r.id: (r.topic, r.payload, r.error) for r in ledger.dead_letters(s)}
        assert rows == {
            first: ("wastebank/b/gateway/gw-01/deposit", b"\x00", "bad"),
            second: (long, b"{}", "invalid"),
        }
    finally:
        engine.dispose()


def test_0008_adds_the_pickup_journal_unique_per_sensor_and_time(
    ledger_url: str, ledger_backend: str
) -> None:
    """A ledger at 0007 gets ``tps_pickup`` (empty: the readings are in InfluxDB) with its
    unique (TPS, sensor, at) and its (TPS, at) index; the TPS and their alerts are kept."""
    at = datetime(2026, 11, 23, 1, 10, tzinfo=UTC)
    engine = ledger.make_engine(ledger_url)
    try:
        undo_0009(engine)
        with engine.begin() as conn:  # back to 0007
            conn.execute(text("DROP TABLE tps_pickup"))
            conn.execute(text("UPDATE alembic_version SET version_num = '0007'"))
        assert migrations.upgrade(engine) is True
        assert migrations.current(engine) == migrations.head()
        assert migrations.differences(engine, tables.metadata()) == []
        with Session(engine) as s:
            assert s.scalar(select(func.count()).select_from(ledger.TpsPickup)) == 0
            tps_id = s.scalars(select(ledger.Tps.id).where(ledger.Tps.code == "tps-batu-merah"))
            row = {
                "tps_id": tps_id.one(),
                "sensor_id": "us-01",
                "at": at,
                "fill_before": 0.9,
                "fill_after": 0.03,
            }
            s.add(ledger.TpsPickup(**row))
            s.commit()
            s.add(ledger.TpsPickup(**{**row, "fill_before": 0.8}))
            with pytest.raises(IntegrityError):
                s.commit()
            s.rollback()
            s.add(ledger.TpsPickup(**{**row, "sensor_id": "us-02"}))  # another sensor: fine
            s.commit()
            got = s.scalars(select(ledger.TpsPickup).order_by(ledger.TpsPickup.sensor_id)).all()
            assert [(p.sensor_id, p.at, p.fill_before) for p in got] == [
                ("us-01", at, 0.9),
                ("us-02", at, 0.9),
            ]
            assert got[0].detected_at.tzinfo is UTC
        indexes = {
            i["name"]: i["column_names"]
            for i in inspect(engine).get_indexes("tps_pickup")
            if i["name"] == "ix_tps_pickup_tps_id_at"
        }
        assert indexes == {"ix_tps_pickup_tps_id_at": ["tps_id", "at"]}
    finally:
        engine.dispose()


def test_0009_keeps_ids_and_gives_old_dead_letters_a_reason(
    ledger_url: str, ledger_backend: str
) -> None:
    """A ledger at 0008 keeps every deposit id as it was (``gw-01-1``, ``manual-<hex>``); its
    dead letters get a reason from their error text; the new tables start empty."""
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            apply_deposit(s, deposit_event(1))
            s.execute(
                update(ledger.Deposit).values(event_id="gw-01-1")  # as written before 0009
            )
            for error in (
                "invalid DepositEvent: x",
                "deposit rejected: no price",
                "InfluxDB refused",
            ):
                add_dead_letter(s, "wb/v1/b/gateway/g/deposit", b"{}", error)
            s.commit()
        undo_0009(engine)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0008'"))
        assert migrations.upgrade(engine) is True
        assert migrations.differences(engine, tables.metadata()) == []
        with Session(engine) as s:
            assert s.scalars(select(ledger.Deposit.event_id)).all() == ["gw-01-1"]
            reasons = [d.reason for d in ledger.dead_letters(s)]
            assert reasons == ["invalid", "rejected", "influx_refused"]
            assert s.scalar(select(func.count()).select_from(alerts.SystemAlert)) == 0
            assert ledger.verify(s) == []
    finally:
        engine.dispose()
