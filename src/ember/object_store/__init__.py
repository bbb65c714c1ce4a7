"""The per-node shared-memory object store (core, mapping helpers)."""
