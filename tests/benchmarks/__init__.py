"""Benchmarks run by `make bench` (not by pytest): each bench_*.py module has run()."""
