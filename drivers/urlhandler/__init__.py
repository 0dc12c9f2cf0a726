"""pyserial URL handlers: module `protocol_<scheme>` with a `Serial` class each."""
