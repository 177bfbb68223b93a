"""The fleet: every gateway and TPS fill sensor with its state, the broken ones first, built
from the retained health and status reports the ingester keeps (docs/fleet.md).

Modules: :mod:`.store` (the ``device_report`` table and which report is the latest: the
ingester's side), :mod:`.view` (the offline rule, the ranking, the rows: pure), :mod:`.read`
(the ledger's and InfluxDB's parts, for the API and ``wastebank fleet``).
"""

from wastebank.fleet.read import gather, last_readings, load, removed_devices
from wastebank.fleet.store import DeviceReport, DeviceType, Heard, keep_latest
from wastebank.fleet.view import (
    CONDITION_TEXTS,
    FAULT_STATES,
    RANKING,
    TEXTS,
    Condition,
    Fleet,
    FleetDevice,
    FleetSettings,
    Inputs,
    Problem,
    build,
    condition_of,
    condition_text,
    describe,
    duration,
    offline_reason,
    problems_text,
    say,
    silence_limit,
    sort_key,
)

__all__ = [
    "CONDITION_TEXTS",
    "FAULT_STATES",
    "RANKING",
    "TEXTS",
    "Condition",
    "DeviceReport",
    "DeviceType",
    "Fleet",
    "FleetDevice",
    "FleetSettings",
    "Heard",
    "Inputs",
    "Problem",
    "build",
    "condition_of",
    "condition_text",
    "describe",
    "duration",
    "gather",
    "keep_latest",
    "last_readings",
    "load",
    "offline_reason",
    "problems_text",
    "removed_devices",
    "say",
    "silence_limit",
    "sort_key",
]
