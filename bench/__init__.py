"""Benchmarks, each with its own command (see README, Performance)."""
