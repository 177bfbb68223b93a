"""Settings: environment, TOML file, and a clear error naming each bad field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from api.settings import ApiSettings
from gateway.settings import GatewaySettings
from ingest.main import IngestSettings
from wastebank.config import ConfigError, MqttSettings, load_settings, settings_builtins


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
    # `wastebank gateway` becomes `python -m gateway` (exec): a real process, not CliRunner
    done = subprocess.run(
        [sys.executable, "-m", "wastebank.cli", "gateway"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "a site needs at least one entry in scales or sensors" in done.stderr
    assert "Traceback" not in done.stderr


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


def test_the_example_site_file_is_valid_once_its_placeholder_password_is_replaced(
    tmp_path: Path,
) -> None:
    example = Path(__file__).parent.parent / "deploy" / "site.example.toml"
    # as shipped, the broker password is the example's: the gateway stops at start, naming it
    with pytest.raises(ConfigError, match=r"mqtt\.password.*placeholder.*wastebank device add"):
        load_settings(GatewaySettings, example)
    site = tmp_path / "site.toml"
    site.write_text(example.read_text().replace('"change-me"', '"kT9f2Qx7Lm4Rz8Vw"'))
    settings = load_settings(GatewaySettings, site)
    assert [s.flow for s in settings.scales] == ["kiosk", "attendant"]
    assert settings.outbox.max_age_days == 30


# ---- the loader's rules (docs/operations.md, "Settings") ---------------------------------------


def test_sources_in_order_keywords_environment_file_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "ingest.toml"
    conf.write_text(
        "batch_size = 10\nbatch_max_age_s = 0.5\n[mqtt]\nport = 1999\nhost = 'b.example'\n"
    )
    monkeypatch.setenv("WASTEBANK_BATCH_SIZE", "20")
    monkeypatch.setenv("WASTEBANK_MQTT__PORT", "2999")
    settings = load_settings(IngestSettings, conf, batch_size=30)
    assert (settings.batch_size, settings.batch_max_age_s) == (30, 0.5)
    # a file's table and a variable for one of its fields merge
    assert (settings.mqtt.host, settings.mqtt.port) == ("b.example", 2999)
    assert settings.reconcile.days == 2  # the default
    monkeypatch.setenv("WASTEBANK_CONFIG", str(conf))
    assert load_settings(IngestSettings).batch_size == 20


@pytest.mark.parametrize(
    ("word", "value"),
    [("1", True), ("true", True), ("Yes", True), ("on", True), ("0", False), ("off", False)],
)
def test_environment_booleans_in_the_words_people_use(
    monkeypatch: pytest.MonkeyPatch, word: str, value: bool
) -> None:
    monkeypatch.setenv("WASTEBANK_ACCESS_LOG", word)
    assert load_settings(ApiSettings).access_log is value
    monkeypatch.setenv("WASTEBANK_INFLUX__GZIP", word)  # bool | "auto"
    assert load_settings(ApiSettings).influx.gzip is value


def test_an_empty_variable_leaves_a_setting_that_may_be_unset_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the second review: an empty WASTEBANK_PAGES__BROKER_RUN_DIR was read as "." (the working
    # directory) and the fleet looked for the device registry there
    monkeypatch.setenv("WASTEBANK_PAGES__BROKER_RUN_DIR", "")
    assert load_settings(ApiSettings).pages.broker_run_dir is None
    monkeypatch.setenv("WASTEBANK_PAGES__BROKER_RUN_DIR", "  ")
    assert load_settings(ApiSettings).pages.broker_run_dir is None
    # a setting that must have a value is still refused when empty
    monkeypatch.setenv("WASTEBANK_PORT", "")
    with pytest.raises(ConfigError, match="WASTEBANK_PORT"):
        load_settings(ApiSettings)


def test_environment_lists_and_tables_are_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASTEBANK_KINDS", '["deposit", "fill"]')
    monkeypatch.setenv("WASTEBANK_MONEY", '{"scale_max_g": 5000, "manual_max_g": 9}')
    monkeypatch.setenv("WASTEBANK_MONEY__MANUAL_MAX_G", "7")  # the field's own variable wins
    monkeypatch.setenv("wastebank_money__cities__ambon__scale_max_g", "4000")  # any case
    settings = load_settings(IngestSettings)
    assert settings.kinds == ("deposit", "fill")
    assert (settings.money.scale_max_g, settings.money.manual_max_g) == (5000, 7)
    assert settings.money.city("ambon").pick("scale_max_g") == (
        4000,
        "money.cities.ambon.scale_max_g",
    )
    monkeypatch.setenv("WASTEBANK_KINDS", "deposit")
    with pytest.raises(ConfigError) as err:
        load_settings(IngestSettings)
    assert "  kinds (WASTEBANK_KINDS): bukan JSON / not JSON: 'deposit'" in str(err.value)


def test_every_bad_field_is_named_with_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASTEBANK_BATCH_SIZE", "banyak")
    monkeypatch.setenv("WASTEBANK_MQTT__KEEPALIVE_S", "1")
    monkeypatch.setenv("WASTEBANK_RECONCILE__DAYS", "")
    with pytest.raises(ConfigError) as err:
        load_settings(IngestSettings)
    lines = str(err.value).splitlines()
    assert lines[0] == "invalid IngestSettings settings:"
    assert "  batch_size (WASTEBANK_BATCH_SIZE): Expected `int`, got `str`" in lines
    assert "  mqtt.keepalive_s (WASTEBANK_MQTT__KEEPALIVE_S): Expected `int` >= 5" in lines
    assert "  reconcile.days (WASTEBANK_RECONCILE__DAYS): Expected `int`, got `str`" in lines


def test_a_variable_naming_no_setting_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """As pydantic-settings did: WASTEBANK_CONFIG, WASTEBANK_RUN_DIR and other processes'
    settings share the prefix (docs/operations.md)."""
    monkeypatch.setenv("WASTEBANK_NOT_A_SETTING", "x")
    monkeypatch.setenv("WASTEBANK_HTTP_PORT", "1")  # the gateway's, not the ingester's
    monkeypatch.setenv("WASTEBANK_HTTP__MAX_HEAD_BYTES", "1")  # the API's table
    assert load_settings(IngestSettings).mqtt.port == MqttSettings().port


def test_a_misspelt_variable_inside_a_table_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside a table the process has, a key naming nothing is a typo (pydantic-settings let
    WASTEBANK_MQTT__PASWORD pass, and the broker login failed later), refused as in the file."""
    monkeypatch.setenv("WASTEBANK_MQTT__PASWORD", "rahasia")
    monkeypatch.setenv("WASTEBANK_MONEY__CITIES__AMBON__SCALE_MAX", "5")
    monkeypatch.setenv("WASTEBANK_BATCH_SIZE__X", "5")  # under a setting that is no table
    with pytest.raises(ConfigError) as err:
        load_settings(IngestSettings)
    lines = str(err.value).splitlines()
    assert "  mqtt.pasword (WASTEBANK_MQTT__PASWORD): tidak dikenal / unknown setting" in lines
    assert (
        "  money.cities.ambon.scale_max (WASTEBANK_MONEY__CITIES__AMBON__SCALE_MAX): tidak dikenal"
        " / unknown setting" in lines
    )
    assert "  batch_size.x (WASTEBANK_BATCH_SIZE__X): tidak dikenal / unknown setting" in lines


