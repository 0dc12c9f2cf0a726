"""Scanner benchmark: line-rate fidelity of the emulator on virtual time (issue 11).

- Line rate: for each shipped scanner profile (and generic-serial at 9600 / 38400 / 115200 baud) the
  emulator is handed 200 payment codes at once with the line kept full (manual trigger, no decode
  time, no handshake), and virtual time is moved in uneven steps (0.3-1.7 ms) while a host codec
  drains and decodes the line. Bytes sent over the virtual time until the host had the last one,
  against the theoretical rate of the profile's framing (baud / bits per char, 10 for 8N1): 1 +- 5 %.
- Turnaround (no target): the profiles as shipped, with the host triggering each code and answering
  each ACK at once: codes per virtual second, which the protocol (decode time, handshake, the GM65
  ack) rather than the line sets.

Deterministic: no wall clock decides anything (the wall time is reported only as the emulator's speed).
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["bench_scanner", "line_rate", "turnaround"]

_CODES = 200
_STEPS = (0.0003, 0.0011, 0.0017, 0.0007, 0.0013)  # uneven, so no step lines up with a byte time
_LIMIT_S = 3600.0  # virtual; a guard, never reached


def _profile(name: str, **changes: Any) -> dict[str, Any]:
    from firmware_profiles import load_profile

    profile = load_profile("scanner", name)
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        profile[section][key] = value
    return profile


def _codes() -> list[str]:
    return [f"1345678901234{i:05d}" for i in range(_CODES)]


def _run(profile: dict[str, Any], *, all_at_once: bool) -> dict[str, Any]:
    from drivers.events import Role
    from drivers.scanner import events as ev
    from drivers.scanner.codec import ScannerCodec
    from emulator.link import bits_per_char
    from emulator.scanner.emulator import ScannerEmulator

    serial = profile["serial"]
    rate = int(serial["baud"]) / bits_per_char(str(serial["framing"]))
    scanner, host = ScannerEmulator(profile), ScannerCodec(Role.HOST, profile)
    trigger = host.send(ev.Trigger()) if profile["trigger"]["mode"] == "serial" else b""
    scanner.advance(0.0)  # from now on the line runs at its rate
    waiting = _codes()

    def present() -> None:
        scanner.scan(waiting.pop(0))
        if trigger:
            scanner.receive(trigger)

    present()
    while waiting and all_at_once:
        present()
    decoded, sent, last, step = 0, 0, 0.0, 0
    start = time.perf_counter()
    while decoded < _CODES and scanner.now < _LIMIT_S:
        scanner.advance(_STEPS[step % len(_STEPS)])
        step += 1
        out = scanner.transmit()
        if not out:
            continue
        last, sent = scanner.now, sent + len(out)
        host.receive_data(out)
        while (event := host.next_event()) is not None:
            if isinstance(event, ev.Scanned):
                decoded += 1
                if waiting:
                    present()
        owed = host.data_to_send()
        if owed:
            scanner.receive(owed)
    wall = time.perf_counter() - start
    return {"profile": profile["name"], "baud": int(serial["baud"]), "codes": decoded, "bytes": sent,
            "virtual_s": last, "bytes_per_s": sent / last if last else 0.0, "theoretical_bytes_per_s": rate,
            "ratio": (sent / last) / rate if last else 0.0, "codes_per_s": decoded / last if last else 0.0,
            "emulator_virtual_s_per_wall_s": last / wall if wall else 0.0}


def line_rate(name: str, baud: int | None = None) -> dict[str, Any]:
    """The line kept full: what the pacing alone gives."""
    changes: dict[str, Any] = {"trigger__mode": "manual", "timing__decode_s": 0.0, "handshake__enabled": False}
    if baud is not None:
        changes["serial__baud"] = baud
    return _run(_profile(name, **changes), all_at_once=True)


def turnaround(name: str) -> dict[str, Any]:
    """The profile as shipped, one code at a time, the host answering at once."""
    return _run(_profile(name), all_at_once=False)


def bench_scanner(reps: int = 1) -> list[dict[str, Any]]:
    runs = [line_rate("generic-serial", baud) for baud in (9600, 38400, 115200)]
    runs += [line_rate(name) for name in ("honeywell-xenon", "gm65", "zebra-ssi")]
    fidelity = {"name": "scanner_line_rate_fidelity", "runs": runs,
                "ratio_min": min(r["ratio"] for r in runs), "ratio_max": max(r["ratio"] for r in runs),
                "baseline": "theoretical line rate: baud / bits per char (8N1: 10), on virtual time",
                "target_ratio": "1 +- 0.05",
                "within_target": all(abs(r["ratio"] - 1) <= 0.05 and r["codes"] == _CODES for r in runs)}
    turns = [turnaround(name) for name in ("generic-serial", "honeywell-xenon", "gm65", "zebra-ssi")]
    protocol = {"name": "scanner_protocol_turnaround", "runs": turns,
                "baseline": "none: codes per virtual second with decode time and handshakes (informative)",
                "within_target": all(r["codes"] == _CODES for r in turns)}
    return [fidelity, protocol]


if __name__ == "__main__":
    import json
    import sys

    json.dump(bench_scanner(), sys.stdout, indent=2)
    sys.stdout.write("\n")
