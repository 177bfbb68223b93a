"""Settings shared by every process: one typed class per process, validated at start.

Values come from (highest first): keyword arguments, ``WASTEBANK_*`` environment variables
(nested fields with ``__``, e.g. ``WASTEBANK_MQTT__PORT=1883``), the TOML file named by
``WASTEBANK_CONFIG`` (or ``--config``), then the defaults here. The defaults match what
``wastebank services up`` starts on loopback, so a developer needs no configuration at all.

Each settings class is a msgspec Struct (a Pi's gateway cannot spare pydantic, docs/scaling.md);
:func:`load_settings` gathers the sources and converts them in one place. The rules a user meets
(which environment forms are read, strict or lax types) are in docs/operations.md, "Settings".
"""

from __future__ import annotations

import copy
import json
import math
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from wastebank.errors import BadInput, SetupError
from wastebank.structs import Invalid, Loc, problem, yes_no

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


class SecretStr:
    """A password or key: never shown by ``repr``, ``str`` or a log line; its one reader is
    :meth:`get_secret_value` (the name and method are pydantic's, which it replaces)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('**********')"

    def __str__(self) -> str:
        return "**********"

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class FilePath(type(Path())):  # type: ignore[misc]
    """A path that must name an existing file when the settings are loaded."""


def _decode(kind: type, value: Any) -> Any:
    """The types msgspec leaves to us: paths, existing files and secrets, from strings."""
    if isinstance(value, kind):
        return value
    if not isinstance(value, str | Path):
        raise TypeError(f"Expected `str`, got `{type(value).__name__}`")
    if kind is FilePath:
        path = FilePath(value)
        if not path.is_file():
            raise ValueError(f"berkas tidak ada / no such file: {path}")
        return path
    if kind is Path:
        return Path(value)
    if kind is SecretStr and isinstance(value, str):
        return SecretStr(value)
    raise NotImplementedError


def _encode(value: Any) -> Any:
    """The reverse of :func:`_decode` for ``msgspec.to_builtins``: a secret stays hidden."""
    if isinstance(value, Path | SecretStr):
        return str(value)
    raise NotImplementedError


def settings_builtins(settings: msgspec.Struct) -> Any:
    """Settings as dicts, lists and strings (paths as text, secrets as ``**********``)."""
    return msgspec.to_builtins(settings, enc_hook=_encode)


class FieldError(BadInput, ValueError):
    """A check of one field made in ``__post_init__``: :func:`load_settings` names the field
    (``attendant.timezone``), not only the table it is in. A ValueError, as msgspec wants."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _problem(exc: msgspec.ValidationError) -> tuple[Loc, str]:
    loc, msg = problem(exc)
    if isinstance(exc.__cause__, FieldError):
        loc = (*loc, exc.__cause__.field)
    return loc, msg


PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "password", "dev", "test"})
"""Words an example file or a careless hand leaves where a secret belongs: refused as keys and
as passwords, so a process with one stops at start instead of being refused by the broker."""


def check_not_placeholder(field: str, value: SecretStr | None, hint: str) -> None:
    """A password or key that is one of ``PLACEHOLDER_SECRETS``: refused, with where to get
    a real one."""
    if value is not None and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
        raise FieldError(
            field, f"sandi contoh, bukan sandi sungguhan / a placeholder, not a password: {hint}"
        )


def check_key(field: str, value: SecretStr | None, min_length: int = 32) -> None:
    """A signing or hashing key: unset, or at least ``min_length`` characters."""
    if value is not None and len(value) < min_length:
        raise FieldError(
            field,
            f"kunci paling sedikit {min_length} karakter acak / a key of at least {min_length} "
            "random characters",
        )


def share_within(name: str, share: int, total_name: str, total: int) -> None:
    """A per-client bound (``name``) above the total it is a share of (``total_name``) bounds
    nothing: refused, naming both."""
    if share > total:
        raise FieldError(
            name,
            f"{share} lebih dari {total_name} ({total}): batas per klien tidak berlaku / "
            f"more than {total_name} ({total}): the per-client bound would bound nothing",
        )


