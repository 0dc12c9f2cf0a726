"""`till escpos render` and `till emulate printer` with faults, as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.transport import open_port
from terminal.cli import main
from tests.support.processes import served

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "escpos-php"


def corpus_file(name: str) -> Path:
    """A corpus file; CI always has the corpus, so a missing one fails (never skips) the test."""
    path = CORPUS / name
    if not path.is_file():
        pytest.fail(f"the escpos-php corpus is missing: {path} not found (it belongs at {CORPUS})", pytrace=False)
    return path


def test_render_prints_text_and_one_png_per_receipt(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_png = tmp_path / "out.png"
    assert main(["escpos", "render", str(corpus_file("demo.bin")), "--png", str(out_png)]) == 0
    text = capsys.readouterr().out
    cuts = text.count("--- cut ---")
    assert cuts >= 1
    pngs = sorted(tmp_path.glob("out-*.png"))
    assert len(pngs) == cuts + 1 and pngs[0].name == "out-1.png"


def test_render_a_simple_stream_with_the_chinese_default(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    stream = tmp_path / "r.bin"
    stream.write_bytes(b"\x1b@" + "中文测试 OK\n".encode("gb18030") + b"\x1dV\x00")
    png = tmp_path / "r.png"
    assert main(["escpos", "render", str(stream), "--png", str(png)]) == 0
    assert "中文测试 OK" in capsys.readouterr().out and png.is_file()


def test_render_reports_unknown_commands_and_missing_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    stream = tmp_path / "odd.bin"
    stream.write_bytes(b"\x1b@HELLO\n\x1b\xfe\x00WORLD\n")
    assert main(["escpos", "render", str(stream)]) == 1
    out, err = capsys.readouterr()
    assert "HELLO" in out and "unknown command: 1b fe" in err
    assert main(["escpos", "render", str(tmp_path / "missing.bin")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_emulate_starts_with_a_fault_and_takes_control_lines() -> None:
    with served("emulate", "printer", "--pty", "--fault", "paper-out") as child:
        port = open_port(child.endpoint, timeout=5)
        try:
            port.write(b"\x10\x04\x04")  # roll paper sensor
            assert port.read(1) == b"\x72"  # paper end
            assert child.control("clear").startswith("ok")
            port.write(b"\x10\x04\x04")
            assert port.read(1) == b"\x12"
            assert child.control("fault nonsense").startswith("error")
        finally:
            port.close()


def test_emulate_out_writes_each_page_as_it_is_cut_and_pages_lists_them(tmp_path: Path) -> None:
    out = tmp_path / "printed"
    with served("emulate", "printer", "--pty", "--out", str(out)) as child:
        port = open_port(child.endpoint, timeout=5)
        try:
            job = b"\x1b@HELLO OUT\n\x1dV\x00"
            port.write(job + b"\x10\x04\x01")
            assert port.read(1) == b"\x12"  # everything before it has arrived and printed
        finally:
            port.close()
        assert child.control("pages") == (f"ok: 1 page(s) cut, 0 unknown command(s); saved in {out}: "
                                          "page-0001.{txt,png,bin}")
        assert child.control("pages all").startswith("error: usage: pages")
    assert (out / "page-0001.txt").read_text() == "HELLO OUT\n"
    assert (out / "page-0001.bin").read_bytes() == job
    assert (out / "page-0001.png").read_bytes()[:4] == b"\x89PNG"


def test_demo_save_bytes_keeps_what_the_terminal_sent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    saved = tmp_path / "bytes"
    assert main(["demo", "--json", "--var", str(tmp_path / "var"), "--save-bytes", str(saved)]) == 0
    receipts = json.loads(capsys.readouterr().out)["receipts"]
    assert len(receipts) == 2
    for receipt in receipts:
        data = Path(receipt["bytes_file"]).read_bytes()
        job = data[-receipt["bytes"]:]  # the copy's job, after the status queries the driver asked first
        assert job.startswith(b"\x1b@") and job[-3:-1] == b"\x1dV"
        assert set(data[: -len(job)]) <= set(b"\x10\x04\x01\x02\x03\x04")  # DLE EOT n
        assert receipt["text"].splitlines()[0].strip() in data.decode("gb18030", errors="replace")
    assert sorted(p.name for p in saved.glob("*.bin")) == ["page-0001.bin", "page-0002.bin"]
