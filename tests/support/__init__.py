"""Shared pieces of the reliability and system tests (the pure checkout model, the harness)."""