def test_unknown_keys_in_a_file_are_refused_at_any_depth(tmp_path: Path) -> None:
    conf = tmp_path / "ingest.toml"
    conf.write_text("[mqtt]\nprot = 1999\n[money.cities.ambon]\nscale_max = 5\n")
    with pytest.raises(ConfigError) as err:
        load_settings(IngestSettings, conf)
    text = str(err.value)
    assert "  mqtt.prot (WASTEBANK_MQTT__PROT): Object contains unknown field `prot`" in text
    assert "money.cities[...].scale_max (WASTEBANK_MONEY__CITIES): " in text


def test_a_file_is_typed_but_read_as_pydantic_read_it(tmp_path: Path) -> None:
    """A quoted number where a number belongs is taken (pydantic's lax mode); a word is not."""
    conf = tmp_path / "ingest.toml"
    conf.write_text("batch_size = '42'\n")
    assert load_settings(IngestSettings, conf).batch_size == 42
    conf.write_text("batch_size = 'banyak'\n")
    with pytest.raises(ConfigError, match=r"batch_size \(WASTEBANK_BATCH_SIZE\)"):
        load_settings(IngestSettings, conf)
    conf.write_text("batch_size = \n")
    with pytest.raises(ConfigError, match=f"configuration file {conf}: "):
        load_settings(IngestSettings, conf)


def test_passwords_are_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("rahasia-sekali\n")
    secret.chmod(0o600)
    settings = load_settings(IngestSettings, mqtt={"password_file": str(secret)})
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == "rahasia-sekali"
    assert "rahasia" not in repr(settings)
    assert "rahasia" not in str(settings_builtins(settings))
    assert settings_builtins(settings)["mqtt"]["password"] == "**********"


