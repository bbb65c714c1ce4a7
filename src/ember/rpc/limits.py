"""The bounds an RPC connection runs under: deadlines by class, buffers, caps.

Every method has a *deadline class* (named in ``ember.protocol.messages``),
and :meth:`Connection.call` applies its class's deadline when the caller
passes none:

=============  =========================================  ===============================
class          for                                        deadline (``Config`` knob)
=============  =========================================  ===============================
``control``    short request/reply RPCs                   ``rpc_control_deadline_s``
``long_poll``  waits bounded by the request's             its ``timeout_s`` +
               ``timeout_s`` (``get_actor_info``, ...)    ``rpc_long_poll_grace_s``;
                                                          none when it has no bound
``push``       a task / actor call / lease whose reply    ``rpc_push_deadline_s``
               waits on user code or resources            (0: none; ends with the
                                                          connection)
``transfer``   one object-transfer chunk                  ``rpc_transfer_deadline_s``
=============  =========================================  ===============================
"""

from __future__ import annotations

import dataclasses

from ember.common.config import Config
from ember.rpc.framing import MAX_FRAME_BYTES

DEADLINE_CLASSES = ("control", "long_poll", "push", "transfer")


@dataclasses.dataclass(frozen=True)
class Limits:
    """Deadlines and bounds for the connections of one process."""

    control_deadline_s: float = 60.0
    long_poll_grace_s: float = 30.0
    transfer_deadline_s: float = 120.0
    push_deadline_s: float = 0.0
    handshake_deadline_s: float = 5.0
    write_high_water_bytes: int = 16 * 1024 * 1024
    max_frame_bytes: int = MAX_FRAME_BYTES
    max_unauthenticated: int = 512
    max_unauthenticated_per_source: int = 128
    refusal_log_interval_s: float = 10.0

    @classmethod
    def from_config(cls, config: Config) -> Limits:
        """The ``rpc_*`` knobs of ``config``."""
        return cls(
            **{
                f.name: getattr(config, "rpc_" + f.name)
                for f in dataclasses.fields(cls)
            }
        )

    def deadline(self, cls_name: str) -> float | None:
        """The deadline of a class: seconds, None for none, ``-grace`` for long polls."""
        if cls_name == "long_poll":
            return -self.long_poll_grace_s if self.long_poll_grace_s > 0 else -1e-9
        seconds = {
            "control": self.control_deadline_s,
            "push": self.push_deadline_s,
            "transfer": self.transfer_deadline_s,
        }[cls_name]
        return seconds if seconds > 0 else None
