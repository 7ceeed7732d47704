"""The numba kernel of triangle closing: per source member, count two-hop paths and keep the top K.

Why a dense counter per source instead of a join: the join materializes every wedge (a, b, c) and then
shuffles and groups them, so its memory is sum(deg^2). The kernel walks the same wedges but keeps only
one int32 per node plus a "touched" list, resets only what it touched, and emits at most K rows per
source, so memory is O(nodes + K) per task whatever the hubs look like.

One kernel serves both strategies (see joins.triangles). Its inputs are "local" indices:
- sources i = 0..n_src-1, neighbours src_nbr[src_ptr[i]:src_ptr[i+1]] given as rows of the middle
  adjacency (-1: that neighbour has no edge into the candidate range, skip it);
- the same neighbours as candidate indices in src_excl (-1: not a candidate here), to exclude N(a);
- src_self[i]: the source itself as a candidate index (-1: not a candidate here), to exclude a;
- the middle adjacency mid_ptr/mid_cand: for a middle row b, its neighbours as candidate indices.
Candidate index order must equal candidate id order: the tie-break "candidate id ascending" is then
"candidate index ascending".
"""

from __future__ import annotations

import numpy as np
from numba import njit

INDEX_DTYPE = np.int32
OFFSET_DTYPE = np.int64


class KernelInputInvalid(ValueError):
    """The arrays handed to the kernel do not describe a consistent local graph."""


@njit(cache=True, nogil=True)
def _top_k_common(src_ptr, src_nbr, src_excl, src_self, mid_ptr, mid_cand, n_cand, k):  # pragma: no cover
    n_src = src_self.shape[0]
    counter = np.zeros(n_cand, dtype=np.int32)
    touched = np.empty(n_cand, dtype=np.int32)
    ties = np.empty(n_cand, dtype=np.int32)
    max_deg = 0
    for i in range(n_src):
        d = src_ptr[i + 1] - src_ptr[i]
        if d > max_deg:
            max_deg = d
    hist = np.zeros(max_deg + 2, dtype=np.int64)
    out_src = np.empty(n_src * k, dtype=np.int32)
    out_cand = np.empty(n_src * k, dtype=np.int32)
    out_common = np.empty(n_src * k, dtype=np.int32)
    sel = np.empty(k, dtype=np.int32)
    keys = np.empty(k, dtype=np.int64)
    n_out = 0
    for i in range(n_src):
        n_touched = 0
        for p in range(src_ptr[i], src_ptr[i + 1]):
            b = src_nbr[p]
            if b < 0:
                continue
            for q in range(mid_ptr[b], mid_ptr[b + 1]):
                c = mid_cand[q]
                if counter[c] == 0:
                    touched[n_touched] = c
                    n_touched += 1
                counter[c] += 1
        # a itself and its neighbours are never candidates
        if src_self[i] >= 0:
            counter[src_self[i]] = 0
        for p in range(src_ptr[i], src_ptr[i + 1]):
            x = src_excl[p]
            if x >= 0:
                counter[x] = 0
        # histogram of counts, to find the K-th largest count without sorting every candidate
        max_count = 0
        for t in range(n_touched):
            cnt = counter[touched[t]]
            if cnt > 0:
                hist[cnt] += 1
                if cnt > max_count:
                    max_count = cnt
        above = 0
        threshold = 0
        cnt = max_count
        while cnt >= 1:
            if above + hist[cnt] >= k:
                threshold = cnt
                break
            above += hist[cnt]
            cnt -= 1
        n_sel = 0
        n_ties = 0
        for t in range(n_touched):
            c = touched[t]
            cnt = counter[c]
            if cnt > threshold:
                sel[n_sel] = c
                n_sel += 1
            elif cnt == threshold and threshold > 0:
                ties[n_ties] = c
                n_ties += 1
        if threshold > 0:
            # the smallest candidate indices (= ids) among the ties fill the remaining slots
            need = k - above
            if n_ties > need:
                tie_sorted = np.sort(np.partition(ties[:n_ties], need - 1)[:need])
            else:
                tie_sorted = np.sort(ties[:n_ties])
            for t in range(need):
                sel[n_sel] = tie_sorted[t]
                n_sel += 1
        for s in range(n_sel):
            c = sel[s]
            keys[s] = np.int64(max_count - counter[c]) * np.int64(n_cand) + np.int64(c)
        order = np.argsort(keys[:n_sel])
        for s in range(n_sel):
            c = sel[order[s]]
            out_src[n_out] = i
            out_cand[n_out] = c
            out_common[n_out] = counter[c]
            n_out += 1
        for t in range(n_touched):
            counter[touched[t]] = 0
        for cnt in range(max_count + 1):
            hist[cnt] = 0
    return out_src[:n_out], out_cand[:n_out], out_common[:n_out]


