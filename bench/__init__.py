"""Benchmarks, each with its own command (README, Performance; docs/performance.md)."""
