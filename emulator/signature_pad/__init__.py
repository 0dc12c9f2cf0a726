"""Electronic signature pad emulator: emulator, signers, control vocabulary."""
