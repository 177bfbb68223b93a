"""The bank's desk on the central API (api/member_desk.py): the next member number, a card bound, a
PIN issued and reset (audited, limited like logins, never stored in clear); and the conditional
GETs the gateways poll (api/conditional.py). On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.auth_helpers import ApiEnv, api_settings, auth_settings
from wastebank import access

pytestmark = pytest.mark.integration

BANK_1 = "bs-batu-merah"
MEMBER_A = "AMB-0001"  # citizen A, who has a login (PIN) already


@pytest.fixture
def api(ledger_url: str) -> Iterator[ApiEnv]:
    # two PINs per member, three per person per window: the limits are reached in a test
    auth = auth_settings(login_max_failures=2, login_max_failures_per_ip=3)
    with ApiEnv(ledger_url, api_settings(auth=auth, ledger_url=ledger_url)) as env:
        yield env


def register(api: ApiEnv, who: str = "attendant_1", **fields: Any) -> str:
    """A walk-in registered at bank 1 with the number the API proposes; that number."""
    nxt = api.client.get(f"/api/banks/{BANK_1}/members/next-no", headers=api.bearer(who))
    assert nxt.status_code == 200, nxt.text
    member_no = str(nxt.json()["member_no"])
    resp = api.client.post(
        f"/api/banks/{BANK_1}/members",
        json={"member_no": member_no, "name": "Maria Latumahina", **fields},
        headers=api.bearer(who),
    )
    assert resp.status_code == 201, resp.text
    return member_no


def pin(api: ApiEnv, member_no: str, who: str, **body: Any) -> Any:
    return api.client.post(f"/api/members/{member_no}/pin", json=body, headers=api.bearer(who))


def token(api: ApiEnv, username: str, secret: str) -> Any:
    return api.client.post("/api/token", data={"username": username, "password": secret})


def audit(api: ApiEnv, member_no: str) -> list[access.AuditEntry]:
    with Session(api.engine) as s:
        return list(
            s.scalars(
                select(access.AuditEntry)
                .where(access.AuditEntry.entity_id == member_no)
                .order_by(access.AuditEntry.id)
            )
        )


def test_next_number_follows_the_bank_and_skips_taken_ones(api: ApiEnv) -> None:
    first = register(api)
    assert first == "AMB-0004"  # the demo's bank 1 has AMB-0001..0003
    assert register(api) == "AMB-0005"
    other = api.client.get(
        "/api/banks/bs-nusaniwe/members/next-no", headers=api.bearer("attendant_2")
    )
    assert other.json() == {"member_no": "AMB-0103"}
    refused = api.client.get(f"/api/banks/{BANK_1}/members/next-no", headers=api.bearer("dlh"))
    assert refused.status_code == 403


def test_a_pin_issued_logs_the_member_in_and_a_reset_ends_their_sessions(api: ApiEnv) -> None:
    member_no = register(api)
    first = pin(api, member_no, "attendant_1")
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    body = first.json()
    assert re.fullmatch(r"[0-9]{6}", body["pin"])
    assert (body["member_no"], body["username"], body["name"], body["created"]) == (
        member_no,
        member_no,
        "Maria Latumahina",
        True,
    )
    old = token(api, member_no, body["pin"])
    assert old.status_code == 200, old.text
    old_bearer = {"Authorization": f"Bearer {old.json()['access_token']}"}
    assert api.client.get("/api/me", headers=old_bearer).json()["member_no"] == member_no

    # A second PIN is a reset, asked for as one.
    again = pin(api, member_no, "attendant_1")
    assert again.status_code == 409
    assert "Setel ulang" in again.json()["detail"]
    reset = pin(api, member_no, "admin", reset=True)
    assert reset.status_code == 200, reset.text
    new_pin = reset.json()["pin"]
    assert reset.json()["created"] is False
    assert api.client.get("/api/me", headers=old_bearer).status_code == 401  # sessions ended
    if new_pin != body["pin"]:
        assert token(api, member_no, body["pin"]).status_code == 401
    assert token(api, member_no, new_pin).status_code == 200

    entries = [e for e in audit(api, member_no) if e.action.startswith("member.pin")]
    assert [(e.action, e.actor, e.role) for e in entries] == [
        ("member.pin_issue", "petugas-bm-01", "attendant"),
        ("member.pin_reset", "admin", "admin"),
    ]
    assert all(e.at is not None and e.at.tzinfo is not None for e in entries)
    every = " ".join(f"{e.summary} {e.entity_id}" for e in audit(api, member_no))
    assert body["pin"] not in every
    assert new_pin not in every
    with Session(api.engine) as s:
        user = s.scalar(select(access.User).where(access.User.username == member_no))
        assert user is not None
        assert user.role == "citizen"
        assert new_pin not in user.secret_hash
        assert user.secret_hash.startswith("$argon2id$")


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("attendant_2", 404),  # another bank's: may not even read the member (not disclosed)
        ("citizen_a", 403),  # their own number: a PIN is issued at the bank, not by oneself
        ("citizen_b", 404),
        ("dlh", 403),
        ("attendant_1", 200),
        ("admin", 200),
    ],
)
def test_who_may_issue_a_pin(api: ApiEnv, who: str, status: int) -> None:
    resp = pin(api, MEMBER_A, who, reset=True)
    assert resp.status_code == status, resp.text
    refused = [e for e in audit(api, MEMBER_A) if e.action.startswith("member.pin")]
    assert len(refused) == (1 if status == 200 else 0)
    anonymous = api.client.post(f"/api/members/{MEMBER_A}/pin", json={})
    assert anonymous.status_code == 401


def test_pins_issued_are_limited_like_logins(api: ApiEnv) -> None:
    member_no = register(api)
    assert pin(api, member_no, "attendant_1").status_code == 200
    assert pin(api, member_no, "attendant_1", reset=True).status_code == 200
    third = pin(api, member_no, "attendant_1", reset=True)  # login_max_failures=2 per member
    assert third.status_code == 429
    assert int(third.headers["retry-after"]) > 0
    assert "terlalu banyak PIN" in third.json()["detail"]
    # per person: a third member's PIN by the same attendant is their third in the window
    other, another = register(api), register(api)
    assert pin(api, other, "attendant_1").status_code == 200
    assert pin(api, another, "attendant_1").status_code == 429
    assert pin(api, another, "admin").status_code == 200  # someone else may


def test_a_card_is_bound_once(api: ApiEnv) -> None:
    member_no = register(api)
    url = f"/api/members/{member_no}/cards"
    resp = api.client.post(url, json={"uid": "0A0B0C0D"}, headers=api.bearer("attendant_1"))
    assert resp.status_code == 201, resp.text
    assert resp.json()["cards"] == ["0A0B0C0D"]
    again = api.client.post(url, json={"uid": "0A0B0C0D"}, headers=api.bearer("attendant_1"))
    assert again.status_code == 200
    taken = api.client.post(url, json={"uid": "04A1B2C3D4"}, headers=api.bearer("attendant_1"))
    assert taken.status_code == 409  # citizen A's card
    assert "sudah dipakai" in taken.json()["detail"]
    bad = api.client.post(url, json={"uid": "kartu"}, headers=api.bearer("attendant_1"))
    assert bad.status_code == 422
    other = api.client.post(url, json={"uid": "0E0E0E0E"}, headers=api.bearer("attendant_2"))
    assert other.status_code == 404
    assert [e.summary for e in audit(api, member_no) if e.action == "member.card_add"] == [
        "kartu 0A0B0C0D"
    ]
    listed = api.client.get(f"/api/banks/{BANK_1}/members", headers=api.bearer("attendant_1"))
    assert {"member_no": member_no, "cards": ["0A0B0C0D"]}.items() <= next(
        m for m in listed.json() if m["member_no"] == member_no
    ).items()


def test_the_lists_gateways_poll_answer_304_until_they_change(api: ApiEnv) -> None:
    prices_url = f"/api/banks/{BANK_1}/prices"
    first = api.client.get(prices_url)
    tag = first.headers["etag"]
    same = api.client.get(prices_url, headers={"If-None-Match": tag})
    assert same.status_code == 304
    assert same.headers["etag"] == tag
    assert not same.content
    changed = api.client.put(
        f"{prices_url}/pet", json={"price_idr": 4300}, headers=api.bearer("admin")
    )
    assert changed.status_code == 200, changed.text
    after = api.client.get(prices_url, headers={"If-None-Match": tag})
    assert after.status_code == 200
    assert after.headers["etag"] != tag
    assert {"category_code": "pet", "price_idr": 4300}.items() <= next(
        p for p in after.json()["prices"] if p["category_code"] == "pet"
    ).items()

    members_url = f"/api/banks/{BANK_1}/members"
    head = api.bearer("attendant_1")
    listed = api.client.get(members_url, headers=head)
    assert listed.headers["cache-control"] == "private, no-cache"
    mtag = listed.headers["etag"]
    assert api.client.get(members_url, headers={**head, "If-None-Match": mtag}).status_code == 304
    register(api)
    grown = api.client.get(members_url, headers={**head, "If-None-Match": mtag})
    assert grown.status_code == 200
    assert len(grown.json()) == len(listed.json()) + 1
