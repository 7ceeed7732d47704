"""Incremental triangle closing: day D's per-member top K from day D-1's top K, D-1's graph and the day's
edge delta, equal row for row to a full recompute (`joins.triangles`).

Notation: G is D-1's graph, G' is D's, N and N' their neighbour sets, cnt(x, c) = |N(x) & N(c)|, T(x)
the kept top K of x in G under the contract's total order (common desc, candidate id asc). An
"endpoint" is an end of an added or removed edge.

Which members can change, and why:

- cnt(x, c) changes only if N(x) or N(c) changes, i.e. only if x or c is an endpoint. The exclusion of
  x and N(x) changes only if x is an endpoint.
- A removed edge (u, v) lowers cnt(x, v) for every x in N(u) and cnt(x, u) for every x in N(v). A count
  that falls can let a candidate that was below the K boundary in, and that candidate was never kept,
  so no merge of kept rows can be exact. Those members are RECOMPUTED in full.
- Endpoints change their own neighbour set (new exclusions, new two-hop paths through the new
  neighbour, possibly a first or a last connection): RECOMPUTED in full.
- Every other member x (N(x) = N'(x), not next to a removed edge's endpoint) only gains: cnt'(x, c) >=
  cnt(x, c) for every c, and cnt'(x, c) differs only for c at the far end of an added edge (a, c) with
  x in N(a). Those are the CHANGED pairs; their exact new counts are computed per pair from the two
  sorted neighbour lists of G'. x is MERGED: its new top K is the top K of (T(x) with changed counts
  overridden) plus (the changed pairs).

Why the merge is exact, ties at the K boundary included: take a candidate c of x outside T(x) whose
count did not change. If |T(x)| = K, each of the K kept candidates beat c under the total order in G;
their counts did not fall and c's did not move, so each still beats c (a rise only moves a kept
candidate up; the id tie-break is unchanged), and c stays out. If |T(x)| < K, T(x) held every
candidate with a count >= 1, so c had count 0 and still has, and is no candidate. So the only rows
that can enter are the changed pairs, and the merge ranks exactly the candidates that can be in the
new top K, with the same order the full kernel uses. Members that are neither recomputed nor merged
keep their rows unchanged, because none of their counts or exclusions moved.

Where it is not exact: if D-1's rows were made with a different K than today's (the kept lists are
then too short or too long), or if D-1's rows are not the full top K of D-1's graph. The caller must
pass the same K; the candidates job also runs a full recompute on a fixed weekly schedule as a check.

Hubs stay bounded: the recomputed members are cut into wedge-balanced blocks, heaviest first, and each
block runs in chunks through the full run's kernel (`joins.triangle_kernel.top_k_common`) on the
broadcast CSR, exactly as the broadcast strategy of `joins.triangles` does for every member; an
endpoint that is a hub fills a block alone. A hub next to a new connection is merged, not recomputed,
and costs one pair count per changed pair (binary search into the hub's list), never its wedges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from joins.csr import Csr, split_by_weight
from joins.naive import CANDIDATE_ID, CLOSED_TRIANGLES_SCHEMA, COMMON, MEMBER_ID, require_top_k
from joins.naive import top_k_per_member as top_k_per_member_rows
from joins.triangles import BLOCKS_PER_CORE, DEFAULT_MAX_TASK_BYTES, OUTPUT_ROW_BYTES, SCRATCH_BYTES_PER_NODE

__all__ = ["TopKRows", "EdgeDelta", "IncrementalPlan", "edge_delta", "plan_incremental", "full_top_k",
           "incremental_top_k", "incremental_close_triangles"]

PAIR_CHUNK_ENTRIES = 1 << 22  # gathered (member, candidate) entries per pair-count chunk
MERGE_KEY_LIMIT = 1 << 31  # the merge kernel packs (common, candidate) into one int64 key


@dataclass(frozen=True)
class TopKRows:
    """Triangle rows as arrays in member ids: member_id, candidate_id, common_connections."""

    member: np.ndarray  # int64
    candidate: np.ndarray  # int64
    common: np.ndarray  # int32

    @staticmethod
    def empty() -> TopKRows:
        return TopKRows(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32))

    @property
    def size(self) -> int:
        return int(self.member.shape[0])

    def take(self, index: np.ndarray) -> TopKRows:
        return TopKRows(self.member[index], self.candidate[index], self.common[index])

    def ordered(self) -> TopKRows:
        """Rows in the contract's order: member asc, common desc, candidate asc."""
        return self.take(np.lexsort((self.candidate, -self.common.astype(np.int64), self.member)))

    def to_arrow(self) -> pa.Table:
        return pa.table([pa.array(self.member, pa.int64()), pa.array(self.candidate, pa.int64()),
                         pa.array(self.common, pa.int32())], schema=_ARROW_ROWS)

    @staticmethod
    def concat(parts: list[TopKRows]) -> TopKRows:
        parts = [p for p in parts if p.size] or [TopKRows.empty()]
        return TopKRows(np.concatenate([p.member for p in parts]), np.concatenate([p.candidate for p in parts]),
                        np.concatenate([p.common for p in parts]).astype(np.int32))