PasswordFile = Annotated[
    Path | None,
    Meta(description="a file (mode 0600) whose first line is the password; instead of password"),
]


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every settings table: unknown keys refused, every field given by name."""


class MqttSettings(Settings, kw_only=True):
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = DEFAULT_MQTT_PORT
    username: Annotated[
        str | None,
        Meta(
            description="broker identity; unset: the process's own (ingest, api, tps, sim; a "
            "gateway's gateway_id). Client ids are '{username}@...' (docs/operations.md)"
        ),
    ] = None
    password: SecretStr | None = None
    password_file: PasswordFile = None
    credentials_dir: Annotated[
        Path | None,
        Meta(
            description="where `services up` keeps local passwords, one file per username; "
            "used when neither password nor password_file is set (default: .run/secrets/mqtt)"
        ),
    ] = None
    topic_prefix: Annotated[
        str, Meta(pattern=r"^([A-Za-z0-9_-]+/)*$", description="empty in production; tests isolate")
    ] = ""
    keepalive_s: Annotated[int, Meta(ge=5, le=3600)] = 30
    tls: Annotated[
        bool,
        Meta(
            description="TLS to the broker (its TLS listener, e.g. port 18883); the broker's "
            "certificate and host name are always verified"
        ),
    ] = False
    ca_file: Annotated[
        FilePath | None,
        Meta(
            description="CA certificate(s) to verify the broker with: the site CA from "
            "`wastebank certs init` (ca.crt); unset: the system's trusted CAs"
        ),
    ] = None
    cert_file: Annotated[
        FilePath | None, Meta(description="client certificate, for a broker that asks for one")
    ] = None
    key_file: Annotated[FilePath | None, Meta(description="its private key (PEM)")] = None

    def __post_init__(self) -> None:
        if not self.tls and (self.ca_file or self.cert_file or self.key_file):
            raise ValueError("ca_file, cert_file and key_file need tls = true")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        _one_password(self.password, self.password_file)
        check_not_placeholder(
            "password",
            self.password,
            "`wastebank device add` issues a device's; `services up` writes the local ones",
        )

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
        return _with_login(self, user, password)


L = TypeVar("L", MqttSettings, "InfluxSettings")


def _with_login(settings: L, user: str | None, password: SecretStr | None) -> L:
    """A copy of ``settings`` with this login, unchecked: a password read from
    ``password_file`` sits beside it, which a user may not write."""
    out = copy.copy(settings)
    out.username, out.password = user, password
    return out


def _one_password(password: SecretStr | None, password_file: Path | None) -> None:
    if password is not None and password_file is not None:
        raise ValueError("password and password_file exclude each other")


INFLUXQL_DURATION = r"^(INF|[1-9][0-9]*[hdw])$"

INFLUX_ADMIN = "admin"
"""The InfluxDB 1.x admin `services up` creates: the schema (databases, retention policies),
users and grants; the test suite's own login."""
INFLUX_ROLES: dict[str, Literal["ALL", "READ"]] = {"ingest": "ALL", "api": "READ", "tps": "READ"}
"""The InfluxDB 1.x user of each process (its broker identity) and its privilege on the city's
database. The ingester writes and also reads (the daily reconciliation, `influx
rebuild-deposits`' DELETE and roll-ups, the schema check); the API and `tps watch` only read."""


