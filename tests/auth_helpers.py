"""Logins for tests of the API: cheap argon2, a fixed signing key, one user per role."""

from __future__ import annotations

import re
from typing import Any, Self

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.settings import ApiSettings
from wastebank import access, ledger
from wastebank.config import SecretStr, load_settings

# Never a production key: tests only (a real one is random, from the settings or the run dir).
TEST_KEY = SecretStr("wastebank-test-signing-key-7f3a9c2e5b18d406")
PASSWORD = "kata-sandi-uji-2026"
PIN = "246810"
OTHER_PIN = "975318"


def auth_settings(**overrides: Any) -> access.AuthSettings:
    """The API's auth settings with argon2 at its cheapest (hashing costs ~0 ms, not ~50)."""
    values: dict[str, Any] = {
        "secret_key": TEST_KEY,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8,
        "argon2_parallelism": 1,
        **overrides,
    }
    return access.AuthSettings(**values)


def api_settings(**values: Any) -> ApiSettings:
    auth = values.pop("auth", None) or auth_settings()
    return load_settings(ApiSettings, auth=auth, **values)


# role name in the tests -> (role, add_user arguments, secret); banks and members of the demo city
USERS: dict[str, tuple[access.Role, dict[str, str], str]] = {
    "admin": (access.Role.ADMIN, {"username": "admin"}, PASSWORD),
    "dlh": (access.Role.DLH, {"username": "dlh-ambon", "city_code": "ambon"}, PASSWORD),
    # bs-batu-merah (an induk, with the unit bs-rijali)
    "attendant_1": (access.Role.ATTENDANT, {"username": "petugas-bm-01"}, PASSWORD),
    # a second attendant of bs-batu-merah (the second-person rule: one approves, another pays)
    "attendant_1b": (access.Role.ATTENDANT, {"username": "petugas-bm-05"}, PASSWORD),
    # bs-nusaniwe, another bank
    "attendant_2": (access.Role.ATTENDANT, {"username": "petugas-nsw-01"}, PASSWORD),
    "citizen_a": (access.Role.CITIZEN, {"member_no": "AMB-0001"}, PIN),  # at bs-batu-merah
    "citizen_b": (access.Role.CITIZEN, {"member_no": "AMB-0002"}, OTHER_PIN),  # the same bank
}


# staff ids of USERS the demo city has no attendant row for: (bank, name), added with the user
EXTRA_ATTENDANTS: dict[str, tuple[str, str]] = {
    "petugas-bm-05": ("bs-batu-merah", "Ona Latumahina"),
}


