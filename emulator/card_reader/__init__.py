"""The card reader / PIN pad emulator (emulator.py), its test cards (cards.py, cards.toml), the
emulated card's EMV cryptography (emv.py) and its control vocabulary (control.py)."""
