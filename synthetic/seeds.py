"""Named random streams: one `numpy.random.Generator` per (purpose, day), derived from the run's seed.

Why: drawing every table from one shared generator would make adding a table, or one more draw, shift
every number after it. A stream keyed by a stable name (crc32, never Python's salted `hash`) and the day
index keeps each table's output fixed while the rest of the generator changes.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, purpose: str, day: int = 0) -> np.random.Generator:
    """The PCG64 generator for one purpose on one day (day 0 is the first generated day)."""
    key = (zlib.crc32(purpose.encode("utf-8")), day)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def stochastic_round(rng: np.random.Generator, expected: float) -> int:
    """An integer count whose mean is `expected` (so small shares still happen, on average, at the right rate)."""
    whole = int(np.floor(expected))
    return whole + int(rng.random() < expected - whole)