def add_users(ledger_url: str, names: tuple[str, ...] = tuple(USERS)) -> dict[str, tuple[str, str]]:
    """Add the ``names`` of :data:`USERS` to the ledger; their (login, secret) by name."""
    hasher = access.password_hasher(auth_settings())
    engine = ledger.make_engine(ledger_url)
    out = {}
    try:
        with Session(engine) as session:
            for name in names:
                role, args, secret = USERS[name]
                if (extra := EXTRA_ATTENDANTS.get(args.get("username", ""))) is not None:
                    bank = session.scalars(select(ledger.Bank).filter_by(code=extra[0])).one()
                    ledger.create_attendant(session, bank, args["username"], extra[1])
                user = access.add_user(
                    session,
                    role=role,
                    secret=secret,
                    hasher=hasher,
                    actor=access.Actor("test", "cli"),
                    **args,
                )
                out[name] = (user.username, secret)
            session.commit()
    finally:
        engine.dispose()
    return out


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of a page's forms (api/web.py)."""
    found = CSRF_INPUT.search(html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


async def with_csrf(
    client: httpx.AsyncClient, data: dict[str, str] | None = None
) -> dict[str, str]:
    """``data`` plus the CSRF token of the login page (the client keeps its ``wb_csrf``
    cookie), for a page form: POST /masuk, /keluar, ..."""
    page = await client.get("/masuk")
    return {**(data or {}), "csrf_token": csrf_of(page.text)}


def bearer(body: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


async def login(client: httpx.AsyncClient, username: str, secret: str) -> dict[str, str]:
    """Bearer headers for ``username`` from POST /api/token."""
    resp = await client.post("/api/token", data={"username": username, "password": secret})
    assert resp.status_code == 200, resp.text
    return bearer(resp.json())


class ApiEnv:
    """The app on one ledger, served by uvicorn on a loopback port in a thread of its own (so a
    module-scoped fixture can share it; starlette's TestClient is deprecated on httpx), with the
    :data:`USERS` signed in: bearer headers and page-session cookies by role name, and a writer
    engine for setting up what a test needs directly in the ledger."""

    def __init__(self, ledger_url: str, settings: ApiSettings) -> None:
        from api.app import create_app

        self.url = ledger_url
        self.creds = add_users(ledger_url)
        self.app = create_app(settings)
        self.engine = ledger.make_engine(ledger_url)
        self._bearers: dict[str, dict[str, str]] = {}
        self._cookies: dict[str, str] = {}
        self._csrf: dict[str, str] = {}  # a Cookie header -> its forms' CSRF token
        self.csrf_cookie = ""  # a browser's wb_csrf cookie and its forms' token (api/web.py)
        self.csrf_token = ""

    def __enter__(self) -> Self:
        import threading

        import uvicorn

        from tests.conftest import free_port, wait_until

        port = free_port()
        self.server = uvicorn.Server(
            # as `wastebank api` serves it: X-Forwarded-* only from WASTEBANK_HTTP__TRUSTED_PROXIES
            uvicorn.Config(
                self.app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False
            )
        )
        self.thread = threading.Thread(target=self.server.run, name="api", daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), timeout=30)
        assert self.server.started, "the API did not start"
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        page = self.client.get("/masuk")
        self.csrf_cookie, self.csrf_token = page.cookies["wb_csrf"], csrf_of(page.text)
        self.client.cookies.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.engine.dispose()

    def bearer(self, name: str) -> dict[str, str]:
        """Authorization headers for :data:`USERS` ``name`` (from POST /api/token)."""
        if name not in self._bearers:
            username, secret = self.creds[name]
            resp = self.client.post("/api/token", data={"username": username, "password": secret})
            assert resp.status_code == 200, resp.text
            self._bearers[name] = bearer(resp.json())
        return self._bearers[name]

    def cookie(self, name: str | None, *, fresh: bool = False) -> dict[str, str]:
        """A Cookie header with ``name``'s page session (from POST /masuk) and the browser's
        CSRF cookie (``name`` None: the CSRF cookie only, which :attr:`csrf_token` matches; in
        a session, the forms' token is :meth:`csrf_for` the header). ``fresh``: a session of
        its own, not the one shared by the module (a logout ends it)."""
        csrf = f"wb_csrf={self.csrf_cookie}"
        if name is None:
            return {"Cookie": csrf}
        if fresh or name not in self._cookies:
            username, secret = self.creds[name]
            resp = self.client.post(
                "/masuk",
                data={"username": username, "password": secret, "csrf_token": self.csrf_token},
                headers={"Cookie": csrf},
            )
            assert resp.status_code == 303, resp.text
            self.client.cookies.clear()
            if fresh:
                return {"Cookie": f"wb_sesi={resp.cookies['wb_sesi']}; {csrf}"}
            self._cookies[name] = resp.cookies["wb_sesi"]
        return {"Cookie": f"wb_sesi={self._cookies[name]}; {csrf}"}

    def csrf_for(self, cookie: dict[str, str]) -> str:
        """The forms' CSRF token in the session of :meth:`cookie`'s header (api/web.py binds
        it to the page session), from a page served with that header."""
        header = cookie["Cookie"]
        if header not in self._csrf:
            page = self.client.get("/masuk", headers=cookie)
            self.client.cookies.clear()
            self._csrf[header] = csrf_of(page.text)
        return self._csrf[header]

    def form(self, **data: str) -> dict[str, str]:
        """A page form's fields with the CSRF token of no session (:meth:`csrf_for` a
        session's)."""
        return {**data, "csrf_token": self.csrf_token}
