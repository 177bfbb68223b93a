"""A gateway's site file: the bank's scales and TPS sensors, its outbox, its local endpoint and
attendant page, validated at start with errors that name the field (``wastebank gateway --config
site.toml``; docs/deploy-pi.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.clock import ClockSettings
from gateway.fill_sensor import FillConfig, MaxBotixModel
from gateway.scale_protocol import PROTOCOLS
from wastebank.config import RUN_DIR, MqttSettings, WastebankSettings
from wastebank.messages import CODE_PATTERN

Code = Annotated[str, Field(pattern=CODE_PATTERN)]


class ScaleSettings(BaseModel):
    """One scale at the site."""

    model_config = ConfigDict(extra="forbid")

    id: Code
    port: Path = Field(description="/dev/serial/by-id/usb-... (stable across replugs)")
    protocol: str = Field(
        default="gs_nt", description="scale protocol id (docs/protocol.md §1), 'kiosk' or 'auto'"
    )
    unit: Literal["kg", "g", "lb"] = Field(
        default="kg", description="for formats that do not say (Yaohua, HX711 sketches)"
    )
    flow: Literal["kiosk", "attendant"] = "kiosk"
    baudrate: int = Field(default=9600, ge=300, le=921_600)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    min_net_g: int = Field(default=50, ge=1)
    zero_band_g: int = Field(default=20, ge=0)
    zero_drift_alert_g: int = Field(default=30, ge=1, description="alert when idle zero drifts")
    stability_window_s: float = Field(default=1.0, gt=0, description="flagless formats only")
    stability_tolerance_g: int = Field(default=10, ge=0, description="flagless formats only")
    calibration_version: str | None = Field(
        default=None, max_length=64, description="until a calibration check is recorded here"
    )

    @model_validator(mode="after")
    def _bands(self) -> Self:
        if self.zero_band_g >= self.min_net_g:
            raise ValueError("zero_band_g must be smaller than min_net_g")
        known = (*PROTOCOLS, "kiosk", "auto")
        if self.protocol not in known:
            raise ValueError(f"protocol {self.protocol!r} is not one of {', '.join(known)}")
        return self


class SensorSettings(BaseModel):
    """One TPS fill sensor served by this gateway (serial, or LoRaWAN through a network server)."""

    model_config = ConfigDict(extra="forbid")

    id: Code
    tps_code: Code
    kind: Literal["jsn_sr04t", "maxbotix", "em310_udl", "json"]
    port: Path | None = Field(default=None, description="serial kinds: the adapter's stable path")
    baudrate: int = Field(default=9600, ge=300, le=921_600)
    maxbotix_unit: Literal["mm", "cm"] = "mm"
    maxbotix_model: MaxBotixModel | None = Field(
        default=None,
        description="maxbotix HRXL (4 digits in mm): hrxl_5m sends R5000 for no target, "
        "hrxl_10m R9999; unset: both are no target (docs/protocol.md §3.1)",
    )
    dev_eui: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{16}$", description="em310_udl")
    uplink_topic: str = Field(
        default="application/+/device/{dev_eui}/event/up",
        description="em310_udl: the network server's uplink topic (ChirpStack v4 default); "
        "json: the topic the sensor publishes its own JSON on",
    )
    empty_distance_mm: int = Field(ge=100, le=20_000)
    full_distance_mm: int = Field(ge=0, le=20_000)
    window: int | None = Field(default=None, ge=1, le=101, description="pings per reading")
    spike_mm: int | None = Field(default=150, ge=1)
    ambient_c: float | None = Field(default=None, description="for sound-speed compensation")
    calibrated_at_c: float | None = 20.0
    report_interval_s: float = Field(default=300.0, gt=0, description="serial: one reading per")

    @field_validator("maxbotix_unit", "maxbotix_model")
    @classmethod
    def _maxbotix_only(cls, value: object, info: ValidationInfo) -> object:
        """Set on another kind, a MaxBotix setting would be ignored: refused (run only on a
        value the site file gives, never on the default)."""
        kind = info.data.get("kind")
        if kind is not None and kind != "maxbotix":
            raise ValueError(
                f"sensor {info.data.get('id', '?')}: {info.field_name} hanya untuk sensor "
                f"maxbotix, bukan {kind} / {info.field_name} is for maxbotix sensors, not {kind}"
            )
        return value

    @model_validator(mode="after")
    def _kind_fields(self) -> Self:
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
        return self

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


class OutboxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path = RUN_DIR / "gateway" / "outbox.db"
    max_rows: int = Field(default=100_000, ge=100)
    max_age_days: float = Field(default=30.0, gt=0)
    drain_rate_per_s: float = Field(default=500.0, gt=0, description="after a reconnect")
    refused_retry_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="a row the broker refused is tried again after this, doubled per refusal "
        "up to an hour; a restart tries every refused row at once",
    )


class AttendantSettings(BaseModel):
    """The attendant (petugas) page on the local endpoint: logins, offline cache, time zone."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = Field(
        default="Asia/Jakarta",
        description="the bank's zone for 'today' and the times shown (Asia/Jakarta WIB, "
        "Asia/Makassar WITA, Asia/Jayapura WIT)",
    )
    login_cache_days: float = Field(
        default=14.0, gt=0, le=90, description="an attendant may log in offline this long"
    )
    session_hours: float = Field(default=12.0, gt=0, le=168)
    sync_interval_s: float = Field(
        default=300.0, gt=0, description="logins checked and queued voids sent, while online"
    )
    directory_poll_s: float = Field(
        default=30.0,
        gt=0,
        le=60,
        description="members and prices asked for this often while online (a conditional GET: "
        "an unchanged list costs a 304), so a new member or price is here within 60 s",
    )
    api_timeout_s: float = Field(default=5.0, gt=0, le=60)
    max_login_failures: int = Field(default=5, ge=1, description="per account per 15 minutes")
    # OWASP's Password Storage Cheat Sheet lists argon2id settings of equal strength; of them the
    # least memory (7 MiB, 5 passes) suits a Pi: a login's peak RSS is its memory cost on top.
    argon2_time_cost: int = Field(default=5, ge=1)
    argon2_memory_kib: int = Field(default=7_168, ge=8, description="7 MiB, 5 passes (OWASP)")
    argon2_parallelism: int = Field(default=1, ge=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class PrinterSettings(BaseModel):
    """The bank's 58 mm (or 80 mm) ESC/POS receipt printer, if any (docs/attendant.md, "Struk /
    Receipts"). None by default: receipts are printed from the browser (a 58 mm stylesheet)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["none", "usb", "serial", "file"] = Field(
        default="none",
        description="usb: by vendor/product id (pyusb, libusb); serial: a Bluetooth SPP "
        "(/dev/rfcomm0) or USB-serial (/dev/ttyUSB0) port; file: a printer device node written "
        "directly (the kernel's usblp: /dev/usb/lp0)",
    )
    usb_vendor_id: int | None = Field(default=None, ge=0, le=0xFFFF, description="e.g. 0x0416")
    usb_product_id: int | None = Field(default=None, ge=0, le=0xFFFF, description="e.g. 0x5011")
    usb_in_ep: int = Field(default=0x82, ge=0, le=0xFF, description="`lsusb -vd VID:PID`")
    usb_out_ep: int = Field(default=0x01, ge=0, le=0xFF)
    path: Path | None = Field(default=None, description="serial and file: the device's path")
    baudrate: int = Field(default=9600, ge=300, le=921_600, description="serial")
    serial_dsrdtr: bool = Field(default=True, description="serial: DSR/DTR flow control")
    columns: Literal[32, 48] = Field(default=32, description="Font A: 32 (58 mm), 48 (80 mm)")
    cut: bool = Field(default=True, description="send a cut (printers without a cutter ignore it)")
    timeout_s: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _where(self) -> Self:
        if self.kind == "usb" and (self.usb_vendor_id is None or self.usb_product_id is None):
            raise ValueError("a usb printer needs usb_vendor_id and usb_product_id")
        if self.kind in ("serial", "file") and self.path is None:
            raise ValueError(f"a {self.kind} printer needs path")
        return self


class GatewaySettings(WastebankSettings):
    """A gateway's site file. Its broker identity is its ``gateway_id`` unless the site file's
    ``[mqtt]`` names another username (`wastebank device add` issues both)."""

    gateway_id: Code = "gw-01"
    bank_code: Code
    api_url: AnyHttpUrl | None = Field(
        default=None,
        description="the central API (e.g. https://wastebank.ambon.go.id): attendant logins, "
        "members, prices and voids for the attendant page; unset: the page has no logins",
    )
    attendant: AttendantSettings = AttendantSettings()
    printer: PrinterSettings = PrinterSettings()
    mqtt: MqttSettings = MqttSettings()
    outbox: OutboxSettings = OutboxSettings()
    scales: list[ScaleSettings] = Field(default_factory=list)
    sensors: list[SensorSettings] = Field(default_factory=list)
    http_host: str = Field(
        default="127.0.0.1",
        description="where the local endpoint listens: 127.0.0.1 (this Pi only), or the Pi's "
        "LAN address / 0.0.0.0 for tablets on the bank's Wi-Fi (then with http_tls_cert)",
    )
    http_port: int = Field(default=8081, ge=0, le=65535, description="0: no local endpoint")
    http_tls_cert: FilePath | None = Field(
        default=None,
        description="HTTPS for the local endpoint: the certificate `wastebank certs gateway` "
        "issued from the site CA (PEM); with http_tls_key. Unset: plain HTTP",
    )
    http_tls_key: FilePath | None = Field(
        default=None, description="its private key (PEM, mode 0600, the gateway's user only)"
    )
    http_max_body_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        description="the largest request body the local endpoint takes (the largest the "
        "attendant page can send, the login form with every field at its longest in 4-byte "
        "characters, is 8,677 bytes): larger is 413 before it is read or the session checked",
    )
    health_interval_s: float = Field(default=30.0, gt=0)
    health_min_gap_s: float = Field(
        default=2.0,
        ge=1,
        le=60,
        description="at most one health report per this many seconds: a fault, an alert or the "
        "link coming back is reported at once, a burst of them in one or two reports. At least "
        "1: more than one report a second would be traffic, not news",
    )
    clock: ClockSettings = Field(
        default_factory=ClockSettings,
        description="how the gateway tells whether its clock is synchronized (gateway/clock.py)",
    )

    def default_broker_user(self) -> str | None:
        return self.gateway_id

    @model_validator(mode="after")
    def _unique(self) -> Self:
        if (self.http_tls_cert is None) != (self.http_tls_key is None):
            raise ValueError("http_tls_cert and http_tls_key go together: set both or neither")
        if not self.scales and not self.sensors:
            raise ValueError("a site needs at least one entry in scales or sensors")
        ids = [s.id for s in self.scales] + [s.id for s in self.sensors]
        if len(set(ids)) != len(ids):
            raise ValueError(f"scale ids must be unique: {ids}")
        devices: list[ScaleSettings | SensorSettings] = [*self.scales, *self.sensors]
        ports = [str(d.port) for d in devices if d.port is not None]
        if len(set(ports)) != len(ports):
            raise ValueError(f"each scale and sensor needs its own port: {ports}")
        return self