class InfluxSettings(Settings, kw_only=True):
    """Where points go and how. See docs/protocol.md, "InfluxDB schema", and
    docs/operations.md, "InfluxDB users"."""

    url: str = f"http://127.0.0.1:{DEFAULT_INFLUX_PORT}"
    database: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_]+$")] = "wastebank"
    username: Annotated[
        str | None,
        Meta(
            description="1.x user; unset: the process's own (ingest, api, tps) when `services "
            "up` left its password in credentials_dir, else none (anonymous, or a token)"
        ),
    ] = None
    password: SecretStr | None = None
    password_file: PasswordFile = None
    credentials_dir: Annotated[
        Path | None,
        Meta(
            description="where `services up` keeps local passwords, one file per username; used "
            "when neither password, password_file nor token is set (default: "
            ".run/secrets/influxdb)"
        ),
    ] = None
    timeout_s: Annotated[float, Meta(gt=0)] = 10.0
    api: Annotated[
        Literal["auto", "v1", "v2"],
        Meta(description="write API: v1 /write, v2 /api/v2/write; auto asks /ping for the version"),
    ] = "auto"
    token: Annotated[
        SecretStr | None,
        Meta(description="2.x/3.x API token (sent as 'Authorization: Token ...')"),
    ] = None
    org: Annotated[str | None, Meta(description="2.x organisation (v2 writes); '-' if unset")] = (
        None
    )
    bucket: Annotated[
        str | None,
        Meta(description="v2 bucket; default: the database (1.8 forward compatibility: 'db/rp')"),
    ] = None
    gzip: Annotated[
        bool | Literal["auto"],
        Meta(
            description="gzip write bodies of >= gzip_min_bytes: true, false, auto (true off "
            "loopback)"
        ),
    ] = "auto"
    gzip_min_bytes: Annotated[int, Meta(ge=0)] = 16_384
    max_body_bytes: Annotated[
        int,
        Meta(
            gt=0, description="larger batches are refused as too large before sending (3.x: 10 MiB)"
        ),
    ] = 10_000_000
    retention_raw: Annotated[
        str, Meta(pattern=INFLUXQL_DURATION, description="1.x RP 'raw' (DEFAULT)")
    ] = "90d"
    retention_hourly: Annotated[
        str, Meta(pattern=INFLUXQL_DURATION, description="1.x RP 'hourly' (downsampled)")
    ] = "INF"
    downsample_lookback: Annotated[
        str,
        Meta(
            pattern=r"^[1-9][0-9]*[hdw]$",
            description="each hourly CQ recomputes this far back, for late (store-and-forward) "
            "data",
        ),
    ] = "2d"

    def __post_init__(self) -> None:
        _one_password(self.password, self.password_file)
        check_not_placeholder(
            "password", self.password, "`services up` writes the local ones (docs/operations.md)"
        )

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
        return _with_login(self, user, password)

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


class WastebankSettings(Settings, kw_only=True):
    """Base for each process's settings class: build one with :func:`load_settings`."""

    broker_user: ClassVar[str | None] = None
    """The broker identity of the process these settings are for, when ``mqtt.username`` is
    unset (see :meth:`MqttSettings.as_user`)."""

    def default_broker_user(self) -> str | None:
        return self.broker_user

    def default_influx_user(self) -> str | None:
        """The InfluxDB user of the process these settings are for, when ``influx.username``
        is unset: its broker identity, if that has an InfluxDB role (``INFLUX_ROLES``)."""
        return self.broker_user if self.broker_user in INFLUX_ROLES else None

    def __post_init__(self) -> None:
        """The identities: a subclass with checks of its own calls this first."""
        influx = getattr(self, "influx", None)
        if isinstance(influx, InfluxSettings):
            try:
                self.influx = influx.as_user(self.default_influx_user())
            except (OSError, ValueError) as exc:  # a missing file, one others may read
                raise ValueError(f"influx password: {exc}") from None
        mqtt = getattr(self, "mqtt", None)
        if isinstance(mqtt, MqttSettings):
            try:
                self.mqtt = mqtt.as_user(self.default_broker_user())
            except (OSError, ValueError) as exc:  # a missing file, one others may read
                raise ValueError(f"mqtt password: {exc}") from None


S = TypeVar("S", bound=WastebankSettings)
T = TypeVar("T")
ENV_PREFIX = "WASTEBANK_"
NESTING = "__"


def _env_config_path() -> Path | None:
    value = os.environ.get("WASTEBANK_CONFIG")
    return Path(value) if value else None


def env_name(loc: Loc) -> str:
    """The environment variable of the setting at ``loc`` (``("mqtt", "port")``:
    ``WASTEBANK_MQTT__PORT``); inside a table of any keys (``"..."``), the table's."""
    named = loc[: loc.index("...")] if "..." in loc else loc
    return ENV_PREFIX + NESTING.join(str(p) for p in named).upper()


def field_name(loc: Loc) -> str:
    """``loc`` as the settings file names it: ``mqtt.port``, ``scales.0.port``,
    ``money.scales[...]`` (a key of the table, or its value)."""
    return ".".join(str(p) for p in loc).replace("....", "[...]")


