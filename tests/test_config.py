"""Settings: environment, TOML file, and a clear error naming each bad field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.settings import GatewaySettings
from ingest.main import IngestSettings
from wastebank.cli import app
from wastebank.config import ConfigError, load_settings


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASTEBANK_MQTT__PORT", "1999")
    monkeypatch.setenv("WASTEBANK_BATCH_SIZE", "42")
    settings = load_settings(IngestSettings)
    assert settings.mqtt.port == 1999
    assert settings.batch_size == 42


def test_toml_file_is_read_and_env_wins_over_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "gateway.toml"
    conf.write_text(
        'bank_code = "bs-batu-merah"\n'
        "health_interval_s = 60\n"
        "[mqtt]\n"
        'host = "broker.example"\n'
        "[[scales]]\n"
        'id = "scale-01"\n'
        'port = "/dev/serial/by-id/usb-FTDI_FT232R-if00-port0"\n'
        "baudrate = 2400\n"
        'flow = "attendant"\n'
    )
    settings = load_settings(GatewaySettings, conf)
    (scale,) = settings.scales
    assert (settings.bank_code, scale.baudrate, scale.flow, settings.mqtt.host) == (
        "bs-batu-merah",
        2400,
        "attendant",
        "broker.example",
    )
    monkeypatch.setenv("WASTEBANK_HEALTH_INTERVAL_S", "5")
    assert load_settings(GatewaySettings, conf).health_interval_s == 5


def test_bad_values_name_the_field_and_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASTEBANK_MQTT__PORT", "not-a-port")
    monkeypatch.setenv("WASTEBANK_BANK_CODE", "Bank Sampah!")
    with pytest.raises(ConfigError) as err:
        load_settings(GatewaySettings)
    text = str(err.value)
    assert "mqtt.port (WASTEBANK_MQTT__PORT)" in text
    assert "bank_code (WASTEBANK_BANK_CODE)" in text
    assert "scales (WASTEBANK_SCALES)" not in text  # optional: a site may have only sensors


def test_unknown_keys_in_a_file_are_refused(tmp_path: Path) -> None:
    conf = tmp_path / "ingest.toml"
    conf.write_text("batch_sise = 10\n")
    with pytest.raises(ConfigError, match="batch_sise"):
        load_settings(IngestSettings, conf)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(IngestSettings, tmp_path / "nope.toml")


def test_process_refuses_to_start_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WASTEBANK_SCALES", raising=False)
    monkeypatch.setenv("WASTEBANK_BANK_CODE", "bs-batu-merah")
    result = CliRunner().invoke(app, ["gateway"])
    assert result.exit_code == 2
    assert "a site needs at least one entry in scales or sensors" in result.output


def test_a_site_file_names_the_bad_scale_field(tmp_path: Path) -> None:
    conf = tmp_path / "site.toml"
    conf.write_text(
        'bank_code = "bs-batu-merah"\n'
        "[[scales]]\n"
        'id = "scale-01"\n'
        'port = "/dev/ttyUSB0"\n'
        'parity = "X"\n'
        "[[scales]]\n"
        'id = "scale-01"\n'
        'port = "/dev/ttyUSB1"\n'
    )
    with pytest.raises(ConfigError, match=r"scales\.0\.parity"):
        load_settings(GatewaySettings, conf)
    conf.write_text(conf.read_text().replace('parity = "X"\n', ""))
    with pytest.raises(ConfigError, match="scale ids must be unique"):
        load_settings(GatewaySettings, conf)


def test_the_example_site_file_is_valid() -> None:
    example = Path(__file__).parent.parent / "deploy" / "site.example.toml"
    settings = load_settings(GatewaySettings, example)
    assert [s.flow for s in settings.scales] == ["kiosk", "attendant"]
    assert settings.outbox.max_age_days == 30
