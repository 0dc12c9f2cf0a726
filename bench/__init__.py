"""Benchmarks: `python -m bench` prints one JSON object. Every figure is a median over repeated
runs, next to a baseline measured in the same run, so ratios hold across machines."""
