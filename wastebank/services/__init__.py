"""Mosquitto, InfluxDB 1.x and PostgreSQL for development, tests and CI, started from the
project's own files.

`up` installs the Debian packages when they are missing, writes our own configs under
``run_dir/mosquitto``, ``run_dir/influxdb`` (and ``run_dir/postgresql``), starts each daemon on
``bind`` with our own ports and data dirs, and waits until each one answers. A system
mosquitto/influxd that the Debian packages may start (ports 1883, 8086, 8088) is never touched:
we only stop what our own pid files name, and only when that process is the right program
running our own config (wastebank/pidfiles.py).

Modules: :mod:`.core` (settings, a service's files and state, start/wait/stop),
:mod:`.mosquitto`, :mod:`.influxdb`, :mod:`.postgres`, :mod:`.install` (Debian packages),
:mod:`.ports` (this checkout's ports), :mod:`.control` (`up`, `down`, `status`). The names
callers use are re-exported here.
"""

from wastebank.config import DEFAULT_MQTT_TLS_PORT
from wastebank.devices import BrokerAuthFiles, broker_auth_files
from wastebank.services import core, influxdb, install, mosquitto, ports, postgres
from wastebank.services.control import default_services, down, status, up
from wastebank.services.core import (
    INFLUX_RPC_OFFSET,
    Service,
    ServiceError,
    ServiceName,
    ServicesSettings,
    ServiceState,
)
from wastebank.services.influxdb import (
    INFLUXD_BIN,
    influx_admin_settings,
    influx_secrets_dir,
    influx_users,
    influxdb_conf,
    prepare_influxdb,
    rotate_influx_password,
)
from wastebank.services.mosquitto import (
    CLIENTID_PLUGIN_SOURCE,
    MOSQUITTO_BIN,
    clientid_plugin_path,
    mosquitto_conf,
    mosquitto_tls_listening,
    mqtt_secrets_dir,
    reload_mosquitto,
)
from wastebank.services.ports import PORT_FIELDS, claim_ports
from wastebank.services.postgres import (
    LEDGER_DATABASE,
    LEDGER_ROLE,
    POSTGRESQL_LIB,
    POSTGRESQL_SUPERUSER,
    connect_postgresql,
    postgres_service,
    postgresql_conf,
    postgresql_passwords,
    postgresql_url,
)

__all__ = [
    "CLIENTID_PLUGIN_SOURCE",
    "DEFAULT_MQTT_TLS_PORT",
    "INFLUXD_BIN",
    "INFLUX_RPC_OFFSET",
    "LEDGER_DATABASE",
    "LEDGER_ROLE",
    "MOSQUITTO_BIN",
    "PORT_FIELDS",
    "POSTGRESQL_LIB",
    "POSTGRESQL_SUPERUSER",
    "BrokerAuthFiles",
    "Service",
    "ServiceError",
    "ServiceName",
    "ServiceState",
    "ServicesSettings",
    "broker_auth_files",
    "claim_ports",
    "clientid_plugin_path",
    "connect_postgresql",
    "core",
    "default_services",
    "down",
    "influx_admin_settings",
    "influx_secrets_dir",
    "influx_users",
    "influxdb",
    "influxdb_conf",
    "install",
    "mosquitto",
    "mosquitto_conf",
    "mosquitto_tls_listening",
    "mqtt_secrets_dir",
    "ports",
    "postgres",
    "postgres_service",
    "postgresql_conf",
    "postgresql_passwords",
    "postgresql_url",
    "prepare_influxdb",
    "reload_mosquitto",
    "rotate_influx_password",
    "status",
    "up",
]

# The names the tests use for these.
_services = default_services
_stale_config = mosquitto.stale_config
_as = postgres._as
_postgres_answers = postgres.postgres_answers
_postgres_os_user = postgres.postgres_os_user
_postgresql_bindir = postgres.postgresql_bindir
_server_home = postgres.server_home
