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
from emulator.printer.emulator import PrinterEmulator
from firmware_profiles import load_profile
from tests.unit.test_printer_codec import CHINESE

ROOT = Path(__file__).resolve().parents[2]
H = bytes.fromhex


def emulator(name: str = "epson-tm-t20iii") -> PrinterEmulator:
    return PrinterEmulator(load_profile("printer", name))


def send(printer: PrinterEmulator, commands: Sequence[ev.PrinterCommand], *, chinese: bool = False) -> bytes:
    host = PrinterCodec(Role.HOST, CHINESE[chinese])
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
    code = "import sys, emulator.printer.emulator; sys.exit('PIL' in sys.modules or 'qrcode' in sys.modules)"
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


def test_status_bytes_and_paper_out_discards_on_a_discarding_model() -> None:
    printer = emulator("cn-80mm")  # quirks.paper_out_data = "discard"
    assert send(printer, [ev.RequestStatus(kind=k) for k in (1, 2, 3, 4)]) == bytes([0x12] * 4)
    printer.set_paper("out")
    job: list[ev.PrinterCommand] = [ev.PrintText(data=b"lost\n"), ev.Cut()]
    answer = send(printer, [*job, *(ev.RequestStatus(kind=k) for k in (1, 2, 3, 4))])
    assert answer == bytes([0x1A, 0x32, 0x12, 0x72])
    assert printer.pages == []
    assert printer.current_page().text == ""
    assert printer.ignored == job
    printer.set_paper("near-end")
    assert printer.pages == []  # what came while it could not print is gone
    send(printer, job)
    assert printer.pages[0].text == "lost"
    assert send(printer, [ev.RequestStatus(kind=4)]) == b"\x1e"


def test_paper_out_holds_the_data_on_an_epson_and_prints_it_on_recovery() -> None:
    printer = emulator()  # quirks.paper_out_data = "hold"
    printer.set_paper("out")
    job: list[ev.PrinterCommand] = [ev.SetAlignment(align=ev.Align.RIGHT), ev.PrintText(data=b"kept\n"), ev.Cut()]
    assert send(printer, [*job, ev.RequestStatus(kind=2)]) == b"\x32"  # real time still answers
    assert printer.pages == [] and printer.ignored == []
    assert printer.backlog > 0
    printer.set_paper("ok")
    assert printer.pages[0].text == " " * 44 + "kept"
    assert printer.backlog == 0


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


# -- layout and images beyond plain text ----------------------------------------------------------
def test_column_image_bits_land_where_the_bytes_say() -> None:
    printer = emulator()
    # ESC * 33 (24-dot double density): column 0 = top dot only, column 1 = bottom dot only.
    printer.receive(H("1B 2A 21 02 00 80 00 00 00 00 01 0A"))
    assert len(printer.current_page().blocks) == 1  # one line holding the image
    img = printer.current_page().image()
    assert img.getpixel((0, 0)) == 0 and img.getpixel((1, 23)) == 0
    assert img.getpixel((1, 0)) == 255 and img.getpixel((0, 23)) == 255
    assert printer.current_page().text == "[image 2x24]"


def test_graphics_print_from_the_buffer_scaled() -> None:
    printer = emulator()
    printer.receive(H("1D 28 4C 0C 00 30 70 30 02 01 31 08 00 02 00 80 01 1D 28 4C 02 00 30 32"))
    page = printer.current_page()
    assert page.text == "[image 16x2]"  # 8 dots wide, scaled x2
    img = page.image()
    assert [img.getpixel((x, 0)) for x in (0, 1, 2)] == [0, 0, 255]
    assert [img.getpixel((x, 1)) for x in (13, 14, 15)] == [255, 0, 0]


def test_left_margin_print_area_and_line_spacing_shape_the_page() -> None:
    printer = emulator()
    printer.receive(b"\x1dL\x78\x00X\n\x1dL\x00\x00\x1dW\x60\x00" + b"W" * 20 + b"\n\x1b3\x50A\nB\n")
    page = printer.current_page()
    assert page.text.splitlines()[0] == " " * 10 + "X"  # 120 dots = 10 columns of font A
    img = page.image()
    first_ink = min(x for x in range(img.width) if any(img.getpixel((x, y)) == 0 for y in range(24)))
    assert first_ink >= 120
    assert img.height == 34 + 3 * 34 + 80 + 80  # the 20 W's wrap at 96 dots: 8 per row, 3 rows


def test_reverse_prints_white_on_black() -> None:
    printer = emulator()
    printer.receive(H("1D 42 01") + b"  \n")
    img = printer.current_page().image()
    assert img.getpixel((0, 5)) == 0 and img.getpixel((30, 5)) == 255


def test_pdf417_is_named_in_the_text_and_takes_room_on_paper() -> None:
    printer = emulator()
    printer.receive(H("1D 28 6B 0E 00 30 50 30") + b"Testing 123" + H("1D 28 6B 03 00 30 51 30"))
    assert printer.current_page().text == "[PDF417: Testing 123]"
    assert printer.current_page().image().height >= 90
    printer = emulator("generic-58mm")  # no PDF417 on that module
    printer.receive(H("1D 28 6B 0E 00 30 50 30") + b"Testing 123" + H("1D 28 6B 03 00 30 51 30"))
    assert printer.current_page().text == "" and printer.ignored == [ev.Pdf417Print()]


def test_a_180_dpi_printer_draws_512_dots_and_wraps_at_them() -> None:
    printer = emulator("epson-tm-t88")
    send(printer, qr_job(b"HELLO"))
    assert printer.pages[0].image().width == 512
    assert scan(printer.pages[0].image()) == ["HELLO"]
    printer.receive(b"y" * 43 + b"\n")  # 42 columns of font A fit in 512 dots
    assert printer.current_page().image().height == 2 * 30  # two rows at the 1/6 inch pitch of 180 dpi
