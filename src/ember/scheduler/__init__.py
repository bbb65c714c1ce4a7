"""Scheduling policy: pure data and functions (no asyncio, no sockets)."""
