"""Benchmark harness: per-stage wall time and peak memory (not part of the test suite)."""
