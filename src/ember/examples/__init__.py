"""Runnable example programs taken from the seed workloads (import ember as ray)."""
