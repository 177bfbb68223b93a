"""What every HTML page shares: the templates, the language (Bahasa Indonesia first, English by
``?lang=en`` or the ``wb_lang`` cookie), Indonesian number and date formats, CSRF protection of
forms, the refusal pages, and the static files (own CSS/JS, and Chart.js and Leaflet from
node_modules: no CDN at run time).

CSRF: a signed double-submit token bound to the session. Every page sets a random ``wb_csrf``
cookie (HttpOnly, SameSite=Lax) when the browser has none, and puts ``HMAC(signing key, page
session id, cookie)`` in its forms' hidden ``csrf_token`` field; a state-changing form is
accepted only when the field matches the cookie it came with and the page session it came in
(the session token's ``jti``; none before signing in, so the login form works without a
session). Another site can neither read the cookie nor compute the token, and a token taken
from one session (someone's own, planted with their ``wb_csrf`` cookie) is refused in another.
(We looked at starlette-csrf, which checks a header only, so plain HTML forms would need
JavaScript, and at fastapi-csrf-protect, whose class-level config loader does not fit a
settings-per-app factory; the HMAC is a dozen lines on the key the app already has.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import IntegrityError
from starlette.types import Receive, Scope, Send

from api.deps import SESSION_COOKIE, StateDep, refusal_detail
from api.settings import PagesSettings
from wastebank import access, formats, ledger
from wastebank.errors import Forbidden
from wastebank.formats import bilingual, kg, rupiah

log = logging.getLogger("api.pages")

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
STATIC_DIR = Path(__file__).parent / "static"
CSRF_COOKIE = "wb_csrf"
CSRF_FIELD = "csrf_token"
LANG_COOKIE = "wb_lang"
HTML = {"content": {"text/html": {"schema": {"type": "string"}}}}  # a page, in `responses`

Lang = formats.Lang

# The vendor files the pages load, under /static/vendor/<package>/ from node_modules/<package>/dist.
VENDOR = {"chart.js": ("chart.umd.min.js",), "leaflet": ("leaflet.js", "leaflet.css")}

# ---- texts ------------------------------------------------------------------------------------

TEXTS: dict[str, tuple[str, str]] = {
    "app": ("Bank Sampah", "Waste Bank"),
    "logout": ("Keluar", "Log out"),
    "login": ("Masuk", "Log in"),
    "switch_lang": ("English", "Bahasa Indonesia"),
    "my_balance": ("Saldo saya", "My balance"),
    "dlh_dashboard": ("Dasbor DLH", "DLH dashboard"),
    "admin": ("Admin", "Admin"),
    "member": ("Nasabah", "Member"),
    "balance": ("Saldo", "Balance"),
    "available": ("Dapat ditarik", "Available"),
    "deposits_count": ("setoran", "deposits"),
    "deposits": ("Setoran", "Deposits"),
    "passbook": ("Buku tabungan", "Passbook"),
    "recent_entries": ("Catatan terakhir", "Recent entries"),
    "download_pdf": ("Unduh PDF", "Download PDF"),
    "download_csv": ("Unduh CSV", "Download CSV"),
    "time": ("Waktu", "Time"),
    "what": ("Keterangan", "Description"),
    "amount": ("Jumlah", "Amount"),
    "no_entries": ("Belum ada catatan", "No entries yet"),
    "by_category": ("Setoran per jenis", "Deposits by category"),
    "category": ("Jenis", "Category"),
    "weight": ("Berat", "Weight"),
    "my_impact": ("Dampak saya", "My impact"),
    "kept_from_tpa": ("Sampah tidak ke TPA", "Kept out of the landfill"),
    "estimate_note": (
        "Perkiraan dari faktor emisi baku (IPCC, US EPA WARM) per jenis bahan, bukan pengukuran.",
        "An estimate from default emission factors (IPCC, US EPA WARM) per material, "
        "not a measurement.",
    ),
    "withdraw": ("Tarik saldo", "Withdraw"),
    "withdraw_amount": ("Jumlah (Rp)", "Amount (Rp)"),
    "method": ("Cara", "Method"),
    "destination": ("Nomor rekening / dompet digital", "Account or e-wallet number"),
    "send_request": ("Ajukan penarikan", "Request withdrawal"),
    "my_withdrawals": ("Penarikan saya", "My withdrawals"),
    "status": ("Status", "Status"),
    "no_withdrawals": ("Belum ada penarikan", "No withdrawals yet"),
    "dual_control": (
        "Jumlah besar: disetujui dan dibayarkan oleh dua petugas yang berbeda.",
        "A large amount: approved and paid out by two different staff.",
    ),
    "requested_ok": (
        "Permintaan penarikan terkirim; petugas akan memprosesnya.",
        "Withdrawal requested; the attendant will process it.",
    ),
    "refused": ("Ditolak", "Refused"),
    "reason": ("Alasan", "Reason"),
    "tonnage_month": ("Tonase per bulan dan jenis", "Tonnage by month and category"),
    "tonnage_kecamatan": ("Tonase per kecamatan", "Tonnage by kecamatan"),
    "month": ("Bulan", "Month"),
    "total": ("Jumlah", "Total"),
    "headlines": ("Capaian pengelolaan sampah", "Waste management results"),
    "reduction": ("Pengurangan sampah (Jakstrada)", "Waste reduction (Jakstrada)"),
    "reduction_what": (
        "dari perkiraan timbulan sampah kota, oleh bank sampah",
        "of the city's estimated waste generation, by its waste banks",
    ),
    "jakstrada_target": ("Target Jakstrada", "Jakstrada target"),
    "target_applies_here": (
        "target ini berlaku untuk angka pengurangan",
        "this target applies to the reduction figure",
    ),
    "def_reduction": (
        "Pengurangan: berat sampah yang disetor ke bank sampah kota sejak 1 Januari (buku "
        "besar, tanpa setoran batal) dibagi perkiraan timbulan sampah kota pada hari-hari yang "
        "sama (jumlah penduduk × laju timbulan per orang per hari). Inilah capaian yang "
        "dibandingkan dengan target pengurangan Jakstrada (30 % pada 2025, Perpres 97/2017).",
        "Reduction: the weight of waste deposited at the city's waste banks since 1 January "
        "(the ledger, voided deposits left out) divided by the city's estimated waste "
        "generation over the same days (population × generation per person per day). This is "
        "the figure the Jakstrada reduction target (30 % in 2025, Perpres 97/2017) applies to.",
    ),
    "diversion": ("Pengalihan dari TPA", "Diversion from the landfill"),
    "not_enough_data": ("belum cukup data / not enough data", "not enough data / belum cukup data"),
    "coverage": ("Cakupan", "Coverage"),
    "coverage_line": (
        "data sensor dari {n} dari {total} TPS kota ({share})",
        "sensor data from {n} of the city's {total} TPS ({share})",
    ),
    "coverage_need_line": (
        "≥ {share} TPS kota dan ≥ {pickups} pengangkutan",
        "≥ {share} of the city's TPS and ≥ {pickups} pickups",
    ),
    "tps_reporting": ("TPS bersensor melapor", "sensor-equipped TPS reporting"),
    "city_tps_unknown": ("jumlah TPS kota belum diisi", "the city's number of TPS not entered"),
    "pickups_observed": ("pengangkutan teramati", "pickups observed"),
    "coverage_needed": ("Perlu", "Needed"),
    "not_the_target": (
        "Bukan angka target Jakstrada: pembaginya hanya sampah dari TPS bersensor.",
        "Not the Jakstrada target figure: it divides by the waste of sensor-equipped TPS only.",
    ),
    "def_diversion": (
        "Pengalihan dari TPA: dari sampah yang tercatat bulan ini, bagian yang tidak ke TPA = "
        "bank sampah / (bank sampah + sampah yang diangkut dari TPS bersensor ke TPA, "
        "diperkirakan dari sensor isi × volume kontainer × berat jenis). Pembaginya bukan "
        "timbulan kota, jadi angka ini tidak dibandingkan dengan target Jakstrada.",
        "Diversion from the landfill: of the waste recorded this month, the share kept from "
        "the TPA = waste banks / (waste banks + waste taken from sensor-equipped TPS to the TPA, "
        "estimated from fill sensors × container volume × bulk density). It does not divide by "
        "the city's generation, so it is not compared with the Jakstrada target.",
    ),
    "def_coverage": (
        "Angkanya ditampilkan hanya bila sensor yang melapor mencakup sedikitnya {share} % TPS "
        "kota dan sedikitnya {pickups} pengangkutan teramati; di bawah itu: belum cukup data.",
        "It is shown only when reporting sensors cover at least {share} % of the city's TPS "
        "and at least {pickups} pickups were observed; below that: not enough data.",
    ),
    "what_is_this": ("Apa artinya?", "What is this?"),
    "days": ("hari", "days"),
    "people": ("jiwa", "people"),
    "person_day": ("orang/hari", "person/day"),
    "population": ("Penduduk", "Population"),
    "generation_rate": ("Laju timbulan", "Generation rate"),
    "report_month": ("Bulan laporan", "Report month"),
    "report_format": ("Format berkas", "File format"),
    "map_no_tiles": (
        "Tanpa peta dasar (tidak diatur): penanda TPS di atas latar polos; daftar TPS di atas.",
        "No base map (none configured): TPS markers on a plain background; the TPS list above.",
    ),
    "map_unreachable": (
        "Peta dasar tidak dapat dimuat: penanda TPS di atas latar polos; daftar TPS di atas.",
        "The base map could not be loaded: TPS markers on a plain background; the TPS list above.",
    ),
    "map_no_library": (
        "Peta tidak dapat ditampilkan (pustaka peta tidak terpasang); daftar TPS di atas.",
        "The map cannot be shown (map library not installed); the TPS list above.",
    ),
    "tpa_bound": ("Ke TPA (perkiraan)", "To the TPA (estimated)"),
    "pickups": ("pengangkutan", "pickups"),
    "this_month": ("bulan ini", "this month"),
    "generation_estimate": ("Perkiraan timbulan", "Estimated generation"),
    "diverted": ("Dikurangi (bank sampah)", "Diverted (waste banks)"),
    "target_met": ("Target tercapai", "Target met"),
    "target_not_met": ("Belum mencapai target", "Target not met yet"),
    "tps_status": ("Status TPS", "TPS status"),
    "fill": ("Isi", "Fill"),
    "alerts": ("Peringatan", "Alerts"),
    "offline": ("Sensor luring", "Sensor offline"),
    "online": ("daring", "online"),
    "no_alerts": ("Tidak ada peringatan aktif", "No active alerts"),
    "map": ("Peta TPS", "TPS map"),
    "full_in": ("Penuh sekitar", "Full around"),
    "influx_down": (
        "Data sensor TPS tidak tersedia (InfluxDB tidak terjangkau).",
        "TPS sensor data unavailable (InfluxDB unreachable).",
    ),
    "estimates": ("Perkiraan dampak", "Estimated impact"),
    "estimate_how": (
        "Perkiraan dari faktor baku per jenis bahan (data berkas dengan sumbernya, "
        "docs/estimates.md), bukan pengukuran: angka tengah dahulu, lalu rentang rendah–tinggi.",
        "Estimates from default factors per material (data files with their sources, "
        "docs/estimates.md), not measurements: the central figure first, then the low–high "
        "range.",
    ),
    "range": ("rentang", "range"),
    "central": ("angka tengah", "central"),
    "range_low_high": ("rentang rendah–tinggi", "low–high range"),
    "kwh_eq": (
        "kWh-setara (energi primer, bukan listrik)",
        "kWh-eq (primary energy, not electricity)",
    ),
    "committed_lifetime": ("seumur timbunan, bukan bulan ini", "over its lifetime, not this month"),
    "subtracted": ("dikurangkan", "subtracted"),
    "if_burned": ("jika dibakar", "if burned"),
    "potential_not_produced": (
        "potensi, bukan listrik yang dihasilkan",
        "a potential, not electricity produced",
    ),
    "no_estimates": (
        "Perkiraan tidak tersedia (paket estimasi tidak terpasang).",
        "Estimates unavailable (the estimates package is not installed).",
    ),
    "monthly_report": ("Laporan bulanan", "Monthly report"),
    "download": ("Unduh", "Download"),
    "banks": ("Bank sampah", "Waste banks"),
    "code": ("Kode", "Code"),
    "name": ("Nama", "Name"),
    "kind": ("Jenis", "Kind"),
    "kecamatan": ("Kecamatan", "Kecamatan"),
    "min_withdrawal": ("Penarikan minimum", "Minimum withdrawal"),
    "prices": ("Daftar harga", "Price list"),
    "price": ("Harga", "Price"),
    "unit": ("Satuan", "Unit"),
    "effective_from": ("Berlaku mulai", "Effective from"),
    "set_price": ("Atur harga", "Set price"),
    "price_saved": ("Harga disimpan.", "Price saved."),
    "uses_parent_price": ("Memakai harga induk", "Buys at its induk's prices"),
    "member_import": ("Impor nasabah", "Member import"),
    "file": ("Berkas CSV/XLSX", "CSV/XLSX file"),
    "mode": ("Mode", "Mode"),
    "all_or_nothing": ("Semua atau tidak sama sekali", "All or nothing"),
    "valid_only": ("Hanya baris sah", "Valid rows only"),
    "dry_run": ("Uji coba (tidak menulis)", "Dry run (writes nothing)"),
    "import": ("Impor", "Import"),
    "row": ("Baris", "Row"),
    "key": ("Kunci", "Key"),
    "reasons": ("Alasan", "Reasons"),
    "devices": ("Perangkat", "Devices"),
    "username": ("Nama pengguna", "Username"),
    "site": ("Lokasi", "Site"),
    "created": ("Dibuat", "Created"),
    "topics": ("Topik", "Topics"),
    "no_devices": ("Belum ada perangkat terdaftar", "No devices registered"),
    "devices_not_local": (
        "Berkas broker tidak ada di mesin ini (WASTEBANK_PAGES__BROKER_RUN_DIR belum diatur).",
        "The broker's files are not on this machine (WASTEBANK_PAGES__BROKER_RUN_DIR unset).",
    ),
    "add_device": ("Tambah perangkat", "Add device"),
    "device_added": (
        "Perangkat ditambahkan. Kata sandi (ditampilkan sekali saja):",
        "Device added. Password (shown only once):",
    ),
    "vendor_missing": (
        "Pustaka grafik dan peta tidak terpasang (jalankan make install).",
        "The chart and map libraries are not installed (run make install).",
    ),
    "forbidden": ("Tidak diizinkan", "Not allowed"),
    "not_found": ("Tidak ditemukan", "Not found"),
    "csrf_refused": (
        "Formulir kedaluwarsa atau tidak sah; muat ulang halaman dan coba lagi.",
        "The form expired or is invalid; reload the page and try again.",
    ),
    "back_home": ("Kembali ke beranda", "Back to the start page"),
}

STATUS_TEXTS: dict[str, tuple[str, str]] = {
    "requested": ("diajukan", "requested"),
    "approved": ("disetujui", "approved"),
    "paid": ("dibayar", "paid"),
    "rejected": ("ditolak", "rejected"),
    "cancelled": ("dibatalkan", "cancelled"),
}
METHOD_TEXTS: dict[str, tuple[str, str]] = {
    "cash": ("tunai", "cash"),
    "bank_transfer": ("transfer bank", "bank transfer"),
    "ewallet": ("dompet digital", "e-wallet"),
}


def load_templates() -> None:
    """Every page template compiled now: not read from disk on the event loop by a page's first
    request (Jinja keeps them, and reloads one whose file changed)."""
    env = TEMPLATES.env
    for name in env.list_templates():
        env.get_template(name)


def text(key: str, lang: Lang) -> str:
    return bilingual(key, lang, TEXTS)


def lang_of(request: Request) -> Lang:
    """``?lang=`` first (the switch link), then the cookie; Bahasa Indonesia by default. A value
    that is neither ``id`` nor ``en`` is passed over, as if absent: ``?lang=fr`` on a link did
    put an English reader's page in Indonesian."""
    for wanted in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if wanted == "en":
            return "en"
        if wanted == "id":
            return "id"
    return "id"


