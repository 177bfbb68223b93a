"""`wastebank certs` and `wastebank device`: the broker's TLS listener and per-device credentials.

The integration tests run a private Mosquitto (the project's own config, from `services.up`) with
certificates from `wastebank certs init`, so it has both listeners: the loopback one, where an
observer logs in as the test (a process identity), and the TLS one, where each device logs in
with the password `wastebank device add` issued and may publish only its own topics.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiomqtt
import msgspec
import pytest
import tomli_w
from cryptography import x509
from paho.mqtt.client import CallbackOnPublish_v2
from typer.testing import CliRunner, Result

from gateway.settings import GatewaySettings
from tests.conftest import PrivateMosquitto, free_port, mqtt_login
from wastebank import devices, mqtt, services
from wastebank.cli import app
from wastebank.config import ConfigError, FilePath, MqttSettings, SecretStr, load_settings
from wastebank.messages import Topics
from wastebank.mqtt import client_id

NOT_AUTHORIZED = 0x87  # MQTT 5 reason code in the PUBACK of a publish the ACL refuses
ACCEPTED = (0x00, 0x10)  # success, and "no matching subscribers" (also a success)
NOT_AUTHORIZED_AT_CONNECT = "MqttConnectError: [code:135] Not authorized"  # CONNACK 5 in 3.1.1
EUI = "24e124713b123456"


# ---- the private broker with its TLS listener ---------------------------------------------------


@dataclass
class TlsBroker:
    broker: PrivateMosquitto
    files: services.BrokerAuthFiles
    env: dict[str, str]  # WASTEBANK_* for the `wastebank` commands: this broker's run dir, ports

    @property
    def plain_port(self) -> int:
        return self.broker.port

    @property
    def tls_port(self) -> int:
        return self.broker.settings.mqtt_tls_port

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(app, list(args), env=self.env)

    def add(self, *args: str) -> str:
        """`wastebank device add ARGS`; the password it printed."""
        result = self.cli("device", "add", *args)
        assert result.exit_code == 0, result.output
        match = re.search(r"^  password: (\S+)$", result.output, re.MULTILINE)
        assert match is not None, result.output
        return match.group(1)

    def device(self, username: str, password: str, prefix: str = "") -> MqttSettings:
        """A device's settings, as the snippet `device add` prints puts them in a site file."""
        return MqttSettings(
            host="127.0.0.1",
            port=self.tls_port,
            tls=True,
            ca_file=FilePath(self.files.ca_cert),
            username=username,
            password=SecretStr(password),
            topic_prefix=prefix,
        )

    def observer(self, identifier: str | None = None, **kwargs: Any) -> aiomqtt.Client:
        """A client on the loopback listener with the test's own identity."""
        login = mqtt_login(self.broker.mqtt(), identifier)
        return aiomqtt.Client("127.0.0.1", self.plain_port, **login, **kwargs)

    def v5(self, username: str, password: str) -> tuple[aiomqtt.Client, list[str]]:
        """An MQTT 5 client over TLS, and what each PUBACK it gets says: "ok" or "refused"."""
        client = aiomqtt.Client(
            "127.0.0.1",
            self.tls_port,
            username=username,
            password=password,
            identifier=client_id(username),
            tls_params=aiomqtt.TLSParameters(ca_certs=str(self.files.ca_cert)),
            protocol=aiomqtt.ProtocolVersion.V5,
            timeout=10,
        )
        codes: list[str] = []
        paho = client._client
        # aiomqtt's (on paho's callback API version 2, which it sets); it drops the reason code
        on_publish = cast(CallbackOnPublish_v2, paho.on_publish)

        def record(c: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
            value = reason.value
            codes.append(
                "refused" if value == NOT_AUTHORIZED else "ok" if value in ACCEPTED else hex(value)
            )
            on_publish(c, userdata, mid, reason, properties)

        paho.on_publish = record
        return client, codes


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    run_dir = tmp_path_factory.mktemp("tls") / "run"
    broker = PrivateMosquitto(run_dir)
    broker.settings = msgspec.structs.replace(
        broker.settings, mqtt_tls_port=free_port(), mqtt_tls_bind="127.0.0.1"
    )
    env = {
        "WASTEBANK_RUN_DIR": str(run_dir),
        "WASTEBANK_MQTT_PORT": str(broker.settings.mqtt_port),
        "WASTEBANK_MQTT_TLS_PORT": str(broker.settings.mqtt_tls_port),
        "WASTEBANK_MQTT_TLS_BIND": broker.settings.mqtt_tls_bind,
    }
    tb = TlsBroker(broker, services.broker_auth_files(run_dir), env)
    result = tb.cli("certs", "init", "--host", "127.0.0.1", "--host", "localhost")
    assert result.exit_code == 0, result.output
    broker.start()
    assert services.mosquitto_tls_listening(broker.settings)
    yield tb
    broker.stop()


async def refused(settings: MqttSettings) -> str:
    """Connect with ``settings``, expecting to be refused; what the error says."""
    client = mqtt.client(settings, timeout=10)
    try:
        async with client:
            pass
    except aiomqtt.MqttError as exc:
        _close_sockets_left_open(exc)
        return f"{type(exc).__name__}: {exc}"
    finally:
        # A refused CONNACK leaves paho's socket open (ResourceWarning when collected).
        client._client._sock_close()
    raise AssertionError(f"{settings.username!r} was let in")


def _close_sockets_left_open(exc: BaseException) -> None:
    """paho does not close the socket of a failed TLS handshake (Client._ssl_wrap_socket): it
    lives on in the traceback until collected. Close it now, not with a ResourceWarning later."""
    cause = exc.__context__
    tb = cause.__traceback__ if cause is not None else None
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if isinstance(value, socket.socket):
                value.close()
        tb = tb.tb_next


async def topics_until(client: aiomqtt.Client, last: str, timeout: float = 10) -> list[str]:
    """Topics of the messages ``client`` receives, up to and including one on ``last``."""
    seen: list[str] = []
    async with asyncio.timeout(timeout):
        async for message in client.messages:
            seen.append(str(message.topic))
            if message.topic.matches(last):
                return seen
    raise AssertionError("unreachable")


# ---- over TLS, each device only its own topics --------------------------------------------------


@pytest.mark.integration
async def test_a_gateway_publishes_its_own_topics_and_nothing_else(
    tls_broker: TlsBroker, test_id: str
) -> None:
    prefix, bank, gw = f"test-{test_id}/", "bs-batu-merah", f"gw-{test_id}"
    password = tls_broker.add("--bank", bank, "--gateway", gw, "--topic-prefix", prefix)
    topics = Topics(prefix)
    own, marker = topics.deposit(bank, gw), topics.gateway_health(bank, gw)
    other_bank = topics.deposit("bs-waihaong", gw)
    other_gateway = topics.deposit(bank, f"gw-x{test_id}")

    async with tls_broker.observer() as observer:
        await observer.subscribe(f"{prefix}#", qos=1)
        # The gateway's own client factory, MQTT 3.1.1 as the gateway speaks it: the broker
        # acknowledges a refused publish like any other and drops it.
        async with mqtt.client(tls_broker.device(gw, password, prefix)) as gateway:
            for topic in (own, other_bank, other_gateway, marker):
                await gateway.publish(topic, b"{}", qos=1)
        # One connection's messages arrive in order: nothing refused came before the marker.
        assert await topics_until(observer, marker) == [own, marker]

    # MQTT 5 says why: "Not authorized" in the PUBACK.
    client, codes = tls_broker.v5(gw, password)
    async with client:
        for topic in (other_bank, own, topics.fill("tps-batu-merah", "us-01"), marker):
            await client.publish(topic, b"{}", qos=1)
    assert codes == ["refused", "ok", "refused", "ok"]


@pytest.mark.integration
async def test_a_tps_sensor_publishes_its_fill_and_status_only(
    tls_broker: TlsBroker, test_id: str
) -> None:
    prefix, tps, sensor = f"test-{test_id}/", "tps-benteng", f"us-{test_id}"
    password = tls_broker.add("--tps", tps, "--sensor", sensor, "--topic-prefix", prefix)
    topics = Topics(prefix)

    client, codes = tls_broker.v5(f"{tps}.{sensor}", password)
    async with tls_broker.observer() as observer:
        await observer.subscribe(f"{prefix}#", qos=1)
        async with client:
            await client.publish(topics.fill(tps, sensor), b"{}", qos=1)
            await client.publish(topics.fill("tps-batu-merah", sensor), b"{}", qos=1)
            await client.publish(topics.deposit("bs-batu-merah", sensor), b"{}", qos=1)
            await client.publish(topics.sensor_status(tps, sensor), b"{}", qos=1, retain=True)
        status = topics.sensor_status(tps, sensor)
        assert await topics_until(observer, status) == [topics.fill(tps, sensor), status]
    assert codes == ["ok", "refused", "refused", "ok"]


@pytest.mark.integration
async def test_a_gateway_from_its_site_file_reads_only_its_own_sensors_uplinks(
    tls_broker: TlsBroker, test_id: str, tmp_path: Path
) -> None:
    prefix, gw = f"test-{test_id}/", f"gw-{test_id}"
    site = tmp_path / "site.toml"
    site.write_text(
        tomli_w.dumps(
            {
                "gateway_id": gw,
                "bank_code": "bs-batu-merah",
                "mqtt": {"topic_prefix": prefix},
                "sensors": [
                    {
                        "id": "lora-01",
                        "tps_code": "tps-benteng",
                        "kind": "em310_udl",
                        "dev_eui": EUI.upper(),
                        "empty_distance_mm": 1600,
                        "full_distance_mm": 300,
                    },
                    {
                        "id": "us-01",
                        "tps_code": "tps-batu-merah",
                        "kind": "jsn_sr04t",
                        "port": "/dev/ttyUSB9",
                        "empty_distance_mm": 1400,
                        "full_distance_mm": 250,
                    },
                ],
            }
        )
    )
    password = tls_broker.add("--site", str(site))
    acl = tls_broker.files.acl_file.read_text()
    assert f"topic read {prefix}application/+/device/{EUI}/event/up\n" in acl

    own_up = f"{prefix}application/7/device/{EUI}/event/up"
    other_up = f"{prefix}application/7/device/ffffffffffffffff/event/up"
    gateway = mqtt.client(tls_broker.device(gw, password, prefix))
    async with gateway, tls_broker.observer() as network_server:
        # Subscribing wider than the grant is accepted, but only granted topics are delivered.
        await gateway.subscribe(f"{prefix}application/#", qos=1)
        await network_server.publish(other_up, b"{}", qos=1)
        await network_server.publish(own_up, b"{}", qos=1)
        assert await topics_until(gateway, own_up) == [own_up]

    client, codes = tls_broker.v5(gw, password)
    topics = Topics(prefix)
    async with client:
        await client.publish(topics.fill("tps-benteng", "lora-01"), b"{}", qos=1)
        await client.publish(topics.fill("tps-batu-merah", "us-01"), b"{}", qos=1)
        await client.publish(topics.fill("tps-batu-merah", "us-02"), b"{}", qos=1)
    assert codes == ["ok", "ok", "refused"]


@pytest.mark.integration
async def test_wrong_password_no_password_and_an_untrusted_ca_are_refused(
    tls_broker: TlsBroker, test_id: str, tmp_path: Path
) -> None:
    gw = f"gw-{test_id}"
    password = tls_broker.add("--bank", "bs-batu-merah", "--gateway", gw)
    good = tls_broker.device(gw, password)

    for settings in (
        msgspec.structs.replace(good, password=SecretStr(password + "x")),
        msgspec.structs.replace(good, username=f"gw-x{test_id}"),
        msgspec.structs.replace(good, username=None, password=None),
    ):
        assert await refused(settings) == NOT_AUTHORIZED_AT_CONNECT

    # Another site's CA, and the system's CAs: the broker's certificate is not trusted.
    other = services.broker_auth_files(tmp_path / "other-site")
    devices.init_certs(other, ["127.0.0.1"])
    for ca_file in (other.ca_cert, None):
        untrusting = msgspec.structs.replace(good, ca_file=ca_file)
        assert "CERTIFICATE_VERIFY_FAILED" in str(await refused(untrusting))

    async with mqtt.client(good, timeout=10):
        pass  # and the right ones still get in


@pytest.mark.integration
async def test_rotate_replaces_the_password_and_remove_revokes_at_once(
    tls_broker: TlsBroker, test_id: str
) -> None:
    bank, gw = "bs-batu-merah", f"gw-{test_id}"
    first = tls_broker.add("--bank", bank, "--gateway", gw)

    again = tls_broker.cli("device", "add", "--bank", bank, "--gateway", gw)
    assert again.exit_code == 2
    assert "already registered" in again.output
    moved = tls_broker.cli("device", "add", "--bank", "bs-waihaong", "--gateway", gw, "--rotate")
    assert moved.exit_code == 2
    assert "registered as gateway" in moved.output
    async with mqtt.client(tls_broker.device(gw, first), timeout=10):
        pass  # the refusals changed nothing

    second = tls_broker.add("--bank", bank, "--gateway", gw, "--rotate")
    assert second != first
    assert await refused(tls_broker.device(gw, first)) == NOT_AUTHORIZED_AT_CONNECT
    listed = tls_broker.cli("device", "list")
    assert re.search(rf"^{gw}\tgateway\t{bank}\t.*rotated \d{{4}}-", listed.output, re.MULTILINE)

    # Connected when it is removed: the reload drops it (Mosquitto re-checks every client's
    # password on reload), and it cannot come back.
    topic = Topics().deposit(bank, gw)
    connected = mqtt.client(tls_broker.device(gw, second), timeout=10)
    await connected.__aenter__()
    try:
        await connected.publish(topic, b"{}", qos=1)
        removed = tls_broker.cli("device", "remove", gw)
        assert removed.exit_code == 0, removed.output
        assert "revoked" in removed.output
        # Subscribed to nothing, its message iterator ends only when the connection does.
        with pytest.raises(aiomqtt.MqttError):
            async with asyncio.timeout(10):
                await anext(connected.messages)
    finally:
        await connected.__aexit__(None, None, None)
    assert await refused(tls_broker.device(gw, second)) == NOT_AUTHORIZED_AT_CONNECT
    after = tls_broker.cli("device", "list").output
    assert not re.search(rf"^{gw}\t", after, re.MULTILINE)  # allowed nothing any more
    assert re.search(rf"^dihapus / removed\tgateway\t{bank}\t{gw}\t\d{{4}}-", after, re.MULTILINE)
    assert f"\n{gw}:" not in "\n" + tls_broker.files.password_file.read_text()
    assert tls_broker.cli("device", "remove", gw).exit_code == 2


@pytest.mark.integration
async def test_a_reload_keeps_loopback_logins_and_a_persistent_session_queues(
    tls_broker: TlsBroker, test_id: str
) -> None:
    """per_listener_settings must not cost the ingester anything: logged in on loopback before
    and after a reload, its persistent session queueing what devices send over TLS meanwhile."""
    prefix, bank, gw = f"test-{test_id}/", "bs-batu-merah", f"gw-{test_id}"
    topics = Topics(prefix)
    password = tls_broker.add("--bank", bank, "--gateway", gw, "--topic-prefix", prefix)
    session: dict[str, Any] = {"identifier": f"ingest-{test_id}", "clean_session": False}
    async with tls_broker.observer(**session) as ingester:
        await ingester.subscribe(topics.deposit_filter, qos=1)

    async with tls_broker.observer() as watcher:
        await watcher.subscribe(f"{prefix}#", qos=1)
        async with mqtt.client(tls_broker.device(gw, password, prefix)) as gateway:
            await gateway.publish(topics.deposit(bank, gw), b"before reload", qos=1)
            tls_broker.add("--bank", bank, "--gateway", f"gw-x{test_id}")  # SIGHUP
            await gateway.publish(topics.deposit(bank, gw), b"after reload", qos=1)
        # Connected across the reload, still logged in and still receiving.
        await watcher.publish(topics.gateway_health(bank, gw), b"{}", qos=1)
        seen = await topics_until(watcher, topics.gateway_health(bank, gw))
        assert seen == [topics.deposit(bank, gw)] * 2 + [topics.gateway_health(bank, gw)]

    async with tls_broker.observer(**session) as ingester:
        payloads: list[bytes] = []
        async with asyncio.timeout(10):
            async for message in ingester.messages:
                assert isinstance(message.payload, bytes)
                payloads.append(message.payload)
                if len(payloads) == 2:
                    break
    assert payloads == [b"before reload", b"after reload"]


@pytest.mark.integration
def test_a_renewed_certificate_is_served_after_a_reload_without_a_restart(
    tls_broker: TlsBroker,
) -> None:
    def served() -> x509.Certificate:
        pem = ssl.get_server_certificate(("127.0.0.1", tls_broker.tls_port), timeout=10)
        return x509.load_pem_x509_certificate(pem.encode())

    pid = services.status(tls_broker.broker.settings)[0].pid
    before = served()
    assert before == x509.load_pem_x509_certificate(tls_broker.files.server_cert.read_bytes())
    result = tls_broker.cli(
        "certs", "init", "--host", "127.0.0.1", "--host", "localhost", "--host", "broker.test"
    )
    assert result.exit_code == 0, result.output
    assert "broker reloaded" in result.output
    after = served()
    assert after != before
    assert after == x509.load_pem_x509_certificate(tls_broker.files.server_cert.read_bytes())
    assert services.status(tls_broker.broker.settings)[0].pid == pid  # the same process


# ---- command line and files, no broker ----------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_certs_init_keeps_the_ca_reissues_for_new_hosts_and_force_replaces(
    tmp_path: Path,
) -> None:
    env = {"WASTEBANK_RUN_DIR": str(tmp_path / "run")}
    files = services.broker_auth_files(tmp_path / "run")

    def init(*args: str) -> Result:
        result = CliRunner().invoke(app, ["certs", "init", *args], env=env)
        assert result.exit_code == 0, result.output
        return result

    first = init("--host", "127.0.0.1", "--host", "Broker.Example.go.id", "--name", "Kota Ambon")
    assert "CA dibuat / created" in first.output
    assert "not running" in first.output
    ca, server = files.ca_cert.read_bytes(), files.server_cert.read_bytes()
    for key in (files.ca_key, files.server_key):
        assert _mode(key) == 0o600
    assert _mode(files.ca_cert.parent) == 0o700
    cert = x509.load_pem_x509_certificate(server)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker.example.go.id"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]

    again = init()  # no hosts: keep the certificate's own
    assert "CA tetap / kept" in again.output
    assert "certificate tetap / kept" in again.output
    assert (files.ca_cert.read_bytes(), files.server_cert.read_bytes()) == (ca, server)

    moved = init("--host", "broker.example.go.id", "--host", "203.0.113.10")
    assert "host names changed" in moved.output
    assert files.ca_cert.read_bytes() == ca  # gateways keep trusting the broker
    assert files.server_cert.read_bytes() != server

    forced = init("--force", "--name", "Kota Ambon")
    assert "new CA: every gateway needs the new ca.crt" in forced.output
    assert files.ca_cert.read_bytes() != ca
    new_server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    new_server.verify_directly_issued_by(x509.load_pem_x509_certificate(files.ca_cert.read_bytes()))

    shown = CliRunner().invoke(app, ["certs", "show"], env=env)
    assert shown.exit_code == 0
    assert "CN=Kota Ambon CA" in shown.output
    assert "host: broker.example.go.id, 203.0.113.10" in shown.output

    bad = CliRunner().invoke(app, ["certs", "init", "--host", "not a host"], env=env)
    assert bad.exit_code == 2
    assert "not a host name or IP address" in bad.output


