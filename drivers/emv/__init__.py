"""EMV helpers shared by the card family and the acquirer family: BER-TLV (tlv.py)."""
