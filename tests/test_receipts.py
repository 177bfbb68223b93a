"""The receipt model's 58 mm layout and its ESC/POS bytes (python-escpos's Dummy and File
printers), the kind registry, and the printer settings."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway import receipts
from gateway.receipts import Line, Receipt
from gateway.settings import PrinterSettings
from wastebank.errors import NotFound

WIT = ZoneInfo("Asia/Jayapura")
AT = datetime(2026, 12, 6, 0, 30, tzinfo=UTC)  # 09.30 WIT

ESC_INIT = b"\x1b@"
CUT = b"\x1dV"  # GS V: cut (python-escpos: full cut is GS V 0)


def receipt(**kw: object) -> Receipt:
    base: dict[str, object] = {
        "kind": "setoran",
        "title": "STRUK SETORAN / DEPOSIT",
        "reference": "dep-0001",
        "at": AT,
        "bank_name": "Bank Sampah Batu Merah Sejahtera Bersama Kota Ambon",
        "lines": (
            Line("Nasabah", "Ibu Siti Aminah binti Abdullah Rahman Wattimena"),
            Line("Berat", "1,25 kg"),
            Line("Harga", "Rp1.800/kg"),
            Line("Setoran dicatat petugas, dibatalkan bila salah."),
        ),
        "total": Line("JUMLAH", "Rp2.250"),
        "footer": ("Terima kasih / Thank you",),
    }
    base.update(kw)
    return Receipt(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("width", [32, 48])
def test_every_line_fits_the_paper(width: int) -> None:
    lines = receipts.text_lines(receipt(), WIT, width)
    assert lines, "a receipt has lines"
    too_wide = [s for s in lines if len(s) > width]
    assert too_wide == []
    assert all(s.isascii() for s in lines)


def test_amounts_right_aligned_and_long_names_wrapped() -> None:
    lines = receipts.text_lines(receipt(), WIT, 32)
    total = next(s for s in lines if s.startswith("JUMLAH"))
    assert total == "JUMLAH" + " " * (32 - len("JUMLAH") - len("Rp2.250")) + "Rp2.250"
    price = next(s for s in lines if s.startswith("Harga"))
    assert price.endswith("Rp1.800/kg")
    assert len(price) == 32
    # the member's long name does not fit beside its label: label, then the name wrapped and
    # right-aligned, every word kept
    at = lines.index("Nasabah")
    name_lines = lines[at + 1 : at + 3]
    assert " ".join(s.strip() for s in name_lines) == (
        "Ibu Siti Aminah binti Abdullah Rahman Wattimena"
    )
    assert all(len(s) == 32 for s in name_lines)
    # the bank's long name wraps centred
    assert lines[0].strip()
    assert lines[1].strip()
    assert "Bank Sampah Batu Merah" in " ".join(lines[:3])


def test_local_time_in_the_banks_zone() -> None:
    text = receipts.text(receipt(), WIT, 32)
    assert "6 Des 2026 09.30 WIT" in text
    assert "6 Des 2026 07.30 WIB" in receipts.text(receipt(), ZoneInfo("Asia/Jakarta"), 32)


def test_estimate_is_said_twice_and_only_when_estimate() -> None:
    estimate = receipts.text(receipt(estimate=True), WIT, 32)
    assert estimate.count(receipts.ESTIMATE_TEXT) == 2  # under the title and under the total
    assert receipts.ESTIMATE_TEXT not in receipts.text(receipt(), WIT, 32)


def test_accents_and_symbols_become_what_the_printer_has() -> None:
    lines = receipts.text_lines(receipt(lines=(Line("Nasabah", "José · Ñoño"),)), WIT, 32)
    row = next(s for s in lines if s.startswith("Nasabah"))
    assert row.endswith("Jose ? Nono")


def test_bad_width_and_naive_time_refused() -> None:
    with pytest.raises(ValueError, match="32 or 48"):
        receipts.text_lines(receipt(), WIT, 40)
    with pytest.raises(ValueError, match="time zone"):
        receipt(at=datetime(2026, 12, 6, 9, 30))  # noqa: DTZ001 - the point of the test


def test_escpos_bytes_init_text_cut() -> None:
    data = receipts.escpos_bytes(receipt(), WIT, 32)
    assert data.startswith(ESC_INIT)
    for line in receipts.text_lines(receipt(), WIT, 32):
        assert line.encode("ascii") in data
    assert CUT in data
    assert data.rindex(CUT) > data.index(b"Terima kasih")
    assert CUT not in receipts.escpos_bytes(receipt(), WIT, 32, cut=False)


def test_print_to_a_file_printer_writes_the_same_bytes(tmp_path: Path) -> None:
    device = tmp_path / "lp0"
    device.touch()
    settings = PrinterSettings(kind="file", path=device)
    sent = receipts.print_receipt(receipt(), WIT, settings)
    written = device.read_bytes()
    assert written == receipts.escpos_bytes(receipt(), WIT, 32)
    assert sent == len(written)


def test_no_printer_and_unreachable_printer_say_so(tmp_path: Path) -> None:
    with pytest.raises(receipts.NoPrinter, match="belum diatur"):
        receipts.print_receipt(receipt(), WIT, PrinterSettings())
    missing = tmp_path / "no-such-dir" / "lp0"
    with pytest.raises(receipts.PrinterUnreachable, match="tidak terjangkau") as got:
        receipts.print_receipt(receipt(), WIT, PrinterSettings(kind="file", path=missing))
    assert str(missing) in str(got.value)
    serial = PrinterSettings(kind="serial", path=tmp_path / "rfcomm0")
    with pytest.raises(receipts.PrinterUnreachable, match="rfcomm0"):
        receipts.print_receipt(receipt(), WIT, serial)


def test_printer_settings_name_what_is_missing() -> None:
    with pytest.raises(ValueError, match="usb_vendor_id"):
        PrinterSettings(kind="usb")
    with pytest.raises(ValueError, match="needs path"):
        PrinterSettings(kind="serial")
    usb = PrinterSettings(kind="usb", usb_vendor_id=0x0416, usb_product_id=0x5011)
    assert usb.columns == 32


async def test_kinds_register_and_load() -> None:
    def loader(service: object, ref: str) -> Receipt:
        if ref != "dep-0001":
            raise NotFound("tidak ada / none")
        return receipt(kind="uji-sinkron")

    async def async_loader(service: object, ref: str) -> Receipt:
        return receipt(kind="uji-asinkron", reference=ref)

    receipts.register("uji-sinkron", loader, nav="timbang")
    # the same loader again: harmless (a re-import)
    receipts.register("uji-sinkron", loader, nav="timbang")
    receipts.register("uji-asinkron", async_loader, nav="stok")
    assert {"uji-sinkron", "uji-asinkron"} <= set(receipts.kinds())
    assert (await receipts.load(None, "uji-sinkron", "dep-0001")).kind == "uji-sinkron"
    assert (await receipts.load(None, "uji-asinkron", "x-1")).reference == "x-1"
    with pytest.raises(NotFound):
        await receipts.load(None, "uji-sinkron", "dep-0002")
    with pytest.raises(NotFound, match="tidak dikenal"):
        await receipts.load(None, "no-such-kind", "x")
    with pytest.raises(ValueError, match="registered already"):
        receipts.register("uji-sinkron", async_loader, nav="timbang")
    with pytest.raises(ValueError, match="lower-case"):
        receipts.register("Bad Kind", loader, nav="timbang")


def test_a_gateway_without_python_escpos_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "escpos.printer", None)  # as if not installed
    settings = PrinterSettings(kind="file", path=tmp_path / "lp0")
    with pytest.raises(receipts.NoPrinter, match=r"wastebank\[printer\]"):
        receipts.print_receipt(receipt(), WIT, settings)
    assert not (tmp_path / "lp0").exists()
