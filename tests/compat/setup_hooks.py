"""Setup hooks given by module path in tests/compat/test_setup_hook.py."""

from __future__ import annotations

import os


def mark_process() -> None:
    """Count the runs of the hook in this process."""
    os.environ["EMBER_TEST_HOOK_RUNS"] = str(
        int(os.environ.get("EMBER_TEST_HOOK_RUNS", "0")) + 1
    )
