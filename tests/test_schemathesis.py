"""Schemathesis against the app's own OpenAPI schema: no 5xx, and every response as declared.

One pytest test per operation of the schema (``test_operation[GET /api/members/{member_no}]``).
Each generated request is sent once as each of :data:`ROLES` (a bearer token for the JSON API
and a page-session cookie for the pages, both sent: each side ignores the other's), so a case
that only an admin reaches, or one that only the anonymous refusal path sees, is both covered.
The app runs on a real server (uvicorn on a loopback port, :class:`tests.auth_helpers.ApiEnv`)
on one seeded ledger per backend (``[sqlite]``, ``[postgresql]``): PostgreSQL refuses what
SQLite stores (a NUL character in any text), so a 5xx can be one backend's only.

Path and query parameters that name something (a member, bank, category, deposit, withdrawal)
are widened in the copy of the schema the tests generate from: ``anyOf`` the ledger's real
values first and the declared schema second, so cases reach the handlers' real work and not only
their 404s. Generation is deterministic (a fixed seed per operation), so CI sees the same cases.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from sqlalchemy.orm import Session

from api.app import create_app
from tests.auth_helpers import ApiEnv, api_settings
from tests.conftest import LedgerFactory
from wastebank import ledger, services
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.influx import Influx
from wastebank.ledger import manual

pytestmark = pytest.mark.integration

ROLES = ("anonymous", "citizen_a", "attendant_1", "dlh", "admin")
MAX_EXAMPLES = 10  # per operation, fuzzing phase (the coverage phase makes its own)

MEMBER_A = "AMB-0001"
BANK_1 = "bs-batu-merah"
ATTENDANT_1 = "petugas-bm-01"

# What :class:`Env` seeds: manual deposits with these ids (the server's, drawn for the seeding
# from this list instead of at random), and withdrawals that a fresh ledger numbers from 1 (the
# first two requested, the others approved).
SEEDED_EVENTS = [f"M-TEST-000{i}" for i in range(1, 7)]
SEEDED_WITHDRAWALS = [1, 2, 3, 4]

# Real values for parameters, by name, that cases try before arbitrary ones of the declared
# schema: the demo city's members, banks and categories, and what Env seeds.
KNOWN: dict[str, list[Any]] = {
    "member_no": [MEMBER_A, "AMB-0002"],
    "bank_code": [BANK_1, "bs-rijali", "bs-nusaniwe"],
    "category_code": ["pet", "kardus"],
    "event_id": SEEDED_EVENTS,
    "withdrawal_id": SEEDED_WITHDRAWALS,
}


def _widen(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` whose named path and query parameters prefer :data:`KNOWN` values."""
    out = copy.deepcopy(schema)
    for ops in out["paths"].values():
        for op in ops.values():
            for param in op.get("parameters", []):
                known = KNOWN.get(param["name"])
                if known is None:
                    continue
                declared = param["schema"]
                if declared.get("type") == "array":
                    declared["items"] = {"anyOf": [{"enum": known}, declared["items"]]}
                else:
                    param["schema"] = {"anyOf": [{"enum": known}, declared]}
    return out


schema = schemathesis.openapi.from_dict(
    _widen(create_app(api_settings()).openapi()),
    config=schemathesis.Config.from_dict(
        {
            "seed": 20261201,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
        }
    ),
)


class Env(ApiEnv):
    """The app on a seeded ledger: citizen A's savings at bank 1, a few deposits to void,
    correct and print, and withdrawals in each state an operation acts on."""

    def __init__(self, url: str, settings: Any) -> None:
        super().__init__(url, settings)
        now = datetime.now(UTC)
        with Session(self.engine) as s:
            # where record_manual_deposit looks it up (the package re-exports it)
            with mock.patch.object(manual, "new_manual_id", iter(SEEDED_EVENTS).__next__):
                for i, event_id in enumerate(SEEDED_EVENTS):
                    made_id = ledger.record_manual_deposit(
                        s,
                        bank_code=BANK_1,
                        member_no=MEMBER_A,
                        category_code="pet",
                        net_g=100_000 if i == 0 else 1000 + i,
                        measured_at=now - timedelta(hours=2, minutes=i),
                        author=ATTENDANT_1,
                        reason="uji schemathesis / schemathesis test",
                    ).event_id
                    assert made_id == event_id, made_id
            made = []
            for i in range(len(SEEDED_WITHDRAWALS)):
                w = ledger.request_withdrawal(
                    s, MEMBER_A, 10_000, "cash", requested_by=f"nasabah:{MEMBER_A}"
                )
                if i >= 2:
                    ledger.approve_withdrawal(s, w.id, author=ATTENDANT_1)
                made.append(w.id)
        assert made == SEEDED_WITHDRAWALS, made

    def auth(self, role: str) -> dict[str, str]:
        """Headers that sign ``role`` in to both the JSON API and the pages."""
        if role == "anonymous":
            return {}
        return {**self.bearer(role), **self.cookie(role)}


@pytest.fixture(scope="module")
def env(
    ledger_factory: LedgerFactory, running_services: services.ServicesSettings
) -> Iterator[Env]:
    url = ledger_factory.new()
    influx = services.influx_admin_settings(
        running_services, f"test_schemathesis_{uuid.uuid4().hex[:10]}"
    )
    asyncio.run(_influx(influx, create=True))
    # Login limits out of the way: the token and login forms get arbitrary credentials, and
    # the per-address limit would otherwise answer every later login 429.
    auth = msgspec.structs.replace(
        api_settings().auth, login_max_failures=10**6, login_max_failures_per_ip=10**6
    )
    app_settings = api_settings(
        mqtt=MqttSettings(port=running_services.mqtt_port),
        influx=influx,
        ledger_url=url,
        auth=auth,
    )
    try:
        with Env(url, app_settings) as made:
            for role in ROLES:
                made.auth(role)  # every login before any case runs
            yield made
    finally:
        asyncio.run(_influx(influx, create=False))
        ledger_factory.drop(url)


async def _influx(settings: InfluxSettings, *, create: bool) -> None:
    influx = Influx(settings)
    try:
        await (influx.ensure_database() if create else influx.drop_database())
    finally:
        await influx.aclose()


# Every check but these two, which judge a 4xx against the schema alone:
# - positive_data_acceptance: a schema-valid request may break a business rule, answered 422 by
#   design (an unknown member, below the bank's minimum withdrawal, an end before the start);
# - negative_data_rejection: pydantic's lax mode takes a number for a date or date-time (Unix
#   time), which the schema's `format` does not say; harmless, and not worth strict parsing.
EXCLUDED = [
    schemathesis.checks.positive_data_acceptance,
    schemathesis.checks.negative_data_rejection,
]


def roles_for(case: schemathesis.Case[Any]) -> tuple[str, ...]:
    """Who sends ``case``: every role; but each of the coverage phase's cases (boundary and
    negative values, most of all cases) is sent by one role, picked from the case itself, so
    that every role sees a share of them and the file takes well under a minute per backend."""
    phase = getattr(getattr(case.meta, "phase", None), "name", None)
    if phase != "coverage":
        return ROLES
    key = repr((case.method, case.path, case.path_parameters, case.query, case.headers, case.body))
    return (ROLES[zlib.crc32(key.encode()) % len(ROLES)],)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_operation(env: Env, case: schemathesis.Case[Any]) -> None:
    for role in roles_for(case):
        case.call_and_validate(
            base_url=str(env.client.base_url),
            headers={"User-Agent": "schemathesis", **env.auth(role)},
            excluded_checks=EXCLUDED,
        )
