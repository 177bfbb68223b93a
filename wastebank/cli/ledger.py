"""`wastebank ledger`: the ledger's schema (migrate, current, revision) and its checks (verify,
rebuild-summary); wastebank/cli/ledger_data.py adds backups, statements and imports to it."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wastebank.cli._common import (
    ConfigOption,
    LedgerUrlOption,
    processes,
    resolve_ledger_url,
    setup_logging,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

ledger_app = typer.Typer(
    help="buku besar / the ledger: schema, checks, statements, backup", no_args_is_help=True
)


@ledger_app.command("migrate")
def ledger_migrate(
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
    revision: Annotated[str, typer.Option(help="the revision to upgrade to")] = "head",
) -> None:
    """Upgrade the ledger's schema (a ledger from before migrations is adopted). Writers
    (ingest, seed) do this on start too; run it first when several start at once."""
    from wastebank import ledger, migrations

    setup_logging()
    engine = ledger.make_engine(resolve_ledger_url(ledger_url, config), migrate=False)
    try:
        before = migrations.current(engine)
        migrations.upgrade(engine, revision)
        after = migrations.current(engine)
    finally:
        engine.dispose()
    if before == after:
        typer.echo(f"sudah pada revisi / already at revision {after}")
    else:
        typer.echo(f"dimigrasi / migrated: {before or '(kosong / empty)'} -> {after}")


@ledger_app.command("current")
def ledger_current(config: ConfigOption = None, ledger_url: LedgerUrlOption = None) -> None:
    """Show the ledger's revision and this release's head; exit 1 if they differ."""
    from wastebank import ledger, migrations

    engine = ledger.make_engine(resolve_ledger_url(ledger_url, config), writer=False, migrate=False)
    try:
        rev, head = migrations.current(engine), migrations.head()
    finally:
        engine.dispose()
    state = "mutakhir / up to date" if rev == head else "perlu migrasi / needs `ledger migrate`"
    typer.echo(f"revisi / revision {rev or '(kosong / none)'}, head {head}: {state}")
    if rev != head:
        raise typer.Exit(code=1)


@ledger_app.command("revision")
def ledger_revision(
    message: Annotated[str, typer.Option("--message", "-m", help="what the revision changes")],
) -> None:
    """(Developers) write a new revision from the models' changes (autogenerate); review it."""
    from wastebank import migrations

    path = migrations.new_revision(message)
    typer.echo(f"ditulis / written: {path}")


@ledger_app.command("verify")
def ledger_verify(
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
    limit: Annotated[
        int,
        typer.Option(min=1, help="masalah yang dicetak paling banyak / problems to print at most"),
    ] = 100,
    influx: Annotated[
        bool,
        typer.Option(
            "--influx",
            help="bandingkan juga setoran perangkat dengan titik InfluxDB, per hari lokal, bank "
            "dan kategori (jumlah, gram, Rupiah) / also compare the device deposits with "
            "InfluxDB's points, per local day, bank and category (count, grams, Rupiah)",
        ),
    ] = False,
    date_from: Annotated[
        datetime | None,
        typer.Option(
            "--from",
            formats=["%Y-%m-%d"],
            help="--influx: hari lokal pertama (bawaan: --to - 29) / first local day (default: "
            "--to - 29)",
        ),
    ] = None,
    date_to: Annotated[
        datetime | None,
        typer.Option(
            "--to",
            formats=["%Y-%m-%d"],
            help="--influx: hari lokal terakhir (bawaan: hari ini) / last local day (default: "
            "today)",
        ),
    ] = None,
    settle: Annotated[
        float,
        typer.Option(
            min=0,
            help="--influx: detik sebelum hari yang berbeda dibandingkan lagi; hanya yang "
            "berbeda dua kali adalah selisih / seconds after which differing days are compared "
            "again; only what differs both times is drift (a deposit between its ledger commit "
            "and its point)",
        ),
    ] = 5.0,
) -> None:
    """Periksa pembukuan: setiap transaksi seimbang, entri jurnal dan stok persis sesuai
    dokumennya, tidak ada saldo atau stok negatif, hierarki induk/unit sah, ringkasan tonase
    sesuai setoran; dengan --influx juga titik setoran InfluxDB. Keluar 1 bila ada yang salah, 2
    bila InfluxDB tak dapat ditanya. / Check the books: every transaction balanced, journal and
    stock entries exactly as the deposits, voids, withdrawals and stock movements imply, no
    negative balance or stock, a valid induk/unit hierarchy, the daily and monthly tonnage
    summaries as the deposits imply (`ledger rebuild-summary` mends those). With --influx, also
    that InfluxDB's deposit points agree with the ledger's device deposits (voided ones
    included) over the local days --from..--to (`influx rebuild-deposits` mends them); the
    comparison is recorded (reconciliation_run). Exit 1 when anything is wrong, 2 when InfluxDB
    cannot be asked."""
    from wastebank import ledger

    if not influx and (date_from or date_to):
        raise typer.BadParameter("only with --influx / hanya dengan --influx", param_hint="--from")
    engine = ledger.make_engine(resolve_ledger_url(ledger_url, config), writer=False)
    # One snapshot for every query: SQLite's read transaction is one; on PostgreSQL, READ
    # COMMITTED would let a deposit committed mid-check look like entries without a document.
    bind = engine
    if engine.dialect.name == "postgresql":
        bind = engine.execution_options(isolation_level="REPEATABLE READ")
    try:
        with ledger.Session(bind) as session:
            problems = ledger.verify(session)
            unsynced = ledger.unsynced_clock_deposits(session)
            ahead = ledger.clock_ahead_deposits(session)
        for problem in problems[:limit]:
            typer.echo(str(problem))
        if problems:
            typer.echo(f"{len(problems)} masalah / problems", err=True)
        else:
            typer.echo("pembukuan benar / the books hold")
        # facts about the times, not faults of the books: the exit status is kept
        for is_ahead, counts in ((False, unsynced), (True, ahead)):
            if counts:
                each = ", ".join(f"{gateway} {n}" for gateway, n in counts.items())
                note = ledger.clock_note(sum(counts.values()), ahead=is_ahead)
                typer.echo(f"{note} ({each}): docs/operations.md, Clock honesty")
        drifts = 0
        if influx:
            first = date_from.date() if date_from else None
            last = date_to.date() if date_to else None
            drifts = _verify_influx(engine, config, ledger_url, first, last, settle, limit)
    finally:
        engine.dispose()
    if problems or drifts:
        raise typer.Exit(code=1)


