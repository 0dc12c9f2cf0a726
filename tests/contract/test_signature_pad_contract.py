"""The signature pad contract, on every transport: emu://, a pty, socket://, a `till emulate
signature-pad` process and (with --hil signature-pad=URL[,profile=NAME]) a real pad.

The peer is touched only through the wire (SignaturePadDriver) and control lines (`sign`, `ok`,
`clear`, `cancel`, `fault`, `status`); on real hardware a control line skips the test, where a person
would sign. Both profiles run: the SigLite (pen stream only) and the LCD 4x5 (text lines, keys)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from drivers.base import DeviceEvent, DeviceFault, FaultKind
from drivers.signature_pad import events as ev
from drivers.signature_pad.driver import SignaturePadDriver
from drivers.signature_pad.strokes import ink_points, ink_size
from tests.contract.conftest import Control, Rig, Serve, collect

FAMILY = "signature_pad"
PROFILES = ["topaz-siglite", "topaz-lcd4x5"]
LINES = ["金额 ¥12.34", "特征码 535F8226", "请签名 Please sign"]


def open_driver(rig: Rig) -> SignaturePadDriver:
    return SignaturePadDriver(rig.url, rig.profile, timeout=5)


def screen_of(control: Control) -> list[str]:
    reply = control.send("status")
    screen: list[str] = json.loads(reply.partition("screen=")[2])
    return screen





def faults(events: list[DeviceEvent]) -> list[DeviceFault]:
    return [e for e in events if isinstance(e, DeviceFault)]


def ink(events: list[DeviceEvent]) -> int:
    return sum(e.points for e in events if isinstance(e, ev.InkAdded))


@pytest.fixture
def two_strokes(tmp_path: Path) -> Path:
    """A tick and a dash: two strokes (a short file, so the paced transports take about a second)."""
    path = tmp_path / "tick.json"
    path.write_text(json.dumps([[[0, 40], [20, 60], [60, 0]], [[70, 30], [100, 30]]]))
    return path


def sign(rig: Rig, driver: SignaturePadDriver, what: str) -> tuple[int, list[DeviceEvent]]:
    """Sign, and collect until the driver holds every pen-down point the emulator says it sends."""
    reply = rig.control.send(f"sign {what}")
    match = re.search(r"(\d+) pen-down point", reply)
    assert match, reply
    expected = int(match.group(1))
    events = collect(driver, lambda seen: ink_points(driver.take_signature()) >= expected)
    return expected, events


@pytest.mark.parametrize("profile_name", PROFILES)
def test_a_signature_is_captured_in_strokes(contract: Serve, profile_name: str, two_strokes: Path) -> None:
    rig = contract(profile_name)
    with open_driver(rig) as pad:
        assert pad.begin_capture(LINES) is None
        expected, events = sign(rig, pad, str(two_strokes))
        signature = pad.take_signature()
    assert ink(events) == expected == ink_points(signature) and not faults(events)
    assert len(signature.strokes) == 2  # split where the pen was lifted
    pen = rig.profile["pen"]
    assert (signature.width, signature.height, signature.dpi) == (
        pen["x_max"] - pen["x_min"] + 1, pen["y_max"] - pen["y_min"] + 1, pen["dpi"])
    width, height = ink_size(signature)
    assert max(width / signature.width, height / signature.height) > 0.5  # fitted into the active area
    assert all(0 <= x < signature.width and 0 <= y < signature.height for s in signature.strokes for x, y in s)


def test_the_lcd_shows_the_lines_and_is_blanked_after(contract: Serve) -> None:
    rig = contract("topaz-lcd4x5")
    with open_driver(rig) as pad:
        assert pad.begin_capture(LINES) is None
        collect(pad, lambda seen: not pad.busy)
        assert not pad.busy  # every command acked
        assert screen_of(rig.control) == [*LINES, ""]
        assert pad.end_capture() is None
        collect(pad, lambda seen: not pad.busy)
    assert screen_of(rig.control) == ["", "", "", ""]


def test_the_lcd_keys_are_reported(contract: Serve) -> None:
    rig = contract("topaz-lcd4x5")
    with open_driver(rig) as pad:
        assert pad.begin_capture(LINES) is None
        collect(pad, lambda seen: not pad.busy)
        keys: list[str] = []
        for key in ("clear", "ok", "cancel"):
            rig.control.send(key)
            keys += [e.key for e in collect(pad, lambda seen: any(isinstance(e, ev.PadKey) for e in seen))
                     if isinstance(e, ev.PadKey)]
    assert keys == ["clear", "ok", "cancel"]


def test_the_model_and_serial_packet(contract: Serve) -> None:
    rig = contract("topaz-lcd4x5")
    rig.control.send("status")
    with open_driver(rig) as pad:
        assert pad.identify() is None
        events = collect(pad, lambda seen: any(isinstance(e, ev.PadIdentity) for e in seen))
    identity = rig.profile["identity"]
    assert ev.PadIdentity(model=identity["model"], serial=identity["serial"]) in events


def test_clear_ink_forgets_the_strokes(contract: Serve, two_strokes: Path) -> None:
    rig = contract("topaz-siglite")
    with open_driver(rig) as pad:
        assert pad.begin_capture(LINES) is None
        sign(rig, pad, str(two_strokes))
        assert pad.clear_ink() is None
        assert ink_points(pad.take_signature()) == 0


def test_noise_is_a_fault_and_the_ink_still_comes(contract: Serve, two_strokes: Path) -> None:
    rig = contract("topaz-siglite")
    rig.control.send("fault noise")
    with open_driver(rig) as pad:
        assert pad.begin_capture(LINES) is None
        expected, events = sign(rig, pad, str(two_strokes))
    assert faults(events) and all(f.kind is FaultKind.PROTOCOL and not f.blocking for f in faults(events))
    assert ink(events) == expected


def test_a_pen_that_never_touches_leaves_no_ink(contract: Serve, two_strokes: Path) -> None:
    rig = contract("topaz-siglite")
    rig.control.send("fault never-touches")
    with open_driver(rig) as pad:
        assert pad.begin_capture(LINES) is None
        reply = rig.control.send(f"sign {two_strokes}")
        assert "0 pen-down" in reply
        events = collect(pad, lambda seen: False, timeout=0.5)  # hover packets only (a bound, not a timing check)
    assert ink(events) == 0 and ink_points(pad.take_signature()) == 0


def test_an_unplugged_pad_is_a_disconnect(contract: Serve) -> None:
    rig = contract()
    with open_driver(rig) as pad:
        rig.control.send("fault unplugged")
        events = collect(pad, lambda seen: bool(faults(seen)))
    assert [f.kind for f in faults(events)] == [FaultKind.DISCONNECTED]


def test_a_pen_never_lifted_keeps_adding_ink(contract: Serve, two_strokes: Path) -> None:
    rig = contract("topaz-siglite")
    rig.control.send("fault pen-never-lifted")
    with open_driver(rig) as pad:
        assert pad.begin_capture(LINES) is None
        expected, _ = sign(rig, pad, str(two_strokes))
        # the pen rests on its last point: ink keeps coming, so the checkout's pen-away never falls due
        collect(pad, lambda seen: ink_points(pad.take_signature()) >= expected + 10)
        signature = pad.take_signature()
        rig.control.send("fault clear")
    assert ink_points(signature) >= expected + 10 and len(signature.strokes) == 1
