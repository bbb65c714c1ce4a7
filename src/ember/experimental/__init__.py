"""Experimental APIs, as ``ray.experimental``: ``tqdm_ray`` (progress bars from tasks)."""

from __future__ import annotations
