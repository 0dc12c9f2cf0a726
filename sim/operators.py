"""The emulated terminal's test operators (docs/access.md), seeded into a new var/ by the emulated
world. Test credentials only: a real till's operators are added with `till operator add`. The
hashes are precomputed so a fresh var/ costs no PBKDF2 runs."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from terminal.security.operators import OperatorStore

__all__ = ["TEST_OPERATORS", "seed_test_operators"]

TEST_OPERATORS: Final = (  # id, role, PIN (in docs/access.md), PBKDF2 hash of the PIN
    {"id": "cashier-1", "role": "cashier", "pin_hash": "pbkdf2_sha256$100000$ae0745f78d445ef1708377c950255877$"
     "dd1084192feffa5b29b28861d6a9a751f14f6322d4a019221661b7b18fbf2f9a"},
    {"id": "supervisor-1", "role": "supervisor", "pin_hash": "pbkdf2_sha256$100000$31dbeaddc51c43a5857c46f8b634293c$"
     "1467537d85ee327e645119141a540dcb99e081c7e80e8b5bb21a114bf85c818e"},
    {"id": "supervisor-2", "role": "supervisor", "pin_hash": "pbkdf2_sha256$100000$7867224c0cec6a7c7dd38f8a4b80a554$"
     "2be6c6ef3b1eb96054129dab905a4845d0054946f64072db3d7c94f2a60ada00"},
    {"id": "technician-1", "role": "technician", "pin_hash": "pbkdf2_sha256$100000$ce1775898b8f645c4fd738366e264779$"
     "1c546f552d6a7d184687e62eaa6295899e22a571fc5158e205bdc0be4b190562"},
)


def seed_test_operators(var_dir: Path) -> None:
    """Once: a var/ that has an operator file keeps it (PINs may have been changed)."""
    OperatorStore(var_dir / "operators.json", seed=TEST_OPERATORS)
