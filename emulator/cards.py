"""The test-card catalogue (data in cards.toml), shared by the card reader and the host simulator."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["TestCard", "UnknownCardError", "card_by_pan", "get_card", "load_catalogue"]


class UnknownCardError(LookupError):
    pass


@dataclass(frozen=True, kw_only=True)
class TestCard:
    __test__ = False  # not a pytest test class

    name: str
    description: str
    pan: str
    expiry: str  # YYMM
    service_code: str
    pan_sequence: str
    cardholder: str
    entry_modes: tuple[str, ...]
    default_mode: str
    response_code: str

    @property
    def track2(self) -> str:
        """ISO 7813 track 2 data without sentinels: PAN = YYMM SVC discretionary, 37 chars at most."""
        head = f"{self.pan}={self.expiry}{self.service_code}"
        return head + "0" * max(0, 37 - len(head))


@cache
def load_catalogue() -> dict[str, TestCard]:
    text = resources.files(__package__).joinpath("cards.toml").read_text(encoding="utf-8")
    cards: dict[str, TestCard] = {}
    for name, raw in tomllib.loads(text).items():
        cards[name] = TestCard(
            name=name,
            description=str(raw["description"]),
            pan=str(raw["pan"]),
            expiry=str(raw["expiry"]),
            service_code=str(raw["service_code"]),
            pan_sequence=str(raw.get("pan_sequence", "")),
            cardholder=str(raw.get("cardholder", "")),
            entry_modes=tuple(raw["entry_modes"]),
            default_mode=str(raw["default_mode"]),
            response_code=str(raw["response_code"]),
        )
    return cards


def get_card(name: str) -> TestCard:
    cards = load_catalogue()
    if name not in cards:
        raise UnknownCardError(f"unknown test card {name!r} (known: {', '.join(cards)})")
    return cards[name]


def card_by_pan(pan: str) -> TestCard | None:
    return next((c for c in load_catalogue().values() if c.pan == pan), None)
