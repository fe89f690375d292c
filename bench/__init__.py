"""Benchmarks of affelios-import: `make bench` (see bench/README.md)."""
