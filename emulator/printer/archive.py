"""A served printer's output folder (`till emulate printer --out DIR`): each page as it is cut.

Per page, `page-NNNN.txt` (its text), `page-NNNN.png` (the 1-bit picture) and `page-NNNN.bin`
(the raw bytes received since the previous cut, through this cut), each written atomically.
Numbering continues after the pages already in the folder, so a restart never overwrites one.
A page too long to draw (emulator/printer/render.py's limit) gets no PNG; its text and bytes
are still written.
"""

from __future__ import annotations

import re
from pathlib import Path

from emulator.files import write_atomic
from emulator.printer.render import RenderedPage, RenderLimitError

__all__ = ["PageArchive"]

_PAGE = re.compile(r"page-(\d{4,})\.txt")


class PageArchive:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        numbers = [int(m.group(1)) for p in folder.iterdir() if (m := _PAGE.fullmatch(p.name))]
        self._next = max(numbers, default=0) + 1
        self.saved: list[Path] = []  # stems (folder/page-NNNN) written by this run, in order

    def save(self, page: RenderedPage, raw: bytes) -> Path:
        stem = self.folder / f"page-{self._next:04d}"
        self._next += 1
        write_atomic(stem.with_suffix(".bin"), raw)
        write_atomic(stem.with_suffix(".txt"), (page.text + "\n").encode("utf-8"))
        try:
            image = page.image()
        except RenderLimitError:
            pass
        else:
            tmp = stem.with_name(f".{stem.name}.png.tmp")
            image.save(tmp, format="PNG")
            tmp.replace(stem.with_suffix(".png"))
        self.saved.append(stem)
        return stem