def top_k_common(
    src_ptr: np.ndarray,
    src_nbr: np.ndarray,
    src_excl: np.ndarray,
    src_self: np.ndarray,
    mid_ptr: np.ndarray,
    mid_cand: np.ndarray,
    n_cand: int,
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-K candidates per local source: (source position, candidate index, common), ordered per source.

    Checks the arrays on entry (dtypes and extents), because an out-of-range index inside numba is a
    silent memory error, not an exception.
    """
    if k < 1:
        raise KernelInputInvalid(f"k must be >= 1, found {k}")
    expected = {"src_ptr": (src_ptr, OFFSET_DTYPE), "src_nbr": (src_nbr, INDEX_DTYPE),
                "src_excl": (src_excl, INDEX_DTYPE), "src_self": (src_self, INDEX_DTYPE),
                "mid_ptr": (mid_ptr, OFFSET_DTYPE), "mid_cand": (mid_cand, INDEX_DTYPE)}
    wrong = {name: str(arr.dtype) for name, (arr, dtype) in expected.items() if arr.dtype != dtype}
    if wrong:
        raise KernelInputInvalid(f"expected int64 offsets and int32 indices, found dtypes {wrong}")
    if src_ptr.shape[0] != src_self.shape[0] + 1:
        raise KernelInputInvalid(
            f"src_ptr must have n_src+1={src_self.shape[0] + 1} entries, found {src_ptr.shape[0]}")
    if src_excl.shape[0] != src_nbr.shape[0]:
        raise KernelInputInvalid(
            f"src_excl and src_nbr must align, found {src_excl.shape[0]} and {src_nbr.shape[0]}")
    n_mid = mid_ptr.shape[0] - 1
    if src_nbr.size and int(src_nbr.max()) >= n_mid:
        raise KernelInputInvalid(f"src_nbr refers to middle row {int(src_nbr.max())}, only {n_mid} rows")
    if mid_cand.size and int(mid_cand.max()) >= n_cand:
        raise KernelInputInvalid(f"mid_cand refers to candidate {int(mid_cand.max())}, n_cand={n_cand}")
    if src_ptr.size and (src_ptr[-1] > src_nbr.shape[0] or mid_ptr[-1] > mid_cand.shape[0]):
        raise KernelInputInvalid("offsets point past the end of their index arrays")
    return _top_k_common(src_ptr, src_nbr, src_excl, src_self, mid_ptr, mid_cand, np.int64(n_cand),
                         np.int64(k))


def top_k_for_source_range(
    indptr: np.ndarray, indices: np.ndarray, lo: int, hi: int, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcast strategy: sources lo..hi-1 of a whole CSR; candidates are all nodes.

    Returns dense (source index, candidate index, common); no array is copied except the source range.
    """
    src_ptr = indptr[lo:hi + 1]
    src_self = np.arange(lo, hi, dtype=INDEX_DTYPE)
    n = indptr.shape[0] - 1
    pos, cand, common = top_k_common(src_ptr, indices, indices, src_self, indptr, indices, n, k)
    return pos.astype(np.int64) + lo, cand, common


def _lookup(sorted_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in sorted_ids, or -1 where it is absent."""
    if sorted_ids.shape[0] == 0:
        return np.full(values.shape[0], -1, dtype=INDEX_DTYPE)
    pos = np.searchsorted(sorted_ids, values)
    clipped = np.minimum(pos, sorted_ids.shape[0] - 1)
    found = sorted_ids[clipped] == values
    return np.where(found, clipped, -1).astype(INDEX_DTYPE)


def _group_offsets(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys, starts = np.unique(sorted_keys, return_index=True)
    return keys, np.append(starts, sorted_keys.shape[0]).astype(OFFSET_DTYPE)


def top_k_for_work_unit(
    src: np.ndarray, nbr: np.ndarray, mid: np.ndarray, cand: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Partitioned strategy, one (source block, candidate shard) unit, in member ids.

    src/nbr: every edge (a, b) of the block's sources; mid/cand: every edge (b, c) with c in the shard.
    Returns (member_id, candidate_id, common) with the top K of this shard per source. Exact per shard:
    every candidate c of the shard that is a neighbour of a appears in nbr, so N(a) is excluded here too.
    """
    if src.shape[0] == 0 or mid.shape[0] == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.int32)
    by_source = np.lexsort((nbr, src))
    src, nbr = src[by_source], nbr[by_source]
    by_middle = np.lexsort((cand, mid))
    mid, cand = mid[by_middle], cand[by_middle]
    src_ids, src_ptr = _group_offsets(src)
    mid_ids, mid_ptr = _group_offsets(mid)
    cand_ids = np.unique(cand)
    mid_cand = np.searchsorted(cand_ids, cand).astype(INDEX_DTYPE)
    pos, c, common = top_k_common(src_ptr, _lookup(mid_ids, nbr), _lookup(cand_ids, nbr),
                                  _lookup(cand_ids, src_ids), mid_ptr, mid_cand, cand_ids.shape[0], k)
    return src_ids[pos], cand_ids[c], common
