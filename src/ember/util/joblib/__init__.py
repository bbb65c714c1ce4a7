"""joblib on ember: ``register_ray()`` makes ``parallel_backend("ray")`` run batches as tasks.

After ``register_ray()`` (or ``register_ember()``, which registers the name
"ember"), ``with joblib.parallel_backend("ray"): ...`` sends every batch that
joblib (and so scikit-learn's ``n_jobs``) dispatches to the cluster as one
ember task; ``n_jobs=-1`` means the cluster's CPUs. ember is started with
``ember.init()`` on first use if the program has not connected yet (so
``EMBER_ADDRESS``/``RAY_ADDRESS`` pick the cluster).
"""

from __future__ import annotations


def _register(name: str) -> None:
    try:
        from joblib.parallel import register_parallel_backend

        from ember.util.joblib.backend import EmberBackend
    except ImportError as exc:
        raise ImportError(
            "the joblib backend needs joblib: pip install joblib "
            "(or: pip install 'ember[dask]')"
        ) from exc
    register_parallel_backend(name, EmberBackend)


def register_ray() -> None:
    """Register the backend as ``"ray"``: ``joblib.parallel_backend("ray")``."""
    _register("ray")


def register_ember() -> None:
    """Register the backend as ``"ember"``: ``joblib.parallel_backend("ember")``."""
    _register("ember")


__all__ = ["register_ember", "register_ray"]
