"""Virtual signers: pen strokes for the signature pad emulator, in pad units.

- `strokes_from_json(text)`: `[[[x, y], ...], ...]`, one list of points per stroke
- `strokes_from_svg(text)`: every `<path d=...>`, the subset M/L/C/Q/Z (absolute or relative);
  curves are flattened into short lines
- `strokes_from_name(name, seed)`: the name written with the glyph outlines of an installed font
  (fontTools; the CJK font scripts/install-fonts.sh installs, else DejaVu), each contour one
  stroke, with a little seeded jitter. Without fontTools or a font that has the characters, a
  seeded scribble as wide as the name (never an exception for a name).
- `fit_to_pad(strokes, box)` scales a drawing into the pad's active area, keeping its aspect, and
  `resample(strokes, spacing)` spaces the points as a pen moving at a steady speed would.

A file that does not parse is a ValueError naming what is wrong (never its content).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import random

__all__ = ["Strokes", "fit_to_pad", "load_signer_file", "resample", "strokes_from_json", "strokes_from_name",
           "strokes_from_svg"]

Strokes = list[list[tuple[float, float]]]
_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
_FONT_PREFERENCE = ("wqy-microhei", "wqy-zenhei", "notosanscjk", "notosanssc", "droidsansfallback", "dejavusans.")
_CURVE_STEPS = 8
_MAX_POINTS = 100_000


def strokes_from_json(text: str) -> Strokes:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the signature file is not JSON (line {exc.lineno})") from None
    if not isinstance(data, list) or not data:
        raise ValueError("the signature file is a list of strokes [[[x, y], ...], ...]")
    strokes: Strokes = []
    for stroke in data:
        if not isinstance(stroke, list) or not stroke:
            raise ValueError("each stroke is a non-empty list of [x, y] points")
        points = []
        for point in stroke:
            if (not isinstance(point, list) or len(point) != 2
                    or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                               for v in point)):
                raise ValueError("each point is [x, y], two numbers")
            points.append((float(point[0]), float(point[1])))
        strokes.append(points)
    return strokes


_SVG_TOKEN = re.compile(r"[MLCQZmlcqz]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def strokes_from_svg(text: str) -> Strokes:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise ValueError("the signature file is not SVG (XML does not parse)") from None
    paths = [el.get("d", "") for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "path"]
    strokes: Strokes = []
    for d in paths:
        strokes += _svg_path(d)
    strokes = [s for s in strokes if len(s) >= 1]
    if not strokes:
        raise ValueError("the SVG has no <path> with M/L/C/Q/Z segments")
    return strokes


def _svg_path(d: str) -> Strokes:
    rest = _SVG_TOKEN.sub("", d).replace(",", "").strip()
    if rest:
        raise ValueError("an SVG path uses commands beyond the subset M L C Q Z")
    tokens = _SVG_TOKEN.findall(d)
    strokes: Strokes = []
    current: list[tuple[float, float]] = []
    x = y = sx = sy = 0.0
    command = ""
    at = 0

    def numbers(n: int) -> list[float]:
        nonlocal at
        if at + n > len(tokens) or any(t.isalpha() for t in tokens[at : at + n]):
            raise ValueError("an SVG path segment is missing its numbers")
        values = [float(t) for t in tokens[at : at + n]]
        at += n
        return values

    while at < len(tokens):
        if tokens[at].isalpha():
            command = tokens[at]
            at += 1
        elif not command:
            raise ValueError("an SVG path starts with a number")
        relative = command.islower()
        ox, oy = (x, y) if relative else (0.0, 0.0)
        kind = command.upper()
        if kind == "Z":
            if current:
                current.append((sx, sy))
            x, y = sx, sy
            command = ""
            continue
        if kind == "M":
            px, py = numbers(2)
            if len(current) > 1:
                strokes.append(current)
            x, y = ox + px, oy + py
            sx, sy = x, y
            current = [(x, y)]
            command = "l" if relative else "L"  # further pairs are lines
        elif kind == "L":
            px, py = numbers(2)
            x, y = ox + px, oy + py
            current.append((x, y))
        elif kind in "CQ":
            values = numbers(6 if kind == "C" else 4)
            pts = [(ox + values[i], oy + values[i + 1]) for i in range(0, len(values), 2)]
            start = (x, y)
            for step in range(1, _CURVE_STEPS + 1):
                t = step / _CURVE_STEPS
                current.append(_bezier(start, pts, t))
            x, y = pts[-1]
        if sum(len(s) for s in strokes) + len(current) > _MAX_POINTS:
            raise ValueError("the SVG path has too many points")
    if len(current) > 1:
        strokes.append(current)
    return strokes


def _bezier(start: tuple[float, float], controls: list[tuple[float, float]], t: float) -> tuple[float, float]:
    pts = [start, *controls]
    while len(pts) > 1:
        pts = [((1 - t) * a[0] + t * b[0], (1 - t) * a[1] + t * b[1]) for a, b in itertools.pairwise(pts)]
    return pts[0]


def load_signer_file(path: str | Path) -> Strokes:
    """Strokes from a .json or .svg file (ValueError if it does not parse, OSError if unreadable)."""
    p = Path(path)
    if p.stat().st_size > 4_000_000:
        raise ValueError("the signature file is larger than 4 MB")
    text = p.read_text(encoding="utf-8", errors="strict")
    if p.suffix.lower() == ".svg" or text.lstrip().startswith("<"):
        return strokes_from_svg(text)
    return strokes_from_json(text)


# -- a name written with a font -------------------------------------------------------------------
def _fonts() -> list[Path]:
    found: list[Path] = []
    for folder in _FONT_DIRS:
        root = Path(folder)
        if root.is_dir():
            found += [p for p in root.rglob("*") if p.suffix.lower() in (".ttf", ".ttc", ".otf")]

    def rank(p: Path) -> int:
        name = p.name.lower().replace("-", "").replace("_", "")
        return next((i for i, pref in enumerate(_FONT_PREFERENCE) if pref.replace("-", "") in name), 99)

    return sorted(found, key=lambda p: (rank(p), str(p)))


def _glyph_strokes(name: str) -> Strokes | None:
    try:
        from fontTools.pens.basePen import BasePen
        from fontTools.ttLib import TTFont
    except ImportError:
        return None

    class Flatten(BasePen):  # type: ignore[misc]  # fontTools is untyped
        def __init__(self, glyphs: Any, dx: float) -> None:
            super().__init__(glyphs)
            self.dx = dx
            self.strokes: Strokes = []
            self.current: list[tuple[float, float]] = []

        def _moveTo(self, pt: tuple[float, float]) -> None:
            self.current = [(pt[0] + self.dx, -pt[1])]
            self.strokes.append(self.current)

        def _lineTo(self, pt: tuple[float, float]) -> None:
            self.current.append((pt[0] + self.dx, -pt[1]))

        def _curveToOne(self, p1: Any, p2: Any, p3: Any) -> None:
            start = self._getCurrentPoint()
            for step in range(1, _CURVE_STEPS + 1):
                x, y = _bezier(start, [p1, p2, p3], step / _CURVE_STEPS)
                self.current.append((x + self.dx, -y))

        def _qCurveToOne(self, p1: Any, p2: Any) -> None:
            start = self._getCurrentPoint()
            for step in range(1, _CURVE_STEPS + 1):
                x, y = _bezier(start, [p1, p2], step / _CURVE_STEPS)
                self.current.append((x + self.dx, -y))

        def _closePath(self) -> None:
            if self.current:
                self.current.append(self.current[0])

    for path in _fonts():
        try:
            with TTFont(str(path), fontNumber=0, lazy=True) as font:
                strokes = _write(font, name, Flatten)
        except Exception:  # a broken font file: try the next one
            continue
        if strokes:
            return strokes
    return None


def _write(font: Any, name: str, pen_class: Any) -> Strokes | None:
    cmap = font.getBestCmap() or {}
    if not all(ord(c) in cmap or c.isspace() for c in name):
        return None
    glyphs = font.getGlyphSet()
    space = font["hmtx"][cmap[ord(" ")]][0] if ord(" ") in cmap else 500
    strokes: Strokes = []
    dx = 0.0
    for char in name:
        if char.isspace():
            dx += space
            continue
        glyph = glyphs[cmap[ord(char)]]
        pen = pen_class(glyphs, dx)
        glyph.draw(pen)
        strokes += [s for s in pen.strokes if len(s) > 1]
        dx += glyph.width
    return strokes


def _scribble(name: str, rng: random.Random) -> Strokes:
    """A signature-like wave, one loop per character: when no font can write the name."""
    points = []
    for i in range(max(1, len(name)) * 12):
        t = i / 12
        points.append((t * 100.0, 50 * math.sin(t * math.tau) + rng.uniform(-8, 8)))
    return [points]


def strokes_from_name(name: str, seed: int = 0) -> Strokes:
    name = " ".join(name.split())
    if not name:
        raise ValueError("a name to sign has at least one character")
    import random  # a signer's first stroke, not the emulator's start

    rng = random.Random(f"{seed}:{name}")
    strokes = _glyph_strokes(name) or _scribble(name, rng)
    scale = max(1.0, max(abs(v) for s in strokes for p in s for v in p))
    wobble = scale * 0.004
    slant = rng.uniform(0.05, 0.2)
    return [[(x - slant * y + rng.uniform(-wobble, wobble), y + rng.uniform(-wobble, wobble)) for x, y in stroke]
            for stroke in strokes]


# -- into the pad -------------------------------------------------------------------------------------
def fit_to_pad(strokes: Strokes, box: tuple[int, int, int, int], margin: float = 0.08) -> Strokes:
    """Scale and centre a drawing into (x_min, y_min, x_max, y_max), aspect kept."""
    xs = [p[0] for s in strokes for p in s]
    ys = [p[1] for s in strokes for p in s]
    if not xs:
        return []
    x0, y0, x1, y1 = box
    w, h = (x1 - x0) * (1 - 2 * margin), (y1 - y0) * (1 - 2 * margin)
    span_x, span_y = max(xs) - min(xs), max(ys) - min(ys)
    scale = min(w / span_x if span_x else math.inf, h / span_y if span_y else math.inf)
    if not math.isfinite(scale):
        scale = 1.0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    mx, my = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    return [[(cx + (x - mx) * scale, cy + (y - my) * scale) for x, y in s] for s in strokes]


def resample(strokes: Iterable[list[tuple[float, float]]], spacing: float) -> list[list[tuple[int, int]]]:
    """Points every `spacing` units along each stroke (a pen at steady speed), rounded."""
    out: list[list[tuple[int, int]]] = []
    for stroke in strokes:
        points = [stroke[0]]
        carry = 0.0
        for (ax, ay), (bx, by) in itertools.pairwise(stroke):
            length = math.hypot(bx - ax, by - ay)
            at = spacing - carry
            while at <= length:
                t = at / length
                points.append((ax + (bx - ax) * t, ay + (by - ay) * t))
                at += spacing
            carry = length - (at - spacing)
        if len(stroke) > 1 and points[-1] != stroke[-1]:
            points.append(stroke[-1])
        out.append([(round(x), round(y)) for x, y in points])
    return out
