"""`wastebank report`: the DLH's monthly report (wastebank/reports/)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from wastebank.cli._common import ConfigOption, LedgerUrlOption, processes

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
    reduction share of the estimated generation, CO2e avoided and energy potential. Days are
    the city's own (WIB/WITA/WIT); voided deposits are left out. Settings: [reports] of the
    API's settings (WASTEBANK_REPORTS__*)."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from wastebank import ledger, reports

    try:
        reports.parse_month(month)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--month") from None
    settings = processes().api_settings(config)
    engine = ledger.make_engine(ledger_url or settings.ledger_url, writer=False)
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

        try:
            with ledger.Session(engine) as session:
                scope = reports.load_scope(session, city_code=city)
                report = reports.monthly_report(
                    session,
                    scope,
                    month,
                    settings.reports,
                    estimator=reports.default_estimator(),
                    progress=step,
                )
        finally:
            engine.dispose()
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
    from wastebank import ledger, reports

    try:
        reports.parse_period(period)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--period") from None
    settings = processes().api_settings(config)
    engine = ledger.make_engine(ledger_url or settings.ledger_url, writer=False)
    try:
        with ledger.Session(engine) as session:
            scope = reports.load_scope(session, city_code=city)
            export = reports.sipsn_export(session, scope, period, settings.reports)
    finally:
        engine.dispose()
    body = reports.sipsn_render(export, fmt.value, csv_dialect=csv_dialect.value)
    path = out or Path(reports.sipsn_filename(export, fmt.value))
    path.write_bytes(body)
    for problem in export.problems:
        typer.echo(f"dilewati / left out: {problem}", err=True)
    typer.echo(f"ditulis / written: {path} ({len(export.rows)} baris / rows)", err=True)