_ARROW_ROWS = pa.schema([pa.field(MEMBER_ID, pa.int64(), False), pa.field(CANDIDATE_ID, pa.int64(), False),
                         pa.field(COMMON, pa.int32(), False)])


@dataclass(frozen=True)
class EdgeDelta:
    """Undirected edges added and removed between two graphs, each as (lo id, hi id), sorted."""

    added_lo: np.ndarray
    added_hi: np.ndarray
    removed_lo: np.ndarray
    removed_hi: np.ndarray

    @property
    def n_added(self) -> int:
        return int(self.added_lo.shape[0])

    @property
    def n_removed(self) -> int:
        return int(self.removed_lo.shape[0])


def edge_delta(prev_src: np.ndarray, prev_dst: np.ndarray, new: Csr) -> EdgeDelta:
    """D-1's edges (member ids, any direction, duplicates and self-loops allowed) against D's CSR: the
    undirected edges added and removed. D-1's graph is never built as a CSR: each of its edges is looked
    up in D's sorted neighbour lists."""
    from joins import incremental_kernel  # numba loads where the kernel runs

    prev_src = np.asarray(prev_src, dtype=np.int64)
    prev_dst = np.asarray(prev_dst, dtype=np.int64)
    found, added_lo, added_hi = incremental_kernel.match_edges(new.indptr, new.indices, _dense(new, prev_src),
                                                               _dense(new, prev_dst))
    is_removed = ~found & (prev_src != prev_dst)
    lo = np.minimum(prev_src[is_removed], prev_dst[is_removed])
    hi = np.maximum(prev_src[is_removed], prev_dst[is_removed])
    removed = np.unique(np.stack((lo, hi), axis=1), axis=0) if lo.size else np.empty((0, 2), np.int64)
    return EdgeDelta(new.ids[added_lo], new.ids[added_hi], removed[:, 0].copy(), removed[:, 1].copy())


def _dense(csr: Csr, ids: np.ndarray) -> np.ndarray:
    """Dense index of each id in csr, or -1 where the id is not a node of csr."""
    if csr.n_nodes == 0:
        return np.full(ids.shape[0], -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(csr.ids, ids), csr.n_nodes - 1)
    return np.where(csr.ids[pos] == ids, pos, -1).astype(np.int64)


def _gather_neighbours(csr: Csr, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner position in `nodes`, neighbour dense index) for every neighbour of every dense node."""
    starts, lengths = csr.indptr[nodes], np.diff(csr.indptr)[nodes]
    owner = np.repeat(np.arange(nodes.shape[0], dtype=np.int64), lengths)
    offsets = np.zeros(nodes.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    at = np.repeat(starts - offsets[:-1], lengths) + np.arange(int(offsets[-1]), dtype=np.int64)
    return owner, csr.indices[at].astype(np.int64)


@dataclass(frozen=True)
class IncrementalPlan:
    """What the day's delta changes: members recomputed in full (ids, sorted) and the changed pairs of the
    members merged, with their exact new counts (pairs with a count >= 1, not neighbours), sorted by
    member, then candidate; `changed_x` / `changed_c` are the same pairs as dense indices of D's CSR."""

    recompute: np.ndarray
    changed: TopKRows
    changed_x: np.ndarray
    changed_c: np.ndarray

    @property
    def merged_members(self) -> np.ndarray:
        return _distinct_sorted(self.changed.member)


def _distinct_sorted(values: np.ndarray) -> np.ndarray:
    """Distinct values of a sorted array."""
    if values.size == 0:
        return values
    is_new = np.ones(values.shape[0], dtype=bool)
    is_new[1:] = values[1:] != values[:-1]
    return values[is_new]


