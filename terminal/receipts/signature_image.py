"""A captured signature as a 1-bit image: for the merchant copy (ESC/POS raster), the e-receipt
(PNG) and the 0820 upload to the acquirer (JBIG1 or PNG in DE 62, PROTOCOLS.md §4.1).

Rendering: the pad's coordinate range maps onto the receipt's dot width (`dots`), so a signature
prints at the size it was written relative to the pad and the aspect ratio is kept; strokes are
lines `STROKE_DOTS` thick with round joins; then the white around the ink is cut to its bounding
box plus `MARGIN_DOTS`. The pixels are the binding's rendering, not its source: the strokes are.

JBIG1 (ITU-T T.82, what UnionPay terminals send) comes from Debian's jbigkit: `pbmtojbg` from
package `jbigkit-bin` (scripts/install-tools.sh installs it for `make test`), run on a PBM as a
subprocess (stdin to stdout) in sequential mode (`-q`, one resolution layer: smallest output, and what a host's
decoder expects). Without the tool, `to_jbig` raises `ImageError`; `jbig_available()` says
beforehand, so a profile that asks for JBIG can fall back to PNG.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from drivers.record import Record

if TYPE_CHECKING:
    from PIL.Image import Image

    from drivers.printer.events import PrintRasterImage

__all__ = [
    "MARGIN_DOTS",
    "STROKE_DOTS",
    "UPLOAD_LIMIT",
    "ImageError",
    "Strokes",
    "UploadImage",
    "jbig_available",
    "printer_raster",
    "raster_command",
    "render_signature",
    "to_jbig",
    "to_png",
    "upload_image",
]

STROKE_DOTS: Final = 3  # line width in dots: 3 at 203 dpi is a 0.4 mm pen, legible after thermal print
MARGIN_DOTS: Final = 8  # white kept around the ink's bounding box
JBIG_ENCODER: Final = "pbmtojbg"
JBIG_PACKAGE: Final = "jbigkit-bin"
_TOOL_TIMEOUT_S: Final = 10.0  # a few ms for a signature; a hung tool must not hang the till
_BLACK, _WHITE = 0, 255

Strokes = Sequence[Sequence[tuple[int, int]]]


class ImageError(ValueError):
    """A signature that cannot be rendered or encoded (no ink, bad size, the JBIG tool missing)."""


def render_signature(strokes: Strokes, width: int, height: int, *, dots: int) -> Image:
    """The strokes (pad coordinates, x in 0..width-1, y in 0..height-1) as a mode "1" image at
    `dots` across the pad's width, trimmed to the ink plus MARGIN_DOTS; at most `dots` wide."""
    from PIL import Image, ImageDraw  # lazy: Pillow costs start-up time

    if width <= 0 or height <= 0 or dots <= 0:
        raise ImageError("the pad's size and the receipt's dot width are positive")
    if not any(strokes):
        raise ImageError("the signature has no ink")
    scale = dots / width
    canvas_h = max(1, round(height * scale))
    canvas = Image.new("1", (dots, canvas_h), _WHITE)
    draw = ImageDraw.Draw(canvas)
    radius = STROKE_DOTS / 2
    for stroke in strokes:
        points = [(min(x, width - 1) * scale, min(y, height - 1) * scale) for x, y in stroke]
        if len(points) > 1:
            draw.line(points, fill=_BLACK, width=STROKE_DOTS, joint="curve")
        for px, py in (points[0], points[-1]) if points else ():
            # Round ends (and a tap is a dot): line() alone leaves square, width-wide stubs.
            draw.ellipse((px - radius, py - radius, px + radius, py + radius), fill=_BLACK)
    bbox = canvas.point(lambda v: 255 - v).getbbox()  # getbbox finds non-zero: the ink, inverted
    if bbox is None:
        raise ImageError("the signature has no ink")
    left, top, right, bottom = bbox
    crop = (max(0, left - MARGIN_DOTS), max(0, top - MARGIN_DOTS),
            min(dots, right + MARGIN_DOTS), min(canvas_h, bottom + MARGIN_DOTS))
    return canvas.crop(crop)


def to_png(image: Image) -> bytes:
    """A 1-bit, optimised PNG of the image (the e-receipt's, and DE 62 where JBIG is not used)."""
    out = io.BytesIO()
    _one_bit(image).save(out, format="PNG", optimize=True)
    return out.getvalue()


