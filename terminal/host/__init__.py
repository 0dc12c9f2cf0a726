"""The terminal's side of the acquirer link: message builders and the TCP client.

The ISO 8583 spec, framing and `HostMessage` live in `drivers/acquirer/` so the acquirer
simulator can share them without importing `terminal/`. Retry, reversal and timeout policy
belong to the runtime (the Clock decides timeouts), not to the client.
"""

from terminal.host.client import HostClient, HostLinkError
from terminal.host.messages import SaleAnswer, parse_sale_response, sale_request

__all__ = ["HostClient", "HostLinkError", "SaleAnswer", "parse_sale_response", "sale_request"]
