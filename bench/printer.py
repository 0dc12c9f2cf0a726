"""Receipt printer benchmarks (issue 3, Proof): bytes on the wire, render time, line-rate fidelity.

- Bytes: the terminal's standard receipt (native QR, captured from an emulated sale) against the
  minimal native encoding of the same content (redundant mode commands dropped, checked to print
  the same text) and against the same receipt fully raster-rendered (`GS v 0` bands of the
  emulator's own PNG, as POS systems that print images do), with the wire time of each at 9600 /
  38400 / 115200 baud, 8N1. Targets: <= 1.2x the minimal encoding, >= 10x fewer bytes than raster.
- Render: median time to decode one receipt and to draw its PNG, against the time the profile's
  head needs to print that much paper (the emulator should keep up with the printer).
- Line rate: bytes the printer does not print, then DLE EOT 1, written to the emulator served on a
  pty at 9600 and 115200 baud; the median time to the answer over the theoretical line time of
  those bytes (10 bits/char) should be 1 +- 5 %.
"""

from __future__ import annotations

import select
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import median

__all__ = ["bench_printer", "line_rate", "receipt_commands"]

BAUDS = (9600, 38400, 115200)
_BAND = 960  # rows per GS v 0 command (python-escpos' fragment height)


def receipt_commands() -> tuple[list[Any], dict[str, Any]]:
    """The first copy the terminal prints in an emulated sale, as commands, and the printer profile."""
    from drivers.events import Role
    from drivers.printer import events as ev
    from drivers.printer.codec import PrinterCodec
    from sim.wiring import build_emulated_till
    from terminal.clock import FakeClock

    writes: list[bytes] = []
    with tempfile.TemporaryDirectory() as tmp:
        till = build_emulated_till(var_dir=Path(tmp) / "var", clock=FakeClock())
        try:
            printer, reader = till.emulators.printer, till.emulators.card_reader
            assert printer is not None and reader is not None
            receive = printer.receive

            def record(data: bytes) -> None:
                writes.append(bytes(data))
                receive(data)

            printer.receive = record
            reader.present("approved")
            till.sale(1234)
            profile = dict(printer.profile)
        finally:
            till.close()
    job = b"".join(w for w in writes if not w.startswith(b"\x10\x04"))  # status requests are separate writes
    codec = PrinterCodec(Role.DEVICE, profile)
    codec.receive_data(job)
    commands = codec.commands()
    first_cut = next(i for i, c in enumerate(commands) if isinstance(c, ev.Cut))
    return commands[: first_cut + 1], profile


def _encode(commands: list[Any], profile: dict[str, Any]) -> bytes:
    from drivers.events import Role
    from drivers.printer.codec import PrinterCodec

    host = PrinterCodec(Role.HOST, profile)
    return b"".join(host.send(c) for c in commands)


def minimal(commands: list[Any], profile: dict[str, Any]) -> list[Any]:
    """The same receipt without commands that change nothing (a mode already in force)."""
    from drivers.printer import events as ev

    power_on_chinese = bool(profile["text"]["chinese_mode_at_power_on"])
    state: dict[type, Any] = {}
    out: list[Any] = []
    for cmd in commands:
        kind = type(cmd)
        if kind is ev.Initialize:
            state = {ev.SetAlignment: ev.SetAlignment(align=ev.Align.LEFT), ev.SelectPrintMode: ev.SelectPrintMode(),
                     ev.ChineseMode: ev.ChineseMode(on=power_on_chinese)}
        elif kind in (ev.SetAlignment, ev.SelectPrintMode, ev.ChineseMode, ev.QrSelectModel, ev.QrSetModuleSize,
                      ev.QrSetErrorCorrection):
            if state.get(kind) == cmd:
                continue
            state[kind] = cmd
        if kind is ev.PrintText and out and type(out[-1]) is ev.PrintText:
            out[-1] = ev.PrintText(data=out[-1].data + cmd.data)
            continue
        out.append(cmd)
    # A mode set and changed again before anything printed was never needed.
    return [c for i, c in enumerate(out) if not (i + 1 < len(out) and type(out[i + 1]) is type(c)
                                                 and type(c) in (ev.SetAlignment, ev.SelectPrintMode))]


def raster(page: Any) -> bytes:
    """The page as GS v 0 bands (what a POS system that prints a picture of the receipt sends)."""
    image = page.image()
    width_bytes = (image.width + 7) // 8
    rows = image.point(lambda v: 255 - v).tobytes()  # PIL "1": 1 = white; ESC/POS: 1 = black
    out = bytearray(b"\x1b@")
    for top in range(0, image.height, _BAND):
        height = min(_BAND, image.height - top)
        out += bytes((0x1D, 0x76, 0x30, 0)) + width_bytes.to_bytes(2, "little") + height.to_bytes(2, "little")
        out += rows[top * width_bytes : (top + height) * width_bytes]
    return bytes(out + b"\x1dVB\x00")


