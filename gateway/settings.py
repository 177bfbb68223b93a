"""A gateway's site file: the bank's scales and TPS sensors, its outbox, its local endpoint and
attendant page, validated at start with errors that name the field (``wastebank gateway --config
site.toml``; docs/deploy-pi.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from msgspec import UNSET, Meta, UnsetType, field

from gateway.clock import ClockSettings
from gateway.fill_sensor import FillConfig, MaxBotixModel
from gateway.scale_protocol import PROTOCOLS
from gateway.scale_state import STALE_S
from wastebank.config import (
    RUN_DIR,
    FieldError,
    FilePath,
    MqttSettings,
    Settings,
    WastebankSettings,
    share_within,
)
from wastebank.messages import CODE_PATTERN, Text

Code = Annotated[str, Meta(pattern=CODE_PATTERN)]
DEFAULT_GATEWAY_ID = "gw-01"
HEALTH_INTERVAL_MAX_S = 60.0
"""The longest ``health_interval_s``: under the fleet's default silence limit (``[fleet]
offline_after_s``, 90 s, docs/fleet.md), so a running gateway is never listed offline between
two of its reports by the city's default."""


class ScaleSettings(Settings, kw_only=True):
    """One scale at the site."""

    id: Code
    port: Annotated[Path, Meta(description="/dev/serial/by-id/usb-... (stable across replugs)")]
    protocol: Annotated[
        str, Meta(description="scale protocol id (docs/protocol.md §1), 'kiosk' or 'auto'")
    ] = "gs_nt"
    unit: Annotated[
        Literal["kg", "g", "lb"],
        Meta(description="for formats that do not say (Yaohua, HX711 sketches)"),
    ] = "kg"
    flow: Literal["kiosk", "attendant"] = "kiosk"
    baudrate: Annotated[int, Meta(ge=300, le=921_600)] = 9600
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    min_net_g: Annotated[int, Meta(ge=1)] = 50
    zero_band_g: Annotated[int, Meta(ge=0)] = 20
    zero_drift_alert_g: Annotated[int, Meta(ge=1, description="alert when idle zero drifts")] = 30
    stability_window_s: Annotated[float, Meta(gt=0, description="flagless formats only")] = 1.0
    stale_after_s: Annotated[
        float,
        Meta(
            ge=0,
            le=3600,
            description="no frame parsed for this long: the scale is stale (no weight shown, not "
            "armed); 0: never by silence, for an indicator that sends only when its print key is "
            "pressed",
        ),
    ] = STALE_S
    stability_tolerance_g: Annotated[int, Meta(ge=0, description="flagless formats only")] = 10
    calibration_version: (
        Annotated[
            Text, Meta(max_length=64, description="until a calibration check is recorded here")
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        if self.zero_band_g >= self.min_net_g:
            raise ValueError("zero_band_g must be smaller than min_net_g")
        known = (*PROTOCOLS, "kiosk", "auto")
        if self.protocol not in known:
            raise FieldError(
                "protocol", f"protocol {self.protocol!r} is not one of {', '.join(known)}"
            )


class SensorSettings(Settings, kw_only=True):
    """One TPS fill sensor served by this gateway (serial, or LoRaWAN through a network server)."""

    id: Code
    tps_code: Code
    kind: Literal["jsn_sr04t", "maxbotix", "em310_udl", "json"]
    port: Annotated[Path | None, Meta(description="serial kinds: the adapter's stable path")] = None
    baudrate: Annotated[int, Meta(ge=300, le=921_600)] = 9600
    given_maxbotix_unit: Literal["mm", "cm"] | UnsetType = field(
        default=UNSET, name="maxbotix_unit"
    )
    """``maxbotix_unit`` as the site file gives it (read :attr:`maxbotix_unit`): given on
    another kind, even as the default, it is refused."""
    maxbotix_model: Annotated[
        MaxBotixModel | None,
        Meta(
            description="maxbotix HRXL (4 digits in mm): hrxl_5m sends R5000 for no target, "
            "hrxl_10m R9999; unset: both are no target (docs/protocol.md §3.1)"
        ),
    ] = None
    dev_eui: Annotated[str, Meta(pattern=r"^[0-9a-fA-F]{16}$", description="em310_udl")] | None = (
        None
    )
    uplink_topic: Annotated[
        str,
        Meta(
            description="em310_udl: the network server's uplink topic (ChirpStack v4 default); "
            "json: the topic the sensor publishes its own JSON on"
        ),
    ] = "application/+/device/{dev_eui}/event/up"
    empty_distance_mm: Annotated[int, Meta(ge=100, le=20_000)]
    full_distance_mm: Annotated[int, Meta(ge=0, le=20_000)]
    window: Annotated[int, Meta(ge=1, le=101, description="pings per reading")] | None = None
    spike_mm: Annotated[int, Meta(ge=1)] | None = 150
    ambient_c: Annotated[float | None, Meta(description="for sound-speed compensation")] = None
    calibrated_at_c: float | None = 20.0
    report_interval_s: Annotated[float, Meta(gt=0, description="serial: one reading per")] = 300.0

    @property
    def maxbotix_unit(self) -> Literal["mm", "cm"]:
        return "mm" if isinstance(self.given_maxbotix_unit, UnsetType) else self.given_maxbotix_unit

    def __post_init__(self) -> None:
        given = {"maxbotix_unit": self.given_maxbotix_unit, "maxbotix_model": self.maxbotix_model}
        for name, value in given.items():
            # Set on another kind, a MaxBotix setting would be ignored: refused.
            if value not in (None, UNSET) and self.kind != "maxbotix":
                raise FieldError(
                    name,
                    f"sensor {self.id}: {name} hanya untuk sensor maxbotix, bukan {self.kind} / "
                    f"{name} is for maxbotix sensors, not {self.kind}",
                )
        if self.kind == "em310_udl":
            if self.dev_eui is None:
                raise ValueError("em310_udl sensors need dev_eui")
        elif self.kind == "json":
            if "{dev_eui}" in self.uplink_topic or "+" in self.uplink_topic:
                raise ValueError("json sensors need their own uplink_topic (no wildcards)")
        elif self.port is None:
            raise ValueError(f"{self.kind} sensors need port")
        if self.maxbotix_model is not None and self.maxbotix_unit != "mm":
            raise ValueError(
                f"sensor {self.id}: maxbotix_model {self.maxbotix_model} melaporkan mm, "
                "maxbotix_unit harus mm (atau hapus maxbotix_model) / "
                f"maxbotix_model {self.maxbotix_model} reports mm: maxbotix_unit must be mm "
                "(or leave maxbotix_model out)"
            )
        if self.empty_distance_mm - self.full_distance_mm < 50:
            raise ValueError("empty_distance_mm must exceed full_distance_mm by at least 50 mm")

    @property
    def over_mqtt(self) -> bool:
        return self.kind in ("em310_udl", "json")

    def fill_config(self) -> FillConfig:
        lora = self.over_mqtt  # filters on board; one message is one reading
        return FillConfig(
            empty_distance_mm=self.empty_distance_mm,
            full_distance_mm=self.full_distance_mm,
            window=self.window or (1 if lora else 5),
            spike_mm=None if lora else self.spike_mm,
            calibrated_at_c=None if lora else self.calibrated_at_c,
        )

    def topic(self) -> str:
        return self.uplink_topic.replace("{dev_eui}", (self.dev_eui or "").lower())


class OutboxSettings(Settings, kw_only=True):
    path: Path = RUN_DIR / "gateway" / "outbox.db"
    max_rows: Annotated[int, Meta(ge=100)] = 100_000
    max_age_days: Annotated[float, Meta(gt=0)] = 30.0
    drain_rate_per_s: Annotated[float, Meta(gt=0, description="after a reconnect")] = 500.0
    refused_retry_s: Annotated[
        float,
        Meta(
            gt=0,
            le=3600,
            description="a row the broker refused is tried again after this, doubled per "
            "refusal up to an hour; a restart tries every refused row at once",
        ),
    ] = 60.0


class AttendantSettings(Settings, kw_only=True):
    """The attendant (petugas) page on the local endpoint: logins, offline cache, time zone."""

    timezone: Annotated[
        str,
        Meta(
            description="the bank's zone for 'today' and the times shown (Asia/Jakarta WIB, "
            "Asia/Makassar WITA, Asia/Jayapura WIT)"
        ),
    ] = "Asia/Jakarta"
    login_cache_days: Annotated[
        float, Meta(gt=0, le=90, description="an attendant may log in offline this long")
    ] = 14.0
    session_hours: Annotated[float, Meta(gt=0, le=168)] = 12.0
    sync_interval_s: Annotated[
        float, Meta(gt=0, description="logins checked and queued voids sent, while online")
    ] = 300.0
    directory_poll_s: Annotated[
        float,
        Meta(
            gt=0,
            le=60,
            description="members and prices asked for this often while online (a conditional "
            "GET: an unchanged list costs a 304), so a new member or price is here within 60 s",
        ),
    ] = 30.0
    api_timeout_s: Annotated[float, Meta(gt=0, le=60)] = 5.0
    max_login_failures: Annotated[int, Meta(ge=1, description="per account per 15 minutes")] = 5
    max_login_failures_per_client: Annotated[
        int, Meta(ge=1, description="per client address per 15 minutes")
    ] = 20
    # OWASP's Password Storage Cheat Sheet lists argon2id settings of equal strength; of them the
    # least memory (7 MiB, 5 passes) suits a Pi: a login's peak RSS is its memory cost on top.
    argon2_time_cost: Annotated[int, Meta(ge=1)] = 5
    argon2_memory_kib: Annotated[int, Meta(ge=8, description="7 MiB, 5 passes (OWASP)")] = 7_168
    argon2_parallelism: Annotated[int, Meta(ge=1)] = 1

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise FieldError("timezone", f"unknown time zone {self.timezone!r}") from None


class PrinterSettings(Settings, kw_only=True):
    """The bank's 58 mm (or 80 mm) ESC/POS receipt printer, if any (docs/attendant.md, "Struk /
    Receipts"). None by default: receipts are printed from the browser (a 58 mm stylesheet)."""

    kind: Annotated[
        Literal["none", "usb", "serial", "file"],
        Meta(
            description="usb: by vendor/product id (pyusb, libusb); serial: a Bluetooth SPP "
            "(/dev/rfcomm0) or USB-serial (/dev/ttyUSB0) port; file: a printer device node "
            "written directly (the kernel's usblp: /dev/usb/lp0)"
        ),
    ] = "none"
    usb_vendor_id: Annotated[int, Meta(ge=0, le=0xFFFF, description="e.g. 0x0416")] | None = None
    usb_product_id: Annotated[int, Meta(ge=0, le=0xFFFF, description="e.g. 0x5011")] | None = None
    usb_in_ep: Annotated[int, Meta(ge=0, le=0xFF, description="`lsusb -vd VID:PID`")] = 0x82
    usb_out_ep: Annotated[int, Meta(ge=0, le=0xFF)] = 0x01
    path: Annotated[Path | None, Meta(description="serial and file: the device's path")] = None
    baudrate: Annotated[int, Meta(ge=300, le=921_600, description="serial")] = 9600
    serial_dsrdtr: Annotated[bool, Meta(description="serial: DSR/DTR flow control")] = True
    columns: Annotated[Literal[32, 48], Meta(description="Font A: 32 (58 mm), 48 (80 mm)")] = 32
    cut: Annotated[bool, Meta(description="send a cut (printers without a cutter ignore it)")] = (
        True
    )
    timeout_s: Annotated[float, Meta(gt=0, le=60)] = 5.0

    def __post_init__(self) -> None:
        if self.kind == "usb" and (self.usb_vendor_id is None or self.usb_product_id is None):
            raise ValueError("a usb printer needs usb_vendor_id and usb_product_id")
        if self.kind in ("serial", "file") and self.path is None:
            raise ValueError(f"a {self.kind} printer needs path")


def http_url(url: str) -> str:
    """``url`` if it is an http(s) URL with a host, with ``/`` as its path when it has none."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r}: not an http(s) URL")
    return url if parts.path else f"{url}/"


class GatewaySettings(WastebankSettings, kw_only=True):
    """A gateway's site file. Its broker identity is its ``gateway_id`` unless the site file's
    ``[mqtt]`` names another username (`wastebank device add` issues both)."""

    gateway_id: Code = DEFAULT_GATEWAY_ID
    bank_code: Code
    api_url: Annotated[
        str | None,
        Meta(
            description="the central API (e.g. https://wastebank.ambon.go.id): attendant "
            "logins, members, prices and voids for the attendant page; unset: the page has no "
            "logins"
        ),
    ] = None
    attendant: AttendantSettings = field(default_factory=AttendantSettings)
    printer: PrinterSettings = field(default_factory=PrinterSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    scales: list[ScaleSettings] = field(default_factory=list)
    sensors: list[SensorSettings] = field(default_factory=list)
    http_host: Annotated[
        str,
        Meta(
            description="where the local endpoint listens: 127.0.0.1 (this Pi only), or the "
            "Pi's LAN address / 0.0.0.0 for tablets on the bank's Wi-Fi (then with "
            "http_tls_cert)"
        ),
    ] = "127.0.0.1"
    http_port: Annotated[int, Meta(ge=0, le=65535, description="0: no local endpoint")] = 8081
    http_tls_cert: Annotated[
        FilePath | None,
        Meta(
            description="HTTPS for the local endpoint: the certificate `wastebank certs "
            "gateway` issued from the site CA (PEM); with http_tls_key. Unset: plain HTTP"
        ),
    ] = None
    http_tls_key: Annotated[
        FilePath | None,
        Meta(description="its private key (PEM, mode 0600, the gateway's user only)"),
    ] = None
    http_max_body_bytes: Annotated[
        int,
        Meta(
            ge=1024,
            description="the largest request body the local endpoint takes (the largest the "
            "attendant page can send, the login form with every field at its longest in 4-byte "
            "characters, is 8,677 bytes): larger is 413 before it is read or the session "
            "checked",
        ),
    ] = 32 * 1024
    http_max_requests: Annotated[
        int,
        Meta(
            ge=32,
            le=4096,
            description="requests the local endpoint serves at once (an open live view is "
            "one, at most 16 of them); one more is 503 with Retry-After at once. /health is "
            "always answered",
        ),
    ] = 64
    http_max_requests_per_client: Annotated[
        int,
        Meta(
            ge=8,
            le=4096,
            description="of http_max_requests, the most one client address may have at once "
            "(an attendant's tablet with its live views uses under 10): one more is 503",
        ),
    ] = 16
    http_read_timeout_s: Annotated[
        float,
        Meta(
            ge=1,
            le=300,
            description="the longest a request's head may take to arrive (from the connection's "
            "start or the previous answer), and then its body: a head later is the connection "
            "closed, a body later is 408 and closed. A client that sends a byte at a time holds "
            "nothing for longer",
        ),
    ] = 10.0
    http_max_connections: Annotated[
        int,
        Meta(
            ge=32,
            le=16384,
            description="connections open at once (idle ones too), of them "
            "http_max_requests_per_client from one address: one more is closed as it opens",
        ),
    ] = 256
    http_allowed_hosts: Annotated[
        list[str],
        Meta(
            description="names the local endpoint answers to in a request's Host, besides an IP "
            "address, a name without a dot (localhost, the Pi's) and the LAN-only names .local, "
            ".lan, .home.arpa, .internal, .localhost, .test: any other Host is 421, so a page of "
            "another site that points its own name at the Pi (DNS rebinding) is refused"
        ),
    ] = field(default_factory=list)
    health_interval_s: Annotated[
        float,
        Meta(
            gt=0,
            le=HEALTH_INTERVAL_MAX_S,
            description="a health report at least this often (and at once on a change). At most "
            "60 s: the fleet lists a gateway offline after [fleet] offline_after_s (90 s by "
            "default) without a report, so a longer interval has a running gateway listed "
            "offline between its reports",
        ),
    ] = 30.0
    health_min_gap_s: Annotated[
        float,
        Meta(
            ge=1,
            le=60,
            description="at most one health report per this many seconds: a fault, an alert or "
            "the link coming back is reported at once, a burst of them in one or two reports. "
            "At least 1: more than one report a second would be traffic, not news",
        ),
    ] = 2.0
    clock: Annotated[
        ClockSettings,
        Meta(
            description="how the gateway tells whether its clock is synchronized (gateway/clock.py)"
        ),
    ] = field(default_factory=ClockSettings)

    def default_broker_user(self) -> str | None:
        return self.gateway_id

    def __post_init__(self) -> None:
        if self.api_url is not None:
            try:
                self.api_url = http_url(self.api_url)
            except ValueError as exc:
                raise FieldError("api_url", str(exc)) from None
        if (self.http_tls_cert is None) != (self.http_tls_key is None):
            raise ValueError("http_tls_cert and http_tls_key go together: set both or neither")
        share = self.http_max_requests_per_client
        name = "http_max_requests_per_client"
        share_within(name, share, "http_max_requests", self.http_max_requests)
        share_within(name, share, "http_max_connections", self.http_max_connections)
        if not self.scales and not self.sensors:
            raise ValueError("a site needs at least one entry in scales or sensors")
        ids = [s.id for s in self.scales] + [s.id for s in self.sensors]
        if len(set(ids)) != len(ids):
            raise ValueError(f"scale ids must be unique: {ids}")
        devices: list[ScaleSettings | SensorSettings] = [*self.scales, *self.sensors]
        ports = [str(d.port) for d in devices if d.port is not None]
        if len(set(ports)) != len(ports):
            raise ValueError(f"each scale and sensor needs its own port: {ports}")
        super().__post_init__()
