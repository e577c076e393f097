"""A malicious client for measuring robust aggregation (``python -m ser_edge.fl.bench attacks``):
a ClientApp mod that turns the honest training reply of partition ``attacker`` into one of the
attacks of issue 14. The other clients stay honest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Error, Message, MessageType

#: attack name -> what the malicious client sends
ATTACKS = {
    "scale": "its weights x 1e30",
    "flip": "its update sign-flipped and x 100 (global - 100 x update)",
    "examples": "num-examples = 1e12",
    "examples-1e308": "num-examples = 1e308",
    "max-values": "every weight the largest finite value of its dtype (1e308 in float64, 3.4e38 in float32)",
    "nan": "NaN weights",
}

#: not an attack: the baseline an attacker that is left out of every round is compared with
ABSENT = {"absent": "declines every training round (the run has 7 honest clients)"}


def _attacked(kind: str, new: list[np.ndarray], old: list[np.ndarray]) -> list[np.ndarray]:
    if kind == "scale":
        return [(a.astype(np.float64) * 1e30).astype(a.dtype) for a in new]
    if kind == "flip":
        return [(b - 100.0 * (a - b)).astype(a.dtype) for a, b in zip(new, old)]
    if kind == "max-values":
        return [np.full_like(a, np.finfo(a.dtype).max) for a in new]
    if kind == "nan":
        return [np.full_like(a, np.nan) for a in new]
    return new


def attack_mod(kind: str, attacker: int = 0) -> Callable[[Message, Context, Any], Message]:
    """The mod: the client whose ``partition-id`` is ``attacker`` sends attack ``kind`` (or, for
    ``absent``, declines to train)."""
    if kind not in ATTACKS and kind not in ABSENT:
        raise ValueError(f"attack={kind!r}; choose from {', '.join([*ATTACKS, *ABSENT])}")

    def mod(msg: Message, context: Context, call_next: Any) -> Message:
        if kind in ABSENT and int(context.node_config.get("partition-id", -1)) == attacker:
            return Message(error=Error(code=100, reason="declined: absent"), reply_to=msg)
        reply = call_next(msg, context)
        if (
            msg.metadata.message_type != MessageType.TRAIN
            or reply.has_error()
            or int(context.node_config.get("partition-id", -1)) != attacker
        ):
            return reply
        old = msg.content.array_records["arrays"].to_numpy_ndarrays()
        arrays = reply.content["arrays"]
        new = _attacked(kind, arrays.to_numpy_ndarrays(), old)
        reply.content["arrays"] = ArrayRecord({k: Array(v) for k, v in zip(arrays.keys(), new)})
        if kind.startswith("examples"):
            reply.content["metrics"]["num-examples"] = 1e308 if kind == "examples-1e308" else 1e12
        return reply

    return mod