def _listener_blocks(conf: str) -> list[list[str]]:
    """Config lines (no comments) split at each `listener` line: [global, listener 1, ...]."""
    blocks: list[list[str]] = [[]]
    for line in conf.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("listener "):
            blocks.append([])
        blocks[-1].append(line)
    return blocks


def test_every_listener_needs_a_login_and_the_tls_one_appears_with_certificates(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        services.ServicesSettings,
        run_dir=tmp_path,
        mqtt_port=21883,
        mqtt_tls_port=28883,
        influx_port=28086,
    )
    mosquitto, _ = services._services(settings)
    files = services.broker_auth_files(tmp_path)
    security_options = ("allow_anonymous", "password_file", "acl_file", "plugin ")
    security = [
        "allow_anonymous false",
        "allow_zero_length_clientid false",
        f"plugin {services.clientid_plugin_path(tmp_path)}",
        f"password_file {files.password_file}",
        f"acl_file {files.acl_file}",
    ]

    plain = _listener_blocks(services.mosquitto_conf(mosquitto, settings))
    assert [block[0] for block in plain[1:]] == ["listener 21883 127.0.0.1"]
    assert plain[1][1:] == security

    devices.init_certs(files, ["127.0.0.1"])
    global_, loopback, tls = _listener_blocks(services.mosquitto_conf(mosquitto, settings))
    # First, before any security option; none in the global part, or Mosquitto would open its
    # default listener (1883, every interface) to carry it.
    assert global_[0] == "per_listener_settings true"
    assert not any(line.startswith(security_options) for line in global_[1:])
    assert loopback == ["listener 21883 127.0.0.1", *security]
    assert tls == [
        "listener 28883",
        f"certfile {files.server_cert}",
        f"keyfile {files.server_key}",
        "tls_version tlsv1.2",
        *security,
    ]


