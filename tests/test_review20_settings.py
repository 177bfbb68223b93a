"""Fourth docs review, findings 6 and 8: every number setting is finite and bounded where a
larger one would make the system say what is not so; a per-client bound is never above the total
it is a share of; the simulator's and the registry's errors are bilingual, without a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import ApiSettings, CapacitySettings
from gateway.settings import HEALTH_INTERVAL_MAX_S, GatewaySettings
from wastebank.config import NOT_FINITE, ConfigError, load_settings, settings_table
from wastebank.structs import Invalid


def _site(tmp_path: Path, top: str = "", scale: str = "") -> Path:
    path = tmp_path / "site.toml"
    path.write_text(
        f'bank_code = "bs-01"\n{top}\n[[scales]]\nid = "scale-01"\nport = "/dev/null"\n{scale}\n'
    )
    return path


def _refusal(cls: type[GatewaySettings] | type[ApiSettings], path: Path | None = None) -> str:
    with pytest.raises(ConfigError) as err:
        load_settings(cls, path)
    return str(err.value)


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e999"])
def test_an_endless_number_in_a_site_file_is_refused_in_words(tmp_path: Path, value: str) -> None:
    text = _refusal(
        GatewaySettings,
        _site(
            tmp_path,
            f"health_interval_s = {value}\n[attendant]\napi_timeout_s = {value}",
            f"stability_window_s = {value}",
        ),
    )
    for field in ("health_interval_s", "attendant.api_timeout_s", "scales.0.stability_window_s"):
        assert f"{field} (" in text
        assert NOT_FINITE in text.split(f"{field} (", 1)[1].split("\n")[0]
    assert "Expected" not in text  # not msgspec's "Expected `float` > 0.0"


@pytest.mark.parametrize("value", ["inf", "NaN", "Infinity"])
def test_an_endless_number_in_a_variable_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("WASTEBANK_CAPACITY__WAIT_S", value)
    monkeypatch.setenv("WASTEBANK_FLEET__OFFLINE_AFTER_S", value)
    text = _refusal(ApiSettings)
    assert f"capacity.wait_s (WASTEBANK_CAPACITY__WAIT_S): {NOT_FINITE}" in text
    assert f"fleet.offline_after_s (WASTEBANK_FLEET__OFFLINE_AFTER_S): {NOT_FINITE}" in text


def test_a_table_read_alone_refuses_an_endless_number_too() -> None:
    from gateway.settings import SensorSettings

    sensor = {
        "id": "us-01",
        "tps_code": "tps-01",
        "kind": "json",
        "uplink_topic": "sensors/us-01",
        "empty_distance_mm": 2000,
        "full_distance_mm": 300,
        "ambient_c": float("nan"),
    }
    with pytest.raises(Invalid) as err:
        settings_table(sensor, SensorSettings)
    assert NOT_FINITE in str(err.value)


def test_a_health_interval_past_the_fleets_silence_limit_is_refused(tmp_path: Path) -> None:
    """A longer interval had the fleet list a running gateway offline between its reports."""
    longest = _site(tmp_path, f"health_interval_s = {HEALTH_INTERVAL_MAX_S}")
    assert load_settings(GatewaySettings, longest).health_interval_s == HEALTH_INTERVAL_MAX_S
    text = _refusal(
        GatewaySettings, _site(tmp_path, f"health_interval_s = {HEALTH_INTERVAL_MAX_S + 1}")
    )
    assert "health_interval_s (WASTEBANK_HEALTH_INTERVAL_S)" in text


@pytest.mark.parametrize(
    ("settings", "total"),
    [
        ("http_max_requests = 32\nhttp_max_requests_per_client = 4096", "http_max_requests (32)"),
        (
            "http_max_connections = 32\nhttp_max_requests = 64\nhttp_max_requests_per_client = 64",
            "http_max_connections (32)",
        ),
    ],
)
def test_a_gateway_client_share_above_its_total_is_refused(
    tmp_path: Path, settings: str, total: str
) -> None:
    text = _refusal(GatewaySettings, _site(tmp_path, settings))
    assert "http_max_requests_per_client (WASTEBANK_HTTP_MAX_REQUESTS_PER_CLIENT)" in text
    assert f"lebih dari {total}" in text
    assert f"more than {total}" in text
    equal = _site(tmp_path, "http_max_requests = 32\nhttp_max_requests_per_client = 32")
    assert load_settings(GatewaySettings, equal).http_max_requests_per_client == 32


def test_the_apis_client_shares_above_their_totals_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reviewer's values: they quietly switched the per-client bounds off."""
    monkeypatch.setenv("WASTEBANK_HTTP__MAX_CONNECTIONS", "32")
    monkeypatch.setenv("WASTEBANK_HTTP__MAX_CONNECTIONS_PER_CLIENT", "65536")
    monkeypatch.setenv("WASTEBANK_CAPACITY__PER_CLIENT", "100000")
    text = _refusal(ApiSettings)
    assert "http.max_connections_per_client (WASTEBANK_HTTP__MAX_CONNECTIONS_PER_CLIENT)" in text
    assert "more than max_connections (32)" in text
    whole = CapacitySettings().total
    assert "capacity.per_client (WASTEBANK_CAPACITY__PER_CLIENT)" in text
    assert f"more than requests + queue + logins + login_queue ({whole})" in text
    monkeypatch.setenv("WASTEBANK_HTTP__MAX_CONNECTIONS_PER_CLIENT", "32")
    monkeypatch.setenv("WASTEBANK_CAPACITY__PER_CLIENT", str(whole))
    settings = load_settings(ApiSettings)
    assert (settings.http.max_connections_per_client, settings.capacity.per_client) == (32, whole)


