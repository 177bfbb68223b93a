"""Every Python package installs at a pinned version (constraints.txt; README.md, Development):
each dependency pyproject.toml names is pinned there, and every install in the Makefile but
`make lock`'s uses the pins. A release between two clean clones once failed CI (stamina 26.2.0)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    """The normalized project name of a requirement line (PEP 503)."""
    found = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert found, requirement
    return re.sub(r"[-_.]+", "-", found.group(0)).lower()


def pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pinned = [line.split("==") for line in lines if line and not line.startswith("#")]
    assert all(len(p) == 2 for p in pinned), "every line `name==version`"
    return {_name(name): version for name, version in pinned}


def test_every_dependency_pyproject_names_is_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    missing = sorted({_name(r) for r in wanted} - set(pins()))
    assert missing == [], f"not in constraints.txt (run `make lock`): {missing}"


def test_every_install_in_the_makefile_uses_the_pins() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = re.findall(r"^\t.*pip install .*-e .*$", makefile, flags=re.M)
    assert installs
    unpinned = [line for line in installs if "-c constraints.txt" not in line]
    assert unpinned == [line for line in installs if "$(LOCK_VENV)" in line]  # lock's alone
