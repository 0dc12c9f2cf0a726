"""A till with a signature pad slot (given by a profile override: no shipped terminal profile has
one yet) builds its emulator and opens its driver through the registry alone, and the pad signs."""

from __future__ import annotations

from pathlib import Path

from drivers.signature_pad import events as ev
from drivers.signature_pad.driver import SignaturePadDriver
from drivers.signature_pad.strokes import ink_points
from emulator.control import apply
from emulator.signature_pad.emulator import SignaturePadEmulator
from sim.wiring import build_emulated_till

SLOT = {"driver": "", "profile": "topaz-lcd4x5", "url": "emu://signature-pad"}


def test_a_signature_pad_slot_is_built_from_the_registry(tmp_path: Path) -> None:
    with build_emulated_till(var_dir=tmp_path, overrides={"devices.signature_pad": SLOT},
                             host_transport="emu") as till:
        pad = till.devices["signature_pad"]
        peer = till.emulators.devices["signature_pad"]
        assert isinstance(pad, SignaturePadDriver) and isinstance(peer, SignaturePadEmulator)
        assert till.profiles["signature_pad"]["name"] == "topaz-lcd4x5"
        assert pad.begin_capture(["¥88.00", "535F8226"]) is None
        assert apply(peer, "sign 张三").startswith("ok: signing a name")
        peer.advance(30.0)  # it follows the till's clock: a name takes ~5 s of pen time
        events = pad.poll()
        assert ink_points(pad.take_signature()) > 0
        assert any(isinstance(e, ev.InkAdded) for e in events)
        assert '"¥88.00", "535F8226"' in apply(peer, "status")