def test_the_registry_file_named_as_the_broker_run_dir_is_refused_naming_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was read as a directory without a registry: "registry not found", beside the file."""
    registry = tmp_path / "mosquitto" / "devices.toml"
    registry.parent.mkdir()
    registry.write_text("")
    monkeypatch.setenv("WASTEBANK_PAGES__BROKER_RUN_DIR", str(registry))
    text = _refusal(ApiSettings)
    assert "pages.broker_run_dir (WASTEBANK_PAGES__BROKER_RUN_DIR)" in text
    assert f"this is the registry file; give its directory: {registry.parent}" in text
    monkeypatch.setenv("WASTEBANK_PAGES__BROKER_RUN_DIR", str(registry.parent))
    assert load_settings(ApiSettings).pages.broker_run_dir == registry.parent


# ---- the commands' words (finding 8) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["scale", "--rate", "0"], "--rate: harus > 0 dan <= 1000 / must be > 0 and <= 1000"),
        (["scale", "--rate", "nan"], "--rate: harus > 0"),
        (["scale", "--interval", "inf"], "--interval: harus > 0"),
        (["scale", "--scenario", "storm"], "--scenario: 'storm' tidak dikenal / unknown"),
        (["scale", "--model", "xk9"], "--model: 'xk9' tidak dikenal / unknown"),
        (["scale", "--baud", "5"], "--baud: harus 300..921600 / must be 300..921600"),
        (["kiosk", "--cards", "abc", "--categories", "plastik"], "--cards: 'abc': UID kartu"),
        (["kiosk", "--cards", ",", "--categories", "plastik"], "--cards: paling sedikit satu"),
        (["kiosk", "--cards", "ABCDEF12", "--categories", "Kertas"], "--categories: 'Kertas'"),
        (["tps", "--kind", "radar"], "--kind: 'radar' tidak dikenal / unknown"),
        (["tps", "--kind", "jsn"], "--link: wajib untuk jsn dan maxbotix / required for jsn"),
        (["tps", "--interval", "-1"], "--interval: harus > 0"),
        (["tps", "--tps", "TPS 1"], "--tps: 'TPS 1': huruf kecil, angka dan -"),
    ],
)
def test_a_bad_simulator_option_is_said_in_both_languages_without_a_traceback(
    tmp_path: Path, args: list[str], said: str
) -> None:
    from typer.testing import CliRunner

    from wastebank.cli import app

    command, *rest = args
    link = [] if command == "tps" else ["--link", str(tmp_path / "tty")]
    result = CliRunner().invoke(app, ["sim", command, *link, *rest])
    assert result.exit_code == 2, result.output
    assert said in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "tty").exists()  # refused before the pty appears


@pytest.mark.parametrize(
    ("command", "indonesian"),
    [
        (["device", "add"], "Terbitkan kata sandi MQTT perangkat / Issue"),
        (["device", "list"], "Daftar perangkat di listener TLS dan topiknya / The devices"),
        (["device", "remove"], "Cabut perangkat"),
        (["sim", "scale"], "Indikator timbangan simulasi"),
        (["sim", "tps"], "Sensor isi TPS simulasi"),
        (["sim", "kiosk"], "Timbangan kiosk simulasi"),
        (["ledger", "verify"], "Periksa pembukuan"),
    ],
)
def test_the_commands_help_is_in_bahasa_indonesia_first(
    command: list[str], indonesian: str
) -> None:
    from typer.testing import CliRunner

    from wastebank.cli import app

    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert indonesian in result.output
    assert "berkas pengaturan TOML / TOML settings file" in result.output or command[0] == "sim"
