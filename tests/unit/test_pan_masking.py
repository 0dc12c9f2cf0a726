"""Card-number shapes are masked in any text a log may show (issue 9: masking by field number only)."""

from __future__ import annotations

import pytest

from drivers.acquirer.events import HostMessage
from drivers.sensitive import mask_card_numbers

PAN = "4761739001010119"


@pytest.mark.parametrize(("text", "masked"), [
    (PAN, "************0119"),
    (f"ref:{PAN}/x", "ref:************0119/x"),  # inside a longer string
    ("4761739001010118", "************0118"),  # Luhn or not
    ("6228 4804 0256 4890 018", "***************0018"),  # typed with spaces
    (f"{PAN}=25122011234", "************0119=<redacted>"),  # track-2 style
    (f"{PAN}D25122011234", "************0119=<redacted>"),
    (f"0000{PAN}0000", "********************0000"),  # a run longer than a PAN may hold one anywhere
    ("STAN 000123 amount 000000001234", "STAN 000123 amount 000000001234"),  # 12 digits and less stay
])
def test_card_number_shapes_are_masked(text: str, masked: str) -> None:
    assert mask_card_numbers(text) == masked


def test_free_fields_of_a_host_message_are_masked_whatever_their_number() -> None:
    msg = HostMessage(mti="0210", fields={"39": "00", "48": f"NOTE {PAN}", "62": f"{PAN}=2512",
                                          "63": f"X{PAN}".encode()})
    shown = repr(msg)
    assert PAN not in shown and "0119" in shown and "'39': " not in shown and "39='00'" in shown
