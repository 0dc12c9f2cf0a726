"""Host side of every device family: sans-I/O codecs, events, and drivers that own a port."""
