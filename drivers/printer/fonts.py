"""Where this machine keeps a TrueType font for receipt pictures: a CJK-capable one first (GB18030
receipts), else a monospace one. Shared by the printer emulator's renderer and the terminal's
e-receipts (a paperless terminal draws its slips itself); scripts/install-fonts.sh installs one."""

from __future__ import annotations

import functools
import glob
import os
from pathlib import Path

__all__ = ["find_font"]

_CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/droid/DroidSansFallback.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simsun.ttc",
)
_USER_FONT_GLOBS = ("~/.local/share/fonts/**/*", "~/.fonts/**/*")
_MONO_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/dejavu/DejaVuSansMono.ttf",
    "/Library/Fonts/Menlo.ttc",
    "C:/Windows/Fonts/consola.ttf",
)



def find_font(cjk: bool = True) -> str | None:
    """A TrueType font on this machine: CJK-capable first (OPENTILL_FONT overrides), else mono."""
    env = os.environ.get("OPENTILL_FONT")
    if env and Path(env).is_file():
        return env
    return _find_font(cjk)


@functools.cache
def _find_font(cjk: bool) -> str | None:
    if cjk:
        for path in _CJK_FONTS:
            if Path(path).is_file():
                return path
        for pattern in _USER_FONT_GLOBS:
            for path in glob.glob(os.path.expanduser(pattern), recursive=True):
                if any(key in Path(path).name.lower() for key in ("wqy", "notosanscjk", "droidsansfallback")):
                    return path
    return next((p for p in _MONO_FONTS if Path(p).is_file()), None)


