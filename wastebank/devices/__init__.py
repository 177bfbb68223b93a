"""Device credentials for the broker's TLS listener: the site's certificates, and a password and
an ACL per gateway or TPS sensor, so each device may publish only under its own ids.

Files (all under the run dir; see :func:`broker_auth_files`):

* ``certs/ca.crt``, ``certs/ca.key``: the site CA (`wastebank certs init`). Gateways get
  ``ca.crt`` to verify the broker; ``ca.key`` never leaves the server (mode 0600).
* ``certs/server.crt``, ``certs/server.key``: the broker's certificate for its host names and
  addresses, signed by the site CA.
* ``mosquitto/passwd``: Mosquitto's password file; hashes are written by Debian's
  ``mosquitto_passwd``, never by us.
* ``mosquitto/devices.toml``: the registry, one entry per device (what it is, when issued);
  ``mosquitto/acl`` is generated from it on every change. The ledger database is not involved.

Usernames: a gateway logs in as its ``gateway_id`` (unique city-wide: it is part of every deposit
id), a TPS sensor as ``{tps_code}.{sensor_id}``. Codes never contain ``.``, so the two never clash.

Modules: :mod:`.broker` (where the files are; reloading our Mosquitto), :mod:`.certs`,
:mod:`.registry`; the names callers use are re-exported here.
"""

from wastebank.devices._errors import (
    DeviceConflict,
    DeviceError,
    DeviceNotFound,
    DeviceRefused,
    DeviceSetupError,
)
from wastebank.devices._files import write_secret
from wastebank.devices.broker import (
    BrokerAuthFiles,
    MosquittoFiles,
    broker_auth_files,
    mosquitto_files,
    mosquitto_pid,
    mosquitto_tls_listening,
    reload_mosquitto,
)
from wastebank.devices.certs import (
    PAGE_DAYS,
    RENEW_BEFORE,
    CertInfo,
    CertReport,
    PageCert,
    cert_info,
    default_hosts,
    fingerprint,
    init_certs,
    issue_page_cert,
    normalize_hosts,
)
from wastebank.devices.registry import (
    MOSQUITTO_PASSWD_BIN,
    PRINCIPAL_NAMES,
    PRINCIPALS,
    Device,
    DeviceKind,
    Issued,
    Principal,
    Registry,
    Removed,
    acl_text,
    parse_serves,
    registry_run_dir,
    site_snippet,
)

__all__ = [
    "MOSQUITTO_PASSWD_BIN",
    "PAGE_DAYS",
    "PRINCIPALS",
    "PRINCIPAL_NAMES",
    "RENEW_BEFORE",
    "BrokerAuthFiles",
    "CertInfo",
    "CertReport",
    "Device",
    "DeviceConflict",
    "DeviceError",
    "DeviceKind",
    "DeviceNotFound",
    "DeviceRefused",
    "DeviceSetupError",
    "Issued",
    "MosquittoFiles",
    "PageCert",
    "Principal",
    "Registry",
    "Removed",
    "acl_text",
    "broker_auth_files",
    "cert_info",
    "default_hosts",
    "fingerprint",
    "init_certs",
    "issue_page_cert",
    "mosquitto_files",
    "mosquitto_pid",
    "mosquitto_tls_listening",
    "normalize_hosts",
    "parse_serves",
    "registry_run_dir",
    "reload_mosquitto",
    "site_snippet",
    "write_secret",
]
