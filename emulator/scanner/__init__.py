"""The emulated barcode / QR scanner (emulator.py) and its control vocabulary (control.py)."""
