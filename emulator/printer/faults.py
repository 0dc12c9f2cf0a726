"""The emulated printer's sensors and faults, and the status they make (PROTOCOLS.md §1.2).

Every fault can be set before the printer starts (`PrinterEmulator(profile, faults=[...])`) and
changed while it runs (directly, or as text through emulator/control.py). A change of anything
the host enabled with GS a pushes an ASB at once. Faults:

- paper near end / paper out: now, after N more bytes received, or after N more lines printed;
- cover open; cutter error (now, or at the next cut; DLE ENQ 1|2 recovers it);
- head overheat: an auto-recoverable error that clears itself after `status.overheat_recovery_s`
  of emulated time. The emulator has no clock of its own: time passes through `advance(seconds)`,
  which a Link calls with real elapsed time (over emu:// a test calls it);
- offline (switched offline by its owner); disconnect: the printer neither hears nor answers —
  over a pty or a socket the wire goes silent; `disconnect hard` (a USB cable pulled): the port
  goes away — emulator/link.py hangs up the pty or socket, and a new one serves after `clear`.
"""

from __future__ import annotations

from typing import Any, Literal

from drivers.printer import events as ev
from drivers.record import field_names
from emulator.printer.paper import Paper

__all__ = ["FAULTS", "Faults", "PaperState"]

PaperState = Literal["ok", "near-end", "out"]
_PAPER_STATES: tuple[PaperState, ...] = ("ok", "near-end", "out")
FAULTS = ("near-end", "paper-out", "cover-open", "cutter", "overheat", "offline", "disconnect")
# GS a mask bit -> the status fields whose change it reports.
_ASB_GROUPS: dict[int, tuple[str, ...]] = {
    0x01: ("drawer_high",),
    0x02: ("online", "cover_open", "feed_pressed"),
    0x04: ("cutter_error", "unrecoverable_error", "auto_recoverable_error"),
    0x08: ("paper_near_end", "paper_out"),
}


