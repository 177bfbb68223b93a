"""The command line as processes start it (`python -m wastebank.cli`, as the demo and tests do)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from wastebank.cli import app


def test_every_command_group_is_reachable_through_python_m() -> None:
    """Commands defined below the module's ``__main__`` block exist for the ``wastebank`` script
    but not for ``python -m wastebank.cli``: the demo's TPS watcher failed that way once."""
    out = subprocess.run(
        [sys.executable, "-m", "wastebank.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    ).stdout
    root = typer.main.get_group(app)
    names = root.list_commands(typer.Context(root))
    assert "tps" in names
    assert {"gateway", "ingest", "api", "attend", "ledger", "sim"} <= set(names)
    for name in names:
        assert f" {name} " in out, f"`python -m wastebank.cli {name}` is missing"


def test_what_a_command_creates_is_its_users_alone_whatever_the_umask(tmp_path: Path) -> None:
    """Under the usual umask 022 a plain mkdir or create is world-readable; a ledger, its backup
    directory and the statement of a member hold personal data and money, so every command
    runs under umask 077 (the systemd units say ``UMask=0077`` too)."""
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    backup = tmp_path / "backups" / "nightly" / "ledger.sqlite"

    def cli(*args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "wastebank.cli", *args],
            check=True,
            capture_output=True,
            preexec_fn=lambda: os.umask(0o022),  # noqa: PLW1509 (no threads started yet)
            env={**os.environ, "WASTEBANK_LEDGER_URL": ledger_url},
        )

    cli("ledger", "migrate", "--ledger-url", ledger_url)
    cli("ledger", "backup", str(backup), "--ledger-url", ledger_url)

    assert stat.S_IMODE((tmp_path / "ledger.db").stat().st_mode) == 0o600
    for made in (tmp_path / "backups", backup.parent):
        assert stat.S_IMODE(made.stat().st_mode) == 0o700, made
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    leftovers = [p for p in tmp_path.rglob("*") if p.stat().st_mode & 0o077]
    assert leftovers == []


def test_a_process_command_does_not_load_the_admin_commands() -> None:
    """`wastebank gateway` on a Raspberry Pi should not carry the code of fifteen admin
    commands: the root imports a command module when its command runs (or `--help` lists it)."""
    probe = (
        "import sys; from typer.testing import CliRunner; from wastebank.cli import app; "
        "r = CliRunner().invoke(app, ['ledger', '--help']); assert r.exit_code == 0, r.output; "
        "print(sorted(m for m in sys.modules if m.startswith('wastebank.cli.')))"
    )
    bare = subprocess.run(
        [sys.executable, "-c", "import sys, wastebank.cli; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "wastebank.cli.ledger" not in bare
    assert "wastebank.cli.services" not in bare
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert "wastebank.cli.ledger" in loaded
    assert "wastebank.cli.ledger_data" in loaded
    assert "wastebank.cli.services" not in loaded


def test_a_ledger_without_its_schema_is_one_message_and_exit_2(tmp_path: Path) -> None:
    """The root turns a SetupError into its message and exit status 2, for every command (the
    commands no longer catch it themselves)."""
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    for args in (["ledger", "verify"], ["report", "monthly", "--month", "2026-11"]):
        done = subprocess.run(
            [sys.executable, "-m", "wastebank.cli", *args, "--ledger-url", url],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "wastebank ledger migrate" in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_report_monthly_help_names_its_settings() -> None:
    # rich took "[reports]" for markup and printed "Settings:  of the API's settings"
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["report", "monthly", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.replace("│", " ").split())
    assert "Settings: the API's WASTEBANK_REPORTS__* (docs/reports.md)." in text


def test_the_gateway_command_becomes_a_process_without_typer_or_pydantic(tmp_path: Path) -> None:
    """`wastebank gateway` execs `python -m gateway` (same pid): Typer reads values through
    pydantic, which a gateway on a Pi cannot carry for months. Looked at in the running process's
    memory map, after its settings loaded and its loops started."""
    site = tmp_path / "site.toml"
    site.write_text(
        'bank_code = "bs-batu-merah"\ngateway_id = "gw-probe"\nhttp_port = 0\n'
        f'[outbox]\npath = "{tmp_path / "outbox.db"}"\n'
        f'[[scales]]\nid = "scale-01"\nport = "{tmp_path / "no-such-tty"}"\n'
    )
    with subprocess.Popen(
        [sys.executable, "-m", "wastebank.cli", "gateway", "--config", str(site)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "WASTEBANK_MQTT__PORT": "9"},  # nothing there: it keeps trying
    ) as proc:
        try:
            assert proc.stderr is not None
            for line in proc.stderr:  # the gateway logs its scale port's first failure
                if "scale-01" in line:
                    break
            else:
                pytest.fail("the gateway ended before it tried its scale")
            maps = Path(f"/proc/{proc.pid}/maps").read_text()
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert cmdline[1:4] == [b"-P", b"-m", b"gateway"]  # the same pid, the gateway's own entry
    assert "pydantic_core" not in maps
    assert "msgspec" in maps  # the map is the gateway's: its contract's library is there


def test_the_gateway_command_called_from_python_runs_in_the_caller() -> None:
    """From a CliRunner (not the process's command line) the command must not exec: that would
    replace the caller (a test run would end there, exit status 0)."""
    result = CliRunner().invoke(app, ["gateway", "--config", "/nonexistent/site.toml"])
    assert result.exit_code == 2
