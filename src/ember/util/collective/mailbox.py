"""The rendezvous of one collective group: a named actor where ranks leave and pick up data.

Every message is addressed by a key ``(kind, seq, src, dst)``: ``kind`` is
``"c"`` for collective operations (``seq`` counts them; every rank calls the
same collectives in the same order) and ``"p"`` for send/recv (``seq`` counts
the messages from ``src`` to ``dst``).  A value is either a small array
carried inline or ``[ObjectRef]`` of a large one in the object store (the
list keeps the ref from being resolved on the way).  A key is picked up once
and then forgotten, so the box holds only what is in flight.  The box also
keeps what ``create_collective_group`` declared (actor ids, ranks).
"""

from __future__ import annotations

import asyncio
from typing import Any

import ember

Key = tuple[str, int, int, int]


class Mailbox:
    """What ranks posted and have not been picked up yet (one per group)."""

    def __init__(self) -> None:
        self._slots: dict[Key, Any] = {}
        self._posted = asyncio.Condition()
        self._info: tuple[Any, ...] | None = None
        self._members: set[int] = set()
        self._world_size = 0

    def ready(self) -> bool:
        return True

    def join(self, rank: int, world_size: int) -> int:
        """A rank joins; every rank must say the same world size."""
        if self._world_size and world_size != self._world_size:
            raise ValueError(
                f"rank {rank} joined with world_size={world_size}, but the group "
                f"was formed with world_size={self._world_size}"
            )
        if rank in self._members:
            raise RuntimeError(f"rank {rank} has already joined this group")
        self._world_size = world_size
        self._members.add(rank)
        return len(self._members)

    def leave(self, rank: int) -> int:
        """A rank leaves (``destroy_collective_group``); how many remain."""
        self._members.discard(rank)
        return len(self._members)

    def set_info(self, *info: Any) -> None:
        self._info = info

    def get_info(self) -> tuple[Any, ...] | None:
        return self._info

    async def post(self, items: list[tuple[Key, Any]]) -> None:
        async with self._posted:
            for key, value in items:
                self._slots[key] = value
            self._posted.notify_all()

    async def fetch(self, keys: list[Key], timeout_s: float) -> tuple[bool, list[Any]]:
        """The values of ``keys`` once all are posted: ``(True, values)``; or,
        after ``timeout_s``, ``(False, the keys still missing)``."""
        wanted = list(keys)
        slots = self._slots

        def arrived() -> bool:
            return all(k in slots for k in wanted)

        async with self._posted:
            try:
                await asyncio.wait_for(self._posted.wait_for(arrived), timeout_s)
            except TimeoutError:
                return False, [k for k in wanted if k not in slots]
            return True, [slots.pop(k) for k in wanted]


#: the actor class (async: many ranks wait in ``fetch`` at once)
MailboxActor = ember.remote(num_cpus=0, max_concurrency=10_000)(Mailbox)


def box_name(group_name: str) -> str:
    """The named actor of a group (Ray's name for its group info actor)."""
    return f"info_{group_name}"


def get_or_create(group_name: str) -> Any:
    """The group's mailbox, made by whichever process asks first."""
    return MailboxActor.options(
        name=box_name(group_name), lifetime="detached", get_if_exists=True
    ).remote()
