"""The bound on a request's head (api/server.py): the API on a real uvicorn, as `wastebank api`
serves it, refuses a URL or headers past ``max_head_bytes`` with 431 and closes the connection,
and still serves heads under the bound, bodies larger than it, and keep-alive requests whose heads
together are larger than it."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
import uvicorn

from api import limits
from api.app import create_app
from api.deps import SESSION_COOKIE
from api.server import HeadLimitedProtocol, http_protocol
from api.settings import HttpSettings
from tests.auth_helpers import add_users, api_settings
from tests.conftest import LedgerFactory, Processes, free_port, wait_until
from wastebank.http_limits import LogEveryMinute, ReadDeadline

HEAD_LIMIT = 16 * 1024  # the default
MB = 1024 * 1024
DETAIL = (
    "kepala permintaan (alamat dan header) terlalu besar, paling banyak 16.384 bita / request "
    "head (URL and headers) too large: at most 16.384 bytes"
)


class Served:
    def __init__(self, port: int, creds: dict[str, tuple[str, str]]) -> None:
        self.port, self.creds = port, creds


@pytest.fixture(scope="module")
def api(ledger_factory: LedgerFactory) -> Iterator[Served]:
    """The API on a loopback port, in a thread, with the protocol `wastebank api` gives uvicorn."""
    url = ledger_factory.new()
    creds = add_users(url, ("citizen_a", "admin"))
    settings = api_settings(ledger_url=url)
    assert settings.http.max_head_bytes == HEAD_LIMIT
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            proxy_headers=False,
            http=http_protocol(
                settings.http.max_head_bytes, read_timeout_s=2, max_connections=64, per_client=48
            ),
        )
    )
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), timeout=30)
        assert server.started, "the API did not start"
        yield Served(port, creds)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        ledger_factory.drop(url)


class Exchange:
    """What came back on one connection: the bytes up to the server's close."""

    def __init__(self, raw: bytes, closed: bool) -> None:
        self.raw, self.closed = raw, closed
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines[0] else 0
        self.headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
        }


