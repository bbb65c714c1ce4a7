"""get_dataset_shard(): this worker's part of a dataset passed to the trainer."""

from __future__ import annotations

from typing import Any

from ember.air import session as air_session


def get_dataset_shard(dataset_name: str | None = None) -> Any:
    """This worker's iterator over ``datasets[dataset_name]`` (``"train"`` if the
    trainer got only that one); None if the trainer got no such dataset."""
    session = air_session.current()
    shards = getattr(session, "shards", None)
    if shards is None:
        raise RuntimeError(
            "get_dataset_shard() works only inside a training function run by a "
            "Trainer that was given datasets="
        )
    if dataset_name is None:
        if len(shards) != 1:
            raise ValueError(
                f"the trainer has datasets {sorted(shards)}: name one "
                "(get_dataset_shard(name))"
            )
        dataset_name = next(iter(shards))
    return shards.get(dataset_name)
