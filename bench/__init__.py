"""Benchmarks for the medallion pipeline: ``python -m bench`` (or ``make bench``). See README.md."""
