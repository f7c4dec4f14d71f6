"""Benchmarks for tokenward (run as scripts, e.g. ``python benchmarks/codec.py``)."""
