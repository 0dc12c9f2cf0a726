"""Card data and privileged operations: the PAN as last 4 + a keyed hash (pan.py), operators and
their approvals (access.py), and the hash-chained audit trail (audit.py)."""
