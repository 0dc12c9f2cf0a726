"""terminal/receipts/signature_image.py: a signature's strokes as a 1-bit image at the receipt's
dot width, its PNG, its JBIG1 (jbigkit's pbmtojbg; scripts/install-tools.sh), the ESC/POS raster
and the DE 62 image that fits an 0820."""

from __future__ import annotations

import io
import os
import shutil
import subprocess

import pytest
from PIL import Image

from drivers.printer.events import PrintRasterImage
from terminal.receipts import signature_image
from terminal.receipts.signature_image import (
    MARGIN_DOTS,
    ImageError,
    jbig_available,
    printer_raster,
    raster_command,
    render_signature,
    to_jbig,
    to_png,
    upload_image,
)

# A 1000 x 500 pad drawn at 400 dots (scale 0.4): a bar at y 100, a stem, a dot.
STROKES = (((100, 100), (900, 100)), ((500, 300), (500, 400)), ((800, 450),))
NEEDS_JBIG = pytest.mark.skipif(shutil.which("pbmtojbg") is None and not os.environ.get("CI"),
                                reason="jbigkit-bin not installed (scripts/install-tools.sh); required in CI")


def _ink(image: Image.Image) -> tuple[int, int, int, int] | None:
    return image.point(lambda v: 255 - v).getbbox()


def _black(image: Image.Image) -> int:
    return image.convert("L").tobytes().count(0)


def test_a_known_stroke_set_gives_a_known_ink_box_and_dot_width() -> None:
    image = render_signature(STROKES, 1000, 500, dots=400)
    # Ink on the 400-dot canvas: x 40-360 (+1.5 for the round ends), y 40 (bar) to 180 (the dot);
    # trimmed to that box plus the margin on every side.
    assert image.mode == "1" and image.size == (340, 160)
    assert _ink(image) == (MARGIN_DOTS, MARGIN_DOTS, 340 - MARGIN_DOTS, 160 - MARGIN_DOTS)
    bar = [image.getpixel((170, y)) for y in range(image.height)]
    assert 2 <= bar[: image.height // 2].count(0) <= 4  # the bar is ~3 dots thick


def test_scale_follows_the_dot_width_and_keeps_the_aspect() -> None:
    small = render_signature(STROKES, 1000, 500, dots=400)
    large = render_signature(STROKES, 1000, 500, dots=800)
    (sw, sh), (lw, lh) = ((w - 2 * MARGIN_DOTS, h - 2 * MARGIN_DOTS) for w, h in (small.size, large.size))
    # The pen stays STROKE_DOTS wide at any scale, so the ink box grows by 2x less a few dots.
    assert 2 * sw - 8 <= lw <= 2 * sw and 2 * sh - 8 <= lh <= 2 * sh and abs(lw / lh - sw / sh) < 0.03
    assert render_signature([[(0, 0), (999, 499)]], 1000, 500, dots=384).width <= 384  # never wider than the paper


def test_points_outside_the_pad_are_clamped_and_blank_input_refused() -> None:
    assert render_signature([[(5000, 9000), (-0, 0)]], 1000, 500, dots=200).width <= 200
    blanks: tuple[signature_image.Strokes, ...] = ((), ((),), [[]])
    for strokes in blanks:
        with pytest.raises(ImageError, match="no ink"):
            render_signature(strokes, 1000, 500, dots=384)
    with pytest.raises(ImageError):
        render_signature(STROKES, 0, 500, dots=384)


def test_png_is_1_bit_and_round_trips() -> None:
    image = render_signature(STROKES, 1000, 500, dots=400)
    png = to_png(image)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[24] == 1  # IHDR bit depth 1
    back = Image.open(io.BytesIO(png))
    assert back.mode == "1" and back.size == image.size and back.tobytes() == image.tobytes()


def test_printer_raster_is_msb_first_1_black_with_white_padding() -> None:
    image = render_signature(STROKES, 1000, 500, dots=400)
    width_bytes, height, data = printer_raster(image)
    assert (width_bytes, height, len(data)) == (43, 160, 43 * 160)  # 340 dots -> 43 bytes, 4 pad bits
    assert sum(bin(b).count("1") for b in data) == _black(image)
    assert all(data[row * 43 + 42] & 0x0F == 0 for row in range(height))
    top_left = render_signature([[(0, 0)]], 1000, 500, dots=400)
    assert printer_raster(top_left)[2][0] & 0x80  # the dot at the left edge is the first byte's MSB
    assert raster_command(image) == PrintRasterImage(width_bytes=43, height=160, data=data)


@NEEDS_JBIG
def test_jbig1_has_a_valid_bih_and_decodes_back_to_the_same_bits() -> None:
    image = render_signature(STROKES, 1000, 500, dots=400)
    bie = to_jbig(image)
    bih = bie[:20]
    assert (bih[0], bih[1], bih[2], bih[3]) == (0, 0, 1, 0)  # DL 0, D 0 (sequential), one plane, fill
    assert int.from_bytes(bih[4:8], "big") == 340 and int.from_bytes(bih[8:12], "big") == 160
    assert jbig_available()
    decoded = subprocess.run(["jbgtopbm"], input=bie, capture_output=True, check=True).stdout
    magic, width, height, bits = decoded.split(maxsplit=3)  # jbgtopbm pads the numbers with spaces
    assert (magic, int(width), int(height)) == (b"P4", 340, 160) and bits == printer_raster(image)[2]
    assert len(bie) < len(to_png(image))


def test_without_the_jbig_tool_a_clear_error_and_a_png_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)  # the module looks it up at each call
    assert not jbig_available()
    with pytest.raises(ImageError, match="jbigkit-bin"):
        to_jbig(render_signature(STROKES, 1000, 500, dots=400))
    chosen = upload_image(STROKES, 1000, 500, dots=400, jbig=True)
    assert chosen.format == "png" and chosen.data.startswith(b"\x89PNG")


def test_the_upload_image_fits_de_62_by_drawing_smaller() -> None:
    wide = [[(x, 250 + (60 if x % 40 else -60)) for x in range(0, 1000, 20)]]
    full = len(to_png(render_signature(wide, 1000, 500, dots=576)))
    assert upload_image(wide, 1000, 500, dots=576, jbig=False, limit=full).dots == 576
    chosen = upload_image(wide, 1000, 500, dots=576, jbig=False, limit=full - 1)
    assert chosen.format == "png" and len(chosen.data) < full and chosen.dots < 576
    assert Image.open(io.BytesIO(chosen.data)).width <= chosen.dots
    with pytest.raises(ImageError, match="does not fit"):
        upload_image(wide, 1000, 500, dots=576, jbig=False, limit=60)
