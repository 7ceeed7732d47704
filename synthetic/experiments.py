"""Two PYMK experiments with hash-based, seed-independent assignment, and the effect each one has.

Why hashing: production assigns a member to a variant by hashing (experiment, member_id), so the same
member always lands in the same arm, on any day and in any job, without a lookup. `pymk_ranker_v2`'s
treatment multiplies the invite probability per impression by INVITE_LIFT, a real and clearly measurable
effect for the experiment report; `pymk_layout` changes nothing (an A/A-like check).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

CONTROL, TREATMENT = "control", "treatment"
VARIANTS = (CONTROL, TREATMENT)


@dataclass(frozen=True)
class Experiment:
    name: str
    treatment_share: float
    invite_lift: float  # multiplier on invite probability for treated viewers


RANKER = Experiment("pymk_ranker_v2", 0.5, 1.3)
LAYOUT = Experiment("pymk_layout", 0.5, 1.0)
EXPERIMENTS = (RANKER, LAYOUT)

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a fast, well-mixed 64-bit hash (wrapping arithmetic on uint64)."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return (z ^ (z >> np.uint64(31))) & _MASK


def is_treated(experiment: Experiment, member_ids: np.ndarray) -> np.ndarray:
    """True for members in the treatment arm: hash(experiment salt, member_id) below the treatment share."""
    salt = np.uint64(zlib.crc32(experiment.name.encode("utf-8")) * 0x100000001B3 & 0xFFFFFFFFFFFFFFFF)
    hashed = _splitmix64(np.asarray(member_ids, np.int64).astype(np.uint64) ^ salt)
    unit = (hashed >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return unit < experiment.treatment_share


def invite_multiplier(member_ids: np.ndarray) -> np.ndarray:
    """The product of every experiment's invite lift over the arms each viewer is in."""
    multiplier = np.ones(len(member_ids))
    for experiment in EXPERIMENTS:
        multiplier = np.where(is_treated(experiment, member_ids), multiplier * experiment.invite_lift, multiplier)
    return multiplier
