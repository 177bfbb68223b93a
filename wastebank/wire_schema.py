"""The MQTT messages as JSON Schema files (docs/schema/*.json): ``wastebank schema export``.

The schemas are msgspec's (``msgspec.json.schema_components``), so the limits of
``wastebank/messages.py`` (patterns, maxLength, maxItems, minimum/maximum) are in them; every
object gets ``additionalProperties: false`` (the Structs forbid unknown fields, which msgspec's
schema does not say). What a JSON Schema cannot say is added to each file's ``description``: the
rules checked after the fields (``__post_init__``), the payload's byte limit (checked before
parsing) and strict typing. Third-party firmware and LoRaWAN network-server integrations can
validate a payload with any JSON Schema 2020-12 validator before publishing; the ingester's
Structs remain the authority (docs/protocol.md, "Limits and strictness").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from wastebank.messages import (
    MAX_PAYLOAD_BYTES,
    TIME_MAX,
    TIME_MIN,
    DepositEvent,
    FillReading,
    GatewayAlert,
    GatewayHealth,
    GatewayStatus,
    TpsAlert,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:wastebank:wb:v1:{name}"
"""Each file's ``$id``: a name, not a location (the files are served nowhere)."""

MESSAGES: dict[str, type[Any]] = {
    "deposit": DepositEvent,
    "fill": FillReading,
    "status": GatewayStatus,
    "health": GatewayHealth,
    "alert": GatewayAlert,
    "tps_alert": TpsAlert,
}
"""File name (without ``.json``) -> the message it describes."""

_TOPICS = {
    "deposit": "wb/v1/{bank_code}/gateway/{gateway_id}/deposit (QoS 1, not retained)",
    "fill": "wb/v1/{tps_code}/fill_sensor/{sensor_id}/fill (QoS 1, not retained)",
    "status": "wb/v1/{bank_code}/gateway/{gateway_id}/status and "
    "wb/v1/{tps_code}/fill_sensor/{sensor_id}/status (QoS 1, retained)",
    "health": "wb/v1/{bank_code}/gateway/{gateway_id}/health (QoS 1, retained)",
    "alert": "wb/v1/{bank_code}/gateway/{gateway_id}/alert (QoS 1, not retained)",
    "tps_alert": "wb/v1/{tps_code}/tps/{sensor_id}/alert/{code} (retained) and "
    "wb/v1/{tps_code}/tps/events (not retained), QoS 1",
}

_RULES = {
    "deposit": [
        "event_id is '{gateway_id}.{install}.{seq}' (e.g. 'gw-01.k7q2m.15'), or "
        "'{gateway_id}-{seq}' when install is absent or null (events from before 0.2).",
        "Exactly one of card_uid (kiosk flow) and member_no (attendant flow) is set; the other "
        "is absent or null.",
        "bank_code and gateway_id equal the topic's {bank_code} and {gateway_id}.",
    ],
    "fill": [
        "reading_id is '{sensor_id}.{install}.{seq}', or '{sensor_id}-{seq}' when install is "
        "absent or null (readings from before 0.2).",
        "tps_code and sensor_id equal the topic's {tps_code} and {sensor_id}.",
    ],
    "status": [],
    "health": ["bank_code and gateway_id equal the topic's {bank_code} and {gateway_id}."],
    "alert": [
        "alert_id is '{gateway_id}.{install}-{seq}' (a hyphen before seq: never a deposit's "
        "id); '{gateway_id}.{install}.{seq}' from older gateways, '{gateway_id}-{seq}' when "
        "install is absent or null (alerts from before 0.2).",
        "bank_code and gateway_id equal the topic's {bank_code} and {gateway_id}.",
    ],
    "tps_alert": [],
}

_COMMON = [
    f"The payload is UTF-8 JSON of at most {MAX_PAYLOAD_BYTES} bytes; a longer one is refused "
    "before it is parsed (dead letter, reason 'oversized').",
    "Strict types: a number is never a string ('1234') and a boolean is never a number; an "
    "integer field takes no fraction or exponent (1250, not 1250.0 or 1.25e3), which JSON "
    "Schema's 'integer' cannot say; a 'number' field takes an integer too (1 for 1.0); NaN and "
    "Infinity are refused.",
    "Timestamps are RFC 3339 date-times with a UTC offset ('Z' or '+09:00'), from "
    f"{TIME_MIN:%Y-%m-%dT%H:%M:%SZ} to {TIME_MAX:%Y-%m-%dT%H:%M:%SZ} (both included); a message "
    "with one outside is refused whole (dead letter, naming the field).",
    "Unknown fields are refused.",
]


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of the message written to ``{name}.json``."""
    model = MESSAGES[name]
    _, components = msgspec.json.schema_components([model], ref_template="#/$defs/{name}")
    for component in components.values():
        component["additionalProperties"] = False
    schema: dict[str, Any] = components.pop(model.__name__)
    if components:
        schema["$defs"] = components
    rules = "\n".join(f"- {rule}" for rule in [*_RULES[name], *_COMMON])
    return {
        "$schema": DIALECT,
        "$id": SCHEMA_ID.format(name=name),
        **schema,
        "title": model.__name__,
        "description": f"{schema['description']}\n\nTopic: {_TOPICS[name]}.\n\n"
        f"Rules this schema cannot express (wastebank's msgspec Structs check them):\n{rules}",
    }


def render(name: str) -> str:
    """``{name}.json`` as written: two-space indent, sorted keys, a trailing newline."""
    return json.dumps(json_schema(name), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export(out: Path) -> list[Path]:
    """Write every schema file into ``out`` (created if missing); the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in MESSAGES:
        path = out / f"{name}.json"
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written


def stale(out: Path) -> list[str]:
    """The schema files in ``out`` that are missing or differ from what :func:`export` writes."""
    return [
        f"{name}.json"
        for name in MESSAGES
        if not (out / f"{name}.json").is_file()
        or (out / f"{name}.json").read_text(encoding="utf-8") != render(name)
    ]
