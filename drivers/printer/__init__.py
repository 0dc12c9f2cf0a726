"""ESC/POS receipt printers: events (events.py), the sans-I/O codec (codec.py), the driver (driver.py).

Import the submodules directly; this package module stays empty so that importing the codec does
not import the driver.
"""

__all__: list[str] = []
