"""A hard disconnect (`fault disconnect hard`: the USB cable pulled) hangs up the served port: the
driver sees a disconnect, not silence; after `clear` a new port serves (a pty has a new name)."""

from __future__ import annotations

import socket

from drivers.base import DeviceFault, FaultKind
from drivers.printer import events as ev
from drivers.printer.driver import PrinterDriver
from emulator.control import apply
from emulator.link import PtyLink, TcpLink
from emulator.printer.emulator import PrinterEmulator
from firmware_profiles import load_profile

PROFILE = load_profile("printer", "epson-tm-t20iii")


def test_a_hard_disconnect_hangs_up_the_pty_and_clear_serves_a_new_one() -> None:
    emulator = PrinterEmulator(PROFILE)
    with PtyLink(emulator) as link:
        first = link.endpoint
        with PrinterDriver(first, PROFILE, timeout=2) as printer:
            assert printer.status() == ev.PrinterStatus()
            reply = link.control(lambda peer: apply(peer, "fault disconnect hard"))
            assert reply.startswith("ok: disconnect hard; disconnected(hard) paper=ok")
            fault = printer.status()
        assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.DISCONNECTED
        link.control(lambda peer: apply(peer, "clear"))
        with PrinterDriver(link.endpoint, PROFILE, timeout=2) as printer:
            assert printer.status() == ev.PrinterStatus()


def test_a_hard_disconnect_resets_the_tcp_connection() -> None:
    emulator = PrinterEmulator(PROFILE)
    with TcpLink(emulator) as link:
        host, port = link.endpoint.removeprefix("socket://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(b"\x10\x04\x01")
            assert conn.recv(1) == b"\x12"
            link.control(lambda peer: apply(peer, "fault disconnect hard"))
            try:
                data = conn.recv(1)
            except ConnectionResetError:
                data = b""
            assert data == b""  # reset (or closed): never a silent line that still looks plugged in
        link.control(lambda peer: apply(peer, "clear"))
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(b"\x10\x04\x01")
            assert conn.recv(1) == b"\x12"


def test_a_card_readers_hard_disconnect_hangs_up_its_pty_too() -> None:
    """The reader's `fault disconnect hard` used to raise inside the link thread's peer calls
    (ConnectionResetError) while the pty stayed open: the driver saw silence, not a disconnect."""
    from drivers.card_reader.driver import CardReaderDriver
    from drivers.card_reader.events import DeviceInfo
    from emulator.card_reader.emulator import CardReaderEmulator

    reader_profile = load_profile("card_reader", "generic-pinpad")
    emulator = CardReaderEmulator(reader_profile)
    with PtyLink(emulator) as link:
        with CardReaderDriver(link.endpoint, reader_profile, timeout=2) as reader:
            assert isinstance(reader.device_info(), DeviceInfo)
            assert link.control(lambda peer: apply(peer, "fault disconnect hard")).startswith("ok:")
            fault = reader.device_info()
        assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.DISCONNECTED
        link.control(lambda peer: apply(peer, "clear"))
        with CardReaderDriver(link.endpoint, reader_profile, timeout=2) as reader:
            assert isinstance(reader.device_info(), DeviceInfo)
