"""Tests for the ``tokenward`` command-line tool (a package so helper names stay local)."""
