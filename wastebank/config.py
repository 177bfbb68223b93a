"""Settings shared by every process: one typed class per process, validated at start.

Values come from (highest first): keyword arguments, ``WASTEBANK_*`` environment variables
(nested fields with ``__``, e.g. ``WASTEBANK_MQTT__PORT=1883``), the TOML file named by
``WASTEBANK_CONFIG`` (or ``--config``), then the defaults here. The defaults match what
``wastebank services up`` starts on loopback, so a developer needs no configuration at all.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, FilePath, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from wastebank.errors import SetupError

RUN_DIR = Path(os.environ.get("WASTEBANK_RUN_DIR", Path.cwd() / ".run"))
SECRETS_DIR = RUN_DIR / "secrets"
"""Passwords `wastebank services up` generates for this checkout's processes (0700, files 0600)."""

PORTS_FILE = RUN_DIR / "ports.toml"
"""The ports this checkout's services use, chosen by the first `wastebank services up`: the
built-in ones below unless another program (another checkout's services) already had them."""
BUILTIN_PORTS = {"mqtt": 11883, "influx": 18086, "postgresql": 15432, "mqtt_tls": 18883}


def recorded_ports(path: Path = PORTS_FILE) -> dict[str, int]:
    try:
        recorded = tomllib.loads(path.read_text())
    except FileNotFoundError:
        recorded = {}
    return {name: int(recorded.get(name, port)) for name, port in BUILTIN_PORTS.items()}


_PORTS = recorded_ports()
DEFAULT_MQTT_PORT = _PORTS["mqtt"]
DEFAULT_INFLUX_PORT = _PORTS["influx"]
DEFAULT_POSTGRESQL_PORT = _PORTS["postgresql"]
DEFAULT_MQTT_TLS_PORT = _PORTS["mqtt_tls"]


def read_secret(path: Path) -> str:
    """A password kept in a file: its first line, refused when others may read the file."""
    mode = path.stat().st_mode
    if mode & 0o077:
        raise ValueError(
            f"{path}: mode {mode & 0o777:o}, boleh dibaca orang lain / readable by others; "
            f"chmod 600 {path}"
        )
    lines = path.read_text().splitlines()
    if not lines or not lines[0]:
        raise ValueError(f"{path}: kosong / empty")
    return lines[0]


class MqttSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_MQTT_PORT, ge=1, le=65535)
    username: str | None = Field(
        default=None,
        description="broker identity; unset: the process's own (ingest, api, tps, sim; a "
        "gateway's gateway_id). Client ids are '{username}@...' (docs/operations.md)",
    )
    password: SecretStr | None = None
    password_file: Path | None = Field(
        default=None,
        description="a file (mode 0600) whose first line is the password; instead of password",
    )
    credentials_dir: Path | None = Field(
        default=None,
        description="where `services up` keeps local passwords, one file per username; "
        "used when neither password nor password_file is set (default: .run/secrets/mqtt)",
    )
    topic_prefix: str = Field(
        default="",
        pattern=r"^([A-Za-z0-9_-]+/)*$",
        description="empty in production; tests isolate",
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    tls: bool = Field(
        default=False,
        description="TLS to the broker (its TLS listener, e.g. port 18883); the broker's "
        "certificate and host name are always verified",
    )
    ca_file: FilePath | None = Field(
        default=None,
        description="CA certificate(s) to verify the broker with: the site CA from `wastebank "
        "certs init` (ca.crt); unset: the system's trusted CAs",
    )
    cert_file: FilePath | None = Field(
        default=None, description="client certificate, for a broker that asks for one"
    )
    key_file: FilePath | None = Field(default=None, description="its private key (PEM)")

    @model_validator(mode="after")
    def _tls_files(self) -> Self:
        if not self.tls and (self.ca_file or self.cert_file or self.key_file):
            raise ValueError("ca_file, cert_file and key_file need tls = true")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.password is not None and self.password_file is not None:
            raise ValueError("password and password_file exclude each other")
        return self

    def as_user(self, default_user: str | None) -> MqttSettings:
        """These settings with a username (``default_user`` when unset) and its password: given,
        from ``password_file``, or from the local credentials `services up` wrote, if any."""
        user = self.username or default_user
        password = self.password
        if password is None and self.password_file is not None:
            password = SecretStr(read_secret(self.password_file))
        elif password is None and user is not None:
            local = (self.credentials_dir or SECRETS_DIR / "mqtt") / user
            if local.is_file():
                password = SecretStr(read_secret(local))
        return self.model_copy(update={"username": user, "password": password})


INFLUXQL_DURATION = r"^(INF|[1-9][0-9]*[hdw])$"

INFLUX_ADMIN = "admin"
"""The InfluxDB 1.x admin `services up` creates: the schema (databases, retention policies),
users and grants; the test suite's own login."""
INFLUX_ROLES: dict[str, Literal["ALL", "READ"]] = {"ingest": "ALL", "api": "READ", "tps": "READ"}
"""The InfluxDB 1.x user of each process (its broker identity) and its privilege on the city's
database. The ingester writes and also reads (the daily reconciliation, `influx
rebuild-deposits`' DELETE and roll-ups, the schema check); the API and `tps watch` only read."""


class InfluxSettings(BaseModel):
    """Where points go and how. See docs/protocol.md, "InfluxDB schema", and
    docs/operations.md, "InfluxDB users"."""

    url: str = f"http://127.0.0.1:{DEFAULT_INFLUX_PORT}"
    database: str = Field(default="wastebank", pattern=r"^[A-Za-z0-9_]+$")
    username: str | None = Field(
        default=None,
        description="1.x user; unset: the process's own (ingest, api, tps) when `services up` "
        "left its password in credentials_dir, else none (anonymous, or a token)",
    )
    password: SecretStr | None = None
    password_file: Path | None = Field(
        default=None,
        description="a file (mode 0600) whose first line is the password; instead of password",
    )
    credentials_dir: Path | None = Field(
        default=None,
        description="where `services up` keeps local passwords, one file per username; used "
        "when neither password, password_file nor token is set (default: .run/secrets/influxdb)",
    )
    timeout_s: float = Field(default=10.0, gt=0)
    api: Literal["auto", "v1", "v2"] = Field(
        default="auto",
        description="write API: v1 /write, v2 /api/v2/write; auto asks /ping for the version",
    )
    token: SecretStr | None = Field(
        default=None, description="2.x/3.x API token (sent as 'Authorization: Token ...')"
    )
    org: str | None = Field(default=None, description="2.x organisation (v2 writes); '-' if unset")
    bucket: str | None = Field(
        default=None,
        description="v2 bucket; default: the database (1.8 forward compatibility: 'db/rp')",
    )
    gzip: bool | Literal["auto"] = Field(
        default="auto",
        description="gzip write bodies of >= gzip_min_bytes: true, false, auto (true off loopback)",
    )
    gzip_min_bytes: int = Field(default=16_384, ge=0)
    max_body_bytes: int = Field(
        default=10_000_000,
        gt=0,
        description="larger batches are refused as too large before sending (3.x: 10 MiB)",
    )
    retention_raw: str = Field(
        default="90d", pattern=INFLUXQL_DURATION, description="1.x RP 'raw' (DEFAULT)"
    )
    retention_hourly: str = Field(
        default="INF", pattern=INFLUXQL_DURATION, description="1.x RP 'hourly' (downsampled)"
    )
    downsample_lookback: str = Field(
        default="2d",
        pattern=r"^[1-9][0-9]*[hdw]$",
        description="each hourly CQ recomputes this far back, for late (store-and-forward) data",
    )

    @model_validator(mode="after")
    def _one_password(self) -> Self:
        if self.password is not None and self.password_file is not None:
            raise ValueError("password and password_file exclude each other")
        return self

    def as_user(self, default_user: str | None) -> InfluxSettings:
        """These settings with a 1.x username and password: the ones given (``password`` or
        ``password_file``), else ``default_user``'s local password from `services up`, if it
        left one. A token (2.x/3.x) needs none: unchanged. No password found and no username
        given: no username either (an anonymous client, e.g. of a server without auth)."""
        if self.token is not None:
            return self
        user = self.username or default_user
        password = self.password
        if password is None and self.password_file is not None:
            password = SecretStr(read_secret(self.password_file))
        elif password is None and user is not None and (folder := self._local_credentials()):
            local = folder / user
            if local.is_file():
                password = SecretStr(read_secret(local))
        if password is None and self.username is None:
            user = None
        return self.model_copy(update={"username": user, "password": password})

    def _local_credentials(self) -> Path | None:
        """``credentials_dir``; unset, `services up`'s folder, but only for a server on this
        machine: a URL naming another host is never sent this checkout's passwords."""
        if self.credentials_dir is not None:
            return self.credentials_dir
        host = urlsplit(self.url).hostname or ""
        if host in ("localhost", "::1") or host.startswith("127."):
            return SECRETS_DIR / "influxdb"
        return None


def default_ledger_url() -> str:
    return f"sqlite:///{RUN_DIR / 'ledger.db'}"


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def postgresql_secrets_dir(run_dir: Path | None = None) -> Path:
    """Where `services up` keeps the passwords of its PostgreSQL's roles, a file per role (0600,
    the folder 0700): ``postgres`` (the superuser: `services up` and the test suite only) and
    ``wastebank`` (the ledger's processes)."""
    return (run_dir or RUN_DIR).resolve() / "secrets" / "postgres"


def local_postgresql_password_file(
    host: str | None, port: int | None, user: str | None
) -> Path | None:
    """The file holding ``user``'s password when ``host:port`` is this checkout's own PostgreSQL
    (loopback, the port in .run/ports.toml) and `services up` gave that role one; else None.

    Never a file for any other server, so a URL naming another host is never sent a local
    password: those log in with a password of their own (libpq's ``passfile``, see
    docs/operations.md, "PostgreSQL roles and passwords")."""
    if host not in LOOPBACK_HOSTS or not user:
        return None
    if port != recorded_ports(PORTS_FILE)["postgresql"]:
        return None
    path = postgresql_secrets_dir() / user
    return path if path.is_file() else None


class ConfigError(SetupError):
    """Settings failed validation; the message names every bad field."""


class WastebankSettings(BaseSettings):
    """Base for each process's settings class."""

    model_config = SettingsConfigDict(
        env_prefix="WASTEBANK_", env_nested_delimiter="__", extra="forbid"
    )
    config_file: ClassVar[Path | None] = None
    broker_user: ClassVar[str | None] = None
    """The broker identity of the process these settings are for, when ``mqtt.username`` is
    unset (see :meth:`MqttSettings.as_user`)."""

    def default_broker_user(self) -> str | None:
        return self.broker_user

    def default_influx_user(self) -> str | None:
        """The InfluxDB user of the process these settings are for, when ``influx.username``
        is unset: its broker identity, if that has an InfluxDB role (``INFLUX_ROLES``)."""
        return self.broker_user if self.broker_user in INFLUX_ROLES else None

    @model_validator(mode="after")
    def _influx_identity(self) -> Self:
        influx = getattr(self, "influx", None)
        if isinstance(influx, InfluxSettings):
            try:
                self.influx = influx.as_user(self.default_influx_user())
            except OSError as exc:
                raise ValueError(f"influx password: {exc}") from None
        return self

    @model_validator(mode="after")
    def _broker_identity(self) -> Self:
        mqtt = getattr(self, "mqtt", None)
        if isinstance(mqtt, MqttSettings):
            try:
                self.mqtt = mqtt.as_user(self.default_broker_user())
            except OSError as exc:
                raise ValueError(f"mqtt password: {exc}") from None
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = cls.config_file or _env_config_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


S = TypeVar("S", bound=WastebankSettings)


def _env_config_path() -> Path | None:
    value = os.environ.get("WASTEBANK_CONFIG")
    return Path(value) if value else None


def load_settings(cls: type[S], config_file: Path | None = None, **overrides: Any) -> S:
    """Build ``cls`` from its sources; raise ConfigError with one line per bad field."""
    path = config_file or _env_config_path()
    if path is not None and not path.is_file():
        raise ConfigError(f"configuration file not found: {path}")
    try:
        bound = type(cls.__name__, (cls,), {"config_file": path})
        return bound(**overrides)  # type: ignore[no-any-return]
    except ValidationError as exc:
        lines = [f"invalid {cls.__name__} settings:"]
        for err in exc.errors():
            if not err["loc"]:
                lines.append(f"  {err['msg']}")
                continue
            field = ".".join(str(p) for p in err["loc"])
            env = "WASTEBANK_" + "__".join(str(p) for p in err["loc"]).upper()
            lines.append(f"  {field} ({env}): {err['msg']}")
        raise ConfigError("\n".join(lines)) from None