# ---- formats ----------------------------------------------------------------------------------


def number(value: float | None, places: int = 1) -> str:
    """``12.345,6`` (:func:`wastebank.formats.number`); an en dash for None."""
    return formats.number(value, places, missing="–")


# ---- CSRF -------------------------------------------------------------------------------------


def csrf_token(key: bytes, cookie: str, session_id: str = "") -> str:
    """The forms' token for the browser's ``wb_csrf`` cookie in the page session
    ``session_id`` (its token's ``jti``; "" before signing in: the login form)."""
    message = f"wastebank-csrf:{session_id}:{cookie}".encode()
    mac = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def session_id(request: Request, key: bytes) -> str:
    """The id of the page session the request's cookie carries ("" for none, or one that is
    not ours or has expired). Not whether it is revoked: a form's token only has to be the one
    this session's pages were given."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return ""
    try:
        return access.read_claims(token, key, "session").jti
    except access.InvalidToken:
        return ""


class CsrfRefused(Forbidden):
    """A state-changing form without a valid token: a 403 page (:func:`csrf_refused_handler`)."""


def check_csrf(
    request: Request,
    state: StateDep,
    csrf_token_: Annotated[str | None, Form(alias=CSRF_FIELD, max_length=200)] = None,
) -> None:
    """Dependency of every page form that changes state: the form's token must match the
    browser's ``wb_csrf`` cookie."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not csrf_token_:
        raise CsrfRefused
    key = state["signing_key"]
    want = csrf_token(key, cookie, session_id(request, key))
    if not hmac.compare_digest(want.encode(), csrf_token_.encode()):
        raise CsrfRefused


