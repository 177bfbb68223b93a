"""GET /api/fleet and the page /armada on what the ingester stored: a sensor's no-target count
and its warning, and a device removed from the broker's registry leaving both (the rules are
tested in test_fleet.py; the Playwright walk through the page in test_fleet_pages.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from api.settings import PagesSettings
from tests.auth_helpers import ApiEnv, api_settings
from wastebank import devices, fleet
from wastebank.config import InfluxSettings
from wastebank.messages import GatewayHealth, GatewayStatus
from wastebank.structs import convert, encode_json


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


@pytest.fixture
def api(ledger_url: str, run_dir: Path) -> Iterator[ApiEnv]:
    settings = api_settings(
        ledger_url=ledger_url,
        pages=PagesSettings(broker_run_dir=run_dir),
        influx=InfluxSettings(url="http://127.0.0.1:9"),  # no readings: sensors judged by reports
    )
    with ApiEnv(ledger_url, settings) as env:
        yield env


def _report(api: ApiEnv, gateway: str, sensors: list[dict[str, Any]]) -> None:
    """A gateway's health and online status, as the ingester keeps them."""
    now = datetime.now(UTC)
    h = convert(
        {
            "gateway_id": gateway,
            "bank_code": "bs-batu-merah",
            "boot": "b0000",
            "at": now,
            "uptime_s": 100,
            "outbox_depth": 0,
            "outbox_dropped": 0,
            "mqtt_reconnects": 0,
            "deposits_stored": 0,
            "clock": {"synchronized": True, "source": "timesyncd"},
            "sensors": sensors,
        },
        GatewayHealth,
    )
    st = GatewayStatus(state="online", device_id=gateway, at=now, boot="b0000")
    heard = [fleet.Heard("gateway", "bs-batu-merah", gateway, m, encode_json(m)) for m in (h, st)]
    with Session(api.engine) as session, session.begin():
        fleet.keep_latest(session, heard, now)


def _sensor(sensor_id: str, no_target: int, since: datetime | None) -> dict[str, Any]:
    return {
        "sensor_id": sensor_id,
        "tps_code": "tps-batu-merah",
        "kind": "maxbotix",
        "connected": True,
        "samples_accepted": 5,
        "samples_rejected": no_target,
        "readings": 1,
        "no_target": no_target,
        "no_target_since": since,
    }


def _devices(api: ApiEnv) -> dict[str, dict[str, Any]]:
    resp = api.client.get("/api/fleet", headers=api.bearer("admin"))
    assert resp.status_code == 200, resp.text
    return {d["device_id"]: d for d in resp.json()["devices"]}


def _page(api: ApiEnv, lang: str = "id") -> str:
    resp = api.client.get("/armada", params={"lang": lang}, headers=api.cookie("admin"))
    assert resp.status_code == 200, resp.text
    return unescape(resp.text)


def test_a_sensors_no_target_count_and_its_warning_on_the_api_and_the_page(
    api: ApiEnv,
) -> None:
    now = datetime.now(UTC)
    _report(
        api,
        "gw-nt",
        [_sensor("us-blind", 1234, now - timedelta(hours=1)), _sensor("us-fine", 3, None)],
    )
    found = _devices(api)
    blind, fine = found["us-blind"], found["us-fine"]
    assert (blind["no_target"], blind["condition"]) == (1234, "fault")
    assert [p["code"] for p in blind["problems"]] == ["no_target"]
    assert blind["no_target_since"] is not None
    assert (fine["no_target"], fine["condition"], fine["no_target_since"]) == (3, "ok", None)
    html = _page(api)
    assert 'Bingkai tanpa target</dt><dd class="no-target">1.234 sejak gateway mulai' in html
    assert "⚠ tidak ada target: us-blind (sejak" in html
    assert "3 sejak gateway mulai</dd>" in html
    english = _page(api, "en")
    assert 'No-target frames</dt><dd class="no-target">1.234 since the gateway started' in english
    assert "⚠ no target: us-blind (since" in english


def test_a_gateway_removed_from_the_registry_leaves_the_api_and_the_page(
    api: ApiEnv, run_dir: Path
) -> None:
    registry = devices.Registry(devices.broker_auth_files(run_dir))
    for gateway in ("gw-old", "gw-new"):
        serves = (("tps-batu-merah", f"us-{gateway}"),)
        registry.add(devices.Device("gateway", "bs-batu-merah", gateway, serves=serves))
        _report(api, gateway, [_sensor(f"us-{gateway}", 0, None)])
    assert {"gw-old", "gw-new", "us-gw-old", "us-gw-new"} <= set(_devices(api))
    registry.remove("gw-old")
    left = _devices(api)
    assert "gw-new" in left
    assert "us-gw-new" in left
    assert not {"gw-old", "us-gw-old"} & set(left)
    html = _page(api)
    assert 'data-device="gw-new"' in html
    assert 'data-device="gw-old"' not in html