class Faults:
    """Mixin of PrinterEmulator: what its sensors know. Printing state lives in the emulator."""

    paper_stage: Paper
    bytes_received: int
    _asb_mask: int
    _held: list[ev.PrinterCommand] | None

    def __init__(self, *, recovery_s: float) -> None:
        self.paper: PaperState = "ok"
        self.cover_open = False
        self.cutter_error = False
        self.overheated = False
        self.offline = False  # forced offline (e.g. a printer switched to offline by its owner)
        self.disconnected = False
        self.hard_disconnect = False  # the port itself is gone (emulator/link.py hangs up)
        self.drawer_high = False
        self.recovery_s = recovery_s
        self._cool_left = 0.0
        self._out_after_bytes: int | None = None  # absolute count of bytes received
        self._cutter_fails = False  # the next cut fails
        self._status = ev.PrinterStatus()
        self._printable = True

    # -- status --------------------------------------------------------------------------------------
    def sensors(self) -> ev.PrinterStatus:
        """What the status bytes (DLE EOT, ASB) report now."""
        return self._status

    def _compute(self) -> ev.PrinterStatus:
        out = self.paper == "out"
        return ev.PrinterStatus(
            online=not (self.offline or self.cover_open or out or self.cutter_error or self.overheated),
            cover_open=self.cover_open,
            paper_near_end=self.paper == "near-end",
            paper_out=out,
            cutter_error=self.cutter_error,
            auto_recoverable_error=self.overheated,
            drawer_high=self.drawer_high,
        )

    def _change(self, **attrs: Any) -> None:
        before = self._status
        for name, value in attrs.items():
            setattr(self, name, value)
        after = self._status = self._compute()
        self._printable = after.printable
        changed = {n for n in field_names(after) if getattr(before, n) != getattr(after, n)}
        if any(bit & self._asb_mask and changed.intersection(g) for bit, g in _ASB_GROUPS.items()):
            self._push_asb()
        if self._printable and self._held is not None:
            self._resume()

    def _push_asb(self) -> None:
        raise NotImplementedError

    def _resume(self) -> None:
        raise NotImplementedError

    # -- sensors -------------------------------------------------------------------------------------
    def set_paper(self, state: PaperState) -> None:
        if state not in _PAPER_STATES:
            raise ValueError(f"paper state must be one of {_PAPER_STATES}, not {state!r}")
        self._change(paper=state)

    def open_cover(self) -> None:
        self._change(cover_open=True)

    def close_cover(self) -> None:
        self._change(cover_open=False)

    def set_cutter_error(self, on: bool = True) -> None:
        self._change(cutter_error=on)

    def set_offline(self, on: bool = True) -> None:
        self._change(offline=on)

    def set_drawer(self, high: bool) -> None:
        self._change(drawer_high=high)

    def set_overheat(self, on: bool = True) -> None:
        """A hot head: stops printing, recovers by itself after `recovery_s` of advance()."""
        self._cool_left = self.recovery_s if on else 0.0
        self._change(overheated=on)

    def disconnect(self, on: bool = True, *, hard: bool = False) -> None:
        """A pulled cable: nothing arrives, nothing is answered. `disconnect(False)` plugs it back.
        `hard`: the port vanishes too (a served link hangs up, see emulator/link.py)."""
        self.disconnected = on
        self.hard_disconnect = on and hard

    def _cool(self, seconds: float) -> None:
        if self.overheated:
            self._cool_left -= seconds
            if self._cool_left <= 0:
                self.set_overheat(False)

    # -- faults by name ------------------------------------------------------------------------------
    def set_fault(self, name: str, *, after_bytes: int | None = None, after_lines: int | None = None,
                  next_cut: bool = False, hard: bool = False) -> None:
        """One of FAULTS. Paper out may wait for N more bytes or lines; a cutter error for the next cut."""
        if name not in FAULTS:
            raise ValueError(f"unknown printer fault {name!r} (known: {', '.join(FAULTS)})")
        if (after_bytes is not None or after_lines is not None) and name != "paper-out":
            raise ValueError(f"only paper-out waits for bytes or lines, not {name}")
        if hard and name != "disconnect":
            raise ValueError(f"only disconnect can be hard, not {name}")
        if next_cut and name != "cutter":
            raise ValueError(f"only the cutter fails at the next cut, not {name}")
        for count in (after_bytes, after_lines):
            if count is not None and count < 0:
                raise ValueError(f"a fault cannot wait for {count} bytes or lines")
        if name == "paper-out" and after_bytes is not None:
            self._out_after_bytes = self.bytes_received + after_bytes
        elif name == "paper-out" and after_lines is not None:
            self.paper_stage.line_limit = self.paper_stage.lines + after_lines
        elif name == "cutter" and next_cut:
            self._cutter_fails = True
        elif name == "disconnect":
            self.disconnect(hard=hard)
        else:
            actions = {"near-end": lambda: self.set_paper("near-end"), "paper-out": lambda: self.set_paper("out"),
                       "cover-open": self.open_cover, "cutter": self.set_cutter_error, "overheat": self.set_overheat,
                       "offline": self.set_offline, "disconnect": self.disconnect}
            actions[name]()

    def clear_faults(self) -> None:
        """Fresh paper, cover shut, errors gone, online and plugged in; pending faults cancelled."""
        self._out_after_bytes = None
        self.paper_stage.line_limit = None
        self._cutter_fails = False
        self._cool_left = 0.0
        self.disconnected = self.hard_disconnect = False
        self._change(paper="ok", cover_open=False, cutter_error=False, overheated=False, offline=False)

    def describe(self) -> str:
        """Sensors and pending faults: the start of the emulator's status() line (a subclass
        extends it, as tests/plugin_example's ACME printer does)."""
        s = self._status
        link = "disconnected" + ("(hard)" if self.hard_disconnect else "") if self.disconnected else None
        parts = [
            link or ("online" if s.online else "offline"), f"paper={self.paper}",
            f"cover={'open' if self.cover_open else 'closed'}",
        ]
        parts += [name for name, on in (("cutter-error", self.cutter_error), ("overheat", self.overheated),
                                        ("forced-offline", self.offline))
                  if on]
        if self._out_after_bytes is not None:
            parts.append(f"paper-out-in={self._out_after_bytes - self.bytes_received}-bytes")
        if self.paper_stage.line_limit is not None:
            parts.append(f"paper-out-in={self.paper_stage.line_limit - self.paper_stage.lines}-lines")
        if self._cutter_fails:
            parts.append("cutter-fails-at-next-cut")
        return " ".join(parts)