def jbig_available() -> bool:
    """Is the JBIG1 encoder (`pbmtojbg`, Debian package jbigkit-bin) installed?"""
    return shutil.which(JBIG_ENCODER) is not None


def to_jbig(image: Image) -> bytes:
    """JBIG1 (ITU-T T.82) of the image: a 20-byte BIH then the data, sequential, one layer."""
    tool = shutil.which(JBIG_ENCODER)
    if tool is None:
        raise ImageError(f"JBIG1 needs {JBIG_ENCODER} (apt-get install {JBIG_PACKAGE}); or send PNG")
    try:
        done = subprocess.run([tool, "-q"], input=_pbm(image), capture_output=True, check=False,
                              timeout=_TOOL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageError(f"{JBIG_ENCODER} did not run: {type(exc).__name__}") from None
    if done.returncode != 0 or len(done.stdout) < 20:
        raise ImageError(f"{JBIG_ENCODER} failed (exit {done.returncode})")
    return done.stdout


def printer_raster(image: Image) -> tuple[int, int, bytes]:
    """(width_bytes, height, data) for ESC/POS GS v 0: rows MSB = leftmost dot, 1 = black."""
    one = _one_bit(image)
    return (one.width + 7) // 8, one.height, _black_rows(one)


def raster_command(image: Image) -> PrintRasterImage:
    """The image as the printer command (the form terminal/receipts/layout.py prints)."""
    from drivers.printer.events import PrintRasterImage

    width_bytes, height, data = printer_raster(image)
    return PrintRasterImage(width_bytes=width_bytes, height=height, data=data)


class UploadImage(Record):
    """DE 62 of an 0820: the encoded image, its format ("jbig" or "png") and the dot width drawn at."""

    format: str
    data: bytes
    dots: int


UPLOAD_LIMIT: Final = 999  # DE 62 of an 0820 is b..999
_SHRINK: Final = 0.8  # each retry draws at 80 % of the dots before
_MIN_DOTS: Final = 96  # below this a name is no longer legible: refuse rather than send a smudge
_AIM: Final = 0.95  # the next width's share of the linear estimate: a little under, so it usually fits


def upload_image(strokes: Strokes, width: int, height: int, *, dots: int, jbig: bool,
                 limit: int = UPLOAD_LIMIT) -> UploadImage:
    """The signature for DE 62: JBIG1 when `jbig` and the encoder is installed, else 1-bit PNG,
    drawn again from the strokes (not resampled: lines stay STROKE_DOTS thick) at a smaller dot
    width — the one a linear estimate from the last try's size says fits, at most 80 % of it —
    until it fits `limit` bytes. A PNG of a full name at 384 dots is ~1.3 kB, its JBIG1
    ~0.6 kB, so PNG usually goes at ~250 dots."""
    use_jbig = jbig and jbig_available()
    size = dots
    while size >= _MIN_DOTS:
        image = render_signature(strokes, width, height, dots=size)
        data = to_jbig(image) if use_jbig else to_png(image)
        if len(data) <= limit:
            return UploadImage(format="jbig" if use_jbig else "png", data=data, dots=size)
        if size == _MIN_DOTS:
            break
        # The bytes grow about linearly with the dots (the lines' length; their width is fixed):
        # aim just under the limit at once rather than creep down by _SHRINK (bench/signature_image.py).
        guess = int(size * limit / len(data) * _AIM)
        size = max(_MIN_DOTS, min(int(size * _SHRINK), guess))
    raise ImageError(f"the signature does not fit {limit} bytes even at {_MIN_DOTS} dots")


def _one_bit(image: Image) -> Image:
    return image if image.mode == "1" else image.convert("1")


def _black_rows(image: Image) -> bytes:
    # Mode "1" packs 1 = white; inverted first so the pad bits at each row's end stay 0 (white).
    return image.point(lambda v: 255 - v).tobytes()


def _pbm(image: Image) -> bytes:
    """Binary PBM (P4): rows packed MSB first, 1 = black, what pbmtojbg reads."""
    one = _one_bit(image)
    return f"P4\n{one.width} {one.height}\n".encode("ascii") + _black_rows(one)
