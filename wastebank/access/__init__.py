"""Who may do what: users and roles, password and PIN hashing, tokens, login limits, the audit log.

Roles (``app_user.role``):

- **admin**: everything, in every city; may set prices and decide withdrawals at any bank.
- **dlh**: staff of a city's Dinas Lingkungan Hidup: reads everything in their city (``city_id``),
  writes nothing, and sees members by number only (no name, phone, address or NIK flag).
- **attendant**: a petugas. Their username is their ``staff_id`` in the ledger's ``attendant``
  table; they act at the banks they are an active attendant of and, at an induk, at its units
  (as :func:`wastebank.ledger.require_attendant` allows).
- **citizen**: a nasabah. Their username is their member number and their secret a 6-digit PIN;
  they see their own account only, and may ask for and cancel their own withdrawals.

The tables live on :class:`wastebank.ledger.Base` (migration 0003), so they are in the ledger's
database and its backups: a write and its audit entry commit in one transaction. Secrets are
hashed with argon2id (argon2-cffi); tokens are JWTs (HS256) signed with a key from the settings
or generated once into the run directory (:func:`signing_key`). A token names the user and their
``token_version``: disabling a user or changing their secret bumps it and ends every token they
hold. Each token also has an id of its own (``jti``): a logout revokes that one token (a row
in ``revoked_token``) and the user's other sessions go on. Login failures are rows too
(``login_failure``), so several API processes share the limits: per account (its
:func:`login_key`) and per client address, each within a sliding window.

This package is plain functions on a :class:`~sqlalchemy.orm.Session`, used by the API and by
``wastebank user``; it knows nothing of HTTP. It is built on the ledger (its tables refer to the
ledger's cities, members and attendants); the ledger never imports it.

- :mod:`~wastebank.access.models`: the tables and the roles;
- :mod:`~wastebank.access.settings`: ``[auth]``;
- :mod:`~wastebank.access.errors`: its refusals;
- :mod:`~wastebank.access.passwords`: hashing and checking passwords and PINs;
- :mod:`~wastebank.access.audit`: the audit log;
- :mod:`~wastebank.access.users`: adding and changing users;
- :mod:`~wastebank.access.pins`: a nasabah's PIN issued or reset at the bank (a page's route);
- :mod:`~wastebank.access.login`: signing in, with its limits;
- :mod:`~wastebank.access.tokens`: the signing key, issuing, reading and revoking tokens;
- :mod:`~wastebank.access.policy`: the principal of a request, and what it may do.
"""

from __future__ import annotations

from wastebank.access.audit import (
    Actor,
    audit,
    audit_entries,
    cli_actor,
)
from wastebank.access.errors import (
    AccessError,
    InvalidToken,
    LoginRefused,
    TooManyAttempts,
)
from wastebank.access.login import (
    authenticate,
)
from wastebank.access.models import (
    AuditEntry,
    LoginFailure,
    RevokedToken,
    Role,
    User,
)
from wastebank.access.passwords import (
    MIN_PASSWORD,
    PIN,
    check_secret,
    generate_pin,
    password_hasher,
)
from wastebank.access.pins import (
    IssuedPin,
    PinExists,
    PinLoginDisabled,
    TooManyPins,
    issue_pin,
    new_pin,
    pin_wait,
)
from wastebank.access.policy import (
    Principal,
    can_act_at,
    can_read_bank,
    can_read_bank_at,
    can_read_member,
    can_read_member_at,
    can_see_personal,
    can_see_personal_at,
    principal,
    principal_of,
)
from wastebank.access.settings import AuthSettings
from wastebank.access.tokens import (
    JWT_ALGORITHM,
    TokenClaims,
    TokenKind,
    issue_token,
    read_claims,
    revoke_token,
    signing_key,
)
from wastebank.access.users import (
    STAFF_USERNAME,
    add_user,
    find_login,
    get_user,
    login_key,
    set_active,
    set_secret,
    users,
)

__all__ = [
    "AccessError",
    "Actor",
    "AuditEntry",
    "AuthSettings",
    "InvalidToken",
    "IssuedPin",
    "JWT_ALGORITHM",
    "LoginFailure",
    "LoginRefused",
    "MIN_PASSWORD",
    "PIN",
    "PinExists",
    "PinLoginDisabled",
    "Principal",
    "RevokedToken",
    "Role",
    "STAFF_USERNAME",
    "TokenClaims",
    "TokenKind",
    "TooManyAttempts",
    "TooManyPins",
    "User",
    "add_user",
    "audit",
    "audit_entries",
    "authenticate",
    "can_act_at",
    "can_read_bank",
    "can_read_bank_at",
    "can_read_member",
    "can_read_member_at",
    "can_see_personal",
    "can_see_personal_at",
    "check_secret",
    "cli_actor",
    "find_login",
    "generate_pin",
    "get_user",
    "issue_pin",
    "issue_token",
    "login_key",
    "new_pin",
    "password_hasher",
    "pin_wait",
    "principal",
    "principal_of",
    "read_claims",
    "revoke_token",
    "set_active",
    "set_secret",
    "signing_key",
    "users",
]
