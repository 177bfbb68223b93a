"""TPS analytics and alerts: fill rate, time to full, pickups, mass estimates, the TPA-bound
tonnage, the pickup journal, and the ``wastebank tps watch`` process.

The fill readings themselves live in InfluxDB (``fill_level``, written by the ingester); the TPS
registry (container volume, bulk density, alert thresholds), the alerts and the pickup journal
live in the ledger (``tps``, ``tps_alert``: migration 0004; ``tps_pickup``: migration 0008).

The pickup journal (``tps_pickup``) holds each detected pickup's facts, never its mass: TPS,
sensor, ``at`` (the first low reading), the fill ratio before and after the drop. The mass is
computed when read (:func:`tpa_bound_tonnes`: Σ over the period's rows of the TPS's *current*
container volume x fill before x bulk density), so a recalibrated density still applies to the
past. A better pickup rule does too, once ``wastebank tps rebuild-pickups`` has run it over the
readings again (:func:`rebuild_pickups`; also after a watcher outage longer than the broker kept
its session, or readings imported into InfluxDB directly). A year of DLH figures thus reads one
row per pickup (~180,000 for 500 TPS) instead of 17.5 M readings (bench/reports.py,
docs/scaling.md). The alerts' raise and clear must each happen once, and the journal's rows once
per (TPS, sensor, time) (a unique constraint; inserts are ON CONFLICT DO NOTHING).

Pure functions (no I/O; the tests compute their results by hand):

* :func:`detect_pickups`: a pickup is a drop of at least ``min_drop`` from a level of at least
  ``min_before`` (the median of the readings just before, so one false high echo does not make
  a pickup) within ``max_gap``, and the low level must persist for ``persist`` (2) readings, so
  one false low echo (a lost echo reads as empty) is never a pickup; ``tolerate`` (1) false high
  reading among them (a wall echo just after the emptying) does not hide the pickup.
* :class:`PickupWindow`: the same rule run incrementally over a sensor's recent readings (what
  the watcher keeps per sensor).
* :func:`fill_rate`: the least-squares slope of the fill ratio against time over the last
  ``window`` hours since the last emptying, with its standard error.
* :func:`predict_full`: when the fitted line reaches 1.0, with an interval from the slope's 95 %
  confidence bounds (Student's t) and a reliability (``high``/``medium``/``low``, Bintel's
  ``estimated-full-time{reliability}``).
* :func:`pickup_mass_kg` = container volume x fill ratio at pickup x bulk density;
  :func:`density_from_weighbridge` = mass / (volume x fill); :func:`diversion_rate`.

Alerts (``fill_high``: raised at ``alert_raise_fill``, cleared at ``alert_clear_fill``;
``sensor_offline``: no reading for ``offline_after_min`` minutes, cleared by the next reading)
are evaluated by :class:`TpsWatcher` on each reading it receives from the broker (its own
persistent session, QoS 1, each message acknowledged only after its effect is committed) and
periodically for offline sensors. Each transition is a ledger row change first (raised once and
cleared once: a partial unique index allows one active alert per TPS, sensor and code), then an
MQTT publish: the alert's retained state topic and the TPS's event topic
(docs/protocol.md "TPS alerts"). A transition whose publish did not complete is published again
on the next connection (``raised_published`` / ``cleared_published``).

Pickups, in the watcher: it keeps each sensor's readings of the last ``WINDOW`` (12 h) in time
order (:class:`PickupWindow`), runs :func:`detect_pickups` over them on each reading and inserts
every pickup found (ON CONFLICT DO NOTHING) in the same transaction as the reading's alert
effects, before the ack. A pickup is confirmed when its last persisting low reading arrives, and
readings appended after it cannot change that decision (the rule scans forward), so for readings
in order the journal gets exactly what :func:`detect_pickups` finds over the whole series.

* Restart: on start each sensor's window is primed from InfluxDB (its readings in the ``WINDOW``
  before its last reading) and run once, so a pickup confirmed by readings the watcher missed
  is recorded; one recorded before is not recorded again (the unique constraint). Readings the
  broker redelivers are already in the window (same time: kept once).
* Context: a pickup needs the readings before its drop. One within ``max_gap`` (3 h) of the
  oldest reading of a window that does not start at the sensor's first reading (trimmed, or
  primed) is not recorded from that window: it was recorded when it was confirmed, with its full
  context (a truncated one could take a false high echo for the level before).
* Late readings (a store-and-forward backlog, older than the sensor's newest): put in their
  place in time order and the rule run again, so a late reading completes a pickup it belongs
  to (none lost); and since a late reading can also undo one (say, two late high readings
  between its low ones) or change its level before, the sensor's pickups within ``max_gap`` of
  it are deleted and what the rule finds there now inserted, in the same transaction (no false
  pickup, none with stale figures). A reading older than the window is not used for pickups
  (counted in ``too_late``, logged): ``wastebank tps rebuild-pickups`` over its day puts the
  journal right, as after an outage longer than the broker kept. (This assumes a sensor reads
  at least every ``max_gap`` / ``before_n``, 1 h: the readings a pickup's level before is taken
  from then lie within ``max_gap`` of it.)

Why readings from MQTT and not by polling InfluxDB: an alert follows the reading that caused it
within a message's delivery, the broker keeps readings for the watcher while it is down (its
persistent session), and the watcher needs nothing from InfluxDB but each sensor's last time and
recent readings when it starts (so a sensor that went quiet while the watcher was down is still
found offline). A reading older than the alert's last transition (a redelivery, a
store-and-forward backlog) never flips it back.

The modules, one reason to change each: :mod:`.analytics` (the pure functions), :mod:`.registry`
(the TPS in the ledger), :mod:`.readings` (fill readings from InfluxDB), :mod:`.status` (the
containers now, pickups read from the readings), :mod:`.pickup_journal` (the journal, and its
rebuild), :mod:`.tonnage` (the TPA-bound tonnage), :mod:`.alerting` (alerts in the ledger) and
:mod:`.watch` (the watcher process). Their public names are this package's.
"""

