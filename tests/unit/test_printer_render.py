"""The emulated printer: what it answers, what it prints, and that the PNG really scans."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from drivers.base import Role
from drivers.printer import events as ev
from drivers.printer.codec import PrinterCodec
from emulator.printer import PrinterEmulator
from firmware_profiles import load_profile

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "escpos-php"


def emulator(name: str = "epson-tm-t20iii") -> PrinterEmulator:
    return PrinterEmulator(load_profile("printer", name))


def send(printer: PrinterEmulator, commands: Sequence[ev.PrinterCommand], *, chinese: bool = False) -> bytes:
    host = PrinterCodec(Role.HOST, chinese_mode=chinese)
    printer.receive(b"".join(host.send(c) for c in commands))
    return printer.transmit()


def scan(image: Any) -> list[str]:
    import zxingcpp

    return [result.text for result in zxingcpp.read_barcodes(image)]


def qr_job(data: bytes, size: int = 4) -> list[ev.PrinterCommand]:
    return [
        ev.Initialize(),
        ev.SetAlignment(align=ev.Align.CENTER),
        ev.QrSelectModel(model=2),
        ev.QrSetModuleSize(size=size),
        ev.QrSetErrorCorrection(level="M"),
        ev.QrStore(data=data),
        ev.QrPrint(),
        ev.Cut(),
    ]


def test_importing_the_emulator_does_not_import_pillow() -> None:
    code = "import sys, emulator.printer; sys.exit('PIL' in sys.modules or 'qrcode' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False).returncode == 0


@pytest.mark.parametrize("data", [b"HELLO", b"https://x.cn/p?o=1&amount=12.50"])
def test_native_qr_scans_from_the_png(data: bytes, tmp_path: Path) -> None:
    printer = emulator()
    send(printer, qr_job(data))
    (page,) = printer.pages
    assert f"[QR: {data.decode()}]" in page.text
    page.save_png(tmp_path / "qr.png")
    from PIL import Image

    with Image.open(tmp_path / "qr.png") as png:
        assert png.mode == "1"
        assert png.width == 576
        assert scan(png) == [data.decode()]


def test_raster_qr_scans_from_the_png() -> None:
    import qrcode

    qr = qrcode.QRCode(box_size=1, border=4)
    qr.add_data("https://x.cn/p?o=1")
    matrix = qr.get_matrix()
    module = 3
    rows = [[cell for cell in row for _ in range(module)] for row in matrix for _ in range(module)]
    width_bytes = (len(rows[0]) + 7) // 8
    data = bytearray()
    for row in rows:
        bits = row + [False] * (width_bytes * 8 - len(row))
        data += bytes(sum(bit << (7 - i) for i, bit in enumerate(bits[j : j + 8])) for j in range(0, len(bits), 8))
    printer = emulator("generic-58mm")  # no native QR: the terminal sends an image
    image = ev.PrintRasterImage(width_bytes=width_bytes, height=len(rows), data=bytes(data))
    send(printer, [ev.Initialize(), image, ev.Cut()])
    (page,) = printer.pages
    assert page.text == f"[image {width_bytes * 8}x{len(rows)}]"
    assert page.image().width == 384
    assert scan(page.image()) == ["https://x.cn/p?o=1"]


def test_raster_bits_land_where_the_golden_vector_says() -> None:
    printer = emulator()
    printer.receive(bytes.fromhex("1D 76 30 00 02 00 02 00 80 00 00 01"))
    img = printer.current_page().image()
    assert img.getpixel((0, 0)) == 0  # black
    assert img.getpixel((15, 1)) == 0
    assert img.getpixel((1, 0)) == 255
    assert img.getpixel((14, 1)) == 255


def test_no_native_qr_on_a_58mm_module() -> None:
    printer = emulator("generic-58mm")
    send(printer, qr_job(b"HELLO"))
    assert "[QR" not in printer.pages[0].text
    assert ev.QrPrint() in printer.ignored


def test_barcodes_scan_and_show_their_content() -> None:
    printer = emulator()
    send(printer, [
        ev.SetHriPosition(pos=2),
        ev.PrintBarcode(symbology=2, data=b"4006381333931"),
        ev.PrintBarcode(symbology=73, data=b"{BTEST123"),
    ])
    page = printer.current_page()
    assert page.text.splitlines() == ["[barcode EAN13: 4006381333931]", "[barcode CODE128: TEST123]"]
    assert sorted(scan(page.image())) == ["4006381333931", "TEST123"]


@pytest.mark.parametrize("chunk", [0, 1])
def test_chinese_text_round_trips(chunk: int) -> None:
    printer = emulator("generic-58mm")  # powers up in Chinese mode
    data = "中文测试 合计 ￥12.00\n".encode("gb18030")
    for i in range(0, len(data), chunk or len(data)):
        printer.receive(data[i : i + (chunk or len(data))])
    assert printer.current_page().text == "中文测试 合计 ￥12.00"


def test_chinese_mode_on_an_epson_needs_fs_ampersand() -> None:
    printer = emulator()  # CP437 at power-on
    printer.receive(b"\xd6\xd0\n\x1c&\xd6\xd0\n\x1c.\x43\x61\x66\x82\n")
    assert printer.current_page().text.splitlines() == ["╓╨", "中", "Café"]


def test_text_layout_alignment_styles_and_cut_pages() -> None:
    printer = emulator()
    send(printer, [
        ev.Initialize(),
        ev.SetAlignment(align=ev.Align.CENTER),
        ev.SelectPrintMode(bold=True, double_width=True, double_height=True),
        ev.PrintText(data=b"SHOP\n"),
        ev.SelectPrintMode(),
        ev.SetAlignment(align=ev.Align.RIGHT),
        ev.PrintText(data=b"12.50\n"),
        ev.SetAlignment(align=ev.Align.LEFT),
        ev.PrintText(data=b"left"),
        ev.FeedLines(lines=1),
        ev.Cut(partial=True),
        ev.PrintText(data=b"second\n"),
    ])
    (first,) = printer.pages
    assert first.cut == "partial"
    assert first.text.split("\n") == [" " * 22 + "SHOP", " " * 43 + "12.50", "left", ""]
    assert printer.current_page().text == "second"
    assert printer.current_page().cut is None
    img = first.image()
    assert img.mode == "1" and img.width == 576
    assert img.getbbox() is not None


def test_status_bytes_and_paper_out_prints_nothing() -> None:
    printer = emulator()
    assert send(printer, [ev.RequestStatus(kind=k) for k in (1, 2, 3, 4)]) == bytes([0x12] * 4)
    printer.set_paper("out")
    job: list[ev.PrinterCommand] = [ev.PrintText(data=b"lost\n"), ev.Cut()]
    answer = send(printer, [*job, *(ev.RequestStatus(kind=k) for k in (1, 2, 3, 4))])
    assert answer == bytes([0x1A, 0x32, 0x12, 0x72])
    assert printer.pages == []
    assert printer.current_page().text == ""
    assert printer.ignored == job
    printer.set_paper("near-end")
    send(printer, job)
    assert printer.pages[0].text == "lost"
    assert send(printer, [ev.RequestStatus(kind=4)]) == b"\x1e"


def test_asb_pushes_on_enable_and_on_change_of_enabled_groups() -> None:
    printer = emulator()
    printer.open_cover()  # ASB off: nothing pushed
    assert printer.transmit() == b""
    assert send(printer, [ev.SetAutoStatus(mask=0x02)]) == bytes.fromhex("38 00 00 00")
    printer.close_cover()
    assert printer.transmit() == bytes.fromhex("10 00 00 00")
    printer.set_paper("near-end")  # paper group (bit 3) not enabled
    assert printer.transmit() == b""
    assert send(printer, [ev.SetAutoStatus(mask=0x0F)]) == bytes.fromhex("10 00 03 00")
    printer.set_paper("out")
    assert printer.transmit() == bytes.fromhex("18 00 0C 00")


def test_asb_is_ignored_by_a_printer_without_it() -> None:
    printer = emulator("generic-58mm")
    assert send(printer, [ev.SetAutoStatus(mask=0x0F)]) == b""
    printer.open_cover()
    assert printer.transmit() == b""


def test_unknown_commands_are_recorded_and_garbage_never_crashes() -> None:
    printer = emulator()
    printer.receive(b"\x1b~\x07" + bytes(range(256)) * 4)
    assert printer.unknown_commands[:2] == [b"\x1b~", b"\x07"]
    printer.current_page().image()  # whatever arrived renders


CORPUS_TEXT = {
    "demo.bin": ["Hello world", "ABCDEFGHIJabcdefghijk", "ABC", "DEF", "GHI"],
    "receipt-with-logo.bin": ["ExampleMart Ltd.", "SALES INVOICE", "Example item #1", "4.00", "Total",
                              "14.25", "Thank you for shopping at ExampleMart"],
    "qr-code.bin": ["Most simple example", "Same example, centred", "Error correction", "[QR: Testing 123]"],
    "barcode.bin": ["Height and bar width", "Default look", "[barcode CODE39: ABC]"],
    "pdf417-code.bin": ["PDF417 code demo", "Most simple example"],
    "text-size.bin": ["The quick brown fox jumps over the lazy dog.", "Hello world!"],
    # The corpus README also names "Line spacing", but the file does not hold it.
    "margins-and-spacing.bin": ["Left margin", "Page width"],
    "graphics.bin": ["Regular Tux.", "Wide Tux.", "Tall Tux."],
    "bit-image.bin": ["Regular Tux (bit image).", "[image "],
    "character-tables.bin": ["Table 0", "0123456789ABCDEF"],
    "character-encodings.bin": ["Implemented languages"],
    "unifont-print-buffer.bin": [],
}


@pytest.mark.parametrize("name", sorted(CORPUS_TEXT))
def test_escpos_php_corpus_prints(name: str) -> None:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"corpus not present at {CORPUS}")
    printer = emulator()
    printer.receive(path.read_bytes())
    text = "\n".join(page.text for page in [*printer.pages, printer.current_page()])
    for expected in CORPUS_TEXT[name]:
        assert expected in text
    assert printer.pages  # every corpus file ends with a cut
    printer.pages[0].image()
