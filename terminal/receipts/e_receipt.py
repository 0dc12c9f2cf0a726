"""电子签购单: a receipt without paper, as a PNG and a JSON file under var/receipts/.

A paperless terminal (no printer slot: the 电签 terminal) writes every slip it would print —
both copies of a sale, a reprint, the settlement slip — as an e-receipt: the same Receipt model
(layout.py) drawn as the 80 mm roll would show it (the same columns, Chinese and English, the
lookup QR, the e-signature), and its lines and fields as JSON for any screen or export. Files are
written atomically (a screen never shows half a picture).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from drivers.printer.events import Align
from terminal.receipts.layout import Line, Receipt, _label, line_text

__all__ = ["EReceipt", "render_png", "write_e_receipt"]

COLUMNS = 48  # font A on an 80 mm head (576 dots): what the paper would show
CELL_W, CELL_H = 12, 24
MARGIN = 16


class EReceipt:
    """Where one e-receipt went."""

    def __init__(self, png: Path, json_path: Path) -> None:
        self.png, self.json = png, json_path


def _qr_image(data: str, size: int) -> Any:
    import qrcode  # lazy: qrcode and Pillow cost start-up time

    return qrcode.make(data, box_size=4, border=2).get_image().convert("1").resize((size, size))


def _raster_image(line: Line) -> Any:
    from PIL import Image

    raster = line.image
    assert raster is not None
    image = Image.frombytes("1", (raster.width_bytes * 8, raster.height), raster.data)
    return image.point(lambda v: 255 - v).convert("1")  # ESC/POS 1 = black dot; PIL 1 = white


def render_png(receipt: Receipt) -> bytes:
    """The receipt drawn as its paper copy would look (576 dots wide)."""
    from io import BytesIO

    from PIL import Image, ImageDraw, ImageFont

    from drivers.printer.fonts import find_font

    path = find_font(cjk=True)
    fonts = {size: (ImageFont.truetype(path, size) if path else ImageFont.load_default()) for size in (22, 44)}
    width = COLUMNS * CELL_W + 2 * MARGIN
    pieces: list[tuple[str, Any, Line]] = []
    for line in receipt.lines:
        if line.rule:
            pieces.append(("rule", CELL_H, line))
        elif line.qr:
            pieces.append(("qr", _qr_image(line.qr, 200), line))
        elif line.image is not None:
            pieces.append(("image", _raster_image(line), line))
        elif line.value and len(line_text(line, COLUMNS, True).splitlines()) == 1:
            pieces.append(("pair", (_label(line, True), line.value), line))  # label left, value flush right
        else:
            for row in line_text(line, COLUMNS, True).splitlines() or [""]:
                pieces.append(("text", row.strip() if line.align is Align.CENTER else row, line))
    height = MARGIN * 2 + sum(CELL_H * (2 if p[2].large else 1) if p[0] in ("text", "rule", "pair") else p[1].height + 8
                              for p in pieces)
    page = Image.new("1", (width, height), 1)
    draw = ImageDraw.Draw(page)
    y = MARGIN
    for kind, what, line in pieces:
        if kind == "rule":
            draw.line((MARGIN, y + CELL_H // 2, width - MARGIN, y + CELL_H // 2), fill=0, width=2)
            y += CELL_H
            continue
        if kind in ("qr", "image"):
            x = (width - what.width) // 2 if line.align is Align.CENTER else MARGIN
            page.paste(what, (x, y + 4))
            y += what.height + 8
            continue
        font = fonts[44 if line.large else 22]
        if kind == "pair":
            label, value = what
            draw.text((MARGIN, y), label, font=font, fill=0, stroke_width=1 if line.bold else 0, stroke_fill=0)
            right = width - MARGIN - int(draw.textlength(value, font=font))
            draw.text((right, y), value, font=font, fill=0, stroke_width=1 if line.bold else 0, stroke_fill=0)
            y += CELL_H * (2 if line.large else 1)
            continue
        text_width = int(draw.textlength(what, font=font))
        x = {Align.CENTER: (width - text_width) // 2, Align.RIGHT: width - MARGIN - text_width}.get(line.align, MARGIN)
        draw.text((x, y), what, font=font, fill=0, stroke_width=1 if line.bold else 0, stroke_fill=0)
        y += CELL_H * (2 if line.large else 1)
    out = BytesIO()
    page.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _lines_json(receipt: Receipt) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for line in receipt.lines:
        if line.rule:
            continue
        entry = {k: v for k, v in (("zh", line.zh), ("en", line.en), ("value", line.value), ("qr", line.qr)) if v}
        if line.image is not None:
            entry["image"] = "signature"
        if entry:
            out.append(entry)
    return out


def write_e_receipt(folder: Path, name: str, receipt: Receipt, fields: dict[str, Any]) -> EReceipt:
    """`<folder>/<name>.png` and `.json` (the slip's lines and the record's fields)."""
    folder.mkdir(parents=True, exist_ok=True)
    png, doc = folder / f"{name}.png", folder / f"{name}.json"
    for path, data in ((png, render_png(receipt)),
                       (doc, json.dumps({**fields, "copy": receipt.copy.value, "lines": _lines_json(receipt)},
                                        ensure_ascii=False, indent=2).encode())):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return EReceipt(png, doc)
