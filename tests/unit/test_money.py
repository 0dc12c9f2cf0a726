from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminal.errors import InputError
from terminal.money import format_amount, parse_amount


@pytest.mark.parametrize(("text", "minor"), [("12.34", 1234), ("0.01", 1), ("7", 700), ("7.5", 750), (" 3.00 ", 300)])
def test_parses_amounts(text: str, minor: int) -> None:
    assert parse_amount(text, max_minor=10**9) == minor


@pytest.mark.parametrize("text", ["abc", "-1", "0", "0.00", "1.234", "1e3", "", "1,00", "+5", "nan", "１２"])
def test_refuses_bad_amounts(text: str) -> None:
    with pytest.raises(InputError):
        parse_amount(text, max_minor=10**9)


def test_refuses_over_the_limit() -> None:
    with pytest.raises(InputError, match="limit"):
        parse_amount("50000.01", max_minor=5_000_000)
    assert parse_amount("50000.00", max_minor=5_000_000) == 5_000_000


@given(st.integers(min_value=1, max_value=10**12))
def test_format_and_parse_round_trip(minor: int) -> None:
    assert parse_amount(format_amount(minor), max_minor=10**12) == minor
