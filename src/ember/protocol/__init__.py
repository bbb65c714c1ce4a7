"""The wire contract: msgspec message structs and the method table."""
