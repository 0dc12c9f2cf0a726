"""A QR code as a PNG file: the merchant-presented payment code for any screen to show."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_qr_png"]


def write_qr_png(data: str, path: Path, *, box_size: int = 8) -> Path:
    """Write `data` as a QR PNG at `path` (atomically: a screen never shows half a file)."""
    import qrcode  # lazy: qrcode and Pillow cost start-up time

    image = qrcode.make(data, box_size=box_size, border=4)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".png.tmp")
    with open(tmp, "wb") as fh:
        image.save(fh, format="PNG")
    os.replace(tmp, path)
    return path