def test_a_missing_or_loose_password_file_stops_the_process(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(IngestSettings, mqtt={"password_file": str(tmp_path / "nope")})
    assert "  mqtt password: [Errno 2] No such file or directory" in str(err.value)
    loose = tmp_path / "loose"
    loose.write_text("pw\n")
    loose.chmod(0o644)
    with pytest.raises(ConfigError, match=f"influx password: {loose}: mode 644.*chmod 600"):
        load_settings(IngestSettings, influx={"password_file": str(loose)})
    with pytest.raises(ConfigError, match="password and password_file exclude each other"):
        load_settings(IngestSettings, mqtt={"password": "x", "password_file": str(loose)})


def test_the_tls_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("WASTEBANK_MQTT__CA_FILE", str(ca))
    with pytest.raises(ConfigError, match=r"  mqtt \(WASTEBANK_MQTT\): ca_file, cert_file and key"):
        load_settings(IngestSettings)  # a CA without tls = true
    monkeypatch.setenv("WASTEBANK_MQTT__TLS", "true")
    assert load_settings(IngestSettings).mqtt.ca_file == ca
    monkeypatch.setenv("WASTEBANK_MQTT__CERT_FILE", str(ca))
    with pytest.raises(ConfigError, match="cert_file and key_file go together"):
        load_settings(IngestSettings)
    monkeypatch.setenv("WASTEBANK_MQTT__KEY_FILE", str(tmp_path / "missing.key"))
    with pytest.raises(ConfigError) as err:
        load_settings(IngestSettings)
    assert (
        f"  mqtt.key_file (WASTEBANK_MQTT__KEY_FILE): berkas tidak ada / no such file: "
        f"{tmp_path / 'missing.key'}"
    ) in str(err.value)


def test_a_check_of_one_field_names_that_field(tmp_path: Path) -> None:
    conf = tmp_path / "site.toml"
    conf.write_text(
        'bank_code = "bs-batu-merah"\n'
        'api_url = "ftp://central.example"\n'
        "[[scales]]\n"
        'id = "scale-01"\n'
        'port = "/dev/ttyUSB0"\n'
        "[attendant]\n"
        'timezone = "Asia/Atlantis"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_settings(GatewaySettings, conf)
    assert "  attendant.timezone (WASTEBANK_ATTENDANT__TIMEZONE): unknown time zone" in str(
        err.value
    )
    conf.write_text(conf.read_text().replace("Asia/Atlantis", "Asia/Jayapura"))
    with pytest.raises(ConfigError, match=r"  api_url \(WASTEBANK_API_URL\): 'ftp://"):
        load_settings(GatewaySettings, conf)
    conf.write_text(conf.read_text().replace("ftp://central.example", "https://central.example"))
    assert load_settings(GatewaySettings, conf).api_url == "https://central.example/"


def test_a_table_has_one_type_in_every_process() -> None:
    """What the refusal above rests on: processes share the environment, so a key inside a
    table (WASTEBANK_AUTH__...) is a typo for every process only if every process that has the
    table has the same one."""
    import importlib

    import msgspec
    from msgspec import inspect

    classes = {
        "api.settings": "ApiSettings",
        "ingest.settings": "IngestSettings",
        "gateway.settings": "GatewaySettings",
        "wastebank.sms.settings": "SmsSettings",
        "wastebank.tps.watch": "TpsWatchSettings",
        "wastebank.services.core": "ServicesSettings",
        "wastebank.ledger.registry": "MemberPrivacySettings",
        "firmware_sim.tps": "TpsSimSettings",
    }

    def table(kind: object) -> object:
        t = inspect.type_info(kind)
        while isinstance(t, inspect.Metadata):
            t = t.type
        if isinstance(t, inspect.UnionType):  # `X | None`
            members = [m for m in t.types if not isinstance(m, inspect.NoneType)]
            t = members[0] if len(members) == 1 else t
            while isinstance(t, inspect.Metadata):
                t = t.type
        return t.cls if isinstance(t, inspect.StructType) else None

    seen: dict[str, set[object]] = {}
    for module, name in classes.items():
        cls = getattr(importlib.import_module(module), name)
        for f in msgspec.structs.fields(cls):
            if (kind := table(f.type)) is not None:
                seen.setdefault(f.name, set()).add(kind)
    assert "mqtt" in seen
    assert {name: kinds for name, kinds in seen.items() if len(kinds) > 1} == {}


@pytest.mark.parametrize("word", ["change-me", "CHANGEME", " secret ", "password", "test", "dev"])
def test_a_placeholder_broker_or_influx_password_is_refused(word: str) -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.password.*placeholder"):
        load_settings(IngestSettings, mqtt={"password": word})
    with pytest.raises(ConfigError, match=r"influx\.password.*placeholder"):
        load_settings(IngestSettings, influx={"password": word})
    assert load_settings(IngestSettings, mqtt={"password": f"{word.strip()}-k8Qz"}).mqtt.password
