"""numba kernels of incremental triangle closing: exact common counts for given pairs, and the top K of a
chosen set of source members (not a contiguous range) on a CSR.

Why a per-pair count instead of the wedge counter: a member next to a new connection needs new counts
only for the few candidates at the far end of that connection, so intersecting two sorted neighbour
lists (binary search of the shorter into the longer when one is a hub) costs min-degree * log, not the
member's whole two-hop neighbourhood.

Why the chosen-sources kernel reuses `joins.triangle_kernel.top_k_common`: a recomputed member must get
exactly the rows a full run gives it, so it goes through the very kernel (and its tie-break) the full run
uses; only the source rows are gathered from a list instead of a range.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from joins.triangle_kernel import INDEX_DTYPE, OFFSET_DTYPE, KernelInputInvalid, top_k_common

NEIGHBOUR = -1  # pair_common's value for a pair whose candidate is already a neighbour of the member


@njit(cache=True, nogil=True)
def _lower_bound(indices, lo, hi, value):  # pragma: no cover
    while lo < hi:
        mid = (lo + hi) >> 1
        if indices[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def _pair_common(indptr, indices, xs, cs):  # pragma: no cover
    n = xs.shape[0]
    out = np.empty(n, dtype=np.int32)
    for p in range(n):
        x = xs[p]
        c = cs[p]
        x_lo, x_hi = indptr[x], indptr[x + 1]
        at = _lower_bound(indices, x_lo, x_hi, c)
        if at < x_hi and indices[at] == c:
            out[p] = NEIGHBOUR
            continue
        s_lo, s_hi = x_lo, x_hi
        l_lo, l_hi = indptr[c], indptr[c + 1]
        if s_hi - s_lo > l_hi - l_lo:
            s_lo, s_hi, l_lo, l_hi = l_lo, l_hi, s_lo, s_hi
        count = 0
        n_short, n_long = s_hi - s_lo, l_hi - l_lo
        if n_short * 8 < n_long:
            # one side is much longer (a hub): binary search each short entry, moving the floor up
            lo = l_lo
            for q in range(s_lo, s_hi):
                lo = _lower_bound(indices, lo, l_hi, indices[q])
                if lo == l_hi:
                    break
                if indices[lo] == indices[q]:
                    count += 1
        else:
            i, j = s_lo, l_lo
            while i < s_hi and j < l_hi:
                a = indices[i]
                b = indices[j]
                if a == b:
                    count += 1
                    i += 1
                    j += 1
                elif a < b:
                    i += 1
                else:
                    j += 1
        out[p] = count
    return out


def pair_common(indptr: np.ndarray, indices: np.ndarray, xs: np.ndarray, cs: np.ndarray) -> np.ndarray:
    """|N(x) & N(c)| per pair of dense node indices, or NEIGHBOUR (-1) where c is in N(x).

    The CSR's neighbour lists must be sorted (joins.csr builds them so). Inputs are checked here because
    an out-of-range index inside numba is a silent memory error, not an exception.
    """
    if xs.shape != cs.shape:
        raise KernelInputInvalid(f"xs and cs must align, found {xs.shape} and {cs.shape}")
    n = indptr.shape[0] - 1
    xs = np.ascontiguousarray(xs, dtype=np.int64)
    cs = np.ascontiguousarray(cs, dtype=np.int64)
    if xs.size and (int(min(xs.min(), cs.min())) < 0 or int(max(xs.max(), cs.max())) >= n):
        raise KernelInputInvalid(f"pair indices must lie in 0..{n - 1}")
    return _pair_common(indptr, indices, xs, cs)


def top_k_for_sources(
    indptr: np.ndarray, indices: np.ndarray, sources: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top K per source for the given dense sources (sorted ascending) of a whole CSR; candidates are all
    nodes. Returns (source index, candidate index, common), ordered by source, then common desc, id asc:
    the same rows `triangle_kernel.top_k_for_source_range` gives those sources."""
    sources = np.ascontiguousarray(sources, dtype=np.int64)
    n = indptr.shape[0] - 1
    if sources.size == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty.astype(INDEX_DTYPE), np.empty(0, dtype=np.int32)
    if int(sources.min()) < 0 or int(sources.max()) >= n:
        raise KernelInputInvalid(f"sources must lie in 0..{n - 1}")
    starts, stops = indptr[sources], indptr[sources + 1]
    lengths = stops - starts
    src_ptr = np.zeros(sources.shape[0] + 1, dtype=OFFSET_DTYPE)
    np.cumsum(lengths, out=src_ptr[1:])
    gather = np.repeat(starts - src_ptr[:-1], lengths) + np.arange(int(src_ptr[-1]), dtype=np.int64)
    src_nbr = indices[gather]
    pos, cand, common = top_k_common(src_ptr, src_nbr, src_nbr, sources.astype(INDEX_DTYPE), indptr, indices,
                                     n, k)
    return sources[pos], cand, common


