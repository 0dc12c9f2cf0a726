"""Byte streams written by another ESC/POS library (mike42/escpos-php, MIT) print and render.

The corpus lives next to the project (ROOT/../shared/corpus/escpos-php/, see its README) and is not
copied in. CI always has it, so an absent corpus fails these tests (it never skips them).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emulator.printer.emulator import RenderResult, render_stream
from firmware_profiles import load_profile

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "escpos-php"


def corpus_path(name: str = "") -> Path:
    """A file of the corpus (or, without a name, its directory); a clear failure when it is missing."""
    path = CORPUS / name if name else CORPUS
    if not (path.is_file() if name else path.is_dir()):
        pytest.fail(f"the escpos-php corpus is missing: {path} not found (it belongs at {CORPUS}, "
                    "next to the project; see its README)", pytrace=False)
    return path

# The README's table: what the program printed, as substrings of the rendered text.
CORPUS_TEXT = {
    "demo.bin": ["Hello world", "ABCDEFGHIJabcdefghijk", "ABC", "DEF", "GHI"],
    "receipt-with-logo.bin": ["ExampleMart Ltd.", "SALES INVOICE", "Example item #1", "4.00", "Total",
                              "14.25", "Thank you for shopping at ExampleMart"],
    "qr-code.bin": ["Most simple example", "Same example, centred", "Error correction", "[QR: Testing 123]"],
    "barcode.bin": ["Height and bar width", "Default look", "[barcode CODE39: ABC]", "012345678901"],
    "pdf417-code.bin": ["PDF417 code demo", "Most simple example", "[PDF417: Testing 123]"],
    "text-size.bin": ["The quick brown fox jumps over the lazy dog.", "Hello world!"],
    # The README also names "Line spacing", but the file does not hold it (checked: no such bytes).
    "margins-and-spacing.bin": ["Left margin", "Page width"],
    "graphics.bin": ["Regular Tux.", "Wide Tux.", "Tall Tux.", "[image "],
    "bit-image.bin": ["Regular Tux (bit image).", "[image "],
    "character-tables.bin": ["Table 0", "0123456789ABCDEF"],
    "character-encodings.bin": ["Implemented languages"],
    "unifont-print-buffer.bin": [],  # drawn with user-defined glyphs (ESC &): see the test below
}


def render(name: str, profile: str = "epson-tm-t20iii") -> RenderResult:
    return render_stream(corpus_path(name).read_bytes(), load_profile("printer", profile))


def test_the_table_covers_every_file_in_the_corpus() -> None:
    assert sorted(p.name for p in corpus_path().glob("*.bin")) == sorted(CORPUS_TEXT)
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    assert sorted(re.findall(r"^\| (\S+\.bin) \|", readme, re.MULTILINE)) == sorted(CORPUS_TEXT)


@pytest.mark.parametrize("name", sorted(CORPUS_TEXT))
def test_every_corpus_file_prints_what_its_readme_lists(name: str) -> None:
    result = render(name)
    text = "\n".join(page.text for page in result.pages)
    for expected in CORPUS_TEXT[name]:
        assert expected in text
    assert result.pages[0].cut is not None  # every corpus file ends with a cut
    assert result.understood, [u.hex(" ") for u in result.unknown]  # every command has a model


@pytest.mark.parametrize("name", sorted(CORPUS_TEXT))
@pytest.mark.parametrize("profile", ["epson-tm-t20iii", "epson-tm-t88", "generic-58mm"])
def test_every_page_draws_at_the_profile_width(name: str, profile: str) -> None:
    result = render(name, profile)
    dots = load_profile("printer", profile)["media"]["dots"]
    for page in result.pages:
        image = page.image()
        assert image.mode == "1" and image.width == dots


def test_native_qr_codes_of_the_corpus_scan() -> None:
    import zxingcpp

    result = render("qr-code.bin")
    found = {r.text for r in zxingcpp.read_barcodes(result.pages[0].image())}
    assert "Testing 123" in found


def test_graphics_and_bit_images_put_ink_where_the_text_says() -> None:
    for name in ("graphics.bin", "bit-image.bin", "receipt-with-logo.bin"):
        page = render(name).pages[0]
        image = page.image()
        assert image.getbbox() is not None
        assert image.histogram()[0] > 1000  # many black dots: the pictures are there


def test_user_defined_glyphs_are_drawn_not_the_codes_they_replace() -> None:
    result = render("unifont-print-buffer.bin")
    page = result.pages[0]
    codes = b"\x1b@" + page.text.encode("ascii") + b"\n\x1dV\x00"  # the same codes, no glyphs defined
    plain = render_stream(codes, load_profile("printer", "epson-tm-t20iii"))
    assert page.image().tobytes() != plain.pages[0].image().tobytes()
    assert page.image().histogram()[0] > 100
