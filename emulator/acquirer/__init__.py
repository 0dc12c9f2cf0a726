"""The ISO 8583 acquirer simulator: decisions (core.py), the books (ledger.py), the TCP reactor
(server.py) and the simulator with network faults (simulator.py)."""
