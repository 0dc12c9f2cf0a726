"""Electronic signature pad family: events, codec (Topaz pen packets + the LCD command frames), driver, strokes."""

__all__: list[str] = []
