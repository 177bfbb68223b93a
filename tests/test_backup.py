"""Backups and restores of the ledger: a populated ledger (deposits, voids, a correction,
withdrawals, a stock sale) backed up, restored into an empty database, verified and compared row
by row; a backup taken while deposits are being written; refusals. On SQLite (online backup API)
and on PostgreSQL (pg_dump/pg_restore), through the ``ledger_url`` fixture."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.conftest import WIT, LedgerFactory, deposit_event, wait_until
from tests.ledger_helpers import apply_deposit
from wastebank import backup, ledger, migrations, tables
from wastebank.cli import app

STAFF = "petugas-bm-01"
NOV = datetime(2026, 11, 2, 9, tzinfo=WIT)


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    eng = ledger.make_engine(ledger_url)
    yield eng
    eng.dispose()


@pytest.fixture
def empty_url(ledger_factory: LedgerFactory, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, not even the schema: a new SQLite path, or a new
    PostgreSQL database (dropped after the test)."""
    if ledger_factory.backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored' / 'ledger.db'}"
        return
    url = ledger_factory.blank()  # the ledger's role's, as a restore target is
    yield url
    ledger_factory.drop(url)


def _populate(engine: Engine) -> None:
    """Deposits of three members at two banks, a void, a correction, a paid, a rejected and an
    open withdrawal, a stock sale."""
    with Session(engine) as s:
        cards = ("04A1B2C3D4", "04A1B2C3D5", "04B1B2C3D1")
        banks = ("bs-batu-merah", "bs-batu-merah", "bs-nusaniwe")
        for seq in range(12):
            apply_deposit(
                s,
                deposit_event(
                    seq,
                    card=cards[seq % 3],
                    bank=banks[seq % 3],
                    net_g=1000 + 250 * seq,
                    category=("pet", "kardus")[seq % 2],
                    at=NOV + timedelta(hours=seq),
                ),
            )
        ledger.void_deposit(s, "gw-01-3", author=STAFF, reason="kartu salah")
        ledger.correct_deposit(s, "gw-01-4", author=STAFF, reason="berat salah", net_g=1500)
        paid = ledger.request_withdrawal(s, "AMB-0001", 10_000, "cash", requested_by="AMB-0001")
        ledger.approve_withdrawal(s, paid.id, author=STAFF)
        ledger.pay_withdrawal(s, paid.id, author=STAFF, payout_ref="kas-01")
        no = ledger.request_withdrawal(
            s, "AMB-0002", 10_000, "ewallet", requested_by="AMB-0002", destination="0812000002"
        )
        ledger.reject_withdrawal(s, no.id, author=STAFF, reason="nomor salah")
        ledger.request_withdrawal(s, "AMB-0002", 10_000, "cash", requested_by="AMB-0002")
        ledger.sell_stock(
            s,
            "bs-batu-merah",
            "pet",
            2000,
            collector_code="ud-galala-plastik",
            revenue_idr=9000,
            author=STAFF,
        )
        assert ledger.verify(s) == []
        s.commit()


