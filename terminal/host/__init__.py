"""The terminal's side of the acquirer: message builders (messages.py) and answer parsers
(answers.py), and the desks that own what is owed to the host — reversals (reversal.py), stored
offline sales (advice.py) and the batch (settlement.py).

The ISO 8583 spec, framing, `HostMessage` and the link driver live in `drivers/acquirer/`, so
the acquirer simulator shares them without importing `terminal/`. Retry, reversal and timeout
policy belong to the checkout (the Clock decides timeouts), not to the driver.
"""
