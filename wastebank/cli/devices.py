"""`wastebank certs` and `wastebank device`: the site's certificates and each device's broker
credentials (wastebank/devices/)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wastebank.cli._common import ConfigOption, processes

if TYPE_CHECKING:
    from wastebank.devices import BrokerAuthFiles, Device, Issued
    from wastebank.services import ServicesSettings

certs_app = typer.Typer(
    help="sertifikat listener TLS broker / certificates of the broker's TLS listener",
    no_args_is_help=True,
)
device_app = typer.Typer(
    help="kredensial MQTT per perangkat / per-device MQTT credentials", no_args_is_help=True
)


def _services_settings(config: Path | None) -> ServicesSettings:
    from wastebank import services
    from wastebank.config import load_settings

    return load_settings(services.ServicesSettings, config)


def _reload_broker(settings: ServicesSettings) -> None:
    """Tell our running Mosquitto to re-read its password, ACL and certificate files."""
    from wastebank import devices

    pid = devices.reload_mosquitto(settings.run_dir)
    if pid is None:
        typer.echo(
            "mosquitto tidak berjalan; berlaku saat dimulai / mosquitto is not running; "
            "takes effect when it starts (wastebank services up)"
        )
    elif not devices.mosquitto_tls_listening(settings.run_dir):
        typer.echo(
            f"broker dimuat ulang / broker reloaded (pid {pid}), tetapi listener TLS belum "
            "dibuka / but its TLS listener is not open yet: restart it after "
            "`wastebank certs init` (wastebank services down && wastebank services up)"
        )
    else:
        typer.echo(f"broker dimuat ulang / broker reloaded (pid {pid})")


@certs_app.command("init")
def certs_init(
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            help="nama host atau IP broker / a host name or IP address gateways use to reach "
            "the broker (repeat: --host broker.example.go.id --host 203.0.113.10); default: "
            "those of the current certificate, or localhost and this machine's name",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="CA baru juga / a new CA too: every gateway then needs the new ca.crt"
        ),
    ] = False,
    name: Annotated[str, typer.Option(help="site name in the CA, e.g. 'Kota Ambon'")] = "wastebank",
    config: ConfigOption = None,
) -> None:
    """Create the site CA and the broker's certificate (idempotent; keeps an existing CA)."""
    from wastebank import devices

    settings = _services_settings(config)
    files = devices.broker_auth_files(settings.run_dir)
    had_ca = files.ca_cert.is_file()
    report = devices.init_certs(files, host, force=force, site_name=name)
    ca_state = "dibuat / created" if report.ca_created else "tetap / kept"
    typer.echo(f"CA {ca_state}: {files.ca_cert}")
    typer.echo(
        f"  SHA-256 {report.ca_fingerprint}\n"
        f"  berlaku sampai / valid until {report.ca_not_after:%Y-%m-%d}"
    )
    server_state = "diterbitkan / issued" if report.server_issued else "tetap / kept"
    typer.echo(
        f"sertifikat broker / broker certificate {server_state} ({report.reason}): "
        f"{files.server_cert}"
    )
    typer.echo(
        f"  host: {', '.join(report.hosts)}\n"
        f"  berlaku sampai / valid until {report.server_not_after:%Y-%m-%d}"
    )
    if had_ca and report.ca_created:
        typer.echo(
            "CA baru: setiap gateway perlu ca.crt yang baru / new CA: every gateway needs the "
            "new ca.crt, or it will refuse the broker"
        )
    typer.echo(
        f"salin / copy {files.ca_cert} ke setiap gateway / to every gateway (mqtt.ca_file); "
        f"kunci privat tetap di sini / private keys stay here (0600)"
    )
    if report.server_issued:
        _reload_broker(settings)


