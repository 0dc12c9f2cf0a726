"""Signature pad benchmark (issue 12): pen-packet throughput on virtual time, and stored size.

- Throughput: for both shipped profiles, a signer writes J. SMITH and virtual time moves in uneven
  steps (0.3-1.7 ms) while a host codec decodes the line. As shipped the pad is bound by its sample
  rate (`pen.sample_hz`, ~110-120 points/s): packets per virtual second against it. With the sample
  rate raised past the line the pad is bound by the line: bytes per virtual second against
  baud / 11 (8O1). Both 1 +- 5 %.
- Size: a typical name (张三, J. SMITH) signed on each profile and stored with `encode_strokes`:
  bytes, points, strokes, and the raw size of 16-bit X/Y pairs for comparison (no target).

Deterministic: no wall clock decides anything (the wall time is reported only as the emulator's speed).
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["bench_signature_pad", "stored_size", "throughput"]

_STEPS = (0.0003, 0.0011, 0.0017, 0.0007, 0.0013)
_LIMIT_S = 600.0  # virtual; a guard, never reached
_NAME = "J. SMITH"


def _profile(name: str, sample_hz: float | None = None) -> dict[str, Any]:
    from firmware_profiles import load_profile

    profile = load_profile("signature_pad", name)
    if sample_hz is not None:
        profile["pen"] = {**profile["pen"], "sample_hz": sample_hz}
    return profile


def throughput(name: str, *, line_bound: bool) -> dict[str, Any]:
    from drivers.events import Role
    from drivers.signature_pad import events as ev
    from drivers.signature_pad.codec import SignaturePadCodec
    from emulator.link import bits_per_char
    from emulator.signature_pad.emulator import SignaturePadEmulator
    from emulator.signature_pad.signers import strokes_from_name

    profile = _profile(name, 20_000.0 if line_bound else None)
    serial = profile["serial"]
    byte_rate = int(serial["baud"]) / bits_per_char(str(serial["framing"]))
    pad, host = SignaturePadEmulator(profile), SignaturePadCodec(Role.HOST, profile)
    pad.transmit()  # the power-up model/serial packet, before the clock starts
    pad.advance(0.0)
    pad.sign(strokes_from_name(_NAME))
    expected = len(pad._samples)
    packets = sent = step = 0
    first = last = None
    start = time.perf_counter()
    while packets < expected and pad.now < _LIMIT_S:
        pad.advance(_STEPS[step % len(_STEPS)])
        step += 1
        out = pad.transmit()
        if not out:
            continue
        if first is None:
            first = pad.now - len(out) * pad.byte_time  # the first byte's start on the line
        last, sent = pad.now, sent + len(out)
        host.receive_data(out)
        while (event := host.next_event()) is not None:
            packets += isinstance(event, ev.PenSample)
    wall = time.perf_counter() - start
    span = (last or 0.0) - (first or 0.0)
    if line_bound:
        measured, theory, unit = sent / span, byte_rate, "bytes/s"
    else:
        # N samples at 1/hz apart span (N - 1) / hz, plus the last packet's line time
        measured = (packets - 1) / (span - 5 * pad.byte_time)
        theory, unit = float(profile["pen"]["sample_hz"]), "packets/s"
    return {"profile": name, "baud": int(serial["baud"]), "bound": "line" if line_bound else "sample rate",
            "packets": packets, "bytes": sent, "virtual_s": span, "measured": measured, "theoretical": theory,
            "unit": unit, "ratio": measured / theory if theory else 0.0,
            "emulator_virtual_s_per_wall_s": span / wall if wall else 0.0}


def stored_size(profile_name: str, name: str) -> dict[str, Any]:
    from drivers.signature_pad.driver import SignaturePadDriver
    from drivers.signature_pad.strokes import encode_strokes, ink_points
    from drivers.transport import attach_peer, detach_peer
    from emulator.signature_pad.emulator import SignaturePadEmulator
    from emulator.signature_pad.signers import strokes_from_name

    profile = _profile(profile_name)
    peer = SignaturePadEmulator(profile)
    url = attach_peer("signature-pad", peer)
    try:
        with SignaturePadDriver(url, profile) as pad:
            pad.begin_capture([])
            pad.poll()
            peer.sign(strokes_from_name(name))
            pad.poll()
            signature = pad.take_signature()
    finally:
        detach_peer(url)
    stored = encode_strokes(signature)
    points = ink_points(signature)
    return {"profile": profile_name, "name": name, "strokes": len(signature.strokes), "points": points,
            "stored_bytes": len(stored), "raw_xy16_bytes": 4 * points,
            "bytes_per_point": len(stored) / points if points else 0.0}


def bench_signature_pad(reps: int = 1) -> list[dict[str, Any]]:
    runs = [throughput(name, line_bound=bound) for name in ("topaz-siglite", "topaz-lcd4x5")
            for bound in (False, True)]
    fidelity = {"name": "signature_pad_pen_throughput", "runs": runs,
                "ratio_min": min(r["ratio"] for r in runs), "ratio_max": max(r["ratio"] for r in runs),
                "baseline": "theory: pen.sample_hz packets/s, or baud / 11 bytes/s (8O1) when the line binds",
                "target_ratio": "1 +- 0.05", "within_target": all(abs(r["ratio"] - 1) <= 0.05 for r in runs)}
    sizes = [stored_size(p, n) for p in ("topaz-siglite", "topaz-lcd4x5") for n in ("张三", "J. SMITH")]
    size = {"name": "signature_pad_stored_size", "runs": sizes,
            "baseline": "none: encode_strokes bytes of a typical name (raw 16-bit X/Y pairs for comparison)",
            "within_target": all(0 < r["stored_bytes"] < r["raw_xy16_bytes"] for r in sizes)}
    return [fidelity, size]


if __name__ == "__main__":
    import json
    import sys

    json.dump(bench_signature_pad(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
