"""`wastebank api --workers N`: several processes serve one port from the same settings, and a
token any of them issued is accepted by all (they agree on the signing key the first one wrote)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.auth_helpers import add_users
from tests.conftest import free_port, wait_until

WASTEBANK = Path(sys.executable).with_name("wastebank")


def _workers(pid: int) -> list[int]:
    """The worker processes uvicorn spawned (not multiprocessing's resource tracker)."""
    out = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(FileNotFoundError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                out.append(int(child))
    return out


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_workers_share_the_port_and_the_signing_key(ledger_url: str, tmp_path: Path) -> None:
    add_users(ledger_url, ("citizen_a",))
    key_file = tmp_path / "run" / "api-secret.key"
    port = free_port()
    env = {
        **os.environ,
        "WASTEBANK_LEDGER_URL": ledger_url,
        "WASTEBANK_PORT": str(port),
        # no secret_key: the workers race to generate the key file, and must all end up with one
        "WASTEBANK_AUTH__SECRET_FILE": str(key_file),
        "WASTEBANK_AUTH__ARGON2_TIME_COST": "1",
        "WASTEBANK_AUTH__ARGON2_MEMORY_KIB": "8",
        "WASTEBANK_AUTH__ARGON2_PARALLELISM": "1",
    }
    with (tmp_path / "api.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(WASTEBANK), "api", "--workers", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        wait_until(lambda: _answers(port) or proc.poll() is not None, timeout=60)
        assert proc.poll() is None, (tmp_path / "api.log").read_text()
        wait_until(lambda: len(_workers(proc.pid)) >= 2 or proc.poll() is not None, timeout=60)
        workers = _workers(proc.pid)
        assert len(workers) == 2, workers

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            resp = client.post("/api/token", data={"username": "AMB-0001", "password": "246810"})
            assert resp.status_code == 200, resp.text
            token = resp.json()["access_token"]
        # A new connection per request: the kernel hands each to whichever worker accepts it.
        answers = []
        for _ in range(40):
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
                answers.append(me.status_code)
        assert answers == [200] * 40
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert not [p for p in key_file.parent.iterdir() if p != key_file]  # no temp files left
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("`wastebank api --workers 2` did not stop on SIGTERM")
    assert proc.returncode == 0, (tmp_path / "api.log").read_text()
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"worker {pid} still running"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True
