"""Domain-agnostic RPC: framing, authenticated connections, servers. Knows nothing of tasks."""
