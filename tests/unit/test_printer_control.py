"""Operator control lines (emulator/control.py): one line in, one `ok:`/`error:` line out."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.card_reader.emulator import CardReaderEmulator
from emulator.control import apply
from emulator.printer.control import COMMANDS as PRINTER_COMMANDS
from emulator.printer.emulator import PrinterEmulator
from firmware_profiles import load_profile

H = bytes.fromhex
STATUS_ALL = H("10 04 01 10 04 02 10 04 03 10 04 04")


@pytest.fixture
def printer() -> PrinterEmulator:
    return PrinterEmulator(load_profile("printer", "epson-tm-t20iii"))


def answers(printer: PrinterEmulator) -> bytes:
    printer.receive(STATUS_ALL)
    return printer.transmit()


@pytest.mark.parametrize(
    ("line", "replies"),
    [
        ("fault paper-out", "1A 32 12 72"),
        ("fault near-end", "12 12 12 1E"),
        ("fault cover-open", "1A 16 12 12"),
        ("fault cutter", "1A 52 1A 12"),
        ("fault overheat", "1A 52 52 12"),
        ("fault offline", "1A 12 12 12"),
        ("FAULT   Cover-Open", "12 12 12 12"),  # verbs are case-insensitive, fault names are not
    ],
)
def test_fault_lines_change_what_the_printer_answers(printer: PrinterEmulator, line: str, replies: str) -> None:
    reply = apply(printer, line)
    assert reply.startswith("ok:" if replies != "12 12 12 12" else "error:")
    assert answers(printer) == H(replies)
    assert apply(printer, "clear").startswith("ok: faults cleared")
    assert answers(printer) == H("12 12 12 12")


def test_disconnect_goes_silent_until_clear(printer: PrinterEmulator) -> None:
    assert apply(printer, "fault disconnect").startswith("ok:")
    assert answers(printer) == b""
    apply(printer, "clear")
    assert answers(printer) == H("12 12 12 12")


def test_paper_out_after_bytes_and_lines(printer: PrinterEmulator) -> None:
    assert apply(printer, "fault paper-out after-bytes 500") == "ok: the paper runs out after 500 more bytes"
    assert "paper-out-in=500-bytes" in apply(printer, "status")
    printer.receive(b"x" * 499)
    assert not printer.sensors().paper_out
    printer.receive(b"x")
    assert printer.sensors().paper_out
    apply(printer, "clear")
    assert apply(printer, "fault paper-out after-lines 2") == "ok: the paper runs out after 2 more lines"
    printer.receive(b"a\nb\nc\n")
    assert printer.sensors().paper_out


def test_cutter_next_cut_and_tick(printer: PrinterEmulator) -> None:
    assert apply(printer, "fault cutter next-cut") == "ok: the next cut jams the autocutter"
    printer.receive(b"x\n\x1dV\x00")
    assert printer.sensors().cutter_error
    apply(printer, "clear")
    apply(printer, "fault overheat")
    assert "overheat" in apply(printer, "tick 1")
    assert "overheat" not in apply(printer, "tick 10")
    assert not printer.sensors().auto_recoverable_error


@pytest.mark.parametrize(
    "line",
    ["", "   ", "jam", "fault", "fault jam", "fault paper-out after-bytes", "fault paper-out after-bytes -1",
     "fault paper-out after-bytes x", "fault paper-out after-pages 3", "fault cover-open now", "fault near-end 5",
     "fault cutter later", "clear all", "tick", "tick -1", "tick soon", "tick 1e9", "1234"],
)
def test_bad_lines_get_an_error_reply_and_change_nothing(printer: PrinterEmulator, line: str) -> None:
    reply = apply(printer, line)
    assert reply.startswith("error:")
    assert "\n" not in reply
    assert answers(printer) == H("12 12 12 12")


def test_an_error_never_echoes_digits(printer: PrinterEmulator) -> None:
    assert "1234" not in apply(printer, "1234")
    assert "9876" not in apply(printer, "fault paper-out after-bytes 9876x")


def test_help_status_and_pages(printer: PrinterEmulator) -> None:
    assert apply(printer, "help") == "ok: commands: " + ", ".join(PRINTER_COMMANDS)
    printer.receive(b"one\n\x1dV\x00")
    assert apply(printer, "pages") == "ok: 1 page(s) cut, 0 unknown command(s)"
    assert apply(printer, "status").startswith("ok: online paper=ok cover=closed buffer=0/4096")


COMMANDS = {"on": lambda lamp, args: "ok: on"}  # the Lamp's vocabulary below


def test_each_device_type_has_its_own_table() -> None:
    reader = CardReaderEmulator(load_profile("card_reader", "generic-pinpad"))
    assert apply(reader, "help").startswith("ok: commands:")
    assert "present" in apply(reader, "help")
    assert apply(object(), "status") == "error: object takes no control commands"

    class Lamp:
        CONTROL = __name__  # a family's vocabulary is the COMMANDS of the module it names

    assert apply(Lamp(), "on") == "ok: on"
    assert apply(Lamp(), "fault paper-out").startswith("error: unknown command 'fault'")


@given(st.text(max_size=60))
def test_no_line_raises(line: str) -> None:
    printer = PrinterEmulator(load_profile("printer", "cn-80mm"))
    reply = apply(printer, line)
    assert reply.startswith(("ok:", "error:")) and "\n" not in reply


def test_status_says_disconnected_not_online_while_the_cable_is_pulled(printer: PrinterEmulator) -> None:
    reply = apply(printer, "fault disconnect")
    assert reply.startswith("ok: disconnect; disconnected ") and "online" not in reply
    assert apply(printer, "status").startswith("ok: disconnected paper=ok")
    apply(printer, "clear")
    assert apply(printer, "status").startswith("ok: online paper=ok")


def test_pages_takes_no_argument(printer: PrinterEmulator) -> None:
    assert apply(printer, "pages 3") == "error: usage: pages"
    assert apply(printer, "pages") == "ok: 0 page(s) cut, 0 unknown command(s)"


def test_an_output_folder_gets_each_page_as_it_is_cut(printer: PrinterEmulator, tmp_path: Path) -> None:
    (tmp_path / "page-0007.txt").write_text("from an earlier run\n")
    printer.use_folder(tmp_path)
    first, second = b"\x1b@ONE\n\x1dV\x00", b"\x1b@TWO\n\x1dV\x01"
    printer.receive(first + second[:4])
    assert sorted(p.name for p in tmp_path.glob("page-0008.*")) == ["page-0008.bin", "page-0008.png", "page-0008.txt"]
    assert not list(tmp_path.glob("page-0009.*"))  # the second page is not cut yet
    printer.receive(second[4:] + b"tail")
    assert (tmp_path / "page-0008.bin").read_bytes() == first
    assert (tmp_path / "page-0009.bin").read_bytes() == second
    assert (tmp_path / "page-0009.txt").read_text() == "TWO\n"
    assert (tmp_path / "page-0007.txt").read_text() == "from an earlier run\n"  # never overwritten
    assert apply(printer, "pages") == (f"ok: 2 page(s) cut, 0 unknown command(s); saved in {tmp_path}: "
                                       "page-0008.{txt,png,bin}, page-0009.{txt,png,bin}")
