"""The test-card catalogue (data in cards.toml), shared by the card reader and the host simulator.

cards.toml documents every field at its top. The loader checks each card (a typo in the data is a
CatalogueError at load, not a strange read later) and keeps PAN, PINs and track data out of reprs.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from drivers.card_reader.events import Cvm
from drivers.record import Record, field

__all__ = [
    "BEHAVIOURS",
    "CatalogueError",
    "TestCard",
    "UnknownCardError",
    "card_by_pan",
    "get_card",
    "load_catalogue",
    "parse_catalogue",
]

BEHAVIOURS = frozenset({"normal", "chip-error", "removed-during-read", "removed-before-second-ac", "slow"})
_MODES = frozenset({"chip", "swipe", "tap"})


class UnknownCardError(LookupError):
    pass


class CatalogueError(ValueError):
    """cards.toml breaks its own rules (documented at its top)."""


class TestCard(Record):
    __test__ = False  # not a pytest test class

    name: str
    description: str
    pan: str = field(repr=False)
    expiry: str = field(repr=False)  # YYMM
    service_code: str
    pan_sequence: str
    cardholder: str
    entry_modes: tuple[str, ...]
    default_mode: str
    response_code: str
    pin: str = field(default="1234", repr=False)  # what the cardholder knows (the issuer checks it)
    typed_pin: str = field(default="1234", repr=False)  # what the emulated cardholder types
    cvm: Cvm = Cvm.NONE
    behaviour: str = "normal"
    delay_s: float = 0.0
    fallback_mode: str | None = None
    demo_amount_minor: int | None = None

    @property
    def track2(self) -> str:
        """ISO 7813 track 2 data without sentinels: PAN = YYMM SVC discretionary, 37 chars at most."""
        head = f"{self.pan}={self.expiry}{self.service_code}"
        return head + "0" * max(0, 37 - len(head))


def _card(name: str, raw: dict[str, Any]) -> TestCard:
    pin = str(raw.get("pin", "1234"))
    card = TestCard(
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
        pin=pin,
        typed_pin=str(raw.get("typed_pin", pin)),
        cvm=Cvm(raw.get("cvm", "none")),
        behaviour=str(raw.get("behaviour", "normal")),
        delay_s=float(raw.get("delay_s", 0.0)),
        fallback_mode=None if raw.get("fallback_mode") is None else str(raw["fallback_mode"]),
        demo_amount_minor=None if raw.get("demo_amount_minor") is None else int(raw["demo_amount_minor"]),
    )
    problems = [
        not (card.pan.isdigit() and 12 <= len(card.pan) <= 19) and "pan must be 12-19 digits",
        not (card.expiry.isdigit() and len(card.expiry) == 4 and 1 <= int(card.expiry[2:]) <= 12) and "expiry is YYMM",
        not set(card.entry_modes) <= _MODES and "unknown entry mode",
        card.default_mode not in card.entry_modes and "default_mode is not one of entry_modes",
        card.fallback_mode is not None and card.fallback_mode not in card.entry_modes and "bad fallback_mode",
        card.behaviour not in BEHAVIOURS and f"behaviour must be one of {sorted(BEHAVIOURS)}",
        any(not (p.isdigit() and 4 <= len(p) <= 12) for p in (card.pin, card.typed_pin)) and "PINs are 4-12 digits",
        card.delay_s < 0 and "delay_s cannot be negative",
    ]
    found = [p for p in problems if p]
    if found:
        raise CatalogueError(f"cards.toml [{name}]: {'; '.join(found)}")  # never the values themselves
    return card


def parse_catalogue(text: str) -> dict[str, TestCard]:
    import tomllib  # when the catalogue is first read (a card presented), not at every emulator start

    try:
        data = tomllib.loads(text)
        return {name: _card(name, raw) for name, raw in data.items()}
    except (tomllib.TOMLDecodeError, KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, CatalogueError):
            raise
        raise CatalogueError(f"cards.toml: {type(exc).__name__}: {exc}") from exc


@cache
def load_catalogue() -> dict[str, TestCard]:
    return parse_catalogue((Path(__file__).resolve().parent / "cards.toml").read_text(encoding="utf-8"))


def get_card(name: str) -> TestCard:
    cards = load_catalogue()
    if name not in cards:
        raise UnknownCardError(f"unknown test card {name!r} (known: {', '.join(cards)})")
    return cards[name]


@cache
def _by_pan() -> dict[str, TestCard]:
    by_pan: dict[str, TestCard] = {}
    for card in load_catalogue().values():
        by_pan.setdefault(card.pan, card)  # the first card of a PAN, as a scan in catalogue order finds
    return by_pan


def card_by_pan(pan: str) -> TestCard | None:
    return _by_pan().get(pan)
