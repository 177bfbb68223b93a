"""`wastebank ledger` backup, restore, statement, import-members, import-prices: the ledger's
data in and out (wastebank/backup.py, passbook.py, bulk_import/)."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wastebank.cli._common import (
    ConfigOption,
    LedgerUrlOption,
    count_progress,
    fail,
    parse_day,
    processes,
    resolve_ledger_url,
)
from wastebank.cli.ledger import ledger_app

if TYPE_CHECKING:
    from wastebank import bulk_import


@ledger_app.command("backup")
def ledger_backup(
    dest: Annotated[
        Path | None,
        typer.Argument(
            metavar="[FILE]",
            help="the backup file (default: .run/backups/ledger-<UTC time>.sqlite or .pgdump)",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Back up the ledger while it runs: SQLite's online backup API, or pg_dump (custom format)
    for PostgreSQL. The file is readable by its owner only: it holds personal data."""
    from wastebank import backup

    url = resolve_ledger_url(ledger_url, config)
    info = backup.backup(url, dest or backup.default_path(url))
    typer.echo(
        f"dicadangkan / backed up: {info.path} ({info.size} bytes, {info.backend}, "
        f"revisi / revision {info.revision or '-'})"
    )


@ledger_app.command("restore")
def ledger_restore(
    src: Annotated[
        Path,
        typer.Argument(metavar="FILE", exists=True, dir_okay=False, help="a `ledger backup` file"),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="replace whatever the target database holds")
    ] = False,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="check the restored books (ledger verify)")
    ] = True,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Restore a backup into an empty ledger database (of the same kind: SQLite or PostgreSQL);
    a database that holds any table is refused unless --force. Stop the writers (ingest) first.
    Exit 1 when the restored books do not verify."""
    from wastebank import backup, ledger

    url = resolve_ledger_url(ledger_url, config)
    info = backup.restore(src, url, force=force)
    replaced = f", {info.replaced_tables} tabel diganti / tables replaced" * bool(
        info.replaced_tables
    )
    typer.echo(f"dipulihkan / restored: {src} (revisi / revision {info.revision or '-'}{replaced})")
    if info.needs_migration:
        typer.echo(
            "skema lebih lama dari rilis ini / the schema is older than this release: run "
            "`wastebank ledger migrate` (writers do it on start)"
        )
        return
    if not verify:
        return
    engine = ledger.make_engine(url, writer=False)
    try:
        with ledger.Session(engine) as session:
            problems = ledger.verify(session)
    finally:
        engine.dispose()
    for problem in problems[:100]:
        typer.echo(str(problem))
    if problems:
        typer.echo(f"{len(problems)} masalah / problems", err=True)
        raise typer.Exit(code=1)
    typer.echo("pembukuan benar / the books hold")


class StatementFormat(StrEnum):
    text = "text"
    json = "json"
    csv = "csv"
    pdf = "pdf"


@ledger_app.command("statement")
def ledger_statement(
    member_no: Annotated[str, typer.Argument(metavar="MEMBER_NO", help="e.g. AMB-0001")],
    date_from: Annotated[
        str | None, typer.Option("--from", help="first day, local to the city: 2026-11-01")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="last day (included), local: 2026-11-30")
    ] = None,
    fmt: Annotated[StatementFormat, typer.Option("--format", "-f")] = StatementFormat.text,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="write here (default: standard output; a PDF: buku-tabungan-<member>.pdf)",
        ),
    ] = None,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """A member's passbook (buku tabungan): opening balance, every deposit, reversal and
    withdrawal with the running balance, closing balance. Days are the city's (WIB/WITA/WIT)."""
    from wastebank import ledger, passbook

    start, end = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    engine = ledger.make_engine(resolve_ledger_url(ledger_url, config), writer=False)
    try:
        with ledger.Session(engine) as session:
            st = passbook.statement(session, member_no, start, end)
    except ValueError as exc:
        raise fail(exc) from None
    finally:
        engine.dispose()
    if fmt is StatementFormat.pdf:
        path = output or Path(f"buku-tabungan-{member_no}.pdf")
        path.write_bytes(passbook.statement_pdf(st))
        typer.echo(f"ditulis / written: {path}", err=True)
        return
    if fmt is StatementFormat.json:
        rendered = st.model_dump_json(indent=2) + "\n"
    elif fmt is StatementFormat.csv:
        rendered = passbook.statement_csv(st)
    else:
        rendered = passbook.statement_text(st)
    if output is None:
        typer.echo(rendered, nl=False)
    else:
        # A CSV with the BOM Excel looks for, or it misreads names outside ASCII.
        encoding = "utf-8-sig" if fmt is StatementFormat.csv else "utf-8"
        output.write_text(rendered, encoding=encoding, newline="")
        typer.echo(f"ditulis / written: {output}", err=True)


