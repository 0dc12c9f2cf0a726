"""The real printer driver against the real emulator over emu:// (and a few hostile peers)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from drivers.base import DeviceFault, FaultKind
from drivers.errors import LocalProtocolError
from drivers.printer import events as ev
from drivers.printer.driver import CHUNK, PrinterDriver
from drivers.transport import Peer, attach_peer, detach_peer
from emulator.printer.emulator import PrinterEmulator
from firmware_profiles import load_profile

PROFILE = load_profile("printer", "epson-tm-t20iii")
JOB: list[ev.PrinterCommand] = [
    ev.Initialize(),
    ev.SetAlignment(align=ev.Align.CENTER),
    ev.PrintText(data=b"OpenTill\n"),
    ev.SetAlignment(align=ev.Align.LEFT),
    ev.PrintText(data=b"TOTAL 12.50\n"),
    ev.FeedLines(lines=3),
    ev.Cut(partial=True),
]


@contextmanager
def connect(peer: Peer, timeout: float = 0.2) -> Iterator[PrinterDriver]:
    """A driver open on `peer` over emu://, closed and detached afterwards."""
    url = attach_peer("printer", peer)
    driver = PrinterDriver(url, PROFILE, timeout=timeout)
    driver.open()
    try:
        yield driver
    finally:
        driver.close()
        detach_peer(url)


@pytest.fixture
def printer() -> PrinterEmulator:
    return PrinterEmulator(PROFILE)


@pytest.fixture
def driver(printer: PrinterEmulator) -> Iterator[PrinterDriver]:
    with connect(printer) as opened:
        yield opened


class SilentPeer:
    """Swallows every byte and never answers (a printer that is off or unplugged), or answers
    each write with the same canned `reply`."""

    def __init__(self, reply: bytes = b"") -> None:
        self.received = bytearray()
        self.reply = reply
        self.answer = b""

    def receive(self, data: bytes) -> None:
        self.received += data
        self.answer += self.reply

    def transmit(self) -> bytes:
        out, self.answer = self.answer, b""
        return out

    def close(self) -> None:
        pass


class RunsOutMidJob(PrinterEmulator):
    """The roll ends while the job is printing: the check after the job must see it."""

    def receive(self, data: bytes) -> None:
        line = b"TOTAL 12.50\n"
        end = data.find(line) + len(line) if line in data else len(data)
        super().receive(data[:end])
        if end < len(data):
            self.set_paper("out")
        super().receive(data[end:])


class PausingPeer(PrinterEmulator):
    """Sends XOFF after the first chunk of a job; XON only on the read after (or never)."""

    def __init__(self, resume: bool) -> None:
        super().__init__(PROFILE)
        self.resume = resume
        self.state = "idle"
        self.chunks: list[int] = []

    def takes_any(self) -> bool:
        return False  # its XOFF follows no buffer of its own: the driver must write chunk by chunk

    def receive(self, data: bytes) -> None:
        super().receive(data)
        if not data.startswith(b"\x10\x04"):
            self.chunks.append(len(data))
            if self.state == "idle":
                self.state = "paused"

    def transmit(self) -> bytes:
        out = super().transmit()
        if self.state == "paused":
            self.state = "resuming"
            return out + b"\x13"
        if self.state == "resuming" and self.resume:
            self.state = "done"
            return out + b"\x11"
        return out


def test_status_of_an_idle_printer(driver: PrinterDriver) -> None:
    assert driver.status() == ev.PrinterStatus()


def test_job_prints_when_paper_is_fine(driver: PrinterDriver, printer: PrinterEmulator) -> None:
    assert driver.print_job(JOB) == []
    (page,) = printer.pages
    assert page.text.splitlines()[:2] == [" " * 20 + "OpenTill", "TOTAL 12.50"]
    assert page.cut == "partial"


def test_near_end_prints_and_warns(driver: PrinterDriver, printer: PrinterEmulator) -> None:
    printer.set_paper("near-end")
    assert driver.print_job(JOB) == [ev.PaperNearEnd()]
    assert len(printer.pages) == 1


def test_paper_out_before_a_job_prints_nothing(driver: PrinterDriver, printer: PrinterEmulator) -> None:
    printer.set_paper("out")
    assert driver.print_job(JOB) == [ev.PaperOut(), ev.PrinterOffline(cause="paper out")]
    assert printer.pages == []
    assert printer.ignored == []  # nothing was even sent
    assert printer.current_page().text == ""


