"""The till's operators and their wrong-PIN counters: `var/operators.json`, mode 0600.

Operators live in the data folder, not in the shipped profile: a profile file is world-readable
and ships with the software, and a 4-digit PIN under its PBKDF2 hash falls offline in minutes to
anyone who can read the hash. The file is replaced atomically on every change (files.py), and it
also keeps the wrong-PIN counters, so a restart does not reset a lockout.

Managed with `till operators add|list|disable|enable|reset-pin|remove` (`till operator` is the
same command) or this module's `OperatorStore`. A store
that does not exist yet is seeded once from the profile's `[[operators]]` (migration for older
profiles; the shipped profiles list none) or, in the emulated world, with the documented test
operators (sim/operators.py).

A disabled operator stays in the file (the audit trail names them; their id is not given to
anyone else) but can no longer sign in or approve (access.py). The last enabled supervisor cannot
be disabled: nobody could settle, void or refund any more.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from drivers.record import Record, replace
from terminal.errors import ConfigError, InputError
from terminal.security.files import write_private

__all__ = ["DUMMY_HASH", "ROLES", "Operator", "OperatorStore", "hash_pin", "pin_ok"]

ROLES = ("cashier", "supervisor", "technician")
PBKDF2_ITERATIONS = 100_000
# Checked when the operator is unknown or locked out, so every answer costs one full KDF: the
# answer's time does not tell a known operator from an unknown one (the digest never matches).
DUMMY_HASH = f"pbkdf2_sha256${PBKDF2_ITERATIONS}${'00' * 16}${'0' * 64}"
_MAX_COUNTERS = 256  # wrong-PIN counters kept (unknown ids count too); the oldest go first
_FILE_VERSION = 1


class Operator(Record):
    id: str
    role: str
    pin_hash: str
    disabled: bool = False


def hash_pin(pin: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    import hashlib  # lazy: not needed to start (hashlib loads OpenSSL)
    import os

    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations).hex()
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest}"


def pin_ok(pin: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, _ = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256" or not iterations.isdigit():
        return False
    import hmac  # lazy, as hashlib above

    return hmac.compare_digest(hash_pin(pin, salt=bytes.fromhex(salt), iterations=int(iterations)), stored)


def check_new_pin(pin: str) -> str:
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 12):
        raise InputError("密码须为4-12位数字 / a PIN is 4 to 12 digits")
    return pin


class OperatorStore:
    """Read on every use (a `till operator` command may have changed it), written whole."""

    def __init__(self, path: Path, *, seed: Iterable[Mapping[str, Any]] = (), create: bool = True) -> None:
        self.path = path
        if create and not path.exists():
            seeded = [Operator(id=str(o["id"]), role=str(o["role"]), pin_hash=str(o["pin_hash"])) for o in seed]
            self._write({o.id: o for o in seeded}, {})

    # -- operators ---------------------------------------------------------------------------
    def operators(self) -> dict[str, Operator]:
        return self._read()[0]

    def get(self, operator_id: str) -> Operator | None:
        return self.operators().get(operator_id)

    def add(self, operator_id: str, role: str, pin: str) -> Operator:
        if not operator_id or len(operator_id) > 32 or not operator_id.isprintable() or " " in operator_id:
            raise InputError("操作员编号须为1-32个字符 / an operator id is 1 to 32 characters, no spaces")
        if role not in ROLES:
            raise InputError(f"角色无效 / role is one of {', '.join(ROLES)}, not {role!r}")
        operators, counters = self._read()
        if operator_id in operators:
            raise InputError(f"操作员已存在 / operator {operator_id} exists already (reset-pin changes a PIN)")
        operators[operator_id] = Operator(id=operator_id, role=role, pin_hash=hash_pin(check_new_pin(pin)))
        self._write(operators, counters)
        return operators[operator_id]

    def remove(self, operator_id: str) -> None:
        operators, counters = self._read()
        if operators.pop(operator_id, None) is None:
            raise InputError(f"无此操作员 / no operator {operator_id}")
        counters.pop(operator_id, None)
        self._write(operators, counters)

    def set_pin(self, operator_id: str, pin: str) -> None:
        """A new PIN; it also lifts a lockout (the operator proved who they are to whoever set it)."""
        operators, counters = self._read()
        old = operators.get(operator_id)
        if old is None:
            raise InputError(f"无此操作员 / no operator {operator_id}")
        operators[operator_id] = Operator(id=old.id, role=old.role, pin_hash=hash_pin(check_new_pin(pin)),
                                          disabled=old.disabled)  # a new PIN does not re-enable
        counters.pop(operator_id, None)
        self._write(operators, counters)

    def disable(self, operator_id: str) -> Operator:
        """The operator can no longer sign in or approve; kept for the audit trail. Refused for the
        last enabled supervisor (nobody could settle, void or refund)."""
        operators, counters = self._read()
        old = operators.get(operator_id)
        if old is None:
            raise InputError(f"无此操作员 / no operator {operator_id}")
        if old.disabled:
            raise InputError(f"操作员已停用 / operator {operator_id} is disabled already")
        if old.role == "supervisor" and not any(o.role == "supervisor" and not o.disabled and o.id != old.id
                                                for o in operators.values()):
            raise InputError(f"不能停用最后一名主管 / {operator_id} is the last enabled supervisor: nobody could "
                             "settle, void or refund; add another supervisor first")
        operators[operator_id] = replace(old, disabled=True)
        self._write(operators, counters)
        return operators[operator_id]

    def enable(self, operator_id: str) -> Operator:
        """Undo `disable` (the PIN is the one the operator had)."""
        operators, counters = self._read()
        old = operators.get(operator_id)
        if old is None:
            raise InputError(f"无此操作员 / no operator {operator_id}")
        if not old.disabled:
            raise InputError(f"操作员未停用 / operator {operator_id} is not disabled")
        operators[operator_id] = replace(old, disabled=False)
        self._write(operators, counters)
        return operators[operator_id]

    # -- wrong-PIN counters (any id, known or not: the same answer for both) ----------------------
    def failures(self, operator_id: str) -> tuple[int, float]:
        """(consecutive wrong PINs, locked until: a wall-clock timestamp, 0 when not locked)."""
        entry = self._read()[1].get(operator_id, {})
        return int(entry.get("count", 0)), float(entry.get("locked_until", 0.0))

    def record_failure(self, operator_id: str, *, count: int, locked_until: float, at: float) -> None:
        operators, counters = self._read()
        counters[operator_id] = {"count": count, "locked_until": locked_until, "at": at}
        if len(counters) > _MAX_COUNTERS:  # bounded: the longest-quiet ids go first
            for stale in sorted(counters, key=lambda k: float(counters[k].get("at", 0.0)))[:-_MAX_COUNTERS]:
                del counters[stale]
        self._write(operators, counters)

    def clear_failures(self, operator_id: str) -> None:
        operators, counters = self._read()
        if counters.pop(operator_id, None) is not None:
            self._write(operators, counters)

    # -- the file ----------------------------------------------------------------------------
    def _read(self) -> tuple[dict[str, Operator], dict[str, dict[str, float]]]:
        try:
            doc = json.loads(self.path.read_bytes())
            operators = {op.id: op for op in map(_operator, doc["operators"])}
            counters = {str(k): dict(v) for k, v in dict(doc.get("failures", {})).items()}
        except FileNotFoundError:
            raise ConfigError(f"操作员文件缺失 / {self.path} is missing: `till operator add` creates it") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"操作员文件损坏 / {self.path} cannot be read ({type(exc).__name__}); "
                              "restore it from a backup or re-create the operators") from None
        return operators, counters

    def _write(self, operators: Mapping[str, Operator], counters: Mapping[str, Mapping[str, float]]) -> None:
        doc = {"version": _FILE_VERSION,
               "operators": [{"id": o.id, "role": o.role, "pin_hash": o.pin_hash, "disabled": o.disabled}
                             for o in operators.values()],
               "failures": counters}
        write_private(self.path, json.dumps(doc, indent=1).encode())


def _operator(entry: Mapping[str, Any]) -> Operator:
    disabled = entry.get("disabled", False)
    if not isinstance(disabled, bool):  # fail closed: a damaged flag is a damaged file, not "enabled"
        raise TypeError("disabled is true or false")
    return Operator(id=str(entry["id"]), role=str(entry["role"]), pin_hash=str(entry["pin_hash"]), disabled=disabled)
