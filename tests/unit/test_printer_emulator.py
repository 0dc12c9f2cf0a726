"""The emulated printer as a device: faults, exact status bytes, ASB, the receive buffer and real time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.base import Role
from drivers.printer import events as ev
from drivers.printer.codec import PrinterCodec
from emulator.printer.emulator import PrinterEmulator, render_stream
from firmware_profiles import load_profile
from tests.support.depth import examples

H = bytes.fromhex
STATUS_ALL = H("10 04 01 10 04 02 10 04 03 10 04 04")
LINE = b"x" * 48 + b"\n"


def emulator(name: str = "epson-tm-t20iii", **overrides: Any) -> PrinterEmulator:
    profile = load_profile("printer", name)
    for section, values in overrides.items():
        profile[section] = {**profile[section], **values}
    return PrinterEmulator(profile)


def ask(printer: PrinterEmulator, data: bytes = STATUS_ALL) -> bytes:
    printer.receive(data)
    return printer.transmit()


def send(printer: PrinterEmulator, commands: Sequence[ev.PrinterCommand]) -> bytes:
    host = PrinterCodec(Role.HOST)
    return ask(printer, b"".join(host.send(c) for c in commands))


# -- faults and the exact bytes they make (PROTOCOLS.md §1.2, §7) ---------------------------------
FAULT_STATUS = [
    ("near-end", "12 12 12 1E", "10 00 03 00"),
    ("paper-out", "1A 32 12 72", "18 00 0C 00"),
    ("cover-open", "1A 16 12 12", "38 00 00 00"),
    ("cutter", "1A 52 1A 12", "18 08 00 00"),
    ("overheat", "1A 52 52 12", "18 40 00 00"),
    ("offline", "1A 12 12 12", "18 00 00 00"),
]


@pytest.mark.parametrize(("fault", "replies", "asb"), FAULT_STATUS)
def test_a_fault_set_at_start_answers_dle_eot_exactly(fault: str, replies: str, asb: str) -> None:
    profile = load_profile("printer", "epson-tm-t20iii")
    printer = PrinterEmulator(profile, faults=[fault])
    assert ask(printer) == H(replies)
    printer.clear_faults()
    assert ask(printer) == H("12 12 12 12")


@pytest.mark.parametrize(("fault", "replies", "asb"), FAULT_STATUS)
def test_a_fault_set_at_runtime_pushes_asb_and_clear_pushes_again(fault: str, replies: str, asb: str) -> None:
    printer = emulator()
    assert ask(printer, H("1D 61 0F")) == H("10 00 00 00")
    printer.set_fault(fault)
    assert printer.transmit() == H(asb)
    assert ask(printer) == H(replies)
    printer.set_fault(fault)  # no change, no push
    assert printer.transmit() == b""
    printer.clear_faults()
    assert printer.transmit() == H("10 00 00 00")


@pytest.mark.parametrize(("fault", "options"), [
    ("jam", {}), ("cover-open", {"after_bytes": 3}), ("near-end", {"next_cut": True}),
    ("paper-out", {"after_lines": -1}),
])
def test_unknown_faults_and_misplaced_conditions_are_refused(fault: str, options: dict[str, Any]) -> None:
    printer = emulator()
    with pytest.raises(ValueError):
        printer.set_fault(fault, **options)
    assert ask(printer) == H("12 12 12 12")


@pytest.mark.parametrize("chunk", [1, 3, 100])
@pytest.mark.parametrize(("name", "kept"), [("epson-tm-t20iii", 8), ("cn-80mm", 0)])
def test_paper_runs_out_after_n_bytes(chunk: int, name: str, kept: int) -> None:
    printer = emulator(name)
    printer.set_fault("paper-out", after_bytes=5)
    data = b"AAAA\nBBBB\n\x1dV\x00"
    for i in range(0, len(data), chunk):
        printer.receive(data[i : i + chunk])
    assert printer.current_page().text == "AAAA"
    assert printer.sensors().paper_out and printer.pages == []
    assert printer.backlog == kept  # held in the buffer (Epson) or thrown away


@pytest.mark.parametrize(("name", "after_reload"), [("epson-tm-t20iii", "L1\nL2\nL3\n\n"), ("cn-80mm", None)])
def test_paper_runs_out_after_n_lines_and_held_data_prints_on_reload(name: str, after_reload: str | None) -> None:
    printer = emulator(name)
    printer.set_fault("paper-out", after_lines=2)
    assert "paper-out-in=2-lines" in printer.describe()
    printer.receive(b"L1\nL2\nL3\n\x1bd\x02\x1dV\x00")
    assert printer.current_page().text == "L1\nL2"
    assert ask(printer, H("10 04 04")) == b"\x72"
    printer.set_paper("ok")
    assert [p.text for p in printer.pages] == ([after_reload] if after_reload else [])


def test_the_cutter_jams_at_the_next_cut_and_dle_enq_1_recovers() -> None:
    printer = emulator()
    printer.set_fault("cutter", next_cut=True)
    printer.receive(b"receipt\n\x1dV\x01")
    assert printer.pages == [] and printer.sensors().cutter_error
    assert ask(printer, H("10 04 03")) == b"\x1a"
    printer.receive(b"after\n")  # held behind the failed cut
    assert ask(printer, H("10 05 01 10 04 03")) == b"\x12"
    assert [p.text for p in printer.pages] == ["receipt"]
    assert printer.current_page().text == "after"


def test_dle_enq_2_recovers_after_clearing_the_buffers() -> None:
    printer = emulator()
    printer.set_fault("cutter", next_cut=True)
    printer.receive(b"receipt\n\x1dV\x01more\n")
    assert printer.backlog > 0
    assert ask(printer, H("10 05 02 10 04 03")) == b"\x12"
    assert printer.pages == [] and printer.backlog == 0
    assert printer.current_page().text == "receipt"


def test_dle_enq_does_nothing_without_a_recoverable_error() -> None:
    printer = emulator()
    printer.set_paper("out")
    assert ask(printer, H("10 05 02 10 04 04")) == b"\x72"


def test_a_hot_head_recovers_by_itself_after_the_profile_time() -> None:
    printer = emulator(status={"overheat_recovery_s": 3.0})
    send(printer, [ev.SetAutoStatus(mask=0x04)])
    printer.set_fault("overheat")
    assert printer.transmit() == H("18 40 00 00")
    printer.receive(b"hot\n")
    printer.advance(2.9)
    assert printer.sensors().auto_recoverable_error and printer.transmit() == b""
    printer.advance(0.2)
    assert printer.transmit() == H("10 00 00 00")
    assert printer.current_page().text == "hot"  # held while hot, printed once cool


def test_a_disconnected_printer_hears_and_says_nothing() -> None:
    printer = emulator()
    send(printer, [ev.SetAutoStatus(mask=0x0F)])
    printer.set_fault("disconnect")
    assert ask(printer) == b""
    printer.receive(b"lost\n")
    printer.clear_faults()
    assert ask(printer) == H("12 12 12 12")
    assert printer.current_page().text == ""


def test_offline_stops_printing_but_not_real_time_status() -> None:
    printer = emulator("cn-80mm")
    printer.set_fault("offline")
    assert ask(printer, b"gone\n" + STATUS_ALL) == H("1A 12 12 12")
    printer.set_offline(False)
    assert printer.current_page().text == "" and printer.ignored == [ev.PrintText(data=b"gone\n")]


# -- real-time commands inside the data stream ----------------------------------------------------
def _raster_with_dle_eot() -> bytes:
    return H("1D 76 30 00 03 00 01 00") + H("10 04 01")


@pytest.mark.parametrize(("name", "answer"), [("epson-tm-t20iii", b"\x12"), ("generic-58mm", b"")])
def test_dle_eot_inside_raster_data_is_answered_only_where_the_profile_says(name: str, answer: bytes) -> None:
    printer = emulator(name)
    assert ask(printer, _raster_with_dle_eot()) == answer
    assert printer.current_page().text == "[image 24x1]"  # and the bytes stay image data
    assert ask(printer, H("10 04 01")) == b"\x12"  # at a command boundary both answer


def test_dle_eot_split_across_reads_is_answered_once() -> None:
    printer = emulator()
    assert b"".join(ask(printer, bytes((b,))) for b in H("41 10 04 04 42 10 04")) == b"\x12"
    assert ask(printer, H("02")) == b"\x12"


# -- the receive buffer, print speed and flow control ---------------------------------------------
def test_a_clocked_printer_sends_xoff_at_the_high_water_mark_and_xon_once_printed() -> None:
    printer = emulator()  # 4096-byte buffer, XOFF with 128 free, XON with 256 free, 250 mm/s
    printer.advance(0)
    printer.receive(LINE * 80)  # 3920 bytes: under the mark
    assert printer.transmit() == b"" and printer.backlog == 3920
    printer.receive(LINE)
    assert printer.transmit() == b"\x13" and printer.paused
    assert ask(printer, H("10 04 01")) == b"\x12"  # real time goes past a full buffer
    printer.advance(0.01)  # 20 dots: not one line printed yet
    assert printer.transmit() == b""
    printer.advance(0.2)
    assert printer.transmit() == b"\x11" and not printer.paused
    printer.advance(10)
    assert printer.backlog == 0 and len(printer.current_page().blocks) == 81


def test_bytes_beyond_a_full_buffer_are_lost() -> None:
    printer = emulator()
    printer.advance(0)
    printer.receive(LINE * 100)
    assert printer.overflowed == 4900 - 4096 and printer.backlog == 4096


def test_without_a_clock_the_printer_prints_everything_at_once() -> None:
    printer = emulator()
    printer.receive(LINE * 1000)
    assert printer.transmit() == b"" and printer.backlog == 0 and printer.overflowed == 0


def test_held_data_fills_the_buffer_and_raises_xoff() -> None:
    printer = emulator()
    printer.set_paper("out")
    printer.receive(LINE * 100)
    assert printer.transmit() == b"\x13" and printer.overflowed > 0
    printer.set_paper("ok")
    assert printer.transmit() == b"\x11" and printer.backlog == 0


def test_busy_line_flow_control_sends_nothing_on_the_wire() -> None:
    printer = emulator(serial={"flow_control": "dtr_dsr"})
    printer.advance(0)
    printer.receive(LINE * 90)
    assert printer.busy and printer.transmit() == b""


# -- render_stream ----------------------------------------------------------------------------------
def test_render_stream_gives_one_page_per_cut_and_the_unknown_commands() -> None:
    result = render_stream(b"\x1b@one\n\x1dV\x00two\n\x1b~\x1dV\x01three", load_profile("printer", "epson-tm-t88"))
    assert [p.text for p in result.pages] == ["one", "two", "three"]
    assert [p.cut for p in result.pages] == ["full", "partial", None]
    assert result.unknown == (b"\x1b~",) and not result.understood
    assert result.pages[0].image().width == 512


def test_render_stream_starts_in_the_profile_text_mode() -> None:
    data = "中文 ￥1.00\n".encode("gb18030") + b"\x1dV\x00"
    assert render_stream(data, load_profile("printer", "cn-80mm")).pages[0].text == "中文 ￥1.00"
    assert render_stream(data, load_profile("printer", "epson-tm-t20iii")).pages[0].text != "中文 ￥1.00"


@settings(max_examples=examples(60), deadline=None)
@given(st.binary(max_size=600), st.integers(min_value=1, max_value=64),
       st.sampled_from(["epson-tm-t20iii", "generic-58mm", "cn-80mm"]),
       st.lists(st.sampled_from(["paper-out", "cover-open", "cutter", "overheat", "offline"]), max_size=2),
       st.booleans())
def test_no_stream_crashes_or_overfills_the_printer(
    data: bytes, chunk: int, name: str, faults: list[str], clocked: bool,
) -> None:
    printer = PrinterEmulator(load_profile("printer", name), faults=faults)
    if clocked:
        printer.advance(0)
    printer.set_fault("paper-out", after_lines=3)
    for i in range(0, len(data), chunk):
        printer.receive(data[i : i + chunk])
        if clocked:
            printer.advance(0.001)
        assert 0 <= printer.backlog <= printer.capacity
    printer.clear_faults()
    _ = [page.text for page in printer.pages] + [printer.current_page().text]
    assert set(printer.transmit()) <= {0x11, 0x13} | {b for b in range(256) if b & 0x93 in (0x10, 0x12) or not b & 0x90}


def test_the_pos_handshake_answers_16_with_the_drawer_pin_high() -> None:
    printer = emulator()
    printer.set_drawer(True)  # PROTOCOLS.md §7: escpos-netprinter expects 16 here
    assert ask(printer, H("1B 40 1B 3D 01 10 04 01")) == b"\x16"