from wastebank.tps.alerting import (
    FILL_HIGH,
    SENSOR_OFFLINE,
    AlertCode,
    active_alerts,
    alert_message,
    alerts,
    apply_offline,
    apply_reading,
    mark_published,
    unpublished,
)
from wastebank.tps.analytics import (
    FULL,
    WINDOW,
    FillRate,
    Pickup,
    PickupRule,
    PickupUpdate,
    PickupWindow,
    Prediction,
    Reading,
    Reliability,
    density_from_weighbridge,
    detect_pickups,
    diversion_rate,
    fill_rate,
    fill_transition,
    pickup_mass_kg,
    predict_full,
    since_last_emptied,
    t95,
)
from wastebank.tps.pickup_journal import (
    REBUILD_CHUNK,
    JournalTotal,
    RebuildSummary,
    forget_pickups,
    journal,
    journal_totals,
    rebuild_pickups,
    record_pickups,
)
from wastebank.tps.readings import (
    PICKUP_MARGIN,
    PRIME_CHUNK,
    READINGS_CHECK_CHUNK,
    SeriesKey,
    fill_readings,
    last_seen,
    prime_windows,
    tps_with_readings,
)
from wastebank.tps.registry import calibrate, city_tps, get_tps
from wastebank.tps.status import (
    ContainerStatus,
    PickupMass,
    container_status,
    local_days,
    pickups,
    statuses,
)
from wastebank.tps.tonnage import (
    TPA_METHOD,
    TpaEstimate,
    TpaJournal,
    tpa_bound_tonnes,
    tpa_estimate,
    tpa_journal,
)
from wastebank.tps.watch import TpsWatcher, TpsWatchSettings, run

__all__ = [
    "AlertCode",
    "ContainerStatus",
    "FILL_HIGH",
    "FULL",
    "FillRate",
    "JournalTotal",
    "PICKUP_MARGIN",
    "PRIME_CHUNK",
    "Pickup",
    "PickupMass",
    "PickupRule",
    "PickupUpdate",
    "PickupWindow",
    "Prediction",
    "READINGS_CHECK_CHUNK",
    "REBUILD_CHUNK",
    "Reading",
    "RebuildSummary",
    "Reliability",
    "SENSOR_OFFLINE",
    "SeriesKey",
    "TPA_METHOD",
    "TpaEstimate",
    "TpaJournal",
    "TpsWatchSettings",
    "TpsWatcher",
    "WINDOW",
    "active_alerts",
    "alert_message",
    "alerts",
    "apply_offline",
    "apply_reading",
    "calibrate",
    "city_tps",
    "container_status",
    "density_from_weighbridge",
    "detect_pickups",
    "diversion_rate",
    "fill_rate",
    "fill_readings",
    "fill_transition",
    "forget_pickups",
    "get_tps",
    "journal",
    "journal_totals",
    "last_seen",
    "local_days",
    "mark_published",
    "pickup_mass_kg",
    "pickups",
    "predict_full",
    "prime_windows",
    "rebuild_pickups",
    "record_pickups",
    "run",
    "since_last_emptied",
    "statuses",
    "t95",
    "tpa_bound_tonnes",
    "tpa_estimate",
    "tpa_journal",
    "tps_with_readings",
    "unpublished",
]
