"""This checkout's ports: the built-in ones where free, others where another program holds
them, recorded once in ``run_dir/ports.toml`` for every process of the checkout."""

from __future__ import annotations

import socket

from wastebank.config import BUILTIN_PORTS, recorded_ports
from wastebank.services.core import INFLUX_RPC_OFFSET, ServicesSettings, log, our_pid, port_open
from wastebank.services.influxdb import influxd_service
from wastebank.services.mosquitto import mosquitto_service
from wastebank.services.postgres import postgres_service

PORT_FIELDS = {
    "mqtt": "mqtt_port",
    "influx": "influx_port",
    "postgresql": "postgresql_port",
    "mqtt_tls": "mqtt_tls_port",
}


def claim_ports(settings: ServicesSettings) -> dict[str, int]:
    """This checkout's ports, recorded in ``run_dir/ports.toml`` by its first `up`.

    Each service keeps its built-in port (11883, 18086, 15432, 18883) when that is free or
    already ours, or when the settings name another port; a built-in port some other program
    holds (another checkout's services, a system daemon) is replaced by a free one. Every
    process of the checkout reads the file for its defaults (wastebank/config.py), so two
    checkouts on one machine never share a daemon. ``settings`` is updated in place.
    """
    path = settings.run_dir / "ports.toml"
    if path.exists():
        return recorded_ports(path)
    mosquitto, influxd = mosquitto_service(settings), influxd_service(settings)
    ours = {
        "mqtt": our_pid(mosquitto),
        "influx": our_pid(influxd),
        "postgresql": our_pid(postgres_service(settings)),
        "mqtt_tls": our_pid(mosquitto),
    }
    chosen: dict[str, int] = {}
    for name, field in PORT_FIELDS.items():
        port = getattr(settings, field)
        if port == BUILTIN_PORTS[name] and ours[name] is None and _port_taken(name, port):
            port = _free_port(name)
            log.info(
                "port %s %s dipakai, memakai / taken, using %s", name, BUILTIN_PORTS[name], port
            )
            setattr(settings, field, port)
        chosen[name] = port
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by the first `wastebank services up` of this checkout; delete to choose again."
    ]
    lines += [f"{name} = {port}" for name, port in chosen.items()]
    path.write_text("\n".join(lines) + "\n")
    return chosen


def _port_taken(name: str, port: int) -> bool:
    ports = (port, port + INFLUX_RPC_OFFSET) if name == "influx" else (port,)
    return any(port_open("127.0.0.1", p) for p in ports)


def _free_port(name: str) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port <= 65535 - INFLUX_RPC_OFFSET and not _port_taken(name, port):
            return port
