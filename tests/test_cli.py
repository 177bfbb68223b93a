"""The command line as processes start it (`python -m wastebank.cli`, as the demo and tests do)."""

from __future__ import annotations

import subprocess
import sys

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
    names = [g.name for g in app.registered_groups if g.name]
    names += [c.name for c in app.registered_commands if c.name]
    assert "tps" in names
    for name in names:
        assert f" {name} " in out, f"`python -m wastebank.cli {name}` is missing"
