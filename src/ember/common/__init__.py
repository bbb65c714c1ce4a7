"""Leaf utilities shared by every layer; imports nothing else from ember."""
