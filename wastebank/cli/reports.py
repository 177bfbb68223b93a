"""`wastebank report`: the DLH's monthly report (wastebank/reports/)."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from wastebank.cli._common import ConfigOption, LedgerUrlOption, processes

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from wastebank.reports import Scope

T = TypeVar("T")

report_app = typer.Typer(help="laporan DLH / DLH reports", no_args_is_help=True)


class ReportFormat(StrEnum):
    xlsx = "xlsx"
    csv = "csv"
    pdf = "pdf"


class CsvDialect(StrEnum):
    id = "id"
    plain = "plain"


class Orientation(StrEnum):
    landscape = "landscape"
    portrait = "portrait"


CsvDialectOption = Annotated[
    CsvDialect,
    typer.Option(
        "--csv-dialect",
        help="CSV: id = ';' and comma decimals (Excel in Indonesian); plain = ',' and dot decimals",
    ),
]


def _checked(parse: Callable[[str], object], text: str, option: str) -> None:
    """``parse(text)``'s ValueError as a usage error naming ``option``."""
    try:
        parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def _in_city(url: str, city: str | None, work: Callable[[Session, Scope], T]) -> T:
    """``work`` on a read-only session of the ledger at ``url``, in ``city`` (default: the
    first)."""
    from wastebank import ledger, reports

    engine = ledger.make_engine(url, writer=False)
    try:
        with ledger.Session(engine) as session:
            return work(session, reports.load_scope(session, city_code=city))
    finally:
        engine.dispose()


@report_app.command("monthly")
def report_monthly(
    month: Annotated[str, typer.Option("--month", help="the month, e.g. 2026-10")],
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.xlsx,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="file to write (default: laporan-dlh-<city>-<month>.<fmt>)"
        ),
    ] = None,
    city: Annotated[str | None, typer.Option(help="city code (default: the first city)")] = None,
    csv_dialect: CsvDialectOption = CsvDialect.id,
    orientation: Annotated[
        Orientation, typer.Option("--orientation", help="PDF: A4 landscape or portrait")
    ] = Orientation.landscape,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """The monthly DLH report per kecamatan x category: deposits, kg (measured / estimated),
    reduction share of the estimated generation; the diversion by kecamatan and its coverage;
    the estimates (CO2e and its parts, energy saved by recycling, WtE potential), each central
    first with its range (docs/reports.md). Days are the city's own (WIB/WITA/WIT); voided
    deposits are left out. Settings: the API's WASTEBANK_REPORTS__* (docs/reports.md)."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from wastebank import reports

    _checked(reports.parse_month, month, "--month")
    settings = processes().api_settings(config)
    steps = 6  # monthly_report's four, writing, done
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as progress:
        task = progress.add_task(f"laporan / report {month}", total=steps)

        def step(what: str) -> None:
            progress.update(task, description=what, advance=1)

        report = _in_city(
            ledger_url or settings.ledger_url,
            city,
            lambda session, scope: reports.monthly_report(
                session,
                scope,
                month,
                settings.reports,
                estimator=reports.default_estimator(),
                progress=step,
            ),
        )
        progress.update(task, description=f"menulis / writing {fmt.value}", advance=1)
        body = reports.render(
            report, fmt.value, csv_dialect=csv_dialect.value, orientation=orientation.value
        )
        path = out or Path(reports.filename(report, fmt.value))
        path.write_bytes(body)
        progress.update(task, description="selesai / done", completed=steps)
    typer.echo(
        f"ditulis / written: {path} ({len(report.rows)} baris / rows, "
        f"{report.total.deposits} setoran / deposits)",
        err=True,
    )


class SipsnFormat(StrEnum):
    xlsx = "xlsx"
    csv = "csv"


@report_app.command("sipsn")
def report_sipsn(
    period: Annotated[
        str, typer.Option("--period", help="2026 (a year), 2026-S1 / 2026-S2 (a half), 2026-10")
    ],
    fmt: Annotated[SipsnFormat, typer.Option("--format", "-f")] = SipsnFormat.xlsx,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="file to write (default: sipsn-bank-sampah-<city>-<period>.<fmt>)"
        ),
    ] = None,
    city: Annotated[str | None, typer.Option(help="city code (default: the first city)")] = None,
    csv_dialect: CsvDialectOption = CsvDialect.id,
    config: ConfigOption = None,
    ledger_url: LedgerUrlOption = None,
) -> None:
    """The bank sampah figures for SIPSN: one row per bank and category with the period's
    totals (kg measured / estimated, deposits, value), the bank's kind (BSI/BSU), units,
    members and location (docs/reports.md). Days are the city's own; voided deposits are left
    out. Entries of the city data file that were left out are listed on stderr."""
    from wastebank import reports

    _checked(reports.parse_period, period, "--period")
    settings = processes().api_settings(config)
    export = _in_city(
        ledger_url or settings.ledger_url,
        city,
        lambda session, scope: reports.sipsn_export(session, scope, period, settings.reports),
    )
    body = reports.sipsn_render(export, fmt.value, csv_dialect=csv_dialect.value)
    path = out or Path(reports.sipsn_filename(export, fmt.value))
    path.write_bytes(body)
    for problem in export.problems:
        typer.echo(f"dilewati / left out: {problem}", err=True)
    typer.echo(f"ditulis / written: {path} ({len(export.rows)} baris / rows)", err=True)
