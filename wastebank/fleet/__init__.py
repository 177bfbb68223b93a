"""The fleet: every gateway and TPS fill sensor with its state, the broken ones first, built
from the retained health and status reports the ingester keeps (docs/fleet.md).

Modules: :mod:`.store` (the ``device_report`` table and which report is the latest: the
ingester's side), :mod:`.view` (the offline rule, the ranking, the rows: pure), :mod:`.words`
(the rows in words, for the page and the CLI), :mod:`.read`
(the ledger's and InfluxDB's parts, for the API and ``wastebank fleet``).
"""

from wastebank.fleet.read import (
    RegistryFacts,
    gather,
    last_readings,
    ledger_has_sites,
    load,
    registry_facts,
)
from wastebank.fleet.store import DeviceReport, DeviceType, Heard, Kept, keep_latest
from wastebank.fleet.view import (
    FAULT_STATES,
    RANKING,
    Condition,
    Fleet,
    FleetDevice,
    FleetSettings,
    Inputs,
    Problem,
    build,
    condition_of,
    offline_reason,
    silence_limit,
    sort_key,
    speaks_for,
    synced_this_boot,
)
from wastebank.fleet.words import (
    CONDITION_TEXTS,
    TEXTS,
    condition_text,
    describe,
    duration,
    problems_text,
    say,
)

__all__ = [
    "CONDITION_TEXTS",
    "FAULT_STATES",
    "RANKING",
    "RegistryFacts",
    "TEXTS",
    "Condition",
    "DeviceReport",
    "DeviceType",
    "Fleet",
    "FleetDevice",
    "FleetSettings",
    "Heard",
    "Inputs",
    "Kept",
    "Problem",
    "build",
    "condition_of",
    "condition_text",
    "describe",
    "duration",
    "gather",
    "keep_latest",
    "last_readings",
    "ledger_has_sites",
    "load",
    "offline_reason",
    "problems_text",
    "registry_facts",
    "say",
    "silence_limit",
    "sort_key",
    "speaks_for",
    "synced_this_boot",
]
