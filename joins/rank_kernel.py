"""The numba kernel of per-member source ranks: for rows grouped by member, each row's 1-based position
among its member's rows that a source proposed, by the source's key descending and candidate id ascending.

Why a kernel: ranking a chunk with numpy's lexsort sorts the whole chunk once per source on four keys
(member, proposed, key, candidate), which was the largest cost of the features job's Python pass. A
member holds a few hundred rows at most (a few sources times their cap), so sorting each member's rows on
their own, in place, reads each row a handful of times.

Order, exactly as the Spark window it replaces: key descending with NaN above every number (as Spark
sorts NaN), then candidate id ascending. The keys arrive as float64; the integer keys (common counts,
overlap days) are far below 2**53, so the conversion keeps their order exactly.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def member_source_ranks(member, candidate, proposed, keys):  # pragma: no cover - numba
    """ranks[s, i]: the rank of row i among its member's rows proposed by source s, 0 when s did not
    propose it. member (int64[n]) must hold each member's rows next to each other; candidate int64[n];
    proposed bool[S, n]; keys float64[S, n]."""
    n = member.shape[0]
    n_sources = proposed.shape[0]
    ranks = np.zeros((n_sources, n), dtype=np.int32)
    lo = 0
    while lo < n:
        hi = lo + 1
        while hi < n and member[hi] == member[lo]:
            hi += 1
        by_candidate = lo + np.argsort(candidate[lo:hi], kind="mergesort")
        for s in range(n_sources):
            rows = np.empty(hi - lo, dtype=np.int64)
            m = 0
            for r in by_candidate:
                if proposed[s, r]:
                    rows[m] = r
                    m += 1
            rows = rows[:m]
            descending = np.empty(m, dtype=np.float64)
            for j in range(m):
                key = keys[s, rows[j]]
                descending[j] = -np.inf if np.isnan(key) else -key
            order = np.argsort(descending, kind="mergesort")  # stable: equal keys keep candidate order
            for position in range(m):
                ranks[s, rows[order[position]]] = position + 1
        lo = hi
    return ranks
