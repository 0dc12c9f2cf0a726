"""`till emulate card-reader --state DIR`: the card's ATC carries on across emulator restarts, and
the ARQCs of identical reads differ (issue 10: three runs used to give one ARQC)."""

from __future__ import annotations

import json
from pathlib import Path

from drivers.card_reader.driver import CardReaderDriver
from drivers.card_reader.events import CardRead, EntryMode
from drivers.emv import tlv
from firmware_profiles import load_profile
from tests.contract.conftest import wait_for_events
from tests.support.processes import Served, served

PROFILE = load_profile("card_reader", "generic-pinpad")


def _arqc(child: Served) -> tuple[bytes, bytes]:
    with CardReaderDriver(child.endpoint, PROFILE, timeout=5) as reader:
        assert child.control("present approved chip").startswith("ok")
        assert reader.start_read(amount_minor=1234, currency="156", modes=frozenset(EntryMode), timeout_s=30,
                                 unpredictable_number=bytes(4)) is None  # the same 9F37 every time
        events = [e for e in wait_for_events(reader) if isinstance(e, CardRead)]
    assert events[0].icc_data is not None
    icc = tlv.decode_dict(events[0].icc_data.reveal())
    return icc["9F36"], icc["9F26"]


def test_the_atc_carries_on_across_restarts_so_the_arqc_changes(tmp_path: Path) -> None:
    reads = []
    for _ in range(3):  # three emulator runs
        with served("emulate", "card-reader", "--pty", "--state", str(tmp_path)) as child:
            reads.append(_arqc(child))
    assert [atc for atc, _ in reads] == [b"\x00\x01", b"\x00\x02", b"\x00\x03"]
    assert len({arqc for _, arqc in reads}) == 3
    assert json.loads((tmp_path / "atc.json").read_text()) == {"approved": 3}