@njit(cache=True, nogil=True)
def _merge_top_k(prev_cand, prev_common, prev_lo, prev_hi, ch_cand, ch_common, ch_lo, ch_hi, k,
                 out_size):  # pragma: no cover
    n_members = prev_lo.shape[0]
    out_pos = np.empty(out_size, dtype=np.int64)
    out_cand = np.empty(out_size, dtype=np.int64)
    out_common = np.empty(out_size, dtype=np.int32)
    n_out = 0
    shift = np.int64(1) << np.int64(31)
    for i in range(n_members):
        lo, hi = ch_lo[i], ch_hi[i]
        m = hi - lo
        changed_keys = np.empty(m, dtype=np.int64)
        for j in range(m):
            changed_keys[j] = (shift - ch_common[lo + j]) * shift + ch_cand[lo + j]
        changed_keys = np.sort(changed_keys)[:k]
        kept_keys = np.empty(prev_hi[i] - prev_lo[i], dtype=np.int64)
        n_kept = 0
        for p in range(prev_lo[i], prev_hi[i]):
            c = prev_cand[p]
            at = _lower_bound(ch_cand, lo, hi, c)
            if at < hi and ch_cand[at] == c:
                continue  # its count changed: the changed pair carries it
            kept_keys[n_kept] = (shift - prev_common[p]) * shift + c
            n_kept += 1
        a, b, taken = 0, 0, 0
        n_changed = changed_keys.shape[0]
        while taken < k and (a < n_kept or b < n_changed):
            if b >= n_changed or (a < n_kept and kept_keys[a] < changed_keys[b]):
                key = kept_keys[a]
                a += 1
            else:
                key = changed_keys[b]
                b += 1
            out_pos[n_out] = i
            out_cand[n_out] = key % shift
            out_common[n_out] = shift - key // shift
            n_out += 1
            taken += 1
    return out_pos[:n_out], out_cand[:n_out], out_common[:n_out]


def merge_top_k(prev_cand: np.ndarray, prev_common: np.ndarray, prev_lo: np.ndarray, prev_hi: np.ndarray,
                ch_cand: np.ndarray, ch_common: np.ndarray, ch_lo: np.ndarray, ch_hi: np.ndarray, k: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per merged member i: the top K of its kept rows prev[prev_lo[i]:prev_hi[i]] (in the contract's order)
    with the changed pairs ch[ch_lo[i]:ch_hi[i]] (sorted by candidate) overriding and joining them.
    Candidates are dense indices (index order = id order). Returns (member position, candidate, common)
    in the contract's order."""
    if k < 1:
        raise KernelInputInvalid(f"k must be >= 1, found {k}")
    kept_len = (prev_hi - prev_lo).astype(np.int64)
    changed_len = (ch_hi - ch_lo).astype(np.int64)
    out_size = int(np.minimum(kept_len + changed_len, k).sum())
    return _merge_top_k(np.ascontiguousarray(prev_cand, dtype=np.int64), np.ascontiguousarray(prev_common),
                        prev_lo.astype(np.int64), prev_hi.astype(np.int64),
                        np.ascontiguousarray(ch_cand, dtype=np.int64), np.ascontiguousarray(ch_common),
                        ch_lo.astype(np.int64), ch_hi.astype(np.int64), np.int64(k), out_size)


@njit(cache=True, nogil=True)
def _match_edges(indptr, indices, u, v):  # pragma: no cover
    found = np.zeros(u.shape[0], dtype=np.bool_)
    seen = np.zeros(indices.shape[0], dtype=np.bool_)
    for i in range(u.shape[0]):
        a, b = u[i], v[i]
        if a < 0 or b < 0 or a == b:
            continue
        hi = indptr[a + 1]
        p = _lower_bound(indices, indptr[a], hi, b)
        if p < hi and indices[p] == b:
            found[i] = True
            seen[p] = True
            seen[_lower_bound(indices, indptr[b], indptr[b + 1], a)] = True
    return found, seen


@njit(cache=True, nogil=True)
def _unseen_pairs(indptr, indices, seen):  # pragma: no cover
    n = indptr.shape[0] - 1
    count = 0
    for r in range(n):
        for p in range(indptr[r], indptr[r + 1]):
            if not seen[p] and r < indices[p]:
                count += 1
    lo = np.empty(count, dtype=np.int64)
    hi = np.empty(count, dtype=np.int64)
    at = 0
    for r in range(n):
        for p in range(indptr[r], indptr[r + 1]):
            if not seen[p] and r < indices[p]:
                lo[at] = r
                hi[at] = indices[p]
                at += 1
    return lo, hi


def match_edges(indptr: np.ndarray, indices: np.ndarray, u: np.ndarray, v: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Yesterday's edges (u, v as dense indices of today's CSR, -1 for a member not in it) against
    today's CSR: (found per edge, today's undirected edges no yesterday edge matched as (lo, hi) dense).
    One binary search per edge, no sort of either edge list."""
    if u.shape != v.shape:
        raise KernelInputInvalid(f"u and v must align, found {u.shape} and {v.shape}")
    n = indptr.shape[0] - 1
    u = np.ascontiguousarray(u, dtype=np.int64)
    v = np.ascontiguousarray(v, dtype=np.int64)
    if u.size and int(max(u.max(), v.max())) >= n:
        raise KernelInputInvalid(f"edge indices must lie below {n}")
    found, seen = _match_edges(indptr, indices, u, v)
    lo, hi = _unseen_pairs(indptr, indices, seen)
    return found, lo, hi
