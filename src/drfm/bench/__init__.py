"""Reproducible speed and memory benchmarks behind `drfm bench`; each prints a table and can write JSON."""
