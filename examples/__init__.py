"""Runnable examples (a package so the tests can import them; run them as scripts)."""