def test_cover_open_blocks_the_job(driver: PrinterDriver, printer: PrinterEmulator) -> None:
    printer.open_cover()
    assert driver.status() == ev.PrinterStatus(online=False, cover_open=True)
    assert driver.print_job(JOB) == [ev.CoverOpen(), ev.PrinterOffline(cause="cover open")]
    assert printer.pages == []


def test_cutter_error_and_forced_offline(driver: PrinterDriver, printer: PrinterEmulator) -> None:
    printer.set_cutter_error()
    assert driver.print_job(JOB) == [ev.CutterError(), ev.PrinterOffline(cause="cutter error")]
    printer.set_cutter_error(False)
    printer.set_offline()
    assert driver.print_job(JOB) == [ev.PrinterOffline(cause="offline")]
    assert printer.pages == []


def test_paper_running_out_during_the_job_is_reported_after_it() -> None:
    printer = RunsOutMidJob(PROFILE)
    with connect(printer) as driver:
        assert driver.print_job(JOB) == [ev.PaperOut(), ev.PrinterOffline(cause="paper out")]
    assert printer.pages == []  # the cut came after the paper ended
    assert printer.current_page().text.splitlines()[-1] == "TOTAL 12.50"


def test_silence_is_a_fault_never_paper_ok() -> None:
    peer = SilentPeer()
    with connect(peer) as driver:
        fault = driver.status()
        assert isinstance(fault, DeviceFault)
        assert (fault.device, fault.kind, fault.blocking) == ("printer", FaultKind.NO_ANSWER, True)
        assert driver.print_job(JOB) == [fault]
    assert bytes(peer.received) == bytes.fromhex("10 04 01 10 04 02 10 04 03 10 04 04") * 2  # no job


def test_half_an_answer_is_no_answer() -> None:
    with connect(SilentPeer(reply=b"\x12\x12")) as driver:
        fault = driver.status()
        assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.NO_ANSWER
        assert "2 of 4" in fault.detail


class LateAnswerPeer(SilentPeer):
    """Answers the first request only after the driver gave up on it, then answers at once."""

    def __init__(self) -> None:
        super().__init__()
        self.stage = "first"

    def receive(self, data: bytes) -> None:
        super().receive(data)
        if self.stage == "first":
            self.stage = "late"
        else:
            self.answer += b"\x12" * data.count(b"\x10\x04")

    def transmit(self) -> bytes:
        if self.stage == "late":  # nothing in time for the first request...
            self.stage = "stale"
            return b""
        if self.stage == "stale":  # ...then its answers, saying "offline", arrive late
            self.stage = "prompt"
            return b"\x1a\x16\x1a\x72"
        return super().transmit()


def test_a_late_answer_is_not_taken_for_the_next_request() -> None:
    with connect(LateAnswerPeer()) as driver:
        fault = driver.status()
        assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.NO_ANSWER
        assert driver.status() == ev.PrinterStatus()


def test_garbage_is_a_protocol_fault() -> None:
    with connect(SilentPeer(reply=b"\x12\x80\x12\x12")) as driver:
        fault = driver.status()
        assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.PROTOCOL


def test_auto_status_back_is_polled_into_conditions(driver: PrinterDriver, printer: PrinterEmulator) -> None:
    assert driver.poll() == []
    driver.enable_auto_status()
    assert driver.poll() == [ev.PrinterReady()]
    printer.open_cover()
    assert driver.poll() == [ev.CoverOpen(), ev.PrinterOffline(cause="cover open")]
    printer.close_cover()
    printer.set_paper("near-end")
    assert driver.poll() == [ev.PrinterReady(), ev.PaperNearEnd()]
    assert driver.poll() == []


def test_asb_arriving_during_a_status_request_is_kept_for_poll(
    driver: PrinterDriver, printer: PrinterEmulator
) -> None:
    driver.enable_auto_status()
    printer.set_paper("out")  # pushes ASB, unread
    assert driver.status() == ev.PrinterStatus(online=False, paper_out=True)
    assert driver.poll() == [ev.PrinterReady(), ev.PaperOut(), ev.PrinterOffline(cause="paper out")]


