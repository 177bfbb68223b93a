"""The CLI's client of a gateway's local endpoint (`wastebank attend`, `wastebank calibrate`).

Every route there needs an attendant's session (gateway/http/attendant/), so the client logs in
with the attendant's central account, as the attendant page does: ``POST /petugas/api/session``
with the username and a password that is prompted for (hidden) or read from standard input
(``--password-stdin``), never taken from the command line. The gateway answers with its session
cookie and the session's CSRF token; both are kept in a session file (mode 0600, one entry per
gateway URL) until the session ends, so an attendant types the password once a shift, not once a
deposit. A saved session the gateway no longer knows (expired, logged out, the account disabled)
is dropped and the client logs in again.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from wastebank.errors import BadInput, Refused, Unavailable, WastebankError

COOKIE = "wb_petugas"  # gateway.http.attendant.COOKIE (not imported: FastAPI is not needed here)
CSRF_HEADER = "X-CSRF-Token"
TIMEOUT_S = 10.0


def default_session_file() -> Path:
    """``$XDG_STATE_HOME/wastebank/gateway-sessions.json`` (``~/.local/state`` by default)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "wastebank" / "gateway-sessions.json"


class GatewayError(WastebankError):
    """The gateway could not be reached, refused, or its answer or the session file could not
    be read; the message says which."""


class GatewayUnreachable(GatewayError, Unavailable):
    """No answer from the gateway (down, wrong address, TLS refused)."""


class GatewayRefused(GatewayError, Refused):
    """The gateway answered with an error; ``http_status`` is its HTTP status."""

    def __init__(self, message: str, http_status: int) -> None:
        super().__init__(message)
        self.http_status = http_status


class GatewayUnreadable(GatewayError, BadInput):
    """The gateway's login answer, or the session file, is not what it should be."""


class GatewayClient:
    """Calls to one gateway with a session: loaded from the session file, or a new login."""

    def __init__(
        self,
        base_url: str,
        *,
        username: Callable[[], str],
        password: Callable[[], str],
        session_file: Path | None,
        ca_file: Path | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``username``/``password``: asked for only when a login is needed. ``session_file``
        None: nothing is kept (a login each time). ``ca_file``: the site CA for a gateway on
        HTTPS (`wastebank certs gateway`); default: the system's trusted CAs."""
        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self.session_file = session_file
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            verify = ssl.create_default_context(cafile=str(ca_file))
        self.http = httpx.Client(
            base_url=self.base_url,
            timeout=TIMEOUT_S,
            verify=verify,
            transport=transport,
            headers={"User-Agent": "wastebank-cli"},
        )
        self.session: dict[str, str] | None = None
        self.logged_in_as: str | None = None
        """Set when this client logged in (not when it used a saved session)."""

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls --

    def call(self, method: str, path: str, body: dict[str, object] | None = None) -> Any:
        """``method path`` with the session (a login first if there is none); the JSON answer;
        :class:`GatewayError` for a refusal or no answer."""
        saved = self.session or self._load()
        if saved is None:
            saved = self.login()
        resp = self._send(method, path, body, saved)
        if resp.status_code == 401 and self.logged_in_as is None:
            self._forget()  # the saved one has ended: log in once more
            resp = self._send(method, path, body, self.login())
        return _answer(resp)

    def _send(
        self, method: str, path: str, body: dict[str, object] | None, session: dict[str, str]
    ) -> httpx.Response:
        headers = {"Cookie": f"{COOKIE}={session['cookie']}"}
        if method != "GET":
            headers[CSRF_HEADER] = session["csrf"]
        try:
            return self.http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise GatewayUnreachable(
                f"gateway tidak terjangkau / gateway unreachable: {exc}"
            ) from None

    def login(self) -> dict[str, str]:
        """Log in (asking for the username and password) and keep the session."""
        username = self._username().strip()
        password = self._password()
        try:
            resp = self.http.post(
                "/petugas/api/session", json={"username": username, "password": password}
            )
        except httpx.HTTPError as exc:
            raise GatewayUnreachable(
                f"gateway tidak terjangkau / gateway unreachable: {exc}"
            ) from None
        body = _answer(resp)
        cookie = next((c.value for c in resp.cookies.jar if c.name == COOKIE and c.value), None)
        if not isinstance(body, dict) or cookie is None:
            raise GatewayUnreadable("jawaban login tidak dikenal / unexpected login answer")
        self.session = {
            "cookie": cookie,
            "csrf": str(body["csrf_token"]),
            "username": str(body["username"]),
            "expires_at": str(body["expires_at"]),
        }
        self.logged_in_as = self.session["username"]
        self._save()
        return self.session

    def logout(self) -> bool:
        """End the saved session on the gateway and forget it; False if there was none."""
        saved = self._load()
        if saved is None:
            return False
        with contextlib.suppress(GatewayError):
            resp = self._send("DELETE", "/petugas/api/session", None, saved)
            if resp.status_code not in (204, 401):
                _answer(resp)
        self._forget()
        return True

    # -- the session file --

    def _entries(self) -> dict[str, dict[str, str]]:
        if self.session_file is None:
            return {}
        try:
            data = json.loads(self.session_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise GatewayUnreadable(
                f"berkas sesi rusak / unreadable session file {self.session_file}: {exc}"
            ) from None
        return data if isinstance(data, dict) else {}

    def _load(self) -> dict[str, str] | None:
        entry = self._entries().get(self.base_url)
        if not isinstance(entry, dict) or not {"cookie", "csrf", "expires_at"} <= set(entry):
            return None
        try:
            expires = datetime.fromisoformat(entry["expires_at"])
        except ValueError:
            return None
        if expires <= datetime.now(UTC):
            return None
        self.session = entry
        return entry

    def _save(self) -> None:
        if self.session_file is None or self.session is None:
            return
        entries = self._entries()
        entries[self.base_url] = self.session
        _write_private(self.session_file, json.dumps(entries, indent=1))

    def _forget(self) -> None:
        self.session = None
        if self.session_file is None:
            return
        entries = self._entries()
        if entries.pop(self.base_url, None) is not None:
            _write_private(self.session_file, json.dumps(entries, indent=1))


def _answer(resp: httpx.Response) -> Any:
    if resp.status_code >= 400:
        detail: object = resp.reason_phrase
        with contextlib.suppress(ValueError):
            body = resp.json()
            detail = body.get("detail", body) if isinstance(body, dict) else body
        if isinstance(detail, list):  # a validation error: each field's message
            detail = "; ".join(str(d.get("msg", d)) for d in detail if isinstance(d, dict))
        raise GatewayRefused(f"ditolak / refused ({resp.status_code}): {detail}", resp.status_code)
    if resp.status_code == 204 or not resp.content:
        return None
    return resp.json()


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by its owner only (0600 from its creation), atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
