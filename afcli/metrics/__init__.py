"""Benchmark metrics, each computed exactly as its official code does (formulas and sources in each module)."""