def _wire(n: int) -> dict[str, float]:
    return {f"wire_s_{baud}": n * 10 / baud for baud in BAUDS}


def bench_bytes(commands: list[Any], profile: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    from emulator.printer.emulator import render_stream

    standard = _encode(commands, profile)
    least = _encode(minimal(commands, profile), profile)
    (page,) = render_stream(standard, profile).pages
    if render_stream(least, profile).pages[0].text != page.text:
        raise AssertionError("the minimal encoding prints something else")
    pictured = raster(page)
    ratio_min, ratio_raster = len(standard) / len(least), len(pictured) / len(standard)
    result = {
        "name": "printer_receipt_bytes", "profile": profile["name"],
        "standard_bytes": len(standard), **{f"standard_{k}": v for k, v in _wire(len(standard)).items()},
        "minimal_bytes": len(least), **{f"minimal_{k}": v for k, v in _wire(len(least)).items()},
        "raster_bytes": len(pictured), **{f"raster_{k}": v for k, v in _wire(len(pictured)).items()},
        "baseline": "minimal native encoding of the same receipt",
        "ratio": ratio_min, "target_ratio": 1.2, "raster_over_standard": ratio_raster, "target_raster_over": 10.0,
        "within_target": ratio_min <= 1.2 and ratio_raster >= 10.0,
    }
    return result, page


def bench_render(commands: list[Any], profile: dict[str, Any], reps: int) -> dict[str, Any]:
    from emulator.printer.emulator import render_stream

    data = _encode(commands, profile)
    text_times, png_times = [], []
    for _ in range(max(reps, 5)):
        start = time.perf_counter()
        (page,) = render_stream(data, profile).pages
        _ = page.text
        text_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        image = page.image()
        png_times.append(time.perf_counter() - start)
    dots_per_s = float(profile["printing"]["speed_mm_s"]) * int(profile["media"]["dpi"]) / 25.4
    print_s = image.height / dots_per_s
    png = median(png_times[1:])  # the first drawing loads fonts and warms the glyph cache
    return {"name": "printer_render_per_receipt", "text_median_s": median(text_times), "png_median_s": png,
            "baseline": "time the printer's head takes to print the receipt (paper length / print speed)",
            "baseline_s": print_s, "ratio": png / print_s, "target_ratio": 1.0, "within_target": png <= print_s}


def line_rate(baud: int, n: int, reps: int) -> list[float]:
    """Measured over theoretical time of n non-printing bytes + DLE EOT 1 and its 1-byte answer."""
    from drivers.transport import open_port
    from emulator.link import PtyLink
    from emulator.printer.emulator import PrinterEmulator
    from firmware_profiles import load_profile

    payload = b"\x1b!\x00" * (n // 3) + b"\x10\x04\x01"
    theoretical = (len(payload) + 1) * 10 / baud
    ratios = []
    with PtyLink(PrinterEmulator(load_profile("printer", "epson-tm-t20iii")), baud=baud) as link:
        port = open_port(link.endpoint, baudrate=baud, timeout=0)
        try:
            for _ in range(reps):
                start = time.perf_counter()
                port.write(payload)
                answer = b""
                while not answer and time.perf_counter() - start < 10 * theoretical + 1:
                    select.select([port.fileno()], [], [], 1.0)
                    answer = bytes(port.read(16))
                ratios.append((time.perf_counter() - start) / theoretical)
        finally:
            port.close()
    return ratios


def bench_line_rate(reps: int) -> dict[str, Any]:
    runs = {9600: line_rate(9600, 300, reps), 115200: line_rate(115200, 3000, reps)}
    fidelity = {baud: statistics.median(r) for baud, r in runs.items()}
    return {"name": "printer_line_rate_fidelity", "bytes": {"9600": 303, "115200": 3003},
            "ratio_9600": fidelity[9600], "ratio_115200": fidelity[115200],
            "baseline": "theoretical line time at 10 bits/char (8N1)", "target_ratio": "1 +- 0.05",
            "within_target": all(abs(f - 1) <= 0.05 for f in fidelity.values())}


def bench_printer(reps: int) -> list[dict[str, Any]]:
    commands, profile = receipt_commands()
    sizes, _ = bench_bytes(commands, profile)
    return [sizes, bench_render(commands, profile, reps), bench_line_rate(min(reps, 5))]
