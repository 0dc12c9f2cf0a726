"""The cash drawer family: host side (events, codec, driver) and device side (emulator, control)."""