def _snapshot(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of the ledger (and its schema revision), in key order."""
    engine = ledger.make_engine(url, writer=False, migrate=False)
    try:
        with engine.connect() as conn:
            out = {
                table.name: [
                    tuple(row)
                    for row in conn.execute(select(table).order_by(*table.primary_key.columns))
                ]
                for table in tables.metadata().sorted_tables
            }
            out["alembic_version"] = [
                tuple(r) for r in conn.execute(text("SELECT version_num FROM alembic_version"))
            ]
    finally:
        engine.dispose()
    return out


def _balances(url: str) -> dict[str, int]:
    engine = ledger.make_engine(url, writer=False)
    try:
        with Session(engine) as s:
            return {
                m.member_no: ledger.member_balance(s, m.member_no)
                for m in s.scalars(select(ledger.Member))
            }
    finally:
        engine.dispose()


def _verified(url: str) -> None:
    engine = ledger.make_engine(url, writer=False)
    try:
        with Session(engine) as s:
            assert ledger.verify(s) == []
    finally:
        engine.dispose()


def test_a_populated_ledger_restores_row_for_row(
    engine: Engine, ledger_url: str, empty_url: str, tmp_path: Path
) -> None:
    _populate(engine)
    info = backup.backup(ledger_url, tmp_path / "backup" / "ledger.bak")
    assert info.revision == migrations.head()
    assert info.size == info.path.stat().st_size > 0
    assert stat.S_IMODE(info.path.stat().st_mode) == 0o600  # personal data
    assert backup.format_of(info.path) is backup.backend_of(ledger_url)
    assert not list(info.path.parent.glob(".*partial"))

    restored = backup.restore(info.path, empty_url)
    assert (restored.revision, restored.replaced_tables, restored.needs_migration) == (
        migrations.head(),
        0,
        False,
    )
    _verified(empty_url)
    balances = _balances(empty_url)
    assert balances == _balances(ledger_url)
    assert balances["AMB-0001"] > 0
    assert _snapshot(empty_url) == _snapshot(ledger_url)


def test_restore_refuses_a_database_with_tables_unless_forced(
    engine: Engine, ledger_url: str, empty_url: str, tmp_path: Path
) -> None:
    _populate(engine)
    path = backup.backup(ledger_url, tmp_path / "ledger.bak").path
    before = _snapshot(ledger_url)
    with Session(engine) as s:  # after the backup: to be undone by restoring it
        apply_deposit(s, deposit_event(99, at=NOV + timedelta(days=3)))
        s.commit()
    with pytest.raises(
        backup.BackupError, match=r"not empty \(\d+ tables; member: 6, deposit: 14\)"
    ):
        backup.restore(path, ledger_url)
    # A ledger that was only migrated has tables too.
    engine_empty = ledger.make_engine(empty_url)
    engine_empty.dispose()
    with pytest.raises(backup.BackupError, match="not empty"):
        backup.restore(path, empty_url)
    engine.dispose()  # no connection of ours holds the database being replaced
    info = backup.restore(path, ledger_url, force=True)
    assert info.replaced_tables == len(before)
    assert _snapshot(ledger_url) == before
    _verified(ledger_url)


def test_a_backup_taken_while_deposits_are_written_is_consistent(
    ledger_url: str, empty_url: str, tmp_path: Path
) -> None:
    """Like an ingester that goes on writing: each deposit is its own transaction, and the
    backup holds whole transactions only, whichever moment it caught."""
    writer = ledger.make_engine(ledger_url)
    stop = threading.Event()
    written: list[int] = []
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with Session(writer) as s:
                for seq in range(1000):  # bounded, whatever happens to the test
                    if stop.is_set():
                        return
                    apply_deposit(s, deposit_event(seq, at=NOV + timedelta(seconds=seq)))
                    s.commit()  # the ingester's batch
                    written.append(seq)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    thread = threading.Thread(target=write, name="deposit-writer")
    thread.start()
    try:
        wait_until(lambda: len(written) >= 20 or bool(errors), timeout=30)
        committed = len(written)  # each appended once its transaction committed
        path = backup.backup(ledger_url, tmp_path / "live.bak").path
    finally:
        stop.set()
        thread.join(timeout=60)
        writer.dispose()
    assert not errors, errors
    backup.restore(path, empty_url)
    _verified(empty_url)
    engine = ledger.make_engine(empty_url, writer=False)
    try:
        with Session(engine) as s:
            count = s.scalar(select(func.count()).select_from(ledger.Deposit)) or 0
            balance = ledger.member_balance(s, "AMB-0001")
    finally:
        engine.dispose()
    assert 20 <= committed <= count <= len(written)
    assert balance == 5000 * count  # 1,250 g of PET at Rp4,000/kg each


def test_restore_refuses_the_wrong_kind_of_file(ledger_url: str, tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not a ledger")
    with pytest.raises(backup.BackupError, match="neither an SQLite ledger nor a pg_dump"):
        backup.restore(junk, ledger_url)
    other = tmp_path / "other.bak"
    if backup.backend_of(ledger_url) is backup.Backend.SQLITE:
        other.write_bytes(backup.PGDUMP_MAGIC + b"\x01\x0e")
        want = "postgresql backup and the ledger at the URL is sqlite"
    else:
        other.write_bytes(backup.SQLITE_MAGIC + bytes(100))
        want = "sqlite backup and the ledger at the URL is postgresql"
    with pytest.raises(backup.BackupError, match=want):
        backup.restore(other, ledger_url)


def test_backup_and_restore_commands(
    engine: Engine, ledger_url: str, empty_url: str, tmp_path: Path
) -> None:
    _populate(engine)
    runner = CliRunner()
    path = tmp_path / "cli.bak"
    made = runner.invoke(app, ["ledger", "backup", str(path), "--ledger-url", ledger_url])
    assert made.exit_code == 0, made.output
    assert f"backed up: {path}" in made.stdout
    args = ["ledger", "restore", str(path), "--ledger-url", empty_url]
    restored = runner.invoke(app, args)
    assert restored.exit_code == 0, restored.output
    assert "pembukuan benar / the books hold" in restored.stdout
    again = runner.invoke(app, args)
    assert again.exit_code == 2
    assert "--force" in again.output
    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert _balances(empty_url) == _balances(ledger_url)


def test_pg_tools_of_the_servers_major_or_newer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for major in ("13", "15", "16"):
        tool = tmp_path / major / "bin" / "pg_dump"
        tool.parent.mkdir(parents=True)
        tool.write_text("#!/bin/sh\n")
    monkeypatch.setattr(backup, "POSTGRESQL_LIB", tmp_path)
    monkeypatch.setattr("wastebank.backup.shutil.which", lambda _name: None)
    assert backup.pg_tool("pg_dump", 15) == tmp_path / "15" / "bin" / "pg_dump"
    assert backup.pg_tool("pg_dump", 14) == tmp_path / "15" / "bin" / "pg_dump"
    with pytest.raises(backup.BackupError, match="postgresql-client-17"):
        backup.pg_tool("pg_dump", 17)
