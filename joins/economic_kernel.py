"""The numba kernel of co-worker / schoolmate candidates: per member, the top K others by tenure overlap.

Why a kernel instead of a pair join: the same-organisation self-join emits one row per pair of overlapping
stints, quadratic in the organisation's size (a 15,000-stint company gives over 10^8 rows), and every row
is then shuffled and hash-aggregated. Here a member's overlaps live in one dense int32 array over the
organisation's members ("best overlap so far", plus a touched list to reset it) and only the member's
top K leave the kernel, the way `joins.triangle_kernel` keeps its common-connection counter.

Inputs are "local" indices of one organisation (see `top_overlaps_in_org` for the id-level wrapper):
- the organisation's stints sorted by start day: col_start, col_end (days since 1970-01-01, both
  inclusive), col_member (local member index; index order is member id order, so the tie-break
  "candidate id ascending" is "index ascending");
- the row members whose candidates are wanted: row_self (their local index), their stints
  row_start/row_end[row_ptr[i]:row_ptr[i+1]], and the local indices of their existing connections
  excl[excl_ptr[i]:excl_ptr[i+1]], which are never candidates.

Per row member the kernel sweeps the start-sorted stints once per own stint and stops at the first stint
that starts after its own end (nothing later can overlap), keeps the MAX overlap per candidate over all
stint pairs, drops itself and its connections, and keeps the top K by (overlap desc, candidate asc) in a
bounded min-heap whose root is the worst kept candidate. Memory is O(members + K) per call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

INDEX_DTYPE = np.int32
OFFSET_DTYPE = np.int64
DAY_DTYPE = np.int32


class EconomicKernelInputInvalid(ValueError):
    """The arrays handed to the kernel do not describe one consistent organisation."""


@njit(cache=True, nogil=True)
def _sift_down(heap, size, pos):  # pragma: no cover - compiled
    while True:
        child = 2 * pos + 1
        if child >= size:
            return
        if child + 1 < size and heap[child + 1] < heap[child]:
            child += 1
        if heap[child] >= heap[pos]:
            return
        heap[pos], heap[child] = heap[child], heap[pos]
        pos = child


@njit(cache=True, nogil=True)
def _sift_up(heap, pos):  # pragma: no cover - compiled
    while pos > 0:
        parent = (pos - 1) // 2
        if heap[parent] <= heap[pos]:
            return
        heap[pos], heap[parent] = heap[parent], heap[pos]
        pos = parent


@njit(cache=True, nogil=True)
def _top_overlaps(col_start, col_end, col_member, row_ptr, row_start, row_end, row_self,
                  excl_ptr, excl, n_members, k):  # pragma: no cover - compiled
    n_rows = row_self.shape[0]
    n_cols = col_start.shape[0]
    best = np.zeros(n_members, dtype=np.int32)  # 0 = untouched: a real overlap is >= 1 day
    touched = np.empty(n_members, dtype=np.int32)
    heap = np.empty(k, dtype=np.int64)
    out_row = np.empty(n_rows * k, dtype=np.int32)
    out_cand = np.empty(n_rows * k, dtype=np.int32)
    out_days = np.empty(n_rows * k, dtype=np.int32)
    n_out = 0
    for i in range(n_rows):
        n_touched = 0
        for p in range(row_ptr[i], row_ptr[i + 1]):
            start, end = row_start[p], row_end[p]
            j = 0
            while j < n_cols and col_start[j] <= end:  # sorted by start: nothing later can overlap
                if col_end[j] >= start:
                    days = min(end, col_end[j]) - max(start, col_start[j]) + 1
                    c = col_member[j]
                    if days > best[c]:
                        if best[c] == 0:
                            touched[n_touched] = c
                            n_touched += 1
                        best[c] = days
                j += 1
        best[row_self[i]] = 0
        for q in range(excl_ptr[i], excl_ptr[i + 1]):
            best[excl[q]] = 0
        # key: larger is better (more days, then the smaller index); unique per candidate
        size = 0
        for t in range(n_touched):
            c = touched[t]
            days = best[c]
            best[c] = 0
            if days == 0:
                continue
            key = np.int64(days) * n_members + (n_members - 1 - c)
            if size < k:
                heap[size] = key
                _sift_up(heap, size)
                size += 1
            elif key > heap[0]:
                heap[0] = key
                _sift_down(heap, size, 0)
        kept = np.sort(heap[:size])
        for s in range(size - 1, -1, -1):
            key = kept[s]
            out_row[n_out] = i
            out_cand[n_out] = n_members - 1 - key % n_members
            out_days[n_out] = key // n_members
            n_out += 1
    return out_row[:n_out], out_cand[:n_out], out_days[:n_out]


def top_overlaps_local(
    col_start: np.ndarray, col_end: np.ndarray, col_member: np.ndarray,
    row_ptr: np.ndarray, row_start: np.ndarray, row_end: np.ndarray, row_self: np.ndarray,
    excl_ptr: np.ndarray, excl: np.ndarray, n_members: int, k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-K (row position, candidate index, overlap days) per row member, ordered best first.

    Checks dtypes, extents and the sort order on entry: an out-of-range index inside numba is a silent
    memory error, and unsorted stints would silently cut the sweep short.
    """
    if k < 1:
        raise EconomicKernelInputInvalid(f"k must be >= 1, found {k}")
    expected = {"col_start": (col_start, DAY_DTYPE), "col_end": (col_end, DAY_DTYPE),
                "col_member": (col_member, INDEX_DTYPE), "row_ptr": (row_ptr, OFFSET_DTYPE),
                "row_start": (row_start, DAY_DTYPE), "row_end": (row_end, DAY_DTYPE),
                "row_self": (row_self, INDEX_DTYPE), "excl_ptr": (excl_ptr, OFFSET_DTYPE),
                "excl": (excl, INDEX_DTYPE)}
    wrong = {name: str(arr.dtype) for name, (arr, dtype) in expected.items() if arr.dtype != dtype}
    if wrong:
        raise EconomicKernelInputInvalid(f"expected int32 days/indices and int64 offsets, found {wrong}")
    n_rows = row_self.shape[0]
    if row_ptr.shape[0] != n_rows + 1 or excl_ptr.shape[0] != n_rows + 1:
        raise EconomicKernelInputInvalid(
            f"row_ptr and excl_ptr need n_rows+1={n_rows + 1} entries, found {row_ptr.shape[0]}, "
            f"{excl_ptr.shape[0]}")
    if not (col_start.shape[0] == col_end.shape[0] == col_member.shape[0]):
        raise EconomicKernelInputInvalid("col_start, col_end and col_member must have the same length")
    if row_start.shape[0] != row_end.shape[0] or (n_rows and row_ptr[-1] > row_start.shape[0]):
        raise EconomicKernelInputInvalid("row stints and row_ptr do not align")
    if n_rows and excl_ptr[-1] > excl.shape[0]:
        raise EconomicKernelInputInvalid("excl_ptr points past the end of excl")
    for name, arr in (("col_member", col_member), ("row_self", row_self), ("excl", excl)):
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= n_members):
            raise EconomicKernelInputInvalid(f"{name} holds an index outside 0..{n_members - 1}")
    if col_start.size > 1 and bool(np.any(col_start[1:] < col_start[:-1])):
        raise EconomicKernelInputInvalid("col_start must be sorted ascending")
    return _top_overlaps(col_start, col_end, col_member, row_ptr, row_start, row_end, row_self,
                         excl_ptr, excl, np.int64(n_members), np.int64(k))