ImportFileArgument = Annotated[
    Path,
    typer.Argument(metavar="FILE", exists=True, dir_okay=False, help="a .csv or .xlsx list"),
]


ValidOnlyOption = Annotated[
    bool,
    typer.Option(
        "--valid-only", help="import the valid rows, refuse the others (default: all or nothing)"
    ),
]


DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="check every row and report; write nothing")
]


ReportOption = Annotated[
    Path | None, typer.Option("--report", help="also write the report to this .csv or .xlsx")
]


SheetOption = Annotated[
    str | None, typer.Option("--sheet", help="the XLSX sheet (default: the first)")
]


def _run_import(
    run: Callable[[Callable[[int, int], None]], bulk_import.ImportReport],
    report_path: Path | None,
) -> None:
    """Run an import with a progress bar (on a terminal), print its report, write it to
    ``report_path``, exit 1 when a row was refused."""
    bar, progress = count_progress("mengimpor / importing")

    with bar:
        report = run(progress)
    typer.echo(report.text(), nl=False)
    if report_path is not None:
        report.write(report_path)
        typer.echo(f"laporan / report: {report_path}")
    if not report.ok:
        raise typer.Exit(code=1)


@ledger_app.command("import-members")
def ledger_import_members(
    file: ImportFileArgument,
    valid_only: ValidOnlyOption = False,
    dry_run: DryRunOption = False,
    report: ReportOption = None,
    sheet: SheetOption = None,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Register nasabah from a CSV/XLSX list: every row imported or refused with its reasons.
    Columns: no_nasabah, nama, kode_bank (required); jenis, no_hp, kelurahan, kecamatan, rt,
    rw, nik, kartu. A NIK needs WASTEBANK_NIK_KEY and is stored only as its keyed hash.
    Exit 1 when a row was refused."""
    from wastebank import bulk_import, ledger
    from wastebank.config import load_settings

    privacy = load_settings(ledger.MemberPrivacySettings, config)
    nik_key = privacy.key() if privacy.nik_key is not None else None
    mode = bulk_import.Mode.VALID_ONLY if valid_only else bulk_import.Mode.ALL_OR_NOTHING
    engine = ledger.make_engine(resolve_ledger_url(ledger_url, config))
    try:
        _run_import(
            lambda progress: bulk_import.import_members(
                engine,
                file,
                mode=mode,
                dry_run=dry_run,
                nik_key=nik_key,
                sheet=sheet,
                progress=progress,
            ),
            report,
        )
    finally:
        engine.dispose()


@ledger_app.command("import-prices")
def ledger_import_prices(
    file: ImportFileArgument,
    author: Annotated[
        str, typer.Option("--author", help="your staff id: an attendant of each bank (or induk)")
    ],
    valid_only: ValidOnlyOption = False,
    dry_run: DryRunOption = False,
    report: ReportOption = None,
    sheet: SheetOption = None,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """Set prices from a CSV/XLSX list (kode_bank, kategori, harga, berlaku_mulai), each through
    the ledger's price rule: a price may not reprice deposits already made, nor lie outside the
    money rules' price limits (the API's settings, [money]). A date means 00:00 in the bank's
    city; no date: from now. Exit 1 when a row was refused."""
    from wastebank import bulk_import, ledger

    rules = processes().api_settings(config).money
    mode = bulk_import.Mode.VALID_ONLY if valid_only else bulk_import.Mode.ALL_OR_NOTHING
    engine = ledger.make_engine(resolve_ledger_url(ledger_url, config))
    try:
        _run_import(
            lambda progress: bulk_import.import_prices(
                engine,
                file,
                author=author,
                mode=mode,
                dry_run=dry_run,
                sheet=sheet,
                progress=progress,
                rules=rules,
            ),
            report,
        )
    finally:
        engine.dispose()
