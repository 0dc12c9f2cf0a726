"""电签 image benchmark (issue 12): capture-to-image time, the DE 62 encoding, and their sizes.

A typical name (张三, J. SMITH) is signed on the LCD pad through the real driver (as
bench/signature_pad.py does) and stored with `encode_strokes`. Then, for each name:

- **Capture to image**: what the merchant copy costs once the signature is taken — decode the
  stored strokes, draw them as a 1-bit image at the receipt's width (384 dots, spool.py's
  SIGNATURE_MAX_DOTS) and pack the ESC/POS raster. Baseline, measured in the same run: Pillow
  drawing the same points as one plain polyline (1 dot wide, no round ends, no trim) on a canvas
  of the same size and packing its bytes — the least a rasteriser must do for these points.
- **DE 62**: `upload_image` as the 0820 builds it (drawn again smaller until it fits 999 bytes),
  PNG and, where jbigkit's `pbmtojbg` is installed, JBIG1. Baseline: one encode of the image it
  settled on (the same format, the same dots) — the rest is the redraws the size limit costs,
  reported per draw (the draws are counted).
- **Sizes**: stored strokes, the printed raster, and the DE 62 image (format, dots, bytes); the
  target is DE 62 within its 999 bytes.

Timings are medians of `reps` runs after one warm-up (Pillow's import and first draw).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.common import median

__all__ = ["bench_signature_image"]

NAMES = ("张三", "J. SMITH")
PAD = "topaz-lcd4x5"
RECEIPT_DOTS = 384
CAPTURE_TARGET_RATIO = 15.0  # round joins and ends, the trim and the raster packing over a bare polyline
# Each draw (render, then encode at a width >= the final one) against one encode of the final image;
# and a typical name fits in two draws (the first at 384 dots, then the linear estimate's width).
DE62_TARGET_RATIO = 4.0
DE62_MAX_DRAWS = 2


def _signed(name: str) -> Any:
    from bench.signature_pad import _profile
    from drivers.signature_pad.driver import SignaturePadDriver
    from drivers.transport import attach_peer, detach_peer
    from emulator.signature_pad.emulator import SignaturePadEmulator
    from emulator.signature_pad.signers import strokes_from_name

    profile = _profile(PAD)
    peer = SignaturePadEmulator(profile)
    url = attach_peer("signature-pad", peer)
    try:
        with SignaturePadDriver(url, profile) as pad:
            pad.begin_capture([])
            pad.poll()
            peer.sign(strokes_from_name(name))
            pad.poll()
            return pad.take_signature()
    finally:
        detach_peer(url)


def _timed(work: Callable[[], Any], reps: int) -> tuple[float, Any]:
    result = work()  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return median(times), result


def _draws(signature: Any, jbig: bool) -> int:
    """How many widths `upload_image` drew before one fitted (counted, not timed)."""
    from terminal.receipts import signature_image

    real, count = signature_image.render_signature, [0]

    def counting(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return real(*args, **kwargs)

    signature_image.render_signature = counting
    try:
        signature_image.upload_image(signature.strokes, signature.width, signature.height, dots=RECEIPT_DOTS,
                                     jbig=jbig)
    finally:
        signature_image.render_signature = real
    return count[0]


def _one_name(name: str, reps: int) -> dict[str, Any]:
    from PIL import Image, ImageDraw

    from drivers.signature_pad.strokes import decode_strokes, encode_strokes, ink_points
    from terminal.receipts.signature_image import (
        jbig_available,
        printer_raster,
        render_signature,
        to_jbig,
        to_png,
        upload_image,
    )

    signature = _signed(name)
    stored = encode_strokes(signature)

    def capture() -> tuple[int, int, bytes]:
        sig = decode_strokes(stored)
        return printer_raster(render_signature(sig.strokes, sig.width, sig.height, dots=RECEIPT_DOTS))

    def bare() -> bytes:  # the baseline: one plain polyline per stroke, same canvas, packed
        scale = RECEIPT_DOTS / signature.width
        canvas = Image.new("1", (RECEIPT_DOTS, max(1, round(signature.height * scale))), 255)
        draw = ImageDraw.Draw(canvas)
        for stroke in signature.strokes:
            if len(stroke) > 1:
                draw.line([(x * scale, y * scale) for x, y in stroke], fill=0, width=1)
        return canvas.tobytes()

    capture_s, raster = _timed(capture, reps)
    bare_s, _ = _timed(bare, reps)
    formats = [("png", False), *([("jbig", True)] if jbig_available() else [])]
    de62 = []
    for label, jbig in formats:
        def build(jbig: bool = jbig) -> Any:
            return upload_image(signature.strokes, signature.width, signature.height, dots=RECEIPT_DOTS, jbig=jbig)

        full_s, image = _timed(build, reps)
        final = render_signature(signature.strokes, signature.width, signature.height, dots=image.dots)

        def encode_once(final: Any = final, jbig: bool = jbig) -> bytes:
            return to_jbig(final) if jbig else to_png(final)

        once_s, _ = _timed(encode_once, reps)
        ratio = full_s / once_s if once_s else 0.0
        draws = _draws(signature, jbig)
        de62.append({"format": label, "dots": image.dots, "bytes": len(image.data), "draws": draws,
                     "median_s": full_s, "baseline_s": once_s, "ratio": ratio, "ratio_per_draw": ratio / draws})
    width_bytes, height, data = raster
    return {
        "name": name, "points": ink_points(signature), "strokes": len(signature.strokes),
        "stored_bytes": len(stored), "raster": f"{width_bytes * 8}x{height}", "raster_bytes": len(data),
        "capture_to_image_s": capture_s, "capture_baseline_s": bare_s,
        "capture_ratio": capture_s / bare_s if bare_s else 0.0, "de62": de62,
    }


def bench_signature_image(reps: int = 5) -> list[dict[str, Any]]:
    runs = [_one_name(name, reps) for name in NAMES]
    capture = {
        "name": "signature_capture_to_image", "runs": [
            {k: r[k] for k in ("name", "points", "raster", "capture_to_image_s", "capture_baseline_s",
                               "capture_ratio")} for r in runs],
        "baseline": "Pillow drawing the same points as bare 1-dot polylines on the same canvas, packed (same run)",
        "ratio_max": max(r["capture_ratio"] for r in runs), "target_ratio": CAPTURE_TARGET_RATIO,
        "within_target": all(r["capture_ratio"] <= CAPTURE_TARGET_RATIO for r in runs),
    }
    encode = {
        "name": "signature_de62_encoding", "runs": [{"name": r["name"], **d} for r in runs for d in r["de62"]],
        "baseline": "one encode of the image upload_image settled on, same format and dots (same run)",
        "ratio_max": max(d["ratio"] for r in runs for d in r["de62"]),
        "ratio_per_draw_max": max(d["ratio_per_draw"] for r in runs for d in r["de62"]),
        "target_ratio_per_draw": DE62_TARGET_RATIO, "target_draws": DE62_MAX_DRAWS,
        "within_target": all(d["ratio_per_draw"] <= DE62_TARGET_RATIO and d["draws"] <= DE62_MAX_DRAWS
                             for r in runs for d in r["de62"]),
    }
    sizes = {
        "name": "signature_sizes", "runs": [
            {"name": r["name"], "stored_bytes": r["stored_bytes"], "raster_bytes": r["raster_bytes"],
             **{f"de62_{d['format']}_bytes": d["bytes"] for d in r["de62"]},
             **{f"de62_{d['format']}_dots": d["dots"] for d in r["de62"]}} for r in runs],
        "baseline": "none: DE 62 is b..999", "within_target": all(d["bytes"] <= 999 for r in runs for d in r["de62"]),
    }
    return [capture, encode, sizes]


if __name__ == "__main__":
    import json
    import sys

    json.dump(bench_signature_image(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