CsrfDep = Annotated[None, Depends(check_csrf)]


# ---- what the page routes share -------------------------------------------------------------


def page_responses(*codes: int, redirect: str | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a page route: the 303 to the login page (or ``redirect``'s
    description) and the pages for ``codes``."""
    out: dict[int | str, dict[str, Any]] = {
        303: {"description": redirect or "not signed in: to the login page"}
    }
    descriptions = {
        400: "the form is invalid: the page again, with the reason",
        403: "not allowed, or a form without a valid CSRF token",
        404: "not found, or not visible to the caller",
        409: "refused by the ledger: the page again, with the reason",
        413: "the upload would unpack to too much (a zip bomb?): the page again, with the reason",
        503: "a service the page needs is unreachable",
    }
    for code in codes:
        out[code] = {"description": descriptions[code], **HTML}
    return out


def to_login(request: Request, path: str | None = None) -> RedirectResponse:
    """Not signed in: to the login page, and back to ``path`` (this page) after it."""
    return RedirectResponse(f"/masuk?next={quote(path or request.url.path)}", status_code=303)


def refusal_reason(exc: Exception) -> tuple[int, str]:
    """A refusal from the route logic or the ledger as (status, reason) for a page."""
    if isinstance(exc, HTTPException):
        return exc.status_code, str(exc.detail)
    if isinstance(exc, ledger.LedgerError):  # its family's status: a price beyond a bound is 422
        return exc.status, refusal_detail(exc)
    if isinstance(exc, IntegrityError):
        return 409, "bentrok dengan data yang ada / conflicts with existing data"
    return 400, str(exc)


# ---- rendering --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageCtx:
    """What the base template needs: who is signed in, the language, the CSRF token."""

    who: access.Principal | None
    lang: Lang
    csrf: str
    csrf_cookie: str | None  # a new cookie to set, or None when the browser has one
    vendor_ok: bool


def page_ctx(request: Request, key: bytes, who: access.Principal | None) -> PageCtx:
    cookie = request.cookies.get(CSRF_COOKIE)
    new = None
    if not cookie or len(cookie) > 100:
        cookie = new = secrets.token_urlsafe(24)
    return PageCtx(
        who=who,
        lang=lang_of(request),
        csrf=csrf_token(key, cookie, session_id(request, key)),
        csrf_cookie=new,
        vendor_ok=bool(getattr(request.app.state, "vendor_ok", False)),
    )


def content_policy(pages: PagesSettings) -> str:
    """The pages' Content-Security-Policy (the DLH dashboard, the public bank list): everything
    from this site, and the map's tiles from the configured tile host only (none without one)."""
    tiles = pages.tile_source()
    return "; ".join(
        [
            "default-src 'self'",
            "img-src 'self' data:" + (f" {tiles}" if tiles else ""),
            # the pages' bars and meters set their width in a style attribute
            "style-src 'self' 'unsafe-inline'",
            "script-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def render(
    request: Request,
    key: bytes,
    who: access.Principal | None,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """``template`` with the shared context (``t``, formats, ``who``, ``lang``, ``csrf``), the
    CSRF cookie set if the browser has none, and the language cookie kept if switched."""
    ctx = page_ctx(request, key, who)
    lang = ctx.lang

    def t(k: str) -> str:
        return text(k, lang)

    def status_text(value: str) -> str:
        return bilingual(value, lang, STATUS_TEXTS)

    def method_text(value: str) -> str:
        return bilingual(value, lang, METHOD_TEXTS)

    values: dict[str, Any] = {
        "who": who,
        "lang": lang,
        "csrf": ctx.csrf,
        "csrf_field": CSRF_FIELD,
        "vendor_ok": ctx.vendor_ok,
        "t": t,
        "status_text": status_text,
        "method_text": method_text,
        "rupiah": rupiah,
        "kg": kg,
        "mass": formats.mass,
        "thousands": formats.thousands,
        "number": number,
        "tanggal": lambda d: formats.tanggal(d, lang),
        "bulan": lambda d: formats.bulan(d, lang),
        "tanggal_waktu": lambda at, tz: formats.tanggal_waktu(at, tz, lang),
        # the language switch's target: this page, or (after a form's POST) the form's page
        "path": request.url.path if request.method == "GET" else "/masuk",
        **(context or {}),
    }
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        values,
        status_code=status,
        headers={"Cache-Control": "private, no-store", **(headers or {})},
    )
    secure = request.url.scheme == "https"
    if ctx.csrf_cookie is not None:
        response.set_cookie(
            CSRF_COOKIE, ctx.csrf_cookie, path="/", httponly=True, samesite="lax", secure=secure
        )
    wanted = request.query_params.get("lang")
    if wanted in ("id", "en") and request.cookies.get(LANG_COOKIE) != wanted:
        response.set_cookie(
            LANG_COOKIE, wanted, max_age=365 * 86400, path="/", samesite="lax", secure=secure
        )
    return response


def refusal(
    request: Request,
    key: bytes,
    who: access.Principal | None,
    status: int,
    detail: str | None = None,
) -> HTMLResponse:
    """The page for a refusal (403, 404), in Bahasa Indonesia and English both."""
    what = {403: "forbidden", 404: "not_found"}.get(status, "refused")
    return render(
        request,
        key,
        who,
        "error.html",
        {
            "status": status,
            "title_id": TEXTS[what][0],
            "title_en": TEXTS[what][1],
            "detail": detail,
        },
        status=status,
    )


def csrf_refused_handler(request: Request, _exc: Exception) -> Response:
    key = getattr(request.state, "signing_key", None)
    if key is None:  # no lifespan (never in service): a plain refusal
        return PlainTextResponse("CSRF", status_code=403)
    return render(
        request,
        key,
        None,
        "error.html",
        {
            "status": 403,
            "title_id": TEXTS["forbidden"][0],
            "title_en": TEXTS["forbidden"][1],
            "detail": f"{TEXTS['csrf_refused'][0]} / {TEXTS['csrf_refused'][1]}",
        },
        status=403,
    )


# ---- static files -----------------------------------------------------------------------------


class _Missing:
    """Stands in for a vendor directory that is not installed: a 503 that says what to run."""

    def __init__(self, path: Path) -> None:
        self.message = (
            f"{path} tidak ada / missing: jalankan / run `make install` (npm ci) to install "
            "Chart.js and Leaflet from package-lock.json\n"
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse(self.message.decode(), status_code=503)(scope, receive, send)


def mount_static(app: FastAPI, settings: PagesSettings) -> None:
    """Own CSS/JS at /static, Chart.js and Leaflet at /static/vendor/<package>/ from
    node_modules (``WASTEBANK_PAGES__NODE_MODULES``); a missing one is logged and answered 503."""
    ok = True
    for package, files in VENDOR.items():
        dist = settings.node_modules / package / "dist"
        if all((dist / f).is_file() for f in files):
            app.mount(f"/static/vendor/{package}", StaticFiles(directory=dist), name=package)
        else:
            ok = False
            log.error(
                "pustaka %s tidak ada di %s / %s not installed in %s: run `make install`",
                package,
                dist,
                package,
                dist,
            )
            app.mount(f"/static/vendor/{package}", _Missing(dist), name=package)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.state.vendor_ok = ok