def load_settings(cls: type[S], config_file: Path | None = None, **overrides: Any) -> S:
    """Build ``cls`` from its sources; raise ConfigError with one line per bad field."""
    path = config_file or _env_config_path()
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"berkas pengaturan tidak ada / configuration file not found: {path}"
            ) from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                f"berkas pengaturan {path} tidak terbaca / configuration file {path}: {exc}"
            ) from None
    problems: list[tuple[Loc, str]] = []
    _merge(data, _environment(cls, problems))
    data.update(overrides)
    problems += _field_problems(cls, data)
    if not problems:
        try:
            return msgspec.convert(data, cls, strict=False, dec_hook=_decode)
        except msgspec.ValidationError as exc:
            problems.append(_problem(exc))
    lines = [f"invalid {cls.__name__} settings:"]
    for loc, msg in problems:
        lines.append(f"  {field_name(loc)} ({env_name(loc)}): {msg}" if loc else f"  {msg}")
    raise ConfigError("\n".join(lines))


def settings_table(value: Any, cls: type[T]) -> T:
    """One table of a settings file (e.g. a site file's ``[[sensors]]`` entry) as ``cls``,
    read as :func:`load_settings` reads it; :class:`~wastebank.structs.Invalid` if it does not
    fit."""
    from msgspec import inspect

    if endless := _not_finite(inspect.type_info(cls), value, ()):
        raise Invalid(endless)
    try:
        return msgspec.convert(value, cls, strict=False, dec_hook=_decode)
    except msgspec.ValidationError as exc:
        raise Invalid([_problem(exc)]) from None


NOT_FINITE = "harus bilangan terhingga / must be a finite number"


def _not_finite(kind: Any, value: Any, loc: Loc) -> list[tuple[Loc, str]]:
    """Where ``value`` gives a number setting of ``kind`` infinity or NaN (TOML's ``inf`` and
    ``nan``, ``1e999``, or such text in a variable): refused, whatever the setting's bounds.
    A bound of ``> 0`` lets infinity through, which msgspec's message for NaN ("Expected
    `float` > 0.0") does not explain; an endless interval or limit is never meant."""
    from msgspec import inspect

    if isinstance(value, dict):
        table = _unwrapped(kind, (inspect.StructType, inspect.DictType))
        if isinstance(table, inspect.StructType):
            types = {f.encode_name: f.type for f in table.fields}
            return [
                p
                for key, item in value.items()
                if key in types
                for p in _not_finite(types[key], item, (*loc, key))
            ]
        if isinstance(table, inspect.DictType):
            return [
                p
                for item in value.values()
                for p in _not_finite(table.value_type, item, (*loc, "..."))
            ]
        return []
    if isinstance(value, list):
        items = _unwrapped(kind, (inspect.ListType,))
        if isinstance(items, inspect.ListType):
            return [
                p
                for i, item in enumerate(value)
                for p in _not_finite(items.item_type, item, (*loc, i))
            ]
        return []
    if not isinstance(_unwrapped(kind, (inspect.FloatType,)), inspect.FloatType):
        return []
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return []  # not a number at all: msgspec says so
    if isinstance(value, float) and not math.isfinite(value):
        return [(loc, NOT_FINITE)]
    return []