def _verify_influx(
    engine: Engine,
    config: Path | None,
    ledger_url: str | None,
    first: date | None,
    last: date | None,
    settle: float,
    limit: int,
) -> int:
    """`ledger verify --influx`: compare, print each drift, record the run; the drift count."""
    from wastebank import access, ledger, reconcile
    from wastebank.influx import Influx

    overrides = {"ledger_url": ledger_url} if ledger_url else {}
    settings = processes().ingest_settings(config, **overrides)
    with ledger.Session(engine) as session:
        zones = reconcile.city_zones(session)
    last = last or reconcile.local_today(zones)
    first = first or last - timedelta(days=29)
    if last < first:
        raise typer.BadParameter("--to sebelum --from / --to before --from", param_hint="--to")

    async def run() -> list[reconcile.Drift]:
        influx = Influx(settings.influx)
        try:
            return await reconcile.reconcile(engine, influx, first, last, settle_s=settle)
        finally:
            await influx.aclose()

    drifts = asyncio.run(run())
    writer = ledger.make_engine(settings.ledger_url, writer=True, migrate=False)
    try:
        with ledger.Session(writer) as session:
            reconcile.record_run(session, first, last, drifts, access.cli_actor().name)
            session.commit()
    finally:
        writer.dispose()
    for drift in drifts[:limit]:
        typer.echo(drift.describe())
    if drifts:
        typer.echo(
            f"{len(drifts)} selisih buku besar-InfluxDB / ledger-InfluxDB drifts {first}..{last} "
            "(`wastebank influx rebuild-deposits --from D --to D`)",
            err=True,
        )
    else:
        typer.echo(f"buku besar dan InfluxDB sama / the ledger and InfluxDB agree {first}..{last}")
    return len(drifts)


@ledger_app.command("rebuild-summary")
def ledger_rebuild_summary(
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
    limit: Annotated[
        int,
        typer.Option(min=1, help="masalah yang dicetak paling banyak / problems to print at most"),
    ] = 100,
) -> None:
    """Make the daily tonnage summary (deposit_day) and its monthly roll-up (deposit_month),
    which the DLH reports read, again from the deposits, then check them against the deposits.
    For after a city's time zone was changed, deposits loaded around the ledger (a bulk COPY),
    or `ledger verify` reporting `summary` problems. In one transaction: the reports see the old
    summary until it commits; on PostgreSQL deposit writers wait meanwhile. Exit 1 when the
    check finds anything wrong."""
    import time

    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from sqlalchemy import func, select

    from wastebank import ledger

    setup_logging()
    engine = ledger.make_engine(resolve_ledger_url(ledger_url, config))
    started = time.monotonic()
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        ) as progress:
            task = progress.add_task("membangun ulang ringkasan / rebuilding the summary")

            def step(what: str) -> None:
                progress.update(task, description=what)

            with ledger.Session(engine) as session:
                days = ledger.rebuild_deposit_days(session, progress=step)
                months = session.scalar(select(func.count()).select_from(ledger.DepositMonth))
                step("menyimpan / committing")
                session.commit()
            step("memeriksa terhadap setoran / checking against the deposits")
            bind = engine
            if engine.dialect.name == "postgresql":  # one snapshot, as `ledger verify`
                bind = engine.execution_options(isolation_level="REPEATABLE READ")
            with ledger.Session(bind) as session:
                problems = ledger.verify_summaries(session)
            step("selesai / done")
    finally:
        engine.dispose()
    typer.echo(
        f"ringkasan dibangun ulang / summary rebuilt: {days:,} baris harian / daily rows, "
        f"{months or 0:,} baris bulanan / monthly rows ({time.monotonic() - started:.1f} s)"
    )
    for problem in problems[:limit]:
        typer.echo(str(problem))
    if problems:
        typer.echo(f"{len(problems)} masalah / problems", err=True)
        raise typer.Exit(code=1)
    typer.echo("ringkasan sesuai setoran / the summary matches the deposits")
