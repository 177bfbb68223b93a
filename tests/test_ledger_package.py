"""The ledger and access packages' seams: the names they export, and what the ledger knows of
the login system without importing it."""

from __future__ import annotations

import pytest
import sqlalchemy

from wastebank import access, ledger
from wastebank.access import models as access_models
from wastebank.ledger import registry


def test_every_exported_name_is_there() -> None:
    for package in (ledger, access):
        missing = [name for name in package.__all__ if not hasattr(package, name)]
        assert missing == [], package.__name__
        assert len(set(package.__all__)) == len(package.__all__)


def test_the_ledgers_view_of_the_users_table_matches_the_model() -> None:
    """require_attendant reads app_user by name (the ledger never imports wastebank.access):
    each column it reads is the model's, of the same kind."""
    model = access_models.User.__table__
    assert isinstance(model, sqlalchemy.Table)
    view = registry._APP_USER
    assert view.name == model.name
    for column in view.columns:
        assert column.name in model.columns, column.name
        want = model.columns[column.name].type._type_affinity
        assert want is not None, column.name
        assert isinstance(column.type, want), column.name
    assert registry.ADMIN_ROLE == access.Role.ADMIN


def test_the_admin_role_is_one_the_table_allows() -> None:
    users = access_models.User.__table__
    assert isinstance(users, sqlalchemy.Table)
    checks = [
        str(c.sqltext) for c in users.constraints if isinstance(c, sqlalchemy.CheckConstraint)
    ]
    assert any(f"'{registry.ADMIN_ROLE}'" in text for text in checks)


def test_the_ledger_imports_nothing_built_on_it_and_no_cycle_joins_them() -> None:
    """The ledger never imports access (nor the alerts or the reconciliation, whose tables sit
    on its metadata); among the ledger, access, alerts, reconcile and migrations modules no
    import leads back to where it started."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("wastebank")
    for built_on in ("wastebank.access", "wastebank.alerts", "wastebank.reconcile"):
        # any module of the ledger package to any module of the other (as packages)
        assert graph.find_shortest_chains(importer="wastebank.ledger", imported=built_on) == set()
    ours = {
        m
        for m in graph.modules
        if m.split(".")[:2]
        in (["wastebank", p] for p in ("ledger", "access", "alerts", "reconcile", "migrations"))
    }
    for module in sorted(ours):
        for imported in graph.find_modules_directly_imported_by(module) & ours:
            back = graph.find_shortest_chain(importer=imported, imported=module)
            assert back is None or not set(back) <= ours, (module, back)
