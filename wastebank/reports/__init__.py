"""DLH reports: tonnage diverted from the TPA (SIPSN *pengurangan*), the city's waste generation
estimate and its reduction share against the Jakstrada target, and the monthly DLH report
(XLSX, CSV, PDF).

**Source: the ledger.** Tonnage is summed in SQL from the ledger's daily summary
(``deposit_day``: the grams and count of the non-voided deposits per city-local day, bank,
category and basis) and its monthly roll-up (``deposit_month``, the same per local month, read
for the whole months of a range), both written in the same transaction as every deposit, void
and correction and checked against the deposits by ``wastebank ledger verify``, not from
InfluxDB's ``deposit`` points, because only the ledger knows everything that counts:

* manual entries (scale down, piece/litre categories, corrections) are written by the API to the
  ledger only, never to InfluxDB;
* a voided deposit is not diverted: it is left out (``deposit_void``), whenever it was voided.
  A void made after a month was reported changes that month's figures when it is run again;
* the ledger is exact (integer grams), InfluxDB's points are for telemetry-style dashboards.

Every figure carries its basis: ``measured`` (weighed on a scale: ``deposit.manual`` false) or
``estimated`` (entered by hand: a weight guessed, counted pieces, litres x density). Generation,
CO2e and energy are estimates by nature and are labelled so.

**Time zone.** Days, weeks (ISO, Monday first), months and years are the city's own (WIB, WITA,
WIT): a deposit at 00:30 WIT on the 1st is in the new month. The ledger converts each deposit's
``measured_at`` to its city's local date (:mod:`zoneinfo`, exact for any zone) when it writes the
summary, and every period is a union of local days, so the reports are exact on PostgreSQL and
SQLite alike. A city whose zone is changed needs ``wastebank ledger rebuild-summary``
(``ledger.rebuild_deposit_days``).

Pure where it can be: :func:`tonnage` and :func:`monthly_report` read the ledger; the renderers
(:func:`monthly_csv`, :func:`monthly_xlsx`, :func:`monthly_pdf`) only format a report.

The modules, one reason to change each: :mod:`.scope` (the city as the reports see it),
:mod:`.generation` (the generation estimate, the targets, the CO2e and energy estimator),
:mod:`.summary` (the sums read from the ledger's summaries), :mod:`.tonnages` (tonnage by group
and period, the reduction share), :mod:`.monthly` (the monthly report's figures),
:mod:`.wording` (its headings and notes), :mod:`.csvfile`, :mod:`.xlsx`, :mod:`.pdf` (its
renderings) and :mod:`.output` (a rendering as a file). Their public names are this package's.
"""

from wastebank.reports.banks import BankDirectory, BankFacts, PublicBank, bank_directory
from wastebank.reports.csvfile import CSV_DIALECTS, CsvDialect, monthly_csv
from wastebank.reports.generation import (
    CITIES_DIR,
    DEMO_CITY_FILE,
    EstimatesAdapter,
    Generation,
    ImpactEstimator,
    NoGenerationEstimate,
    ReportSettings,
    city_data,
    default_estimator,
    generation_for,
    tps_in_city,
)
from wastebank.reports.monthly import (
    FIRST_DAY,
    LAST_DAY,
    NO_KECAMATAN,
    DiversionRow,
    MonthlyReport,
    MonthlyRow,
    monthly_report,
    parse_month,
)
from wastebank.reports.output import FORMATS, MEDIA_TYPES, filename, render
from wastebank.reports.pdf import ORIENTATIONS, Orientation, monthly_pdf
from wastebank.reports.scope import (
    GROUPS,
    PERIODS,
    SIPSN_NAMES,
    BankInfo,
    Basis,
    CategoryInfo,
    Coverage,
    CoverageRule,
    Group,
    Period,
    Scope,
    diversion_coverage,
    load_scope,
)
from wastebank.reports.sipsn import (
    SIPSN_FORMATS,
    SIPSN_HEADER,
    SIPSN_MEDIA_TYPES,
    SipsnExport,
    SipsnRow,
    parse_period,
    sipsn_csv,
    sipsn_export,
    sipsn_filename,
    sipsn_render,
    sipsn_xlsx,
)
from wastebank.reports.summary import Cell, cells, summary_rows
from wastebank.reports.tonnages import (
    Reduction,
    Tonnage,
    TonnageRow,
    basis_of,
    period_start,
    reduction,
    tonnage,
)
from wastebank.reports.wording import CSV_HEADER, DIVERSION_HEADER
from wastebank.reports.xlsx import monthly_xlsx

__all__ = [
    "BankDirectory",
    "BankFacts",
    "CSV_DIALECTS",
    "CsvDialect",
    "ORIENTATIONS",
    "Orientation",
    "PublicBank",
    "SIPSN_FORMATS",
    "SIPSN_HEADER",
    "SIPSN_MEDIA_TYPES",
    "SipsnExport",
    "SipsnRow",
    "bank_directory",
    "parse_period",
    "sipsn_csv",
    "sipsn_export",
    "sipsn_filename",
    "sipsn_render",
    "sipsn_xlsx",
    "BankInfo",
    "Basis",
    "CITIES_DIR",
    "CSV_HEADER",
    "CategoryInfo",
    "Cell",
    "Coverage",
    "CoverageRule",
    "DEMO_CITY_FILE",
    "DIVERSION_HEADER",
    "DiversionRow",
    "EstimatesAdapter",
    "ImpactEstimator",
    "FIRST_DAY",
    "FORMATS",
    "GROUPS",
    "Generation",
    "Group",
    "LAST_DAY",
    "MEDIA_TYPES",
    "MonthlyReport",
    "MonthlyRow",
    "NO_KECAMATAN",
    "NoGenerationEstimate",
    "PERIODS",
    "Period",
    "Reduction",
    "ReportSettings",
    "SIPSN_NAMES",
    "Scope",
    "Tonnage",
    "TonnageRow",
    "basis_of",
    "cells",
    "city_data",
    "default_estimator",
    "diversion_coverage",
    "filename",
    "generation_for",
    "load_scope",
    "monthly_csv",
    "monthly_pdf",
    "monthly_report",
    "monthly_xlsx",
    "parse_month",
    "period_start",
    "reduction",
    "render",
    "summary_rows",
    "tonnage",
    "tps_in_city",
]