def plan_incremental(new: Csr, delta: EdgeDelta) -> IncrementalPlan:
    """Recompute set and changed pairs (see the module docstring for why these and only these).

    The members next to a removed edge's end u are N(u) in D-1's graph; this takes N'(u) plus u's removed
    partners instead, a superset (it adds u's added partners, endpoints recomputed anyway), so D-1's
    graph is not needed beyond the delta."""
    endpoints = np.unique(np.concatenate((delta.added_lo, delta.added_hi, delta.removed_lo, delta.removed_hi)))
    removed_ends = np.unique(np.concatenate((delta.removed_lo, delta.removed_hi)))
    removed_dense = _dense(new, removed_ends)
    _, near_removed = _gather_neighbours(new, removed_dense[removed_dense >= 0])
    recompute = np.union1d(endpoints, new.ids[near_removed])
    is_recomputed = np.zeros(new.n_nodes, dtype=bool)
    recomputed_dense = _dense(new, recompute)
    is_recomputed[recomputed_dense[recomputed_dense >= 0]] = True
    # directed added edges (a -> c): every neighbour x of a gains the pair (x, c)
    a = _dense(new, np.concatenate((delta.added_lo, delta.added_hi)))
    c = _dense(new, np.concatenate((delta.added_hi, delta.added_lo)))
    by_far_end = np.argsort(c, kind="stable")
    a, c = a[by_far_end], c[by_far_end]
    degrees = np.diff(new.indptr)
    xs_parts, cs_parts, counts_parts = [], [], []
    start = 0
    while start < a.shape[0]:
        stop = _chunk_end(c, degrees[a], start, PAIR_CHUNK_ENTRIES)
        owner, xs = _gather_neighbours(new, a[start:stop])
        cs = c[start:stop][owner]
        keep = ~is_recomputed[xs]
        keys = _distinct_sorted(np.sort(cs[keep] * new.n_nodes + xs[keep]))
        if keys.size:
            pair_c, pair_x = keys // new.n_nodes, keys % new.n_nodes
            counts = _count_pairs(new, pair_x, pair_c)
            is_candidate = counts > 0
            xs_parts.append(pair_x[is_candidate])
            cs_parts.append(pair_c[is_candidate])
            counts_parts.append(counts[is_candidate])
        start = stop
    if not xs_parts:
        empty = np.empty(0, np.int64)
        return IncrementalPlan(recompute, TopKRows.empty(), empty, empty)
    xs, cs, counts = np.concatenate(xs_parts), np.concatenate(cs_parts), np.concatenate(counts_parts)
    by_member = np.argsort(xs * new.n_nodes + cs)
    xs, cs, counts = xs[by_member], cs[by_member], counts[by_member]
    return IncrementalPlan(recompute, TopKRows(new.ids[xs], new.ids[cs], counts.astype(np.int32)), xs, cs)


def _chunk_end(sorted_far: np.ndarray, weight: np.ndarray, start: int, budget: int) -> int:
    """End of a chunk from `start` holding about `budget` gathered entries, never splitting one far end
    (so pairs of one candidate are deduplicated inside one chunk)."""
    cum = np.cumsum(weight[start:])
    stop = start + int(np.searchsorted(cum, budget, side="right"))
    stop = max(stop, start + 1)
    if stop < sorted_far.shape[0]:
        stop = int(np.searchsorted(sorted_far, sorted_far[stop - 1], side="right"))
    return stop


def _count_pairs(new: Csr, xs: np.ndarray, cs: np.ndarray) -> np.ndarray:
    from joins import incremental_kernel  # numba loads where the kernel runs

    return incremental_kernel.pair_common(new.indptr, new.indices, xs, cs)


def _segments(sorted_members: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi) of each wanted member's rows in rows sorted by member (empty where it has none)."""
    return (np.searchsorted(sorted_members, wanted, side="left"),
            np.searchsorted(sorted_members, wanted, side="right"))


