"""ember's public names against Ray 2.60's (the table in tests/compat; no Ray needed).

Every Ray Core name must exist in ember with a compatible signature, unless
docs/compat.md lists the difference under "## Open differences". An entry there
that is no longer a difference fails too, so the list stays true.
"""

from __future__ import annotations

import pytest
from tests.unit import surface_diff


@pytest.fixture(scope="module")
def gaps():
    return surface_diff.differences(surface_diff.load_table())


@pytest.fixture(scope="module")
def listed():
    return surface_diff.allowlist()


def test_table_is_generated_from_ray_2_60():
    table = surface_diff.load_table()
    assert table["ray_version"] == "2.60.0"
    assert "GENERATED" in table["_generated"]
    assert "get" in table["modules"]["ray"]
    assert "RuntimeContext" in table["modules"]["ray.runtime_context"]


def test_every_difference_is_closed_or_listed(gaps, listed):
    open_gaps = {
        k: v for k, v in sorted(gaps.items()) if not surface_diff.covered(k, listed)
    }
    assert not open_gaps, (
        "differences from Ray 2.60 not listed in docs/compat.md:\n"
        + ("\n".join(f"- `{k}`: {v}" for k, v in open_gaps.items()))
    )


def test_listed_differences_are_still_open(gaps, listed):
    stale = [k for k in listed if "*" not in k and k not in gaps]
    assert not stale, f"docs/compat.md lists differences that are closed: {stale}"


def test_signature_rules():
    def ray_like(a, b=1, *, c=None):
        pass

    def same(a, b=1, *, c=None, _extra=0):
        pass

    def renamed(a, bb=1, *, c=None):
        pass

    def other_default(a, b=2, *, c=None):
        pass

    def private_required(a, b=1, *, c=None, _x):
        pass

    sig = surface_diff._signature(ray_like)
    assert surface_diff.signature_gap(sig, same) is None
    assert "parameters" in surface_diff.signature_gap(sig, renamed)
    assert "default" in surface_diff.signature_gap(sig, other_default)
    assert "private" in surface_diff.signature_gap(sig, private_required)
