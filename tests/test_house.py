"""The house rules that no linter checks: one exception base, and modules a reader can hold.

The import boundaries are import-linter's (pyproject.toml, `make lint`); complexity is ruff's.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

from wastebank.errors import WastebankError

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("wastebank", "gateway", "ingest", "api", "firmware_sim")
MAX_LINES = 800


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            # Alembic's scripts run inside a migration context, not as imports.
            if info.name.startswith("wastebank.migrations.") and not info.ispkg:
                if info.name.startswith(("wastebank.migrations.env", "wastebank.migrations.v")):
                    continue
            if info.name.endswith(".__main__"):  # runs its command when imported
                continue
            names.append(info.name)
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_every_error_raised_on_purpose_derives_from_the_one_base(package: str) -> None:
    strays = []
    for name in (n for n in _modules() if n.split(".")[0] == package):
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ != name or not issubclass(obj, BaseException):
                continue
            if not issubclass(obj, WastebankError):
                strays.append(f"{name}.{obj.__qualname__}")
    assert strays == [], "exceptions outside wastebank.errors' families"


def test_no_production_module_is_over_800_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
        and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