def merge_top_k(new: Csr, kept: TopKRows, plan: IncrementalPlan, k: int) -> TopKRows:
    """Per merged member: the top K of its kept rows with the changed pairs' counts overriding, plus the
    changed pairs. `kept`: D-1's rows in the contract's order (any members; only merged ones are read)."""
    from joins import incremental_kernel  # numba loads where the kernel runs

    members = plan.merged_members
    prev_lo, prev_hi = _segments(kept.member, members)
    lengths = prev_hi - prev_lo
    offsets = np.zeros(members.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    rows = np.repeat(prev_lo - offsets[:-1], lengths) + np.arange(int(offsets[-1]), dtype=np.int64)
    ch_lo, ch_hi = _segments(plan.changed.member, members)
    ids_fit_the_key = new.n_nodes == 0 or int(new.ids[-1]) < MERGE_KEY_LIMIT
    if ids_fit_the_key:  # ids order like dense indices: use them as they are, no lookup
        prev_cand, changed_cand = kept.candidate[rows], plan.changed.candidate
    else:
        prev_cand, changed_cand = _dense(new, kept.candidate[rows]), plan.changed_c
    pos, cand, common = incremental_kernel.merge_top_k(prev_cand, kept.common[rows], offsets[:-1], offsets[1:],
                                                       changed_cand, plan.changed.common, ch_lo, ch_hi, k)
    return TopKRows(members[pos], cand if ids_fit_the_key else new.ids[cand], common)


# ---------------------------------------------------------------- recompute: the full run's machinery


@dataclass(frozen=True)
class RecomputePlan:
    """Recomputed members (dense, sorted) cut into wedge-balanced blocks, heaviest first."""

    csr: Csr
    sources: np.ndarray
    bounds: np.ndarray
    task_blocks: np.ndarray
    sources_per_chunk: int


def plan_recompute(csr: Csr, sources: np.ndarray, top_k: int, max_task_bytes: int, parallelism: int
                   ) -> RecomputePlan:
    """The broadcast strategy's plan (joins.triangles.plan_broadcast) over a chosen set of sources."""
    room = max(top_k * OUTPUT_ROW_BYTES, max_task_bytes - csr.nbytes - SCRATCH_BYTES_PER_NODE * csr.n_nodes)
    sources_per_chunk = max(1, room // (2 * top_k * OUTPUT_ROW_BYTES))
    wedges = csr.wedges()[sources] if sources.size else np.empty(0, np.int64)
    bounds = split_by_weight(wedges, BLOCKS_PER_CORE * max(1, parallelism))
    cum = np.concatenate(([0], np.cumsum(wedges)))
    task_blocks = np.argsort(-(cum[bounds[1:]] - cum[bounds[:-1]]), kind="stable")
    return RecomputePlan(csr, sources, bounds, task_blocks, int(sources_per_chunk))


def _recompute_block(plan: RecomputePlan, task: int, top_k: int) -> Iterator[TopKRows]:
    from joins import incremental_kernel  # numba loads where the kernel runs

    csr = plan.csr
    block = int(plan.task_blocks[task])
    lo, hi = int(plan.bounds[block]), int(plan.bounds[block + 1])
    for start in range(lo, hi, plan.sources_per_chunk):
        chunk = plan.sources[start:min(hi, start + plan.sources_per_chunk)]
        src, cand, common = incremental_kernel.top_k_for_sources(csr.indptr, csr.indices, chunk, top_k)
        if src.shape[0]:
            yield TopKRows(csr.ids[src], csr.ids[cand], common)


def _recompute_sources(new: Csr, recompute_ids: np.ndarray) -> np.ndarray:
    dense = _dense(new, recompute_ids)
    return np.sort(dense[dense >= 0])


# ---------------------------------------------------------------- pure (driver) form


def _rows_in_id_order(plan: RecomputePlan, k: int) -> TopKRows:
    """Every block's rows, blocks taken in source order (not heaviest first): member order for free."""
    tasks_by_block = np.argsort(plan.task_blocks, kind="stable")
    return TopKRows.concat([rows for task in tasks_by_block for rows in _recompute_block(plan, int(task), k)])


def full_top_k(csr: Csr, k: int, *, max_task_bytes: int = DEFAULT_MAX_TASK_BYTES) -> TopKRows:
    """Every member's top K through the full run's kernel and plan, on this process: the reference the
    incremental result must equal, and the bench's full side. Rows in the contract's order."""
    require_top_k(k)
    plan = plan_recompute(csr, np.arange(csr.n_nodes, dtype=np.int64), k, max_task_bytes, 1)
    return _rows_in_id_order(plan, k)


def _interleave(base: TopKRows, extra: TopKRows) -> TopKRows:
    """Two row sets in the contract's order with no member in common -> one, in the contract's order."""
    at = np.searchsorted(base.member, extra.member, side="left") + np.arange(extra.size, dtype=np.int64)
    is_extra = np.zeros(base.size + extra.size, dtype=bool)
    is_extra[at] = True
    columns = []
    for name, dtype in (("member", np.int64), ("candidate", np.int64), ("common", np.int32)):
        column = np.empty(base.size + extra.size, dtype=dtype)
        column[is_extra] = getattr(extra, name)
        column[~is_extra] = getattr(base, name)
        columns.append(column)
    return TopKRows(*columns)


def incremental_top_k(prev_src: np.ndarray, prev_dst: np.ndarray, new: Csr, prev_rows: TopKRows, k: int, *,
                      max_task_bytes: int = DEFAULT_MAX_TASK_BYTES) -> tuple[TopKRows, dict]:
    """D's top K from D-1's edges (member ids, any direction), D-1's rows (same K, in the contract's
    order, as `full_top_k` gives them) and D's graph, on this process. Returns the rows in the contract's
    order and counts of what was done (delta, recomputed, merged members, changed pairs)."""
    require_top_k(k)
    if prev_rows.size and bool(np.any(np.diff(prev_rows.member) < 0)):
        prev_rows = prev_rows.ordered()
    delta = edge_delta(prev_src, prev_dst, new)
    plan = plan_incremental(new, delta)
    merged_members = plan.merged_members
    recompute = plan_recompute(new, _recompute_sources(new, plan.recompute), k, max_task_bytes, 1)
    recomputed = _rows_in_id_order(recompute, k)
    merged = merge_top_k(new, prev_rows, plan, k)
    prev_members = _distinct_sorted(prev_rows.member)
    seg_lo, seg_hi = _segments(prev_rows.member, prev_members)
    is_touched = np.isin(prev_members, np.union1d(plan.recompute, merged_members))
    kept = prev_rows.take(np.repeat(~is_touched, seg_hi - seg_lo))
    rows = _interleave(kept, _interleave(recomputed, merged))
    stats = {"edges_added": delta.n_added, "edges_removed": delta.n_removed,
             "members_recomputed": int(recompute.sources.shape[0]), "members_merged": int(merged_members.size),
             "changed_pairs": plan.changed.size}
    return rows, stats


# ---------------------------------------------------------------- Spark form


def _recompute_runner(handle, top_k: int) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def run_blocks(task_ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        plan: RecomputePlan = handle.value
        for batch in task_ids:
            for task in batch.column(0).to_numpy():
                for rows in _recompute_block(plan, int(task), top_k):
                    yield rows.to_arrow().to_batches()[0]

    return run_blocks


def incremental_close_triangles(
    spark: SparkSession, prev_src: np.ndarray, prev_dst: np.ndarray, new: Csr, prev_top_k: DataFrame,
    top_k: int, *,
    max_task_bytes: int = DEFAULT_MAX_TASK_BYTES, delta: EdgeDelta | None = None,
) -> tuple[DataFrame, dict]:
    """Spark form of `incremental_top_k`: prev_top_k (member_id, candidate_id, common_connections) is D-1's
    triangle top K with the same K. Members the delta does not touch keep their rows without leaving
    Spark; recomputed members run in wedge-balanced tasks on the broadcast CSR of D; merged members'
    kept rows meet their changed pairs (counted on the driver, which holds both CSRs) in a per-member
    window. `delta`: `edge_delta(prev_src, prev_dst, new)` when the caller has it already. Returns the rows
    (CLOSED_TRIANGLES_SCHEMA) and what was done."""
    require_top_k(top_k)
    delta = edge_delta(prev_src, prev_dst, new) if delta is None else delta
    plan = plan_incremental(new, delta)
    merged_members = plan.merged_members
    sc = spark.sparkContext
    recompute = plan_recompute(new, _recompute_sources(new, plan.recompute), top_k, max_task_bytes,
                               sc.defaultParallelism)
    n_tasks = int(recompute.task_blocks.shape[0])
    handle = sc.broadcast(recompute)
    recomputed = (spark.range(0, n_tasks, 1, numPartitions=max(1, n_tasks))
                  .mapInArrow(_recompute_runner(handle, top_k), CLOSED_TRIANGLES_SCHEMA))
    prev_rows = prev_top_k.select(F.col(MEMBER_ID).cast("long"), F.col(CANDIDATE_ID).cast("long"),
                                  F.col(COMMON).cast("int"))
    touched = spark.createDataFrame(pa.table({MEMBER_ID: pa.array(np.union1d(plan.recompute, merged_members),
                                                                    pa.int64())}))
    merged_ids = spark.createDataFrame(pa.table({MEMBER_ID: pa.array(merged_members, pa.int64())}))
    changed = spark.createDataFrame(plan.changed.to_arrow())
    kept = prev_rows.join(F.broadcast(touched), on=MEMBER_ID, how="left_anti")
    merged = (prev_rows.join(merged_ids, on=MEMBER_ID, how="left_semi")
              .join(changed.select(MEMBER_ID, CANDIDATE_ID), on=[MEMBER_ID, CANDIDATE_ID], how="left_anti")
              .unionByName(changed)
              .transform(top_k_per_member_rows(top_k)))
    rows = kept.unionByName(recomputed).unionByName(merged).select(MEMBER_ID, CANDIDATE_ID, COMMON)
    stats = {"edges_added": delta.n_added, "edges_removed": delta.n_removed,
             "members_recomputed": int(recompute.sources.shape[0]), "members_merged": int(merged_members.size),
             "changed_pairs": plan.changed.size}
    return rows, stats
