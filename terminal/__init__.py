"""The till itself: checkout machine, runtime, journal, host link, receipts. Never imports emulator/
(except the composition root, terminal/app.py)."""