def test_xoff_pauses_the_job_until_xon() -> None:
    peer = PausingPeer(resume=True)
    long_job = [ev.PrintText(data=b"x" * 40 + b"\n")] * 20 + [ev.Cut()]
    with connect(peer) as driver:
        assert driver.print_job(long_job) == []
    assert sum(peer.chunks) == 41 * 20 + 3
    assert max(peer.chunks) <= min(CHUNK, PROFILE["serial"]["xoff_free"] // 2)
    assert len(peer.pages) == 1


class CountingPrinter(PrinterEmulator):
    """Counts the job's writes (status requests aside)."""

    def __init__(self) -> None:
        super().__init__(PROFILE)
        self.writes: list[int] = []

    def receive(self, data: bytes) -> None:
        if not data.startswith(b"\x10\x04"):
            self.writes.append(len(data))
        super().receive(data)


LONG_JOB = [ev.PrintText(data=b"y" * 40 + b"\n")] * 20 + [ev.Cut()]


def test_an_in_process_printer_nothing_can_stop_takes_the_job_in_one_write() -> None:
    peer = CountingPrinter()
    with connect(peer) as driver:
        assert driver.print_job(LONG_JOB) == []
    assert peer.writes == [41 * 20 + 3]
    assert peer.pages[0].text.count("y" * 40) == 20


def test_a_fault_waiting_for_bytes_keeps_the_job_in_chunks() -> None:
    peer = CountingPrinter()
    peer.set_fault("paper-out", after_bytes=500)
    with connect(peer) as driver:
        conditions = driver.print_job(LONG_JOB)
    assert ev.PaperOut() in conditions
    assert len(peer.writes) > 1 and max(peer.writes) <= driver.chunk


def test_xoff_that_never_lifts_is_a_fault() -> None:
    peer = PausingPeer(resume=False)
    with connect(peer) as driver:
        (fault,) = driver.print_job([ev.PrintText(data=b"x" * 40 + b"\n")] * 20)
        assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.NO_ANSWER
    assert peer.chunks == [min(CHUNK, PROFILE["serial"]["xoff_free"] // 2)]


def test_a_bad_job_raises_before_anything_is_sent(driver: PrinterDriver, printer: PrinterEmulator) -> None:
    with pytest.raises(LocalProtocolError):
        driver.print_job([ev.PrintText(data=b"ok\n"), ev.SetUnderline(dots=7)])
    with pytest.raises(LocalProtocolError):
        driver.print_job([ev.RequestStatus(kind=1)])
    assert printer.current_page().text == ""
    assert driver.status() == ev.PrinterStatus()


def test_a_stopped_printer_holding_xoff_is_asked_why() -> None:
    """An Epson keeps what it cannot print; once its buffer is full it holds XOFF, and the driver
    learns the reason in real time instead of reporting a silent printer."""
    printer = PrinterEmulator(PROFILE)  # quirks.paper_out_data = "hold"
    printer.set_fault("paper-out", after_bytes=300)
    long_job = [ev.PrintText(data=b"x" * 40 + b"\n")] * 200 + [ev.Cut()]
    with connect(printer) as driver:
        assert driver.print_job(long_job) == [ev.PaperOut(), ev.PrinterOffline(cause="paper out")]
        assert driver.last_job_bytes < 41 * 200
    assert printer.paused and printer.backlog >= printer.capacity - 128


def test_a_job_progresses_through_poll(driver: PrinterDriver, printer: PrinterEmulator) -> None:
    assert driver.start_job(JOB) is None
    (end,) = driver.poll()  # emu:// answers at once: the whole job went out in start_job
    assert end == ev.PrintJobDone(bytes_sent=driver.last_job_bytes, conditions=())
    assert not driver.busy and driver.wake_in() is None and len(printer.pages) == 1


def test_a_job_held_by_xoff_waits_in_poll_without_blocking() -> None:
    peer = PausingPeer(resume=True)
    long_job = [ev.PrintText(data=b"x" * 40 + b"\n")] * 20 + [ev.Cut()]
    with connect(peer, timeout=5) as driver:
        peer.state = "paused"  # XOFF comes with the status answers, XON on the read after
        assert driver.start_job(long_job) is None
        events = driver.poll()
        while not events:
            events = driver.poll()
        assert events == [ev.PrintJobDone(bytes_sent=41 * 20 + 3, conditions=())]


def test_start_job_refuses_a_bad_job_with_nothing_sent(driver: PrinterDriver, printer: PrinterEmulator) -> None:
    with pytest.raises(LocalProtocolError):
        driver.start_job([ev.PrintText(data=b"ok\n"), ev.SetUnderline(dots=7)])
    assert not driver.busy and printer.current_page().text == ""