def exchange(port: int, pieces: list[bytes]) -> Exchange:
    """Send ``pieces`` (each its own send, in a thread: the server may stop reading) and read
    until the server closes the connection (or 30 s pass: then ``closed`` is False)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send() -> None:
        with contextlib.suppress(OSError):  # refused and closed while sending: expected
            for piece in pieces:
                sock.sendall(piece)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    got, closed = b"", False
    with sock:
        try:
            while chunk := sock.recv(65536):
                got += chunk
            closed = True
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            pass
        sender.join(timeout=30)
    return Exchange(got, closed)


def served_normally(port: int) -> bool:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        return client.get("/masuk").status_code == 200


def assert_refused(answer: Exchange) -> None:
    assert answer.status == 431, answer.raw[:300]
    assert json.loads(answer.body) == {"detail": DETAIL}
    assert answer.headers["connection"] == "close"
    assert answer.headers["content-type"] == "application/json"
    assert answer.closed


def test_a_1_mb_url_is_refused_431_and_the_server_keeps_serving(
    api: Served, caplog: pytest.LogCaptureFixture
) -> None:
    before = limits.refused["head"]
    with caplog.at_level(logging.WARNING, "api.limits"):
        answer = exchange(
            api.port, [b"GET /masuk?q=" + b"a" * MB + b" HTTP/1.1\r\nHost: x\r\n\r\n"]
        )
    assert_refused(answer)
    assert limits.refused["head"] == before + 1
    assert "request head too large: from 127.0.0.1" in caplog.text
    assert served_normally(api.port)
    # an admin sees the count on /health
    username, secret = api.creds["admin"]
    with httpx.Client(base_url=f"http://127.0.0.1:{api.port}", timeout=30) as client:
        token = client.post("/api/token", data={"username": username, "password": secret})
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        health = client.get("/health", headers=bearer).json()
    assert health["capacity"]["too_large"]["head"] == limits.refused["head"]


def test_a_1_mb_header_is_refused_431_and_the_server_keeps_serving(api: Served) -> None:
    answer = exchange(
        api.port, [b"GET /masuk HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * MB + b"\r\n\r\n"]
    )
    assert_refused(answer)
    assert served_normally(api.port)


def test_a_head_in_many_small_pieces_past_the_bound_is_refused(api: Served) -> None:
    pieces = [b"GET /masuk HTTP/1.1\r\nHost: x\r\n"]
    pieces += [b"X-Pad-%d: %s\r\n" % (i, b"p" * 80) for i in range(2000)]  # ~190 KB, no end
    answer = exchange(api.port, pieces)
    assert_refused(answer)
    assert served_normally(api.port)


def test_a_long_jwt_cookie_and_a_body_larger_than_the_bound_in_one_send_are_served(
    api: Served,
) -> None:
    username, secret = api.creds["citizen_a"]
    with httpx.Client(base_url=f"http://127.0.0.1:{api.port}", timeout=30) as client:
        token = client.post("/api/token", data={"username": username, "password": secret})
    jwt = token.json()["access_token"]
    # a browser's head at its largest: a session JWT, another cookie, a bearer and the usual
    head = (
        "POST /api/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Cookie: {SESSION_COOKIE}={jwt}; wb_csrf={'c' * 43}; wb_lang=id\r\n"
        f"Authorization: Bearer {jwt}\r\n"
        "User-Agent: Mozilla/5.0 (Linux; Android 13; SM-A145F) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/131.0.0.0 Mobile Safari/537.36\r\n"
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
        "Accept-Language: id-ID,id;q=0.9,en-US;q=0.8,en;q=0.7\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
    ).encode()
    body = f"username={username}&password={secret}&pad=".encode() + b"z" * 40_000
    assert HEAD_LIMIT < len(body) < HttpSettings().max_body_bytes
    request = head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
    answer = exchange(api.port, [request])
    assert answer.status == 200, answer.raw[:300]
    assert "access_token" in json.loads(answer.body)


def test_a_whole_head_past_the_bound_in_one_send_with_its_body_is_refused(api: Served) -> None:
    body = b"username=x&password=y"
    request = (
        b"POST /api/token HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\nContent-Length: %d\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\n%s"
        % (b"p" * (HEAD_LIMIT + 100), len(body), body)
    )
    assert_refused(exchange(api.port, [request]))
    # just under the bound, the same request reaches the app (401: no such user)
    under = request.replace(b"p" * (HEAD_LIMIT + 100), b"p" * (HEAD_LIMIT - 200))
    assert exchange(api.port, [under]).status == 401


def test_keep_alive_requests_each_get_their_own_count(api: Served) -> None:
    # each head ~12 KB: under the bound, together over it
    request = b"GET /masuk HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n" % (b"k" * 12_000)
    with socket.create_connection(("127.0.0.1", api.port), timeout=30) as sock:
        reader = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(request)
            status = reader.readline()
            assert status.startswith(b"HTTP/1.1 200"), status
            length = 0
            while (line := reader.readline()) != b"\r\n":
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                assert name.lower() != b"connection" or b"close" not in value.lower()
            assert len(reader.read(length)) == length


def test_a_pipelined_head_past_the_bound_is_refused_after_the_first_answer(api: Served) -> None:
    first = b"GET /masuk HTTP/1.1\r\nHost: x\r\n\r\n"
    second = b"GET /masuk HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * MB + b"\r\n\r\n"
    answer = exchange(api.port, [first, second])
    assert answer.status == 200  # the first request is answered whole, in order
    assert answer.closed
    # its answer under way when the second head passed the bound: it closes the connection (no
    # 431 written into it); already sent: the 431 follows it
    if answer.headers.get("connection") != "close":
        assert b"\r\n\r\nHTTP/1.1 431 " in answer.raw or b"HTTP/1.1 431 " in answer.body
    assert answer.raw.count(b"HTTP/1.1 200 ") == 1


def test_a_head_that_never_ends_is_closed_at_its_deadline(api: Served) -> None:
    """The third review: a head sent and never finished was kept 40 s and more (the fixture's
    server has a 2 s deadline; `wastebank api` gives it http.read_timeout_s)."""
    before = dict(limits.closed)
    answer = exchange(api.port, [b"GET /masuk HTTP/1.1\r\nHost: x\r\nX-Pad: a"])
    assert (answer.closed, answer.raw) == (True, b"")  # closed, unanswered
    assert limits.closed["head_timeout"] == before.get("head_timeout", 0) + 1
    assert served_normally(api.port)


def test_connections_beyond_a_clients_share_are_closed_as_they_open(api: Served) -> None:
    held = [socket.create_connection(("127.0.0.1", api.port), timeout=30) for _ in range(48)]
    try:
        for sock in held:
            sock.sendall(b"GET /masuk HTTP/1.1\r\nHost: x\r\n")  # unfinished: kept open
        answer = exchange(api.port, [b"GET /masuk HTTP/1.1\r\nHost: x\r\n\r\n"])
        assert (answer.closed, answer.raw) == (True, b"")
    finally:
        for sock in held:
            sock.close()
    assert served_normally(api.port)


def test_wastebank_api_gives_uvicorn_the_protocol_in_both_paths() -> None:
    from typer.testing import CliRunner

    from wastebank.cli import app as cli

    for workers in ("1", "2"):
        with (
            mock.patch.dict(os.environ, {"WASTEBANK_HTTP__MAX_HEAD_BYTES": "5000"}),
            mock.patch("uvicorn.run") as run,
        ):
            result = CliRunner().invoke(cli, ["api", "--workers", workers])
        assert result.exit_code == 0, result.output
        http: Any = run.call_args.kwargs["http"]
        # the workers get it pickled (spawn): it must arrive whole
        http = pickle.loads(pickle.dumps(http))  # noqa: S301 (our own bytes)
        assert http.func is HeadLimitedProtocol
        assert http.keywords == {
            "max_head_bytes": 5000,
            "head_timeout_s": 10.0,
            "max_connections": 1024,
            "per_client": 64,
        }


def test_the_workers_refuse_a_head_past_the_bound(
    ledger_factory: LedgerFactory, processes: Processes, tmp_path: Path
) -> None:
    url = ledger_factory.new()
    port = free_port()
    env = {
        "WASTEBANK_LEDGER_URL": url,
        "WASTEBANK_PORT": str(port),
        "WASTEBANK_HTTP__MAX_HEAD_BYTES": "4096",
        "WASTEBANK_AUTH__SECRET_FILE": str(tmp_path / "api-secret.key"),
    }
    proc = processes.start("api", ["api", "--workers", "2"], env)
    try:
        wait_until(lambda: served_or_gone(port, proc), timeout=60)
        assert proc.poll() is None, processes.log("api")
        answer = exchange(
            port, [b"GET /masuk HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 5000 + b"\r\n\r\n"]
        )
        assert answer.status == 431, processes.log("api")
        assert "4.096" in json.loads(answer.body)["detail"]
        assert served_normally(port)
    finally:
        processes.stop_all()
        ledger_factory.drop(url)


def served_or_gone(port: int, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        return True
    try:
        return served_normally(port)
    except httpx.TransportError:
        return False


def test_closes_are_logged_once_a_minute_per_kind_whatever_the_connection(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A flood of closed connections is one log line a minute per kind, with the count since
    start (a protocol object is one connection: the once-a-minute is the class's)."""
    monkeypatch.setattr(ReadDeadline, "_logged", LogEveryMinute())
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    refused: Counter[str] = Counter()
    log = logging.getLogger("tests.read_deadline")

    def close(why: str) -> None:  # one connection each, as uvicorn makes them
        conn = ReadDeadline.__new__(ReadDeadline)
        conn.refused, conn.log = refused, log
        conn.transport = mock.Mock()  # type: ignore[attr-defined]
        conn._close(why, "from 127.0.0.1")
        conn.transport.close.assert_called_once_with()  # type: ignore[attr-defined]

    with caplog.at_level(logging.WARNING, log.name):
        for _ in range(5):
            close("head_timeout")
        close("connections")
        clock[0] += 59.0
        close("head_timeout")
        clock[0] += 1.0
        close("head_timeout")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "koneksi ditutup / connection closed (head_timeout): from 127.0.0.1; 1 such since start",
        "koneksi ditutup / connection closed (connections): from 127.0.0.1; 1 such since start",
        "koneksi ditutup / connection closed (head_timeout): from 127.0.0.1; 7 such since start",
    ]
