"""Benchmark commands (``python -m benchmarks.<name>``): each prints its figures and writes a JSON record."""
