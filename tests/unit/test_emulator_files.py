"""emulator/files.py: small state files written whole against a killed process."""

from __future__ import annotations

import json
from pathlib import Path

from emulator.files import rewrite_in_place, write_atomic


def test_rewrite_in_place_creates_grows_and_pads_a_shorter_text(tmp_path: Path) -> None:
    path = tmp_path / "atc.json"
    rewrite_in_place(path, b'{"approved": 9}')  # not there yet: made whole (temp file, rename)
    assert json.loads(path.read_text()) == {"approved": 9}
    rewrite_in_place(path, b'{"approved": 10}')  # longer: one write over the old bytes
    assert path.read_bytes() == b'{"approved": 10}'
    rewrite_in_place(path, b'{"a": 1}')  # shorter (not how ATCs go, but safe): padded, never truncated
    assert path.read_bytes() == b'{"a": 1}' + b" " * 8 and json.loads(path.read_text()) == {"a": 1}


def test_rewrite_in_place_of_more_than_a_page_is_a_whole_file_write(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    write_atomic(path, b"x" * 5000, durable=False)
    rewrite_in_place(path, b"[1]")  # the file is over a page: replaced, not overwritten
    assert path.read_bytes() == b"[1]"
    data = json.dumps(list(range(2000))).encode()
    rewrite_in_place(path, data)
    assert path.read_bytes() == data and len(data) > 4096
