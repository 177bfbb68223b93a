"""The balance rule, once (wastebank.ledger.balances): the API's one-statement read of a
member's account, the balances of a page of members and the checks before a withdrawal agree."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.conftest import deposit_event
from tests.ledger_helpers import apply_deposit
from wastebank import ledger


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    eng = ledger.make_engine(ledger_url)
    yield eng
    eng.dispose()


def test_the_account_summary_is_the_balance_the_open_withdrawals_and_the_deposits(
    engine: Engine,
) -> None:
    with Session(engine) as s:
        before = ledger.member_account_summary(s, "AMB-0001")
        assert before is not None
        for seq in (1, 2, 3):
            apply_deposit(s, deposit_event(seq, net_g=10_000))
        w = ledger.request_withdrawal(s, "AMB-0001", 15_000, "cash", requested_by="AMB-0001")
        s.commit()
        account = ledger.member_account_summary(s, "AMB-0001")
        assert account is not None
        member = ledger.get_member(s, "AMB-0001")
        assert member is not None
        assert (account.member_id, account.name, account.bank_id) == (
            member.id,
            member.name,
            member.bank_id,
        )
        assert (account.bank_code, account.city_id) == (member.bank.code, member.bank.city_id)
        assert account.balance_idr == ledger.member_balance(s, "AMB-0001")
        assert account.balance_idr == before.balance_idr + 3 * ledger.amount_for(10_000, 4000)
        assert account.pending_idr == ledger.member_pending(s, member.id) == w.amount_idr
        # the summary's figure against the two separate reads a withdrawal's check makes
        available = ledger.member_balance(s, "AMB-0001") - ledger.member_pending(s, member.id)
        assert account.available_idr == available
        assert account.available_idr == account.balance_idr - 15_000
        assert account.deposits == before.deposits + 3
        assert ledger.member_account_summary(s, "NO-SUCH") is None


def test_the_balances_of_several_members_in_one_query(engine: Engine) -> None:
    with Session(engine) as s:
        apply_deposit(s, deposit_event(1, net_g=10_000))
        s.commit()
        numbers = ["AMB-0001", "AMB-0002", "NO-SUCH"]
        found = ledger.member_balances(s, numbers)
        for no in numbers:
            assert found.get(no, 0) == ledger.member_balance(s, no)
        assert found["AMB-0001"] > 0
        assert "NO-SUCH" not in found
        assert ledger.member_balances(s, []) == {}
