"""The ledger and access packages' seams: the names they export, and what the ledger knows of
the login system without importing it."""

from __future__ import annotations

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
    view = registry._APP_USER
    assert view.name == model.name
    for column in view.columns:
        assert column.name in model.columns, column.name
        want = model.columns[column.name].type._type_affinity
        assert isinstance(column.type, want), column.name
    assert registry.ADMIN_ROLE == access.Role.ADMIN


def test_the_admin_role_is_one_the_table_allows() -> None:
    checks = [
        str(c.sqltext)
        for c in access_models.User.__table__.constraints
        if isinstance(c, sqlalchemy.CheckConstraint)
    ]
    assert any(f"'{registry.ADMIN_ROLE}'" in text for text in checks)
