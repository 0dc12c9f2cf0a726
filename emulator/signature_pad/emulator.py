"""Electronic signature pad emulator: the device side of drivers/signature_pad, as a transport Peer.

It speaks the real bytes through `SignaturePadCodec(Role.DEVICE, profile)`: Topaz 5-byte pen
packets and, on an LCD model, the command frames (acked) and key reports. `sign(strokes)` puts a
signer's pen on the pad: one coordinate packet every 1 / `pen.sample_hz` seconds, pen down along
each stroke, hovering (proximity, not down) for `emulator.lift_s` between strokes, and the null point
(0FFF,0FFF, no proximity) when the pen leaves. Points are spaced as a pen moving at
`emulator.pen_speed_mm_s`. On power-up (and on an LCD model's Identify) it sends the model/serial
packet. `press(key)` is an LCD key; the Clear key also clears the pad's ink echo.

Time: no clock of its own. `advance(seconds)` moves virtual time: samples fall due and what is sent
leaves at the line rate of `serial.baud` (11 bits/byte for 8O1). Until the first `advance` it is
infinitely fast (emu:// without a clock).

Faults: "noise" (a junk byte between packets, every 5th packet), "drop-bytes" (every 7th packet
loses a byte), "pen-never-lifted" (the pen stays down: pen-up samples are sent down and after the
last stroke the last point repeats for ever), "never-touches" (the pen only hovers: no ink),
"unplugged" (the port is gone, a served link hangs up).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from drivers.errors import RemoteProtocolError
from drivers.events import Role
from drivers.signature_pad import events as ev
from drivers.signature_pad.codec import SignaturePadCodec
from emulator.base import Emulator
from emulator.link import bits_per_char
from emulator.signature_pad.signers import Strokes, fit_to_pad, resample

__all__ = ["FAULTS", "SignaturePadEmulator"]

FAULTS = ("noise", "drop-bytes", "pen-never-lifted", "never-touches", "unplugged")
_NOISE_EVERY, _DROP_EVERY = 5, 7
_MAX_LINE = 8192  # bytes queued on the line: a stuck pen makes no more while the line is this full


class SignaturePadEmulator(Emulator):
    CONTROL = "emulator.signature_pad.control"
    FAULTS = FAULTS
    follows_till_clock = True

    def __init__(self, profile: Mapping[str, Any]) -> None:
        self.profile = profile
        self._codec = SignaturePadCodec(Role.DEVICE, profile)
        pen, lcd = profile["pen"], profile["lcd"]
        self.box = (int(pen["x_min"]), int(pen["y_min"]), int(pen["x_max"]), int(pen["y_max"]))
        self.sample_s = 1.0 / float(pen["sample_hz"])
        self.spacing = float(profile["emulator"]["pen_speed_mm_s"]) * int(pen["dpi"]) / 25.4 * self.sample_s
        self.lift_samples = max(1, round(float(profile["emulator"]["lift_s"]) / self.sample_s))
        self.lcd = bool(lcd["present"])
        self.screen = [""] * int(lcd["lines"]) if self.lcd else []
        self.keys: set[str] = set()
        self.pen_on = True
        self.identity = ev.PadIdentity(model=int(profile["identity"]["model"]),
                                       serial=int(profile["identity"]["serial"]))
        serial = profile["serial"]
        self.byte_time = bits_per_char(str(serial["framing"])) / int(serial["baud"])
        self.now = 0.0
        self.clocked = False
        self._line: deque[list[Any]] = deque()  # [start time, bytes] chunks on their way to the host
        self._free_t = 0.0  # when the line has sent everything queued
        self._queued = 0
        self._samples: deque[ev.PenSample] = deque()  # the signer's pen, one per sample period
        self._next_sample_t = 0.0
        self._stuck: ev.PenSample | None = None  # pen-never-lifted: the point it rests on
        self.faults: set[str] = set()
        self.packets = self.points_sent = self.ink_echo = self.commands = self.errors = self.sent_bytes = 0
        self._put(self._codec.send(self.identity))  # power-up

    # -- Peer ------------------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        self._check_line()
        self._codec.receive_data(data)
        while True:
            try:
                command = self._codec.next_event()
            except RemoteProtocolError:
                self.errors += 1
                self._put(self._codec.data_to_send())  # the NAK
                continue
            self._put(self._codec.data_to_send())  # the ACK
            if command is None:
                return
            if isinstance(command, ev.PadCommand):
                self.commands += 1
                self._on_command(command)

    def transmit(self) -> bytes:
        self._check_line()
        if not self.clocked:
            while self._samples:
                self._emit(self._samples.popleft())
            if self._stuck is not None and self._queued < _MAX_LINE:
                self._emit(self._stuck)
        out = bytearray()
        while self._line:
            chunk = self._line[0]
            due = len(chunk[1]) if not self.clocked else int((self.now - chunk[0]) / self.byte_time + 1e-9)
            if due <= 0:
                break
            out += chunk[1][:due]
            del chunk[1][:due]
            chunk[0] += due * self.byte_time
            if chunk[1]:
                break
            self._line.popleft()
        self._queued -= len(out)
        self.sent_bytes += len(out)
        return bytes(out)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        if not self.clocked:
            self.clocked = True
            self._next_sample_t = self._free_t = self.now
            for chunk in self._line:  # what was queued unclocked leaves from now on, in order
                chunk[0] = self._free_t
                self._free_t += len(chunk[1]) * self.byte_time
        target = self.now + seconds
        while self._next_sample_t <= target + 1e-12 and (self._samples or self._stuck is not None):
            self.now = max(self.now, self._next_sample_t)  # each sample leaves at its own time
            if self._samples:
                self._emit(self._samples.popleft())
            elif self._stuck is not None:
                if self._queued >= _MAX_LINE:
                    self._next_sample_t = target
                    break
                self._emit(self._stuck)
            self._next_sample_t += self.sample_s
        self.now = target
        if not self._samples and self._stuck is None:
            self._next_sample_t = max(self._next_sample_t, self.now)

    @property
    def line_busy(self) -> bool:
        """Pen samples still to come, or bytes still on the line to the host."""
        return bool(self._samples or self._line)

    def status(self) -> str:
        state = "signing" if self._samples else "pen-down" if self._stuck is not None else "idle"
        import json

        return (f"model={self.identity.model} lcd={'yes' if self.lcd else 'no'} pen={state} "
                f"queued={len(self._samples)} points={self.points_sent} packets={self.packets} "
                f"keys={','.join(sorted(self.keys)) or 'none'} commands={self.commands} errors={self.errors} "
                f"faults={','.join(sorted(self.faults)) or 'none'} t={self.now:g}s "
                f"screen={json.dumps(self.screen, ensure_ascii=False)}")

    # -- what a tester does ----------------------------------------------------------------------
    def sign(self, strokes: Strokes) -> int:
        """A signer writes `strokes` (any units: fitted into the active area). Returns the pen-down
        samples it will send."""
        fitted = resample(fit_to_pad(strokes, self.box), max(1.0, self.spacing))
        if not fitted:
            raise ValueError("nothing to sign")
        self._stuck = None
        down = "never-touches" not in self.faults
        count = 0
        last = fitted[0][0]
        for i, stroke in enumerate(fitted):
            if i:
                for _ in range(self.lift_samples):  # hovering to the next stroke
                    self._samples.append(ev.PenSample(x=last[0], y=last[1], down=False))
            for x, y in stroke:
                self._samples.append(ev.PenSample(x=x, y=y, down=down))
                count += down
                last = (x, y)
        self._samples.append(ev.PenSample(x=last[0], y=last[1], down=False))
        self._samples.append(ev.PenSample(x=0x0FFF, y=0x0FFF, down=False, proximity=False))
        if "pen-never-lifted" in self.faults:
            self._samples = deque(s for s in self._samples if s.proximity)
            self._samples = deque(ev.PenSample(x=s.x, y=s.y, down=down) for s in self._samples)
            self._stuck = ev.PenSample(x=last[0], y=last[1], down=down)
        return count

    def press(self, key: str) -> None:
        if not self.lcd:
            raise ValueError("this pad has no LCD keys")
        if key not in ("ok", "clear", "cancel"):
            raise ValueError("keys are ok, clear, cancel")
        if key not in self.keys:
            raise ValueError(f"the {key} key is not enabled by the host")
        if key == "clear":
            self.ink_echo = 0
        self._put(self._codec.send(ev.PadKey(key=key)))

    # -- faults ----------------------------------------------------------------------------------
    def set_fault(self, name: str, /) -> None:
        if name not in FAULTS:
            raise ValueError(f"unknown signature pad fault {name!r} (known: {', '.join(FAULTS)})")
        self.faults.add(name)
        if name == "unplugged":
            self._line.clear()
            self._queued = 0
            self._samples.clear()
            self._stuck = None
            self._codec = SignaturePadCodec(Role.DEVICE, self.profile)

    def clear_faults(self) -> None:
        self.faults.clear()
        self._stuck = None

    @property
    def hard_disconnect(self) -> bool:
        return "unplugged" in self.faults

    # -- internals -------------------------------------------------------------------------------
    def _check_line(self) -> None:
        if "unplugged" in self.faults:
            raise ConnectionResetError("signature pad unplugged (emulated fault)")

    def _put(self, data: bytes) -> None:
        """Bytes go on the line after what is there (or now, when it is idle)."""
        if not data:
            return
        start = max(self.now, self._free_t)
        self._line.append([start, bytearray(data)])
        self._free_t = start + len(data) * self.byte_time
        self._queued += len(data)

    def _emit(self, sample: ev.PenSample) -> None:
        if not self.pen_on:
            return
        wire = self._codec.send(sample)
        self.packets += 1
        if sample.down:
            self.points_sent += 1
            self.ink_echo += 1
        if "drop-bytes" in self.faults and self.packets % _DROP_EVERY == 0:
            wire = wire[:2] + wire[3:]
        if "noise" in self.faults and self.packets % _NOISE_EVERY == 0:
            wire = b"\x5a" + wire
        self._put(wire)

    def _on_command(self, command: ev.PadCommand) -> None:
        if isinstance(command, ev.ShowText):
            self.screen[command.line - 1] = command.text
        elif isinstance(command, ev.ClearScreen):
            self.screen = [""] * len(self.screen)
        elif isinstance(command, ev.ClearInk):
            self.ink_echo = 0
        elif isinstance(command, ev.EnableKeys):
            self.keys = set(command.keys)
        elif isinstance(command, ev.EnablePen):
            self.pen_on = command.on
        elif isinstance(command, ev.Identify):
            self._put(self._codec.send(self.identity))
