"""The public surface: validate input, translate to runtime calls."""
