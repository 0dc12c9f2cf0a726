"""The scenario file format (docs/scenarios.md): a `[scenario]` table and `[[step]]` entries.

Everything a run needs is checked here, before anything starts: a bad file is one clear line
naming the step (`ScenarioError`, exit 2), never a traceback half-way through a session.
Steps come out as `Step(number, action, arg)` with `arg` already normalised, so the runner
(terminal/scenario.py) never re-validates.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.services import test_cards
from terminal.app import load_terminal_profile
from terminal.checkout.table import CheckoutState
from terminal.errors import TerminalError
from terminal.money import parse_amount

__all__ = [
    "ACTIONS",
    "CUT_POINTS",
    "EXPECT_KEYS",
    "Amount",
    "Scenario",
    "ScenarioError",
    "Step",
    "load_scenario",
    "parse_scenario",
]

ACTIONS = ("sale", "card", "scan", "signature", "wallet", "host", "printer", "device", "advance", "power", "operator",
           "expect")
SIGNATURE_KEYS = ("ok", "clear", "cancel")  # the pad's keys; anything else is a name the cardholder writes
TENDERS = ("card", "qr", "qr-merchant")
# The wallet gateway simulator's faults (emulator/wallet/gateway.py) and what the rig does with it.
WALLET_WORDS = ("normal", "unsigned", "badsign", "error500", "pay-order")
HOST_WORDS = ("silent", "normal", "answer-late", "release-late", "drop-connection", "drop-on-next-request",
              "out-of-balance-once", "unreachable", "reachable")
HOST_TABLES = ("drop_responses", "answer_late", "decline_next", "drop_on_next_request", "latency", "upload_fail")
# The signature uploads' faults (0820, emulator/acquirer/core.py `fail_uploads`): besides a code.
UPLOAD_FAULTS = ("silent", "ignore")
PRINTER_WORDS = ("paper-out", "paper-near-end", "paper-loaded", "cover-open", "cover-closed", "cutter-jam",
                 "cutter-error", "offline", "online", "disconnect", "reconnect", "ok")
# The card reader's link (its emulator's faults): NAK every frame, answer nothing, cable pulled; link-ok ends them.
CARD_LINK_WORDS = ("nak-storm", "silent", "disconnect", "link-ok")
MAX_LATENCY_S = 3600.0
COPIES = ("merchant", "cardholder")
OPERATOR_WORDS = ("settle", "reprint", "resume-printing", "cancel", "confirm-signature", "abandon-receipts",
                  "recover")
# Where power can be lost besides a checkout state: as the printer starts a copy's title line.
CUT_POINTS = tuple(f"printing-{c}" for c in COPIES)
MAX_ADVANCE_S = 86_400.0
MAX_STEPS = 1000  # the catalogue's longest has 25; bounds a run's length
MAX_TOTAL_ADVANCE_S = 7 * 86_400.0  # virtual time a run may cover (a day of it costs ~0.5 s of CPU)
MAX_FILE_BYTES = 1024 * 1024  # a scenario is a few KiB; /dev/zero or a 200 MB file is refused, not read
RANDOM_RANGE = (100, 50_000)  # `amount = "random"`: 1.00 to 500.00
RUNNER_OWNED = ("host.url", "devices")  # the runner wires the emulators and the simulator itself

# expect key -> (what its value must be, in words; a check of the raw TOML value)
EXPECT_KEYS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "state": ("a checkout state name or OFF", lambda v: isinstance(v, str)
              and (v.upper() in CheckoutState.__members__ or v.upper() == "OFF")),
    "sale": ('a sale label like "sale-1"', lambda v: isinstance(v, str)),
    "outcome": ("a string (APPROVED, DECLINED, CANCELLED, OUTCOME_UNKNOWN or none)", lambda v: isinstance(v, str)),
    "response_code": ("a string", lambda v: isinstance(v, str)),
    "journal_state": ("a string", lambda v: isinstance(v, str)),
    "reversal": ("PENDING, DONE, FAILED or NONE", lambda v: isinstance(v, str)
                 and v.upper() in ("PENDING", "DONE", "FAILED", "NONE")),
    "reversal_attempts": ("an integer", lambda v: _is_int(v) and v >= 0),
    "journal": ("a table of state = count", lambda v: isinstance(v, dict)
                and all(isinstance(k, str) and _is_int(n) and n >= 0 for k, n in v.items())),
    "pending_reversals": ("an integer", lambda v: _is_int(v) and v >= 0),
    "unresolved_reversals": ("an integer", lambda v: _is_int(v) and v >= 0),
    "pending_advices": ("an integer", lambda v: _is_int(v) and v >= 0),
    "exceptions": ("a list of incident kinds", lambda v: isinstance(v, list) and all(isinstance(k, str) for k in v)),
    "shown": ('a string ("" = nothing was displayed)', lambda v: isinstance(v, str)),
    "not_shown": ("a non-empty string no display line since the previous expect may contain",
                  lambda v: isinstance(v, str) and bool(v)),
    "advices_forwarded": ('a list of sale labels (or "stan-000004"), in the order the host got their 0220s',
                          lambda v: isinstance(v, list) and all(isinstance(k, str) for k in v)),
    "host_net": ('an amount like "12.34" or "0.00"', lambda v: isinstance(v, str) and _money(v) is not None),
    "late_approvals": ("an integer", lambda v: _is_int(v) and v >= 0),
    "printed": ("a list of copies", lambda v: isinstance(v, list) and all(isinstance(k, str) for k in v)),
    "pages": ("an integer", lambda v: _is_int(v) and v >= 0),
    "reprint_pages": ("an integer", lambda v: _is_int(v) and v >= 0),
    "settlement": ("a table of balanced/uploaded/sales_count/sales_amount", lambda v: _settlement_ok(v)),
    "batch": ("an integer", lambda v: _is_int(v) and v >= 1),
    "refused": ("a string", lambda v: isinstance(v, str) and bool(v)),
    "invariants": ("true (the end-of-run invariants hold at this point too)", lambda v: v is True),
    "qr_status": ("a QR order status (PAID, UNKNOWN, CLOSED, REFUNDED, FAILED, ...)", lambda v: isinstance(v, str)),
    "wallet_net": ('an amount like "12.34" or "0.00": what the wallet kept of the sale', lambda v: isinstance(v, str)
                   and _money(v) is not None),
    "qr_unresolved": ("an integer: QR orders the wallet has not decided yet", lambda v: _is_int(v) and v >= 0),
}


class ScenarioError(TerminalError, ValueError):
    """The scenario file or its arguments cannot be run (exit 2)."""


@dataclass(frozen=True, kw_only=True)
class Amount:
    """A fixed amount, or a seeded draw from [low, high] (minor units)."""

    minor: int | None = None
    low: int = 0
    high: int = 0


@dataclass(frozen=True, kw_only=True)
class Step:
    number: int  # 1-based, as people count them in the file
    action: str
    arg: Any  # normalised: str, float, dict, or Amount inside a sale's dict
    raw: Any  # as written, echoed in the report
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str
    description: str
    seed: int
    profile: str
    overrides: dict[str, Any]
    steps: tuple[Step, ...]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _money(text: str) -> int | None:
    try:
        return 0 if text.strip() in ("0", "0.00") else parse_amount(text, max_minor=10**14)
    except TerminalError:
        return None


def _settlement_ok(v: Any) -> bool:
    kinds: dict[str, Callable[[Any], bool]] = {
        "balanced": lambda x: isinstance(x, bool), "uploaded": lambda x: _is_int(x) and x >= 0,
        "sales_count": lambda x: _is_int(x) and x >= 0,
        "sales_amount": lambda x: isinstance(x, str) and _money(x) is not None,
    }
    return isinstance(v, dict) and bool(v) and all(k in kinds and kinds[k](x) for k, x in v.items())


def _same_kind(profile_value: Any, value: Any) -> bool:
    if isinstance(profile_value, bool) or isinstance(value, bool):
        return isinstance(profile_value, bool) and isinstance(value, bool)
    if isinstance(profile_value, int | float):
        return isinstance(value, int | float) and (isinstance(profile_value, float) or isinstance(value, int))
    return type(profile_value) is type(value)


def load_scenario(path: Path | str) -> Scenario:
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise ScenarioError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB, not a scenario "
                                "(a scenario file is read up to that size)")
        doc = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError as exc:
        raise ScenarioError(f"{path}: no such scenario file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read it ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc})") from exc
    except RecursionError:
        raise ScenarioError(f"{path}: not a scenario: arrays or tables nested too deeply") from None
    return parse_scenario(doc, source=str(path))


def parse_scenario(doc: Mapping[str, Any], *, source: str = "scenario") -> Scenario:
    extra = set(doc) - {"scenario", "step"}
    if extra:
        raise ScenarioError(f"{source}: unknown top-level key(s) {sorted(extra)} (want [scenario] and [[step]])")
    head = doc.get("scenario")
    if not isinstance(head, dict) or not isinstance(head.get("name"), str) or not head["name"]:
        raise ScenarioError(f"{source}: needs a [scenario] table with a name")
    unknown = set(head) - {"name", "description", "seed", "profile", "overrides"}
    if unknown:
        raise ScenarioError(f"{source}: unknown [scenario] key(s) {sorted(unknown)}")
    seed = head.get("seed", 0)
    if not _is_int(seed) or seed < 0:
        raise ScenarioError(f"{source}: [scenario] seed must be a non-negative integer")
    profile = head.get("profile", "emulated-counter")
    if not isinstance(profile, str):
        raise ScenarioError(f"{source}: [scenario] profile must be a terminal profile name")
    try:
        terminal = load_terminal_profile(profile)
    except TerminalError as exc:
        raise ScenarioError(f"{source}: {exc}") from exc
    overrides = _overrides(head.get("overrides", {}), terminal, source)
    limit = int(overrides.get("limits.max_amount_minor", terminal["limits"]["max_amount_minor"]))
    steps = doc.get("step")
    if not isinstance(steps, list) or not steps:
        raise ScenarioError(f"{source}: no [[step]] entries")
    if len(steps) > MAX_STEPS:
        raise ScenarioError(f"{source}: {len(steps)} steps, more than the {MAX_STEPS} a scenario may have")
    parser = _StepParser(limit=limit, source=source)
    parsed = tuple(parser.parse(i, s) for i, s in enumerate(steps, 1))
    total = sum(step.arg for step in parsed if step.action == "advance")
    if total > MAX_TOTAL_ADVANCE_S:
        raise ScenarioError(f"{source}: the steps advance {total:g} s in all, more than the "
                            f"{MAX_TOTAL_ADVANCE_S:g} s (7 days) a scenario may cover")
    return Scenario(name=head["name"], description=str(head.get("description", "")), seed=seed, profile=profile,
                    overrides=overrides, steps=parsed)


def _overrides(raw: Any, terminal: Mapping[str, Any], source: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{source}: [scenario] overrides must be a table of \"section.key\" = value")
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict):  # [scenario.overrides.limits] journal_capacity = 3
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    for key, value in flat.items():
        section, _, name = key.partition(".")
        if key.startswith(RUNNER_OWNED):
            raise ScenarioError(f"{source}: override {key!r} is set by the scenario runner itself")
        known = isinstance(terminal.get(section), dict) and name in terminal[section]
        if not known:
            raise ScenarioError(f"{source}: unknown override {key!r} (not a setting of the terminal profile)")
        if isinstance(value, dict | list):
            raise ScenarioError(f"{source}: override {key!r} must be a single value")
        if known and not _same_kind(terminal[section][name], value):
            raise ScenarioError(f"{source}: override {key!r} must be like the profile's "
                                f"{terminal[section][name]!r}, not {value!r}")
        _within_schema(key, value, source)
    return flat


def _within_schema(key: str, value: Any, source: str) -> None:
    """An override follows the terminal schema's bounds as a profile file would (journal_capacity
    >= 1, timeouts > 0, no NaN...): one line naming the key."""
    from firmware_profiles import ProfileError, load_schema
    from firmware_profiles.schema import check

    section, _, name = key.partition(".")
    try:
        check({section: {name: value}}, load_schema("terminal").fields, f"{source}: override")
    except ProfileError as exc:
        raise ScenarioError(str(exc)) from None


class _StepParser:
    def __init__(self, *, limit: int, source: str) -> None:
        self.limit, self.source = limit, source
        self.cards = {name: modes.split("/") for name, modes, _ in test_cards()}
        self.sales = 0
        self.off = False  # after power = "off": only what needs no terminal, until power = "on"

    def parse(self, number: int, raw: Any) -> Step:
        if not isinstance(raw, dict):
            raise ScenarioError(f"{self.source}: step {number}: a step is a table with one action")
        note = raw.get("note")
        if note is not None and not isinstance(note, str):
            raise ScenarioError(f"{self.source}: step {number}: note must be a string")
        actions = [k for k in raw if k != "note"]
        unknown = [k for k in actions if k not in ACTIONS]
        if unknown:
            raise ScenarioError(
                f"{self.source}: step {number}: unknown action {unknown[0]!r} (known: {', '.join(ACTIONS)})")
        if len(actions) != 1:
            raise ScenarioError(f"{self.source}: step {number}: one action per step, found {len(actions) or 'none'}")
        action = actions[0]
        value = raw[action]
        try:
            arg = getattr(self, f"_{action}")(value)
        except _Bad as exc:
            raise ScenarioError(f"{self.source}: step {number}: {action}: {exc}") from None
        self._power_state(number, action, arg)
        return Step(number=number, action=action, arg=arg, raw=value, note=note)

    def _power_state(self, number: int, action: str, arg: Any) -> None:
        do = arg.get("do") if isinstance(arg, dict) else None
        if action == "power" and do in ("off", "on"):
            if self.off == (do == "off"):
                raise ScenarioError(f"{self.source}: step {number}: power: the terminal is already {do}")
            self.off = do == "off"
        elif self.off and (action in ("sale", "card", "scan", "signature", "operator")
                           or (action == "power" and do == "loss")):
            raise ScenarioError(f"{self.source}: step {number}: {action}: the terminal is off (power = \"on\" first)")

    # -- one method per action; each raises _Bad with what is wrong --------------------------
    def _sale(self, v: Any) -> dict[str, Any]:
        _table(v, required={"amount"}, allowed={"amount", "card", "mode", "tender", "payer"})
        card, mode = v.get("card"), v.get("mode")
        tender, payer = v.get("tender", "card"), v.get("payer")
        if tender not in TENDERS:
            raise _Bad(f"tender is one of {', '.join(TENDERS)}, not {tender!r}")
        if card is not None:
            if tender != "card":
                raise _Bad("a card goes with tender = \"card\"")
            self._card_name(card, mode)
        elif mode is not None:
            raise _Bad("mode needs a card")
        if payer is not None and tender == "card":
            raise _Bad("payer goes with tender = \"qr\" or \"qr-merchant\"")
        self.sales += 1
        return {"amount": self._amount(v["amount"]), "card": card, "mode": mode, "tender": tender,
                "code": self._payer(payer) if payer is not None else None}

    def _payer(self, v: Any) -> str:
        from sim.demo import payer_code

        if not isinstance(v, str):
            raise _Bad('payer is a test payer ("00", "password", see `till payers`) or a payment code')
        try:
            return payer_code(v)
        except TerminalError as exc:
            raise _Bad(str(exc)) from None

    def _signature(self, v: Any) -> dict[str, Any]:
        """`signature = "J. SMITH"` (the cardholder writes it on the pad, then lifts the pen),
        `"ok"` / `"clear"` / `"cancel"` (a key: ok with no ink is a blank signature)."""
        if not isinstance(v, str) or not v.strip() or len(v) > 40:
            raise _Bad('a name to write (1-40 characters) or one of "ok", "clear", "cancel"')
        return {"key": v} if v in SIGNATURE_KEYS else {"name": v.strip()}

    def _scan(self, v: Any) -> dict[str, Any]:
        """`scan = "password"` (a test payer's code), or `scan = {text = "...", symbology = "ean13"}`."""
        if isinstance(v, str):
            return {"text": self._payer(v), "symbology": "qr"}
        _table(v, required={"text"}, allowed={"text", "symbology"})
        text, symbology = v["text"], v.get("symbology", "qr")
        if not isinstance(text, str) or not text or len(text) > 7000 or not isinstance(symbology, str):
            raise _Bad("text is the decoded text (1-7000 characters), symbology a name like \"qr\"")
        return {"text": text, "symbology": symbology}

    def _wallet(self, v: Any) -> dict[str, Any]:
        """`wallet = "error500"` (the next answer), `{fault = "error500", count = 10}`, `"normal"`,
        `"pay-order"` (the customer pays the merchant-presented order), `{pay-order = "01"}`."""
        if isinstance(v, str):
            if v not in WALLET_WORDS:
                raise _Bad(f"one of {', '.join(WALLET_WORDS)}, or a table")
            return {"do": v, "count": 1, "code": ""}
        if isinstance(v, dict) and "pay-order" in v:
            _table(v, required={"pay-order"}, allowed={"pay-order"})
            return {"do": "pay-order", "count": 1, "code": self._payer(v["pay-order"])}
        _table(v, required={"fault"}, allowed={"fault", "count"})
        fault, count = v["fault"], v.get("count", 1)
        if fault not in WALLET_WORDS[1:4] or not (_is_int(count) and 1 <= count <= 10_000):
            raise _Bad(f"fault is one of {', '.join(WALLET_WORDS[1:4])}, count 1-10000 answers")
        return {"do": fault, "count": count, "code": ""}

    def _amount(self, v: Any) -> Amount:
        if v == "random":
            return Amount(low=RANDOM_RANGE[0], high=min(RANDOM_RANGE[1], self.limit))
        if isinstance(v, dict) and set(v) == {"random"}:
            bounds = v["random"]
            if not (isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, str) for b in bounds)):
                raise _Bad('amount = {random = ["LOW", "HIGH"]} wants two amounts as strings')
            low, high = (self._fixed(b) for b in bounds)
            if low > high:
                raise _Bad("amount: the random range is empty (LOW > HIGH)")
            return Amount(low=low, high=high)
        if not isinstance(v, str):
            raise _Bad('amount is a string like "12.34", "random" or {random = ["1.00", "9.99"]}')
        return Amount(minor=self._fixed(v))

    def _fixed(self, text: str) -> int:
        try:
            return parse_amount(text, max_minor=self.limit)
        except TerminalError as exc:
            raise _Bad(str(exc)) from None

    def _card_name(self, card: Any, mode: Any) -> None:
        if not isinstance(card, str) or card not in self.cards:
            raise _Bad(f"unknown test card {card!r} (see `till cards`)")
        if mode is not None and mode not in self.cards[card]:
            raise _Bad(f"card {card!r} cannot be read by {mode!r} (it supports {', '.join(self.cards[card])})")

    def _card(self, v: Any) -> dict[str, Any]:
        if v in ("remove", "cancel-pin"):
            return {"do": v}
        if v in CARD_LINK_WORDS:
            return {"do": "link", "fault": v, "frames": None}
        if isinstance(v, dict) and "nak_storm" in v:
            _table(v, required={"nak_storm"}, allowed={"nak_storm"})
            if not (_is_int(v["nak_storm"]) and 1 <= v["nak_storm"] <= 1000):
                raise _Bad("nak_storm is a number of frames the reader NAKs, 1-1000")
            return {"do": "link", "fault": "nak-storm", "frames": v["nak_storm"]}
        if isinstance(v, dict) and "present" in v:
            _table(v, required={"present"}, allowed={"present", "mode"})
            self._card_name(v["present"], v.get("mode"))
            return {"do": "present", "card": v["present"], "mode": v.get("mode")}
        if isinstance(v, dict) and set(v) == {"pin"}:
            pin = v["pin"]
            if not (isinstance(pin, str) and pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 12):
                raise _Bad("pin is a string of 4-12 digits")
            return {"do": "pin", "pin": pin}
        raise _Bad('want "remove", "cancel-pin", {present = "CARD"}, {pin = "1234"}, {nak_storm = N} or '
                   f'one of {", ".join(CARD_LINK_WORDS)}')

    def _host(self, v: Any) -> dict[str, Any]:
        if isinstance(v, str):
            if v not in HOST_WORDS:
                raise _Bad(f"unknown host action {v!r} (known: {', '.join(HOST_WORDS + HOST_TABLES)})")
            return {"do": v}
        if not isinstance(v, dict):
            raise _Bad(f"want one of {', '.join(HOST_WORDS)} or a table ({', '.join(HOST_TABLES)})")
        keys = set(v) - {"count"}
        if len(keys) != 1 or not keys <= set(HOST_TABLES):
            raise _Bad(f"a host table has one of {', '.join(HOST_TABLES)}")
        (key,) = keys
        if "count" in v and key not in ("decline_next", "upload_fail"):
            raise _Bad("count goes with decline_next and upload_fail only")
        value = v[key]
        if key in ("drop_responses", "answer_late"):
            if not (_is_int(value) and 1 <= value <= 100):
                raise _Bad(f"{key} is a number of answers, 1-100")
            return {"do": key, "count": value}
        if key == "decline_next":
            count = v.get("count", 1)
            if not (isinstance(value, str) and len(value) == 2 and value.isalnum() and value != "00"):
                raise _Bad('decline_next is a two-character response code other than "00", e.g. "51"')
            if not (_is_int(count) and 1 <= count <= 100):
                raise _Bad("count is 1-100")
            return {"do": key, "code": value, "count": count}
        if key == "upload_fail":
            count = v.get("count", 1)
            if not (value in UPLOAD_FAULTS or (isinstance(value, str) and len(value) == 2 and value.isalnum()
                                               and value not in ("00", "94"))):
                raise _Bad('upload_fail is "silent" (stored, the answer lost), "ignore" (neither stored nor '
                           'answered) or a two-character response code other than "00" and "94", e.g. "96"')
            if not (_is_int(count) and 1 <= count <= 100):
                raise _Bad("count is 1-100")
            return {"do": key, "fault": value, "count": count}
        if key == "latency":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_LATENCY_S:
                raise _Bad(f"latency is seconds of virtual time, 0 (none) to {MAX_LATENCY_S:g}")
            return {"do": "latency", "seconds": float(value)}
        if value not in ("after-booking", "before-booking"):
            raise _Bad('drop_on_next_request is "after-booking" or "before-booking"')
        return {"do": "drop-on-next-request", "processed": value == "after-booking"}

    def _printer(self, v: Any) -> dict[str, Any]:
        if isinstance(v, str) and v in PRINTER_WORDS:
            return {"do": v}
        if isinstance(v, dict) and set(v) == {"paper_out_at"} and v["paper_out_at"] in COPIES:
            return {"do": "paper-out-at", "copy": v["paper_out_at"]}
        raise _Bad(f"want one of {', '.join(PRINTER_WORDS)} or {{paper_out_at = \"merchant\"|\"cardholder\"}}")

    def _device(self, v: Any) -> dict[str, Any]:
        """`device = {family = "card-reader", control = "fault nak-storm"}`: one control line to the
        emulator of any registered family (the registry is the vocabulary)."""
        from terminal import devices
        from terminal.errors import ConfigError

        _table(v, required={"family", "control"}, allowed={"family", "control"})
        if not isinstance(v["family"], str) or not isinstance(v["control"], str) or not v["control"].strip():
            raise _Bad("device wants family = NAME and control = LINE, both strings")
        try:
            row = devices.family(v["family"])
        except ConfigError as exc:
            raise _Bad(str(exc)) from None
        if row.emulator is None:
            raise _Bad(f"device family {row.url_kind!r} has no emulator to control")
        return {"slot": row.family, "control": v["control"].strip()}

    def _advance(self, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= MAX_ADVANCE_S:
            raise _Bad(f"advance is a number of seconds, more than 0 and at most {MAX_ADVANCE_S:g}")
        return float(v)

    def _power(self, v: Any) -> dict[str, Any]:
        if v in ("loss", "off", "on"):
            return {"do": v}
        if isinstance(v, dict) and set(v) == {"loss_at"} and isinstance(v["loss_at"], str):
            point = v["loss_at"]
            if point in CUT_POINTS:
                return {"do": "loss-at", "at": point}
            if point.upper() in CheckoutState.__members__:
                return {"do": "loss-at", "at": point.upper()}
            raise _Bad(f"loss_at is a checkout state name or one of {', '.join(CUT_POINTS)}, not {point!r}")
        raise _Bad('want "loss", "off", "on" or {loss_at = "AUTHORIZING"}')

    def _operator(self, v: Any) -> dict[str, Any]:
        if isinstance(v, str) and v in OPERATOR_WORDS:
            return {"do": v, "copy": "cardholder"}
        if isinstance(v, dict) and set(v) == {"reprint"} and v["reprint"] in COPIES:
            return {"do": "reprint", "copy": v["reprint"]}
        if isinstance(v, dict) and set(v) == {"void"} and isinstance(v["void"], str):
            self.sales += 1  # a credit is a sale of its own for the checks after it
            return {"do": "void", "sale": v["void"], "amount": None}
        if isinstance(v, dict) and set(v) == {"refund", "amount"} and isinstance(v["refund"], str):
            self.sales += 1
            return {"do": "refund", "sale": v["refund"], "amount": self._amount(v["amount"])}
        raise _Bad(f"want one of {', '.join(OPERATOR_WORDS)}, {{reprint = \"merchant\"|\"cardholder\"}}, "
                   '{void = "sale-1"} or {refund = "sale-1", amount = "5.00"}')

    def _expect(self, v: Any) -> dict[str, Any]:
        if not isinstance(v, dict) or not v:
            raise _Bad("expect is a table of checks, e.g. {state = \"IDLE\"}")
        for key, value in v.items():
            if key not in EXPECT_KEYS:
                raise _Bad(f"unknown check {key!r} (known: {', '.join(EXPECT_KEYS)})")
            words, ok = EXPECT_KEYS[key]
            if not ok(value):
                raise _Bad(f"{key} must be {words}")
        label = v.get("sale")
        if label is not None:
            number = label.removeprefix("sale-")
            if not (label.startswith("sale-") and number.isdigit() and 1 <= int(number) <= self.sales):
                raise _Bad(f"sale {label!r} is not an earlier sale step (sale-1 .. sale-{self.sales})")
        return dict(v)


class _Bad(Exception):
    """What is wrong with one step's argument (becomes a ScenarioError naming the step)."""


def _table(v: Any, *, required: set[str], allowed: set[str]) -> None:
    if not isinstance(v, dict):
        raise _Bad(f"want a table with {', '.join(sorted(required))}")
    missing, extra = required - set(v), set(v) - allowed
    if missing:
        raise _Bad(f"missing {', '.join(sorted(missing))}")
    if extra:
        raise _Bad(f"unknown key(s) {', '.join(sorted(extra))} (allowed: {', '.join(sorted(allowed))})")
