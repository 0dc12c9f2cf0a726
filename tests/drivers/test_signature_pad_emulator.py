"""The signature pad emulator and driver on virtual time (emu://, a fake clock for the driver): a
name written from the installed fonts becomes a plausible Signature, JSON and SVG signers, the
pacing at the sample rate and the line rate, every fault, command resends and their NO_ANSWER
fault, and the control vocabulary's replies. No sleeps: time moves only when a test says so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.base import DeviceFault, FaultKind
from drivers.signature_pad import events as ev
from drivers.signature_pad.driver import SignaturePadDriver
from drivers.signature_pad.strokes import decode_strokes, encode_strokes, ink_points, ink_size
from drivers.transport import attach_peer, detach_peer
from emulator.control import apply
from emulator.signature_pad import signers
from emulator.signature_pad.emulator import SignaturePadEmulator
from firmware_profiles import load_profile

LCD = load_profile("signature_pad", "topaz-lcd4x5")
SIGLITE = load_profile("signature_pad", "topaz-siglite")
_HAS_FONT = signers._glyph_strokes("张三 J. SMITH") is not None


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Swallow:
    """A peer that takes everything and says nothing (a pad with its TX wire cut)."""

    def receive(self, data: bytes) -> None:
        pass

    def transmit(self) -> bytes:
        return b""

    def close(self) -> None:
        pass


@pytest.fixture
def rig(request: pytest.FixtureRequest) -> Iterator[tuple[SignaturePadEmulator, SignaturePadDriver]]:
    profile: dict[str, Any] = getattr(request, "param", LCD)
    peer = SignaturePadEmulator(profile)
    url = attach_peer("signature-pad", peer)
    driver = SignaturePadDriver(url, profile)
    driver.open()
    yield peer, driver
    driver.close()
    detach_peer(url)


def run(peer: SignaturePadEmulator, driver: SignaturePadDriver, seconds: float, step: float = 0.05) -> list[Any]:
    events: list[Any] = []
    for _ in range(round(seconds / step)):
        peer.advance(step)
        events += driver.poll()
    return events


@pytest.mark.parametrize("name", ["张三", "J. SMITH"])
def test_a_name_signed_is_a_plausible_signature(rig: tuple[SignaturePadEmulator, SignaturePadDriver],
                                                name: str) -> None:
    peer, pad = rig
    assert pad.begin_capture(["金额 ¥8.00"]) is None
    reply = apply(peer, f"sign {name}")
    assert reply.startswith("ok: signing a name") and name not in reply
    events = pad.poll()
    signature = pad.take_signature()
    points = ink_points(signature)
    assert sum(e.points for e in events if isinstance(e, ev.InkAdded)) == points
    assert [type(e) for e in events].count(ev.InkAdded) == 1  # at most one per poll
    assert points >= LCD["capture"]["min_ink_points"] and len(signature.strokes) >= 2
    width, height = ink_size(signature)
    assert width >= LCD["capture"]["min_bbox"][0] and height >= LCD["capture"]["min_bbox"][1]
    assert decode_strokes(encode_strokes(signature)) == signature


@pytest.mark.skipif(not _HAS_FONT, reason="no installed font writes 张三 (scripts/install-fonts.sh)")
def test_names_come_from_the_font_and_the_jitter_is_seeded() -> None:
    zhang = signers.strokes_from_name("张三")
    assert len(zhang) >= 4  # 张 and 三 have several contours each; a scribble is one stroke
    assert signers.strokes_from_name("张三", seed=1) == signers.strokes_from_name("张三", seed=1)
    assert signers.strokes_from_name("张三", seed=1) != signers.strokes_from_name("张三", seed=2)


def test_a_name_no_font_writes_is_still_signed() -> None:
    assert signers.strokes_from_name("\U0001f58a\U0001f58a")  # no font has it: a scribble, not an error
    with pytest.raises(ValueError):
        signers.strokes_from_name("   ")


def test_svg_and_json_signers(tmp_path: Path) -> None:
    svg = tmp_path / "sig.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"><path d="M 0 0 L 10 10 Q 20 0 30 10 '
                   'M 40 0 c 5 5 10 5 15 0 z"/></svg>')
    strokes = signers.load_signer_file(svg)
    assert len(strokes) == 2 and strokes[0][0] == (0.0, 0.0) and strokes[1][-1] == (40.0, 0.0)
    path = tmp_path / "sig.json"
    path.write_text(json.dumps([[[0, 0], [1, 1]], [[2, 2.5]]]))
    assert signers.load_signer_file(path) == [[(0.0, 0.0), (1.0, 1.0)], [(2.0, 2.5)]]
    for bad in ("[", "{}", "[[]]", "[[[1]]]", '[[["a", 1]]]'):
        with pytest.raises(ValueError):
            signers.strokes_from_json(bad)
    for bad_svg in ("<svg", "<svg/>", '<svg><path d="M 0 0 A 1 1 0 0 0 5 5"/></svg>', '<svg><path d="L"/></svg>'):
        with pytest.raises(ValueError):
            signers.strokes_from_svg(bad_svg)


def test_a_file_that_does_not_parse_is_a_clear_error(rig: tuple[SignaturePadEmulator, SignaturePadDriver],
                                                     tmp_path: Path) -> None:
    peer, _ = rig
    bad = tmp_path / "bad.json"
    bad.write_text("[[[1, 2], oops]]")
    assert apply(peer, f"sign {bad}").startswith("error: the signature file is not JSON")
    assert apply(peer, f"sign {tmp_path / 'missing.svg'}").startswith("error: cannot read the signature file")


def test_samples_come_at_the_sample_rate_on_virtual_time(rig: tuple[SignaturePadEmulator, SignaturePadDriver]) -> None:
    peer, pad = rig
    peer.advance(0.0)  # from now on the pad is clocked
    pad.begin_capture([])
    pad.poll()
    apply(peer, "sign J. SMITH")
    run(peer, pad, 1.0)
    # 120 samples a second on the LCD 4x5; the first falls at t=0
    assert 115 <= peer.packets <= 125
    events = run(peer, pad, 60.0, step=1.0)
    assert not peer._samples and ink_points(pad.take_signature()) == peer.points_sent
    assert not any(isinstance(e, DeviceFault) for e in events)


def test_the_line_rate_bounds_a_fast_pad() -> None:
    profile = {**SIGLITE, "pen": {**SIGLITE["pen"], "sample_hz": 10_000.0}}
    peer = SignaturePadEmulator(profile)
    peer.transmit()  # the power-up packet
    peer.advance(0.0)
    peer.sign([[(0, 0), (4000, 0)], [(0, 100), (4000, 100)]])
    peer.advance(1.0)
    sent = len(peer.transmit())
    assert abs(sent - 19200 / 11) <= 2  # 8O1: 11 bits a byte


@pytest.mark.parametrize("rig", [SIGLITE], indirect=True)
def test_pen_never_lifted_keeps_the_ink_coming(rig: tuple[SignaturePadEmulator, SignaturePadDriver]) -> None:
    peer, pad = rig
    pad.begin_capture([])
    apply(peer, "fault pen-never-lifted")
    apply(peer, "sign J. SMITH")
    pad.poll()
    first = pad.take_signature()
    assert len(first.strokes) == 1  # the pen was never lifted: one long stroke
    for _ in range(3):
        assert any(isinstance(e, ev.InkAdded) for e in pad.poll())  # the checkout's pen-away never comes
    apply(peer, "fault clear")
    pad.poll()
    assert not any(isinstance(e, ev.InkAdded) for e in pad.poll())


@pytest.mark.parametrize("rig", [SIGLITE], indirect=True)
def test_dropped_bytes_lose_packets_not_the_stream(rig: tuple[SignaturePadEmulator, SignaturePadDriver]) -> None:
    peer, pad = rig
    pad.begin_capture([])
    apply(peer, "fault drop-bytes")
    apply(peer, "sign J. SMITH")
    events = pad.poll()
    lost = [e for e in events if isinstance(e, DeviceFault)]
    assert lost and all(f.kind is FaultKind.PROTOCOL and not f.blocking for f in lost)
    got = ink_points(pad.take_signature())
    assert peer.points_sent - len(lost) <= got < peer.points_sent


def test_ink_outside_a_capture_is_not_kept(rig: tuple[SignaturePadEmulator, SignaturePadDriver]) -> None:
    peer, pad = rig
    apply(peer, "sign J. SMITH")
    assert not any(isinstance(e, ev.InkAdded) for e in pad.poll())
    assert ink_points(pad.take_signature()) == 0


def test_out_of_range_and_null_points_are_dropped() -> None:
    from drivers.events import Role
    from drivers.signature_pad.codec import SignaturePadCodec

    class Replay(Swallow):
        def __init__(self, wire: bytes) -> None:
            self.wire = wire

        def transmit(self) -> bytes:
            out, self.wire = self.wire, b""
            return out

    device = SignaturePadCodec(Role.DEVICE, SIGLITE)
    samples = [ev.PenSample(x=600, y=400), ev.PenSample(x=100, y=400), ev.PenSample(x=610, y=410),
               ev.PenSample(x=0xFFF, y=0xFFF, down=False, proximity=False), ev.PenSample(x=700, y=500),
               ev.PenSample(x=700, y=500, down=False), ev.PenSample(x=800, y=600)]
    url = attach_peer("signature-pad", Replay(b"".join(device.send(s) for s in samples)))
    try:
        with SignaturePadDriver(url, SIGLITE) as pad:
            pad.begin_capture([])
            assert pad.poll() == [ev.InkAdded(points=4)]
            assert pad.take_signature().strokes == (((100, 50), (110, 60)), ((200, 150),), ((300, 250),))
    finally:
        detach_peer(url)


def test_an_unacked_command_is_resent_then_a_fault() -> None:
    clock = FakeTime()
    url = attach_peer("signature-pad", Swallow())
    try:
        with SignaturePadDriver(url, LCD, clock=clock) as pad:
            assert pad.identify() is None and pad.busy
            faults: list[Any] = []
            for _ in range(LCD["command"]["max_attempts"]):
                clock.now += LCD["command"]["timeout_s"]
                faults += [e for e in pad.poll() if isinstance(e, DeviceFault)]
            assert [f.kind for f in faults] == [FaultKind.NO_ANSWER] and not pad.busy
    finally:
        detach_peer(url)


def test_lcd_text_is_cut_to_the_columns(rig: tuple[SignaturePadEmulator, SignaturePadDriver]) -> None:
    peer, pad = rig
    assert pad.begin_capture(["请在此处签名确认本次交易金额无误谢谢合作", "a\nb", "3", "4", "five is dropped"]) is None
    pad.poll()
    screen = json.loads(apply(peer, "status").partition("screen=")[2])
    assert len(screen[0].encode("gb18030")) <= LCD["lcd"]["columns"] and screen[0].startswith("请在此处签名")
    assert screen[1:] == ["ab", "3", "4"] and not pad.busy


def test_control_vocabulary_replies(rig: tuple[SignaturePadEmulator, SignaturePadDriver]) -> None:
    peer, _ = rig
    assert apply(peer, "ok").startswith("error: the ok key is not enabled")
    assert apply(peer, "fault bogus").startswith("error: usage: fault")
    assert apply(peer, "fault noise") == "ok: noise until fault clear"
    assert "faults=noise" in apply(peer, "status")
    assert apply(peer, "fault clear") == "ok: faults cleared"
    assert apply(peer, "sign").startswith("error: usage: sign")
    assert apply(peer, "help").startswith("ok: commands: sign, ok, clear, cancel")
    siglite = SignaturePadEmulator(SIGLITE)
    assert apply(siglite, "cancel") == "error: this pad has no LCD keys"


def test_a_flooding_pad_is_one_fault_and_its_extra_points_are_dropped() -> None:
    profile = {**SIGLITE, "capture": {**SIGLITE["capture"], "max_points": 100}}
    peer = SignaturePadEmulator(profile)
    url = attach_peer("signature-pad", peer)
    try:
        with SignaturePadDriver(url, profile) as pad:
            pad.begin_capture([])
            peer.sign(signers.strokes_from_name("J. SMITH"))
            events = pad.poll() + pad.poll()
            flood = [e for e in events if isinstance(e, DeviceFault)]
            assert [(f.kind, f.blocking) for f in flood] == [(FaultKind.DEVICE, False)]
            assert ink_points(pad.take_signature()) == 100
            pad.clear_ink()  # a retry starts afresh
            peer.sign([[(0, 0), (10, 10)]])
            pad.poll()
            assert 0 < ink_points(pad.take_signature()) < 100
    finally:
        detach_peer(url)
