"""Device side of every protocol, plus the acquirer host simulator.

Emulators are real peers: they speak the same bytes as the device through the shared codecs in
`drivers/*/codec.py`, keep the device's state (paper, card, buffers) and fail the way it fails.
They never import `terminal/` or a driver.
"""
