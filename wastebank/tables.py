"""Every table of the ledger's database, for the migrations and their checks.

The ledger's own tables are on :class:`wastebank.ledger.Base`; the packages built on the ledger
add theirs to the same metadata when they are imported: the login system
(:mod:`wastebank.access.models`), the system alerts (:mod:`wastebank.alerts`), the
reconciliation runs (:mod:`wastebank.reconcile`), the SMS queue (:mod:`wastebank.sms`) and the
devices' latest reports (:mod:`wastebank.fleet`). The ledger imports none of them (they import
it), so whoever needs the whole schema asks here.
"""

from __future__ import annotations

from sqlalchemy import MetaData

# Imported for their tables: system_alert; reconciliation_run; app_user, login_failure,
# revoked_token, audit_log; sms_message, sms_inbound; device_report.
from wastebank import alerts, fleet, reconcile, sms  # noqa: F401
from wastebank.access import models  # noqa: F401
from wastebank.ledger import Base

__all__ = ["metadata"]


def metadata() -> MetaData:
    """The metadata of every table in the ledger's database."""
    return Base.metadata
