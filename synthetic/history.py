"""Which (viewer, candidate) pairs were shown before, how often, and whether the viewer dismissed them.

Why state across days: fatigue (each earlier showing of a pair lowers the chance of a click or an invite)
and "a dismissed pair is rarely invited later" are effects of the past, and they are what the features
job's `times shown in 28 days` and `previously dismissed` measure. Kept as sorted arrays of pair keys, so a
day's look-up and update are one searchsorted and one merge, whatever the day's volume.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KEY_SHIFT = np.int64(1 << 32)  # member indices stay far below 2**32


def pair_keys(viewer: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    return np.asarray(viewer, np.int64) * KEY_SHIFT + np.asarray(candidate, np.int64)


@dataclass
class PairHistory:
    keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # sorted, distinct
    shown: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    dismissed: np.ndarray = field(default_factory=lambda: np.empty(0, bool))

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(times shown on earlier days, dismissed on an earlier day) per key."""
        if len(self.keys) == 0:
            return np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        found = self.keys[at] == keys
        return np.where(found, self.shown[at], 0), found & self.dismissed[at]

    def record(self, shown_keys: np.ndarray, dismissed_keys: np.ndarray) -> None:
        """Add one day: every impression's key (repeats count) and the keys the viewer dismissed."""
        new, gone = len(shown_keys), len(dismissed_keys)
        keys = np.concatenate((self.keys, shown_keys, dismissed_keys))
        shown = np.concatenate((self.shown, np.ones(new, np.int64), np.zeros(gone, np.int64)))
        dismissed = np.concatenate((self.dismissed, np.zeros(new, bool), np.ones(gone, bool)))
        order = np.argsort(keys, kind="stable")
        keys, shown, dismissed = keys[order], shown[order], dismissed[order]
        if len(keys) == 0:
            return
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        self.keys = keys[starts]
        self.shown = np.add.reduceat(shown, starts)
        self.dismissed = np.logical_or.reduceat(dismissed, starts)


def earlier_today(keys: np.ndarray, shown_at: np.ndarray) -> np.ndarray:
    """Per impression: how many impressions of the same pair came before it today (ts, then row order)."""
    order = np.lexsort((np.arange(len(keys)), shown_at, keys))
    ordered = keys[order]
    is_first = np.concatenate(([True], ordered[1:] != ordered[:-1])) if len(keys) else np.empty(0, bool)
    group_start = np.maximum.accumulate(np.where(is_first, np.arange(len(keys)), 0)) if len(keys) else is_first
    rank = np.empty(len(keys), np.int64)
    rank[order] = np.arange(len(keys)) - group_start
    return rank