def test_device_add_needs_one_identity_and_valid_codes(tmp_path: Path) -> None:
    env = {"WASTEBANK_RUN_DIR": str(tmp_path / "run")}

    def add(*args: str) -> Result:
        return CliRunner().invoke(app, ["device", "add", *args], env=env)

    assert add().exit_code == 2
    assert add("--bank", "bs-a", "--gateway", "gw-a", "--tps", "tps-a").exit_code == 2
    assert add("--bank", "bs-a").exit_code == 2
    bad = add("--bank", "Bank Sampah", "--gateway", "gw-a")
    assert (bad.exit_code, "invalid site" in bad.output) == (2, True)
    assert add("--tps", "tps-a", "--sensor", "us-01", "--serves", "tps-a/us-02").exit_code == 2
    assert add("--bank", "bs-a", "--gateway", "gw-a", "--serves", "tps-a").exit_code == 2
    assert add("--bank", "bs-a", "--gateway", "gw-a", "--reads", "a/#/b").exit_code == 2
    # the city's own topics are never a gateway's to read (the third review: `#` read every
    # bank's deposits), with or without a wildcard first
    for ours in (
        "#",
        "+/v1/#",
        "wb/v1/+/gateway/+/health",
        "wb/#",
        "wb/v1/bs-b/gateway/gw-b/deposit",
    ):
        refused = add("--bank", "bs-a", "--gateway", "gw-a", "--reads", ours)
        assert refused.exit_code == 2, ours
        assert "wb/v1" in refused.output or "wildcard" in refused.output, refused.output
    assert not (tmp_path / "run/mosquitto/devices.toml").exists()  # nothing half-written

    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    snippet_file = tmp_path / "gw-a.toml"
    ok = add(
        "--bank", "bs-a", "--gateway", "gw-a",
        "--snippet", str(snippet_file), "--device-ca-file", str(ca),
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "no certificates yet" in ok.output
    assert _mode(snippet_file) == 0o600
    password = re.search(r"^  password: (\S+)$", ok.output, re.MULTILINE)
    assert password is not None

    # The snippet is the [mqtt] table of the gateway's site file, as it is.
    site = tmp_path / "site.toml"
    site.write_text(
        'gateway_id = "gw-a"\nbank_code = "bs-a"\n'
        '[[scales]]\nid = "scale-01"\nport = "/dev/ttyUSB0"\n' + snippet_file.read_text()
    )
    mqtt_settings = load_settings(GatewaySettings, site).mqtt
    assert mqtt_settings.tls
    assert (mqtt_settings.ca_file, mqtt_settings.username) == (ca, "gw-a")
    assert mqtt_settings.port == services.DEFAULT_MQTT_TLS_PORT
    assert mqtt_settings.password is not None
    assert mqtt_settings.password.get_secret_value() == password.group(1)

    passwd_file = tmp_path / "run/mosquitto/passwd"
    assert passwd_file.read_text().startswith("gw-a:$7$")  # hashed by mosquitto_passwd
    assert password.group(1) not in passwd_file.read_text()
    assert _mode(passwd_file) == 0o600


def test_mqtt_tls_settings_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("WASTEBANK_BANK_CODE", "bs-batu-merah")
    monkeypatch.setenv("WASTEBANK_SENSORS", "[]")
    monkeypatch.setenv("WASTEBANK_SCALES", '[{"id": "s-1", "port": "/dev/ttyUSB0"}]')
    monkeypatch.setenv("WASTEBANK_MQTT__TLS", "true")
    monkeypatch.setenv("WASTEBANK_MQTT__CA_FILE", str(ca))
    settings = load_settings(GatewaySettings)
    assert (settings.mqtt.tls, settings.mqtt.ca_file) == (True, ca)

    monkeypatch.setenv("WASTEBANK_MQTT__CA_FILE", str(tmp_path / "missing.crt"))
    with pytest.raises(ConfigError, match=r"mqtt\.ca_file \(WASTEBANK_MQTT__CA_FILE\)"):
        load_settings(GatewaySettings)

    monkeypatch.setenv("WASTEBANK_MQTT__CA_FILE", str(ca))
    monkeypatch.setenv("WASTEBANK_MQTT__TLS", "false")
    with pytest.raises(ConfigError, match="need tls = true"):
        load_settings(GatewaySettings)
    monkeypatch.setenv("WASTEBANK_MQTT__TLS", "true")
    monkeypatch.setenv("WASTEBANK_MQTT__CERT_FILE", str(ca))
    with pytest.raises(ConfigError, match="cert_file and key_file go together"):
        load_settings(GatewaySettings)


def test_a_removed_device_is_kept_as_removed_until_added_again_at_its_site(
    tmp_path: Path,
) -> None:
    """The fleet leaves out what the registry says was removed (docs/fleet.md): a device moved
    to another bank stays removed at the old one."""
    registry = devices.Registry(devices.broker_auth_files(tmp_path / "run"))
    registry.add(devices.Device("gateway", "bs-a", "gw-a"))
    registry.remove("gw-a")
    (gone,) = registry.removed()
    assert (gone.kind, gone.site, gone.device_id) == ("gateway", "bs-a", "gw-a")
    assert gone.removed_at.tzinfo is not None
    assert registry.devices() == []
    registry.add(devices.Device("gateway", "bs-b", "gw-a"))  # moved
    assert [r.site for r in registry.removed()] == ["bs-a"]
    registry.remove("gw-a")
    registry.add(devices.Device("gateway", "bs-a", "gw-a"))  # back where it was
    assert [r.site for r in registry.removed()] == ["bs-b"]
    assert "gw-a" in registry.files.acl_file.read_text()
