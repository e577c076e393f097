"""Strict reading of configuration mappings (bundle JSON, recipe TOML): one check for all of them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any


def known_keys(d: Any, known: Iterable[str] | type, what: str, error: type[ValueError] = ValueError) -> dict[str, Any]:
    """``d`` if it is a mapping whose keys are all in ``known`` (names, or a dataclass's init
    fields); otherwise ``error`` naming ``what`` and the unknown keys (never silently ignored)."""
    if isinstance(known, type):
        known = [f.name for f in dataclasses.fields(known) if f.init]
    known = sorted(known)
    if not isinstance(d, dict):
        raise error(f"{what} must be a mapping; got {type(d).__name__}")
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise error(f"{what} has unknown keys: {', '.join(unknown)} (known: {', '.join(known)})")
    return d
