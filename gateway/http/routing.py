"""The local endpoint's routes on Starlette alone: what FastAPI did for them, in the few lines
they need (the gateway on a Pi cannot spare FastAPI's import and its per-route models, see
docs/scaling.md). A handler takes the request and reads what it needs::

    @routes.post("/api/members", status_code=201)
    async def register(request: Request) -> Response:
        signed = await csrf_checked(request)
        body = await parse_body(request, RegisterIn)
        ...
        return json_response(view, status=201)

Bodies, forms and parameters are msgspec types, read by :mod:`gateway.http.fields`. Bad input
raises :class:`Refused` with every field's error typed as FastAPI's pydantic typed it, located
as FastAPI located them (``("body", field)``, ``("path", name)``, ``("query", name)``), so
:func:`gateway.http.validation.validation_refused` words and counts them as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import functools
import json
import operator
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from types import NoneType, UnionType
from typing import Annotated, Any, Final, TypeVar, Union, get_args, get_origin, overload

import msgspec
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.http.fields import Error, read
from wastebank.errors import BadInput

__all__ = [
    "PING_INTERVAL_S",
    "Refused",
    "Routes",
    "event_stream",
    "json_response",
    "parse_body",
    "parse_form",
    "parse_input",
    "params_of",
    "path_param",
    "query_param",
]

M = TypeVar("M", bound=msgspec.Struct)
T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Any]]

PING_INTERVAL_S: Final = 15.0
"""An idle event stream sends a ``: ping`` comment this often, so proxies and the browser keep
the connection (the interval and bytes FastAPI's EventSourceResponse used)."""
PING: Final = b": ping\n\n"


class Refused(BadInput):
    """Bad input: FastAPI's errors (``type``, ``loc``, ``msg``, ``ctx``), answered 422 by
    :func:`gateway.http.validation.validation_refused` (or the error page, for a browser), which
    logs and counts it. Input that cannot be read (:class:`~wastebank.errors.BadInput`), not a
    rule's refusal (:class:`wastebank.errors.Refused`)."""

    def __init__(self, errors: Sequence[dict[str, Any]]) -> None:
        super().__init__(errors)
        self._errors = list(errors)

    def errors(self) -> list[dict[str, Any]]:
        """The errors (:data:`gateway.http.fields.Error`), in the order found."""
        return self._errors


class Routes:
    """One module's routes, in declaration order: ``routes = Routes()`` (or
    ``Routes(prefix="/petugas")``); ``@routes.get(path)``, ``.post(path, status_code=...)``,
    ``.put``, ``.delete``; ``routes.routes`` is the list of :class:`starlette.routing.Route` to
    mount (a GET route also answers HEAD, without a body: Starlette's rule, docs/attendant.md).

    A handler returns a :class:`Response`, or a value answered by :func:`json_response` with
    the route's ``status_code``."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.routes: list[Route] = []

    def route(self, method: str, path: str, status_code: int = 200) -> Callable[[Handler], Handler]:
        """Register the decorated handler for ``method`` on ``prefix + path``."""

        def register(handler: Handler) -> Handler:
            @functools.wraps(handler)
            async def endpoint(request: Request) -> Response:
                answer = await handler(request)
                if isinstance(answer, Response):
                    return answer
                return json_response(answer, status=status_code)

            self.routes.append(
                Route(self.prefix + path, endpoint, methods=[method], name=handler.__name__)
            )
            return handler

        return register

    def get(self, path: str, status_code: int = 200) -> Callable[[Handler], Handler]:
        """A GET (and HEAD) route."""
        return self.route("GET", path, status_code)

    def post(self, path: str, status_code: int = 200) -> Callable[[Handler], Handler]:
        """A POST route."""
        return self.route("POST", path, status_code)

    def put(self, path: str, status_code: int = 200) -> Callable[[Handler], Handler]:
        """A PUT route."""
        return self.route("PUT", path, status_code)

    def delete(self, path: str, status_code: int = 200) -> Callable[[Handler], Handler]:
        """A DELETE route."""
        return self.route("DELETE", path, status_code)


def _validated(model: type[M], value: Any, prefix: tuple[str | int, ...]) -> M:
    """``value`` as ``model``, every field's refusal located under ``prefix``."""
    built, errors = read(model, value, prefix)
    if errors:
        raise Refused(errors)
    result: M = built
    return result


async def parse_body(request: Request, model: type[M]) -> M:
    """The request's JSON body as ``model``. As FastAPI read it: parsed only when its
    Content-Type is ``application/json`` (or ``+json``), else validated as the raw bytes (a
    ``model_attributes_type`` refusal); no body at all is ``missing`` at ``("body",)``;
    malformed JSON is ``json_invalid`` at ``("body", position)``."""
    raw = await request.body()
    if not raw:
        raise Refused([{"type": "missing", "loc": ("body",), "msg": "Field required"}])
    value: Any = raw
    kind = request.headers.get("content-type")
    if kind:
        header = email.message.Message()
        header["content-type"] = kind
        subtype = header.get_content_subtype()
        if header.get_content_maintype() == "application" and (
            subtype == "json" or subtype.endswith("+json")
        ):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise Refused(
                    [
                        {
                            "type": "json_invalid",
                            "loc": ("body", exc.pos),
                            "msg": "JSON decode error",
                            "ctx": {"error": exc.msg},
                        }
                    ]
                ) from None
            except ValueError:  # not UTF-8: FastAPI's answer to a body it could not read
                raise HTTPException(400, "There was an error parsing the body") from None
    return _validated(model, value, ("body",))


async def parse_input(
    request: Request,
    model: type[M],
    guard: Callable[[Request], Awaitable[T]],
    *params: Callable[[Request], Any],
) -> tuple[T, list[Any], M]:
    """A write's input checked in FastAPI's order: the body read first (malformed JSON, or a
    body that is not UTF-8, refused before anything else), then ``guard`` (the session and its
    CSRF token: 401, 403), then ``params`` (each reads a path or query parameter) and the
    body's fields, refused together in that order. Returns the guard's answer, the params'
    values and the body."""
    body: M | None = None
    body_errors: list[Error] = []
    try:
        body = await parse_body(request, model)
    except Refused as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise
        body_errors = exc.errors()
    guarded = await guard(request)
    values, errors = _collected(request, params)
    if errors or body is None:
        raise Refused([*errors, *body_errors])
    return guarded, values, body


def params_of(request: Request, *params: Callable[[Request], Any]) -> list[Any]:
    """Each of ``params`` (each reads a path or query parameter) read from the request; those
    refused are refused together, in order, as FastAPI collected a route's parameters."""
    values, errors = _collected(request, params)
    if errors:
        raise Refused(errors)
    return values


def _collected(
    request: Request, params: Iterable[Callable[[Request], Any]]
) -> tuple[list[Any], list[dict[str, Any]]]:
    values: list[Any] = []
    errors: list[dict[str, Any]] = []
    for param in params:
        try:
            values.append(param(request))
        except Refused as exc:
            errors.extend(exc.errors())
    return values, errors


async def parse_form(request: Request, model: type[M]) -> M:
    """A form post (urlencoded or multipart) as ``model``, its fields named by their aliases;
    an empty field counts as not sent (its default, or ``missing``), as FastAPI's ``Form()``
    read it. Errors at ``("body", field)``."""
    form: FormData = await request.form()
    sent = {key: value for key, value in form.items() if value != ""}
    return _validated(model, sent, ("body",))


@functools.lru_cache(maxsize=128)
def _constrained(kind: Any, constraints: tuple[tuple[str, Any], ...]) -> Any:
    """``kind`` under ``constraints`` (:class:`msgspec.Meta` keywords); in ``X | None``, on
    ``X``."""
    if not constraints:
        return kind
    meta = msgspec.Meta(**dict(constraints))
    if get_origin(kind) in (Union, UnionType):
        members = [Annotated[m, meta] if m is not NoneType else m for m in get_args(kind)]
        return functools.reduce(operator.or_, members)
    return Annotated[kind, meta]


def _param(where: str, name: str, raw: str | None, kind: Any, default: Any, **c: Any) -> Any:
    """One path or query parameter read as ``kind`` (Refused at ``(where, name)``)."""
    if raw is None:
        if default is not ...:
            return default
        raise Refused([{"type": "missing", "loc": (where, name), "msg": "Field required"}])
    value, errors = read(_constrained(kind, tuple(sorted(c.items()))), raw, (where, name))
    if errors:
        raise Refused(errors)
    return value


@overload
def path_param(
    request: Request, name: str, kind: type[T], pattern: str | None = None, **constraints: Any
) -> T: ...
@overload
def path_param(
    request: Request, name: str, *, pattern: str | None = None, **constraints: Any
) -> str: ...
def path_param(
    request: Request, name: str, kind: Any = str, pattern: str | None = None, **constraints: Any
) -> Any:
    """The path parameter ``name`` as ``kind``, checked against ``pattern`` and
    :class:`msgspec.Meta` constraints (``ge``, ``le``, ``max_length``...). Refused at
    ``("path", name)``."""
    if pattern is not None:
        constraints["pattern"] = pattern
    return _param("path", name, request.path_params.get(name), kind, ..., **constraints)


def query_param(
    request: Request, name: str, kind: Any = str, default: Any = ..., **constraints: Any
) -> Any:
    """The query parameter ``name`` as ``kind`` (``default`` when absent; without one it is
    required), under :class:`msgspec.Meta` constraints. Refused at ``("query", name)``. An empty
    value is validated as given (``?date=`` is not a date), as FastAPI did."""
    return _param("query", name, request.query_params.get(name), kind, default, **constraints)


_ENCODER: Final = msgspec.json.Encoder()


def _has_model(value: Any) -> bool:
    """Whether ``value`` is a Struct or a list, tuple or dict holding one."""
    if isinstance(value, msgspec.Struct):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_model(v) for v in value)
    if isinstance(value, dict):
        return any(_has_model(v) for v in value.values())
    return False


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``value`` as JSON, the bytes FastAPI sent for a route's return model: a Struct (or a
    list or dict of them) by msgspec, its fields in order, ``None`` as ``null``, by their
    encoded names (the bytes pydantic's serializer gave); another value as ``JSONResponse`` of
    its JSON-able form."""
    if _has_model(value):
        return Response(_ENCODER.encode(value), status, headers, media_type="application/json")
    return JSONResponse(msgspec.to_builtins(value), status, headers)


def sse_event(item: Any) -> bytes:
    """One Server-Sent Event: ``data: <the Struct's JSON>`` and the blank line ending it."""
    data = _ENCODER.encode(item).decode()
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "".join(f"data: {line}\n" for line in lines).encode() + b"\n"


async def _with_pings(items: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    """``items`` as events, and a ping whenever none came for :data:`PING_INTERVAL_S` (the
    pending item is awaited on, never cancelled by the ping: the generator keeps its state)."""
    iterator = aiter(items)
    pending: asyncio.Task[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=PING_INTERVAL_S)
            if not done:
                yield PING
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            finally:
                pending = None
            yield sse_event(item)
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def event_stream(items: AsyncIterator[Any]) -> StreamingResponse:
    """A Server-Sent Events response of ``items`` (each a ``data:`` line of its JSON), with
    keep-alive pings, ``Cache-Control: no-cache`` and ``X-Accel-Buffering: no`` (no proxy
    buffers it): the bytes and headers FastAPI's EventSourceResponse sent."""
    response = StreamingResponse(_with_pings(items), media_type="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def mount(parts: Iterable[Routes]) -> list[Route]:
    """The routes of ``parts``, in order (one list to give an app)."""
    return [route for part in parts for route in part.routes]
