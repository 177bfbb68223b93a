"""The local API of the attendant flow and of calibration checks (for `wastebank attend` and
`wastebank calibrate`):

  GET  /scales                          live weight, stability, state, protocol, what is armed
  GET  /scales/{id}/frames              what the scale sends: the latest rejected frames, why,
                                        auto-detection's progress, staleness
  POST /scales/{id}/arm                 {member_no, category_code}: the next settled load
  POST /scales/{id}/cancel
  POST /scales/{id}/calibration         {reference_g, note}: record a check now
  GET  /scales/{id}/calibration         the checks so far
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Annotated

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request

from gateway.app import Gateway
from gateway.http.attendant import auth
from gateway.http.routing import Routes, parse_input, path_param
from gateway.kiosk import AttendantSession
from gateway.outbox import CalibrationCheck
from gateway.readers import BadFrame, ScaleReader
from gateway.recorder import ScaleDisconnected
from gateway.scale_protocol import AutoDetector
from gateway.scale_state import STATE_TEXT
from wastebank.messages import CODE_PATTERN, ScaleState

log = logging.getLogger("wastebank.gateway")

routes = Routes()


class ArmRequest(msgspec.Struct, kw_only=True):
    member_no: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9-]{1,32}$")]
    category_code: Annotated[str, msgspec.Meta(pattern=CODE_PATTERN)]


class CalibrationRequest(msgspec.Struct, kw_only=True):
    reference_g: Annotated[int, msgspec.Meta(gt=0, le=10_000_000)]
    note: Annotated[str, msgspec.Meta(max_length=200)] = ""


class ScaleView(msgspec.Struct, kw_only=True):
    scale_id: str
    flow: str
    protocol: str
    connected: bool
    grams: int | None
    stable: bool | None
    state: ScaleState
    """ok, unsettled, overload, underload, indicator_error, disconnected, zero_drift, undetected,
    stale (docs/operations.md, "Scale states and alerts")."""
    state_text: str
    """The state in words, Bahasa Indonesia first."""
    state_since: datetime
    armed_member_no: str | None = None
    armed_category_code: str | None = None
    waiting_for_zero: bool = False
    calibration_version: str | None = None


class FrameView(msgspec.Struct, kw_only=True):
    reason: str
    """A ``FrameError`` reason (docs/protocol.md §1.4), or while undetected what the leading
    candidate made of the frame (``weight``, ``status``, ``kiosk`` or its reject reason)."""
    at: datetime | None
    raw: str
    """The bytes as received, each control or non-ASCII byte escaped (``\x02``, ``\r``)."""


class DetectionView(msgspec.Struct, kw_only=True):
    decided: bool
    contenders: list[str]
    waiting_for: str | None
    frames_undecided: int
    """Frames seen while undecided since the start (rejects too)."""
    redetections: int
    """Decisions forgotten because the stream no longer fitted them (docs/protocol.md §1.7)."""
    lost_because: str | None
    recent: list[FrameView]
    """The latest frames seen while undecided (at most 16)."""


class FramesView(msgspec.Struct, kw_only=True):
    scale_id: str
    protocol: str
    state: ScaleState
    frames_parsed: int
    frames_rejected: int
    rejected_by_reason: dict[str, int]
    last_parsed_s: float
    """Seconds since the latest frame parsed (or the port opened); ``stale`` past 3."""
    reject_run: int
    """Frames rejected since the latest parsed one; ``stale`` at 4."""
    detection: DetectionView | None
    """Only for ``protocol = "auto"``."""
    bad_frames: list[FrameView]
    """The latest rejected frames (at most 100), oldest first."""


def _frame(reason: str, at: datetime | None, raw: bytes) -> FrameView:
    # every byte outside printable ASCII as \xNN (\t, \n, \r), a backslash doubled: a
    # terminal or a page shows the frame, never acts on it
    return FrameView(
        reason=reason, at=at, raw=raw.decode("latin-1").encode("unicode_escape").decode()
    )


def _bad(frame: BadFrame) -> FrameView:
    return _frame(frame.reason, frame.at, frame.raw)


def _frames_view(r: ScaleReader) -> FramesView:
    state, _ = r.state_now()
    d = r.decoder
    detection = None
    if isinstance(d, AutoDetector):
        detection = DetectionView(
            decided=d.decided,
            contenders=list(d.contenders),
            waiting_for=d.waiting_for,
            frames_undecided=d.frames_undecided,
            redetections=d.redetections,
            lost_because=d.lost_because,
            recent=[_frame(what, None, raw) for what, raw in d.recent],
        )
    return FramesView(
        scale_id=r.cfg.id,
        protocol=r.protocol,
        state=state,
        frames_parsed=r.stats.frames_parsed,
        frames_rejected=r.stats.frames_rejected,
        rejected_by_reason=dict(r.stats.rejected_by_reason),
        last_parsed_s=round(time.monotonic() - r.parsed_at, 1),
        reject_run=r.reject_run,
        detection=detection,
        bad_frames=[_bad(f) for f in r.bad_frames],
    )


class CalibrationView(msgspec.Struct, kw_only=True):
    id: int
    scale_id: str
    reference_g: int
    reading_g: int
    error_g: int
    checked_at: datetime
    version: str


def _scale_view(gw: Gateway, r: ScaleReader) -> ScaleView:
    armed = r.session.armed if isinstance(r.session, AttendantSession) else None
    state, since = r.state_now()
    grams, stable = r.shown()
    return ScaleView(
        scale_id=r.cfg.id,
        flow=r.cfg.flow,
        protocol=r.protocol,
        connected=r.connected,
        grams=grams,
        stable=stable,
        state=state,
        state_text=STATE_TEXT[state],
        state_since=since,
        armed_member_no=armed[0] if armed else None,
        armed_category_code=armed[1] if armed else None,
        waiting_for_zero=isinstance(r.session, AttendantSession) and r.session.waiting_for_zero,
        calibration_version=gw.recorder.calibration_version(r.cfg),
    )


def _calibration_view(c: CalibrationCheck) -> CalibrationView:
    return CalibrationView(
        id=c.id,
        scale_id=c.scale_id,
        reference_g=c.reference_g,
        reading_g=c.reading_g,
        error_g=c.error_g,
        checked_at=c.checked_at,
        version=c.version,
    )


def _reader(gw: Gateway, scale_id: str) -> ScaleReader:
    try:
        return gw.readers[scale_id]
    except KeyError:
        raise HTTPException(404, f"timbangan {scale_id} tidak ada / no such scale") from None


@routes.get("/scales")
async def scales(request: Request) -> list[ScaleView]:
    auth.signed_in(request)
    gw = auth.service(request).gw
    return [_scale_view(gw, r) for r in gw.readers.values()]


@routes.get("/scales/{scale_id}/frames")
async def frames(request: Request) -> FramesView:
    auth.signed_in(request)
    return _frames_view(_reader(auth.service(request).gw, path_param(request, "scale_id")))


@routes.post("/scales/{scale_id}/arm")
async def arm(request: Request) -> ScaleView:
    signed, _, req = await parse_input(request, ArmRequest, auth.csrf_checked)
    scale_id = path_param(request, "scale_id")
    gw = auth.service(request).gw
    r = _reader(gw, scale_id)
    gw.recorder.arm(r, req.member_no, req.category_code, signed.who.username)
    return _scale_view(gw, r)


@routes.post("/scales/{scale_id}/cancel")
async def cancel(request: Request) -> ScaleView:
    signed = await auth.csrf_checked(request)
    gw = auth.service(request).gw
    r = _reader(gw, path_param(request, "scale_id"))
    gw.recorder.cancel(r, signed.who.username)
    return _scale_view(gw, r)


@routes.post("/scales/{scale_id}/calibration")
async def calibrate(request: Request) -> CalibrationView:
    signed, _, req = await parse_input(request, CalibrationRequest, auth.csrf_checked)
    scale_id = path_param(request, "scale_id")
    gw = auth.service(request).gw
    r = _reader(gw, scale_id)
    if not r.connected:
        raise ScaleDisconnected(scale_id)
    r.require_weighing()
    if r.last is None or r.last.status != "stable" or r.last.grams is None:
        raise HTTPException(409, "timbangan belum stabil / the scale is not stable yet")
    check = gw.calibration.record(scale_id, req.reference_g, r.last.grams, req.note)
    log.info(
        "kalibrasi / calibration check %s by %s: ref %d g, read %d g",
        scale_id,
        signed.who.username,
        check.reference_g,
        check.reading_g,
    )
    return _calibration_view(check)


@routes.get("/scales/{scale_id}/calibration")
async def calibrations(request: Request) -> list[CalibrationView]:
    auth.signed_in(request)
    scale_id = path_param(request, "scale_id")
    gw = auth.service(request).gw
    _reader(gw, scale_id)
    return [_calibration_view(c) for c in gw.calibration.checks(scale_id)]
