"""Receipts: what a copy says (layout.py) and the spool that prints whole copies (spool.py)."""
