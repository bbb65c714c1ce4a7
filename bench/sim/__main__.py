"""``python -m sim`` (``bench`` on the path): one node simulator process."""

from __future__ import annotations

from sim.process import main

main()
