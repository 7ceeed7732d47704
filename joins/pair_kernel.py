"""The numba kernel of pair graph features: per (member, candidate) pair, intersect the two sorted
neighbour lists of a CSR and sum over the common neighbours z.

Why intersect per pair instead of a join: a join of pairs with adjacency rows materialises a hub's whole
neighbourhood once per pair that touches the hub. Here each pair reads its two CSR rows in place. When one
list is much shorter than the other (a leaf paired with a hub) every element of the short list is found
in the long one by galloping (exponential then binary search, resuming where the last one stopped), so a
pair costs O(min * log(max / min)) instead of O(min + max); otherwise a linear merge is cheaper.

Why the sums are exact and reproducible: both paths visit the common neighbours in ascending dense index
order, which is ascending member id order (`joins.csr`), and add each term to one float64 accumulator in
that order. The result depends only on the graph and the pair, never on the path, the task or the
partitioning. Terms per common neighbour z of degree d(z) (>= 2, since z knows both ends, except in the
degenerate pair (a, a), where a neighbour of degree 1 adds no adamic_adar term instead of 1 / ln 1):
- adamic_adar += 1 / ln d(z)
- resource_allocation += 1 / d(z)
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

INDEX_DTYPE = np.int32
OFFSET_DTYPE = np.int64
# Gallop when the long list is at least this many times the short one: below it a merge reads fewer entries.
GALLOP_FACTOR = 8


class PairKernelInputInvalid(ValueError):
    """The arrays handed to the kernel do not describe a CSR and pairs of its nodes."""


@njit(cache=True, nogil=True)
def _first_at_least(indices, pos, hi, z):  # pragma: no cover - numba
    """The first position p in [pos, hi) with indices[p] >= z (hi when none), by galloping from pos."""
    if pos >= hi or indices[pos] >= z:
        return pos
    prev = pos
    step = 1
    nxt = pos + 1
    while nxt < hi and indices[nxt] < z:
        prev = nxt
        step *= 2
        nxt = pos + step
    lo = prev + 1
    top = nxt if nxt < hi else hi
    while lo < top:
        mid = (lo + top) >> 1
        if indices[mid] < z:
            lo = mid + 1
        else:
            top = mid
    return lo


@njit(cache=True, nogil=True)
def _pair_sums(indptr, indices, a_idx, c_idx, gallop_factor):  # pragma: no cover - numba
    n = a_idx.shape[0]
    common = np.zeros(n, dtype=np.int32)
    adamic_adar = np.zeros(n, dtype=np.float64)
    resource_allocation = np.zeros(n, dtype=np.float64)
    for p in range(n):
        a = a_idx[p]
        c = c_idx[p]
        if a < 0 or c < 0:
            continue
        a_lo, a_hi = indptr[a], indptr[a + 1]
        c_lo, c_hi = indptr[c], indptr[c + 1]
        if a_hi - a_lo <= c_hi - c_lo:
            s_lo, s_hi, l_lo, l_hi = a_lo, a_hi, c_lo, c_hi
        else:
            s_lo, s_hi, l_lo, l_hi = c_lo, c_hi, a_lo, a_hi
        n_short = s_hi - s_lo
        if n_short == 0:
            continue
        count = 0
        aa = 0.0
        ra = 0.0
        if (l_hi - l_lo) >= gallop_factor * n_short:
            pos = l_lo
            for i in range(s_lo, s_hi):
                z = indices[i]
                pos = _first_at_least(indices, pos, l_hi, z)
                if pos >= l_hi:
                    break
                if indices[pos] == z:
                    d = indptr[z + 1] - indptr[z]
                    count += 1
                    if d > 1:
                        aa += 1.0 / math.log(d)
                    ra += 1.0 / d
                    pos += 1
        else:
            i = s_lo
            j = l_lo
            while i < s_hi and j < l_hi:
                x = indices[i]
                y = indices[j]
                if x < y:
                    i += 1
                elif y < x:
                    j += 1
                else:
                    d = indptr[x + 1] - indptr[x]
                    count += 1
                    if d > 1:
                        aa += 1.0 / math.log(d)
                    ra += 1.0 / d
                    i += 1
                    j += 1
        common[p] = count
        adamic_adar[p] = aa
        resource_allocation[p] = ra
    return common, adamic_adar, resource_allocation


def pair_sums(
    indptr: np.ndarray, indices: np.ndarray, a_idx: np.ndarray, c_idx: np.ndarray,
    gallop_factor: int = GALLOP_FACTOR,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(common, adamic_adar, resource_allocation) per pair of dense node indices (-1: a member with no
    edges, whose sums are 0). `gallop_factor` 1 forces galloping, a huge one forces the merge (tests).

    Checks the arrays on entry, because an out-of-range index inside numba is a silent memory error.
    """
    expected = {"indptr": (indptr, OFFSET_DTYPE), "indices": (indices, INDEX_DTYPE),
                "a_idx": (a_idx, INDEX_DTYPE), "c_idx": (c_idx, INDEX_DTYPE)}
    wrong = {name: str(arr.dtype) for name, (arr, dtype) in expected.items() if arr.dtype != dtype}
    if wrong:
        raise PairKernelInputInvalid(f"expected int64 offsets and int32 indices, found dtypes {wrong}")
    if a_idx.shape != c_idx.shape or a_idx.ndim != 1:
        raise PairKernelInputInvalid(f"a_idx and c_idx must be 1-d and aligned, found {a_idx.shape} and "
                                     f"{c_idx.shape}")
    n_nodes = indptr.shape[0] - 1
    if n_nodes < 0 or (indptr.size and indptr[-1] != indices.shape[0]):
        raise PairKernelInputInvalid(f"indptr must end at len(indices)={indices.shape[0]}")
    for name, idx in (("a_idx", a_idx), ("c_idx", c_idx)):
        if idx.size and (int(idx.max()) >= n_nodes or int(idx.min()) < -1):
            raise PairKernelInputInvalid(f"{name} must be in -1..{n_nodes - 1}, found "
                                         f"{int(idx.min())}..{int(idx.max())}")
    if gallop_factor < 1:
        raise PairKernelInputInvalid(f"gallop_factor must be >= 1, found {gallop_factor}")
    return _pair_sums(indptr, indices, a_idx, c_idx, np.int64(gallop_factor))


@njit(cache=True, nogil=True)
def has_edges(indptr, indices, a, c):  # pragma: no cover - numba
    """Per pair of dense indices (-1: no edges), whether c[i] is a neighbour of a[i]: a binary search in
    a[i]'s sorted neighbour list, so a hub costs log of its degree, never the list."""
    out = np.zeros(a.shape[0], dtype=np.bool_)
    for i in range(a.shape[0]):
        if a[i] < 0 or c[i] < 0:
            continue
        lo, end = indptr[a[i]], indptr[a[i] + 1]
        hi = end
        while lo < hi:
            mid = (lo + hi) >> 1
            if indices[mid] < c[i]:
                lo = mid + 1
            else:
                hi = mid
        out[i] = lo < end and indices[lo] == c[i]
    return out


def dense_index(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Position of each id in sorted_ids (a CSR's `ids`), or -1 for a member with no edges."""
    if sorted_ids.shape[0] == 0:
        return np.full(ids.shape[0], -1, dtype=INDEX_DTYPE)
    pos = np.searchsorted(sorted_ids, ids)
    clipped = np.minimum(pos, sorted_ids.shape[0] - 1)
    return np.where(sorted_ids[clipped] == ids, clipped, -1).astype(INDEX_DTYPE)
