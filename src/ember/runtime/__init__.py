"""The core runtime shared by drivers and workers (ownership, submission, objects)."""
