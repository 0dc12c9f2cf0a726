"""Card reader / PIN pad family: `tlv` (EMV BER-TLV), `events` (the message set), `messages`
(its payload layout), `codec` (sans-I/O framing + ACK/NAK, both roles) and `driver` (the host
end over a port).

Import the submodules directly; this package imports nothing so that the emulator can use the
codec without pulling in the driver (and pyserial) behind it.
"""

__all__: list[str] = []
