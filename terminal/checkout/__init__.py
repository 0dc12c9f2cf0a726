"""The checkout: its rules as data (table.py), the phase modules that carry them out (card,
authorize, outcome, signature, print, idle, settle) over a shared base, composed in flow.py."""