def _field_problems(cls: type[msgspec.Struct], data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """Every top-level field's first problem (msgspec stops at the first of all), and each
    unknown key, so an operator fixes a file in one go rather than a field per start."""
    from msgspec import inspect

    fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
    out: list[tuple[Loc, str]] = []
    for key, value in data.items():
        found = fields.get(key)
        if found is None:
            out.append(((key,), "tidak dikenal / unknown setting"))
            continue
        if endless := _not_finite(inspect.type_info(found.type), value, (key,)):
            out += endless
            continue
        try:
            msgspec.convert(value, found.type, strict=False, dec_hook=_decode)
        except msgspec.ValidationError as exc:
            loc, msg = _problem(exc)
            out.append(((key, *loc), msg))
    for name, f in fields.items():
        required = f.default is msgspec.NODEFAULT and f.default_factory is msgspec.NODEFAULT
        if required and name not in data:
            out.append(((name,), "wajib diisi / required"))
    return out


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    """``new`` over ``into``, tables merged key by key (a file's ``[mqtt]`` and
    ``WASTEBANK_MQTT__PORT`` both count)."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _environment(cls: type[msgspec.Struct], problems: list[tuple[Loc, str]]) -> dict[str, Any]:
    """The ``WASTEBANK_*`` variables that name a setting of ``cls``, as nested tables.

    Names are matched without regard to case. A variable naming no setting is not ours to judge
    (``WASTEBANK_CONFIG``, ``WASTEBANK_RUN_DIR``, another process's settings) and is left
    alone, as pydantic-settings did; but one inside a table of ``cls`` naming nothing there
    (``WASTEBANK_MQTT__PASWORD``) is a problem. A list, table or tuple is JSON; a variable for
    a table and one for a field inside it (``WASTEBANK_MONEY`` and
    ``WASTEBANK_MONEY__SCALE_MAX_G``) merge, the field's winning. Booleans: 1/0, true/false,
    yes/no, on/off, t/f, y/n."""
    from msgspec import inspect

    root = inspect.type_info(cls)
    found: dict[str, Any] = {}
    named = [
        (name[len(ENV_PREFIX) :].lower().split(NESTING), value)
        for name, value in os.environ.items()
        if name.upper().startswith(ENV_PREFIX)
    ]
    for parts, raw in sorted(named, key=lambda item: len(item[0])):
        kind = _walk(root, parts)
        if kind is None:
            if len(parts) > 1 and _walk(root, parts[:1]) is not None:
                # Inside a table of this process's (every process that has the table has the
                # same one): a misspelt key, refused as the file's would be.
                problems.append((tuple(parts), "tidak dikenal / unknown setting"))
            continue
        try:
            value = _env_value(kind, raw)
        except ValueError as exc:
            problems.append((tuple(parts), str(exc)))
            continue
        leaf: dict[str, Any] = {parts[-1]: value}
        for part in reversed(parts[:-1]):
            leaf = {part: leaf}
        _merge(found, leaf)
    return found


def _walk(kind: Any, parts: list[str]) -> Any:
    """The type at ``parts`` below ``kind`` (a Struct's field, a dict's value); None: no such
    setting."""
    from msgspec import inspect

    for part in parts:
        kind = _unwrapped(kind, (inspect.StructType, inspect.DictType))
        if isinstance(kind, inspect.StructType):
            match = [f for f in kind.fields if f.encode_name == part]
            if not match:
                return None
            kind = match[0].type
        elif isinstance(kind, inspect.DictType) and part:
            kind = kind.value_type
        else:
            return None
    return kind


def _unwrapped(kind: Any, wanted: tuple[type, ...]) -> Any:
    """``kind`` without its constraints, or the member of a union (``X | None``) of a wanted
    kind."""
    from msgspec import inspect

    while isinstance(kind, inspect.Metadata):
        kind = kind.type
    if isinstance(kind, inspect.UnionType):
        for member in kind.types:
            member = _unwrapped(member, wanted)
            if isinstance(member, wanted):
                return member
    return kind


def _may_be_unset(kind: Any) -> bool:
    from msgspec import inspect

    while isinstance(kind, inspect.Metadata):
        kind = kind.type
    return isinstance(kind, inspect.NoneType) or (
        isinstance(kind, inspect.UnionType) and any(_may_be_unset(t) for t in kind.types)
    )


def _env_value(kind: Any, raw: str) -> Any:
    """One variable's text as ``kind`` wants it before conversion: JSON for a list or table,
    a boolean's words as ``true``/``false``; text otherwise (numbers are read from text). Empty
    (or blank) for a setting that may be unset is unset (``WASTEBANK_PAGES__BROKER_RUN_DIR=``
    is no directory, not the working one)."""
    from msgspec import inspect

    if not raw.strip() and _may_be_unset(kind):
        return None

    complex_kinds = (
        inspect.StructType,
        inspect.DictType,
        inspect.ListType,
        inspect.TupleType,
        inspect.VarTupleType,
        inspect.SetType,
        inspect.FrozenSetType,
    )
    if isinstance(_unwrapped(kind, complex_kinds), complex_kinds):
        try:
            return json.loads(raw)
        except ValueError:
            raise ValueError(f"bukan JSON / not JSON: {raw!r}") from None
    if isinstance(_unwrapped(kind, (inspect.BoolType,)), inspect.BoolType):
        word = yes_no(raw.strip())
        if word is not None:
            return "true" if word else "false"
    return raw
