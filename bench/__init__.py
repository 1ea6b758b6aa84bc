"""Benchmarks: each prints a table with its baseline measured beside it in the same run."""