def _lookup(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in sorted_values, or -1 where it is absent (or is itself -1)."""
    if sorted_values.shape[0] == 0:
        return np.full(values.shape[0], -1, dtype=INDEX_DTYPE)
    pos = np.minimum(np.searchsorted(sorted_values, values), sorted_values.shape[0] - 1)
    return np.where(sorted_values[pos] == values, pos, -1).astype(INDEX_DTYPE)


def _offsets(sorted_keys: np.ndarray, n_groups: int) -> np.ndarray:
    """CSR offsets of groups 0..n_groups-1 in an array sorted by group."""
    return np.searchsorted(sorted_keys, np.arange(n_groups + 1)).astype(OFFSET_DTYPE)


def top_overlaps_in_org(
    member: np.ndarray, start: np.ndarray, end: np.ndarray, is_row: np.ndarray,
    nbr_src: np.ndarray, nbr_dst: np.ndarray, k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One organisation, in member ids: every stint (member, start day, end day, both inclusive) and which
    of them belong to row members; nbr_src -> nbr_dst are connections of row members (others ignored).

    Returns (member_id, candidate_id, overlap_days): per row member, its top K candidates among the
    organisation's members by max overlap over all stint pairs, connections and itself excluded.
    """
    if member.shape[0] == 0 or not bool(is_row.any()):
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.int32)
    ids = np.unique(member)
    local = np.searchsorted(ids, member).astype(INDEX_DTYPE)
    start, end = start.astype(DAY_DTYPE), end.astype(DAY_DTYPE)
    by_start = np.argsort(start, kind="stable")
    row_stints = np.flatnonzero(is_row)
    row_stints = row_stints[np.argsort(local[row_stints], kind="stable")]
    row_self = np.unique(local[row_stints])
    row_of_stint = np.searchsorted(row_self, local[row_stints])
    row_ptr = _offsets(row_of_stint, row_self.shape[0])
    src_row = _lookup(row_self, _lookup(ids, nbr_src))
    dst_local = _lookup(ids, nbr_dst)
    is_kept = (src_row >= 0) & (dst_local >= 0)
    src_pos, dst_local = src_row[is_kept], dst_local[is_kept]
    by_src = np.argsort(src_pos, kind="stable")
    excl_ptr = _offsets(src_pos[by_src], row_self.shape[0])
    row, cand, days = top_overlaps_local(
        start[by_start], end[by_start], local[by_start],
        row_ptr, start[row_stints], end[row_stints], row_self.astype(INDEX_DTYPE),
        excl_ptr, dst_local[by_src].astype(INDEX_DTYPE), ids.shape[0], k)
    return ids[row_self[row]], ids[cand], days
