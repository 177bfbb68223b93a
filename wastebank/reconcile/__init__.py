"""The ledger against InfluxDB: the same deposits, counted the same, day by day.

Every deposit that came from a device (``Deposit.manual`` false) has one point in InfluxDB's
``deposit`` measurement, written by the ingester from what the ledger applied; a voided deposit
keeps its point (a void lives in the ledger only, as do manual deposits). So for every local day
(in the zone of the bank's city), bank and category, the ledger's device deposits, voided ones
included, and the points must agree on three figures: how many, how many grams, how many Rupiah.

* :func:`compare` finds the groups where they do not (a :class:`Drift` each);
  :func:`reconcile` compares again after a pause the groups that differed, so that a deposit
  between its ledger commit and its point is not reported;
* :func:`rebuild_deposits` deletes a range's points and writes them again from the ledger
  (``wastebank influx rebuild-deposits``), then recomputes the hourly roll-up on 1.x;
* :func:`run_daily` runs in an ingester that takes deposits: a comparison of the last days every
  ``interval_s``, a :class:`ReconciliationRun` row each time, and the ``influx_drift`` system
  alert raised while they disagree (cleared by the first run that finds them equal).

The ledger's side is one SQL ``GROUP BY`` per city zone and chunk of at most 31 days, on SQLite
and PostgreSQL alike: each deposit's local day is found by a ``CASE`` over the chunk's local
midnights in UTC (computed here with :mod:`zoneinfo`, as the ledger's daily summary does), so
only the groups come back, never the deposits; the scan is bounded by the index on
``measured_at``. InfluxDB's side is one InfluxQL query per zone
(``GROUP BY time(1d), "bank", "category" fill(none) tz('<zone>')``).

The modules: :mod:`.drift` (the comparison), :mod:`.runs` (its record and the daily run),
:mod:`.rebuild` (the points written again). Their public names are this package's.
"""

from wastebank.reconcile.drift import (
    CHUNK_DAYS,
    Drift,
    Key,
    Totals,
    Zone,
    city_zones,
    compare,
    day_bounds,
    differences,
    influx_totals,
    ledger_totals,
    ledger_zones,
    local_today,
    reconcile,
)
from wastebank.reconcile.rebuild import (
    WRITE_CHUNK,
    RebuildSummary,
    RebuildUnsupported,
    Server,
    rebuild_deposits,
    server_kind,
)
from wastebank.reconcile.runs import (
    DETAIL_MAX,
    ReconciliationRun,
    alert_subject,
    last_run,
    reconcile_recent,
    record_run,
    run_daily,
)

__all__ = [
    "CHUNK_DAYS",
    "DETAIL_MAX",
    "Drift",
    "Key",
    "RebuildSummary",
    "RebuildUnsupported",
    "ReconciliationRun",
    "Server",
    "Totals",
    "WRITE_CHUNK",
    "Zone",
    "alert_subject",
    "city_zones",
    "compare",
    "day_bounds",
    "differences",
    "influx_totals",
    "last_run",
    "ledger_totals",
    "ledger_zones",
    "local_today",
    "rebuild_deposits",
    "reconcile",
    "reconcile_recent",
    "record_run",
    "run_daily",
    "server_kind",
]