@certs_app.command("show")
def certs_show(config: ConfigOption = None) -> None:
    """Show the site CA and the broker's certificate: fingerprint, names, validity."""
    from wastebank import devices

    settings = _services_settings(config)
    files = devices.broker_auth_files(settings.run_dir)
    ca, server = devices.cert_info(files.ca_cert), devices.cert_info(files.server_cert)
    if ca is None or server is None:
        typer.echo("belum ada sertifikat / no certificates yet: wastebank certs init", err=True)
        raise typer.Exit(code=1)
    for label, info in (("CA", ca), ("broker", server)):
        typer.echo(f"{label}: {info.path}")
        typer.echo(f"  subjek / subject: {info.subject}")
        typer.echo(f"  SHA-256 {info.fingerprint}")
        typer.echo(f"  berlaku / valid {info.not_before:%Y-%m-%d} .. {info.not_after:%Y-%m-%d}")
        if info.hosts:
            typer.echo(f"  host: {', '.join(info.hosts)}")
    typer.echo(
        f"listener TLS / TLS listener: port {settings.mqtt_tls_port} "
        f"({settings.mqtt_tls_bind or 'semua antarmuka / every interface'})"
    )


@certs_app.command("gateway")
def certs_gateway(
    gateway: Annotated[str, typer.Option(help="the gateway's id (its site file's gateway_id)")],
    host: Annotated[
        list[str],
        typer.Option(
            "--host",
            help="the name or address the tablets open the page at (repeat: --host 192.168.1.10 "
            "--host gw-batu-merah-01.local); the Pi's fixed LAN address at least",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="where to write page.crt, page.key, ca.crt (default: the run dir's "
            "certs/gateways/<gateway>)"
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """HTTPS for a gateway's attendant page: a certificate from the site CA (valid 397 days)."""
    from wastebank import devices

    settings = _services_settings(config)
    files = devices.broker_auth_files(settings.run_dir)
    target = out or files.ca_cert.parent / "gateways" / gateway
    issued = devices.issue_page_cert(files, gateway, host, target)
    typer.echo(f"sertifikat halaman / page certificate: {issued.cert}")
    typer.echo(f"  host: {', '.join(issued.hosts)}")
    typer.echo(
        f"  berlaku sampai / valid until {issued.not_after:%Y-%m-%d} (terbitkan lagi / "
        "issue again before then)"
    )
    typer.echo(f"kunci / key (0600): {issued.key}")
    typer.echo(f"CA: {issued.ca_cert}  SHA-256 {issued.ca_fingerprint}")
    typer.echo(
        "di Pi / on the Pi: install -m 0644 page.crt, -m 0600 -o wastebank page.key ke / to "
        "/etc/wastebank/, lalu di site.toml / then in site.toml:\n"
        '  http_host = "0.0.0.0"\n'
        '  http_tls_cert = "/etc/wastebank/page.crt"\n'
        '  http_tls_key = "/etc/wastebank/page.key"\n'
        "pasang ca.crt di setiap tablet / install ca.crt on every tablet (docs/deploy-pi.md)"
    )


@device_app.command("add")
def device_add(
    bank: Annotated[
        str | None, typer.Option(help="gateway: kode bank sampah / the waste bank's code")
    ] = None,
    gateway: Annotated[
        str | None, typer.Option(help="gateway: gateway_id-nya / its gateway_id")
    ] = None,
    tps: Annotated[
        str | None, typer.Option(help="sensor isi TPS: kode TPS / TPS fill sensor: the TPS code")
    ] = None,
    sensor: Annotated[
        str | None, typer.Option(help="sensor isi TPS: id-nya / TPS fill sensor: its sensor id")
    ] = None,
    site: Annotated[
        Path | None,
        typer.Option(
            help="berkas site gateway: bank, id gateway dan izin yang dibutuhkan sensornya / "
            "the gateway's site file: bank, gateway id, and the grants its sensors need"
        ),
    ] = None,
    serves: Annotated[
        list[str] | None,
        typer.Option(
            "--serves",
            metavar="TPS/SENSOR",
            help="gateway: juga menerbitkan isi sensor ini / also publishes this sensor's fill",
        ),
    ] = None,
    reads: Annotated[
        list[str] | None,
        typer.Option(
            "--reads",
            metavar="FILTER",
            help="gateway: boleh berlangganan filter topik ini (mis. uplink LoRaWAN) / may "
            "subscribe to this topic filter (e.g. LoRaWAN uplinks)",
        ),
    ] = None,
    topic_prefix: Annotated[
        str,
        typer.Option(
            help="awalan topik (hanya uji; kosong di produksi) / topic prefix (tests only; "
            "empty in production)"
        ),
    ] = "",
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate",
            help="kata sandi baru untuk perangkat terdaftar / a new password for a registered "
            "device",
        ),
    ] = False,
    snippet: Annotated[
        Path | None,
        typer.Option(
            help="tulis juga tabel mqtt berkas site ke berkas ini (mode 0600) / also write the "
            "site file's mqtt table to this file (mode 0600)"
        ),
    ] = None,
    broker_host: Annotated[
        str | None,
        typer.Option(
            help="host di potongan (bawaan: nama di sertifikat broker) / host in the snippet "
            "(default: a name in the broker's certificate)"
        ),
    ] = None,
    broker_port: Annotated[
        int | None,
        typer.Option(
            help="port di potongan (bawaan: listener TLS) / port in the snippet (default: the "
            "TLS listener's)"
        ),
    ] = None,
    device_ca_file: Annotated[
        str,
        typer.Option(
            help="tempat perangkat menyimpan CA situs / where the device keeps the site CA "
            "(snippet's ca_file)"
        ),
    ] = "/etc/wastebank/ca.crt",
    config: ConfigOption = None,
) -> None:
    """Terbitkan kata sandi MQTT perangkat / Issue a device's MQTT password.

    Perangkat hanya boleh menerbitkan di bawah bank/TPS dan id-nya sendiri; kata sandi
    ditampilkan sekali; perangkat terdaftar ditolak kecuali --rotate (kata sandi baru, yang lama
    langsung tidak berlaku). / It may publish only under its own bank/TPS and id. Prints the
    password once. A registered device is refused unless --rotate (a new password; the old one
    stops working at once).
    """
    from wastebank import devices

    serves_list, reads_list = list(serves or []), list(reads or [])
    if site is not None:
        bank, gateway, site_serves, site_reads, site_prefix = _from_site(site, bank, gateway)
        serves_list += site_serves
        reads_list += site_reads
        topic_prefix = topic_prefix or site_prefix
    if (bank is not None or gateway is not None) == (tps is not None or sensor is not None):
        typer.echo(
            "sebutkan --bank dan --gateway, atau --tps dan --sensor / give --bank and --gateway, "
            "or --tps and --sensor",
            err=True,
        )
        raise typer.Exit(code=2)
    settings = _services_settings(config)
    files = devices.broker_auth_files(settings.run_dir)
    device = _device(bank, gateway, tps, sensor, topic_prefix, serves_list, reads_list)
    issued = devices.Registry(files).add(device, rotate=rotate)
    _say_issued(issued, files)
    _reload_broker(settings)

    text = devices.site_snippet(
        issued,
        host=broker_host if broker_host is not None else _snippet_host(files),
        port=broker_port or settings.mqtt_tls_port,
        ca_file=device_ca_file,
    )
    if snippet is not None:
        devices.write_secret(snippet, text)
        typer.echo(f"potongan site ditulis / site snippet written: {snippet} (0600)")
    typer.echo("")
    typer.echo(text, nl=False)


def _from_site(
    site: Path, bank: str | None, gateway: str | None
) -> tuple[str, str, list[str], list[str], str]:
    """The bank, gateway id, --serves, --reads and topic prefix a gateway's site file gives;
    a --bank or --gateway given as well must be the file's."""
    site_bank, site_gateway, site_serves, site_reads, site_prefix = processes().site_grants(site)
    for given, found, option in (
        (bank, site_bank, "--bank"),
        (gateway, site_gateway, "--gateway"),
    ):
        if given is not None and given != found:
            raise typer.BadParameter(f"the site file says {found!r}", param_hint=option)
    return site_bank, site_gateway, [f"{t}/{s}" for t, s in site_serves], site_reads, site_prefix


def _device(
    bank: str | None,
    gateway: str | None,
    tps: str | None,
    sensor: str | None,
    topic_prefix: str,
    serves: list[str],
    reads: list[str],
) -> Device:
    """A gateway (--bank, --gateway) or a TPS fill sensor (--tps, --sensor), as given."""
    from wastebank import devices

    if bank is not None or gateway is not None:
        if bank is None or gateway is None:
            raise devices.DeviceRefused("perlu --bank dan --gateway / need both")
        return devices.Device(
            kind="gateway",
            site=bank,
            device_id=gateway,
            topic_prefix=topic_prefix,
            serves=devices.parse_serves(serves),
            reads=tuple(dict.fromkeys(reads)),
        )
    if tps is None or sensor is None:
        raise devices.DeviceRefused("perlu --tps dan --sensor / need both")
    if serves or reads:
        raise devices.DeviceRefused("--serves/--reads: hanya gateway / gateways only")
    return devices.Device(kind="sensor", site=tps, device_id=sensor, topic_prefix=topic_prefix)


def _say_issued(issued: Issued, files: BrokerAuthFiles) -> None:
    device = issued.device
    done = "kata sandi diganti / password rotated" if issued.rotated else "ditambahkan / added"
    typer.echo(f"perangkat / device {done}: {device.describe()}")
    typer.echo(f"  username: {device.username}")
    typer.echo(f"  password: {issued.password}")
    typer.echo("  (ditampilkan sekali saja / shown only once)")
    for topic in device.publish_topics:
        typer.echo(f"  boleh menerbitkan / may publish: {topic}")
    for topic_filter in device.read_filters:
        typer.echo(f"  boleh berlangganan / may subscribe: {topic_filter}")
    if not files.tls_ready:
        typer.echo(
            "belum ada sertifikat / no certificates yet: wastebank certs init --host <broker>"
        )


def _snippet_host(files: BrokerAuthFiles) -> str:
    """The first name in the broker's certificate other than loopback's, else 127.0.0.1."""
    from wastebank import devices

    server = devices.cert_info(files.server_cert) if files.tls_ready else None
    names = [h for h in (server.hosts if server else ()) if h not in ("localhost", "::1")]
    return names[0] if names else "127.0.0.1"


@device_app.command("list")
def device_list(config: ConfigOption = None) -> None:
    """Daftar perangkat di listener TLS dan topiknya / The devices allowed on the TLS listener
    and the topics each may use; removed ones too."""
    from wastebank import devices

    files = devices.broker_auth_files(_services_settings(config).run_dir)
    registry = devices.Registry(files)
    registered = registry.devices()
    for device in registered:
        created = f"{device.created_at:%Y-%m-%d}" if device.created_at else "-"
        rotated = f"{device.rotated_at:%Y-%m-%d}" if device.rotated_at else "-"
        typer.echo(
            f"{device.username}\t{device.kind}\t{device.site}\t"
            f"dibuat / created {created}\tdiganti / rotated {rotated}"
        )
        for topic in device.publish_topics:
            typer.echo(f"    tulis / write  {topic}")
        for topic_filter in device.read_filters:
            typer.echo(f"    baca / read    {topic_filter}")
    for gone in registry.removed():  # out of the fleet, kept until added again at its site
        typer.echo(
            f"dihapus / removed\t{gone.kind}\t{gone.site}\t{gone.device_id}\t"
            f"{gone.removed_at:%Y-%m-%d}"
        )
    unknown = sorted(set(registry.password_users()) - {d.username for d in registered})
    if unknown:
        typer.echo(
            f"di file kata sandi tetapi tidak terdaftar / in the password file but not "
            f"registered (no ACL: may do nothing): {', '.join(unknown)}"
        )
    typer.echo(f"{len(registered)} perangkat / device(s)")


@device_app.command("remove")
def device_remove(
    username: Annotated[
        str,
        typer.Argument(
            help="seperti di `wastebank device list` / as `wastebank device list` shows it"
        ),
    ],
    config: ConfigOption = None,
) -> None:
    """Cabut perangkat: kata sandi dan ACL-nya dihapus, broker langsung memutusnya / Revoke a
    device: its password and ACL go; the broker drops it at once."""
    from wastebank import devices

    settings = _services_settings(config)
    registry = devices.Registry(devices.broker_auth_files(settings.run_dir))
    device = registry.remove(username)
    typer.echo(f"dicabut / revoked: {device.describe()}")
    _reload_broker(settings)
