"""Exact, skew-aware triangle closing (friends of friends): `close_triangles`.

Contract (design.md, "Triangle closing, exactly"): undirected graph, self-loops dropped, duplicate edges
merged; a candidate c of member a has c != a, c not in N(a), common = |N(a) & N(c)| >= 1; top K per
member by common DESC, then candidate id ASC. Output: member_id long, candidate_id long,
common_connections int.

Why not the self-join (joins.naive): its output is every wedge (a, b, c), sum(deg^2) rows, shuffled
and grouped. On a 37.7k-member graph with one 9.5k-connection hub that is 255M rows: 679 s and 13 GB.
AQE skew handling cannot help because the skew is in the join's OUTPUT, not its input. The strategies
below never materialize a wedge outside one kernel call: each source's wedges are counted in a dense
per-task counter and only the top K leave the kernel.

Strategies:

- "broadcast": the whole graph as a compact CSR (dense indices in sorted-id order, so index order is
  id order and the tie-break is free) is broadcast once. Source members are cut into contiguous blocks
  of about equal WEDGE count W(a) = sum of deg(b) over b in N(a), not member count, so a hub lands in
  a block with few other members and no task carries a hub plus a full share of ordinary members. The
  heaviest blocks run first. Each block runs the numba kernel (joins.triangle_kernel) via
  `mapInArrow`, in chunks of sources so the rows held per task stay under `max_task_bytes`.

- "partitioned": for a graph whose CSR exceeds `broadcast_limit_bytes`. In the spirit of LinkedIn's
  US 10,191,948: the edge list is used twice. One copy is partitioned by SOURCE into blocks (contiguous
  id ranges of about equal wedge + degree weight); the other is partitioned by DESTINATION, i.e. the
  candidate, into S shards (contiguous candidate-id ranges whose adjacency fits `max_task_bytes`). A
  work unit is one (source block, candidate shard) pair: it holds the shard's adjacency b -> c (c in
  the shard) in memory and streams the block's neighbour lists through the kernel, giving the top K
  per source WITHIN the shard. Shards partition the candidate set, and the exclusion of a and N(a) is
  local to each shard (a neighbour of a in the shard appears in a's list), so the global top K of a is
  the top K of the union of its per-shard top Ks: a window over at most S*K rows per member. Only edges
  (copied B + S times) and per-shard top-K rows are shuffled, never wedges. Only per-node statistics
  (degree, wedges: O(nodes)) reach the driver, to size the work units; the adjacency never does.

- "naive": the self-join reference (joins.naive).
- "auto": "broadcast" when the CSR fits in `broadcast_limit_bytes`, else "partitioned".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from joins.csr import Csr, collect_csr, split_by_weight
from joins.edges import symmetric_edges
from joins.naive import (
    CANDIDATE_ID,
    CLOSED_TRIANGLES_SCHEMA,
    COMMON,
    DST,
    MEMBER_ID,
    SRC,
    naive_close_triangles,
    require_edges,
    require_top_k,
    top_k_per_member,
)
from mutuals.errors import UsageError

__all__ = ["close_triangles", "close_triangles_from_csr", "CLOSED_TRIANGLES_SCHEMA",
           "StrategyUnknown", "TaskMemoryTooSmall", "STRATEGIES"]

STRATEGIES = ("auto", "broadcast", "partitioned", "naive")
DEFAULT_MAX_TASK_BYTES = 256 * 1024 * 1024
DEFAULT_BROADCAST_LIMIT_BYTES = 256 * 1024 * 1024
BLOCKS_PER_CORE = 4
OUTPUT_ROW_BYTES = 16  # int32 source + int32 candidate + int32 common inside the kernel, int64 ids after
SCRATCH_BYTES_PER_NODE = 12  # kernel counter + touched + ties, int32 each
ADJACENCY_ENTRY_BYTES = 48  # one (long, long) edge row in Arrow, plus the sort copies of a work unit

PAIR_KEYS = ("block", "shard")


class StrategyUnknown(UsageError, ValueError):
    """`strategy` is not one of STRATEGIES."""


class TaskMemoryTooSmall(UsageError, ValueError):
    """max_task_bytes cannot hold what one task of the chosen strategy must hold."""


def _require_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise StrategyUnknown(f"strategy must be one of {STRATEGIES}, found {strategy!r}")


def _require_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int of bytes, found {value!r}")


# ---------------------------------------------------------------- broadcast


@dataclass(frozen=True)
class BroadcastPlan:
    """What every broadcast task needs: the graph, block boundaries, and which block each task runs."""

    csr: Csr
    bounds: np.ndarray  # block j covers dense sources bounds[j]..bounds[j+1]-1
    task_blocks: np.ndarray  # task t runs block task_blocks[t] (heaviest first)
    sources_per_chunk: int


def plan_broadcast(csr: Csr, top_k: int, max_task_bytes: int, parallelism: int) -> BroadcastPlan:
    """Cut sources into wedge-balanced blocks and size the per-call chunk from the memory budget."""
    fixed = csr.nbytes + SCRATCH_BYTES_PER_NODE * csr.n_nodes
    room = max_task_bytes - fixed
    if room < top_k * OUTPUT_ROW_BYTES:
        raise TaskMemoryTooSmall(
            f"broadcast tasks hold the CSR ({csr.nbytes} B) and scratch ({fixed - csr.nbytes} B); "
            f"max_task_bytes={max_task_bytes} leaves {room} B, need at least {top_k * OUTPUT_ROW_BYTES} B "
            f"for one member's top {top_k}; raise max_task_bytes or use strategy='partitioned'")
    sources_per_chunk = max(1, room // (2 * top_k * OUTPUT_ROW_BYTES))
    wedges = csr.wedges()
    bounds = split_by_weight(wedges, BLOCKS_PER_CORE * max(1, parallelism))
    cum = np.concatenate(([0], np.cumsum(wedges)))
    block_wedges = cum[bounds[1:]] - cum[bounds[:-1]]
    task_blocks = np.argsort(-block_wedges, kind="stable")
    return BroadcastPlan(csr, bounds, task_blocks, int(sources_per_chunk))


def _broadcast_block_runner(plan_handle, top_k: int) -> Callable[[Iterator[pa.RecordBatch]],
                                                                  Iterator[pa.RecordBatch]]:
    def run_blocks(task_ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from joins import triangle_kernel  # numba loads in the Python workers only, not on the driver

        plan: BroadcastPlan = plan_handle.value
        csr = plan.csr
        for batch in task_ids:
            for task in batch.column(0).to_numpy():
                block = int(plan.task_blocks[task])
                lo, hi = int(plan.bounds[block]), int(plan.bounds[block + 1])
                for start in range(lo, hi, plan.sources_per_chunk):
                    stop = min(hi, start + plan.sources_per_chunk)
                    src, cand, common = triangle_kernel.top_k_for_source_range(
                        csr.indptr, csr.indices, start, stop, top_k)
                    if src.shape[0]:
                        yield pa.RecordBatch.from_arrays(
                            [pa.array(csr.ids[src]), pa.array(csr.ids[cand]), pa.array(common)],
                            schema=_ARROW_OUTPUT)

    return run_blocks


_ARROW_OUTPUT = pa.schema([pa.field(MEMBER_ID, pa.int64(), False), pa.field(CANDIDATE_ID, pa.int64(), False),
                           pa.field(COMMON, pa.int32(), False)])


def close_triangles_from_csr(
    spark: SparkSession, csr: Csr, top_k: int, *, max_task_bytes: int = DEFAULT_MAX_TASK_BYTES
) -> DataFrame:
    """Broadcast strategy on a CSR already built on the driver (what `mutuals fof` does after parsing)."""
    require_top_k(top_k)
    _require_positive("max_task_bytes", max_task_bytes)
    sc = spark.sparkContext
    plan = plan_broadcast(csr, top_k, max_task_bytes, sc.defaultParallelism)
    n_tasks = int(plan.task_blocks.shape[0])
    handle = sc.broadcast(plan)
    tasks = spark.range(0, n_tasks, 1, numPartitions=max(1, n_tasks))
    return tasks.mapInArrow(_broadcast_block_runner(handle, top_k), CLOSED_TRIANGLES_SCHEMA)


# ---------------------------------------------------------------- partitioned


@dataclass(frozen=True)
class WorkUnits:
    """Per node (sorted ids): the source block and the candidate shard it belongs to."""

    ids: np.ndarray
    block: np.ndarray
    shard: np.ndarray
    n_blocks: int
    n_shards: int


def plan_work_units(ids: np.ndarray, deg: np.ndarray, wedges: np.ndarray, top_k: int, max_task_bytes: int,
                    parallelism: int) -> WorkUnits:
    """Size shards by candidate adjacency and blocks by wedges, both within max_task_bytes.

    A shard's in-memory side is every edge b -> c with c in the shard: sum of deg(c). Half the budget
    goes to it. A block streams its sources' edge lists (sum of deg(a)) and emits up to K rows per
    source; a quarter of the budget each. Blocks balance wedges and degree together, so neither the
    kernel time nor the streamed side of a unit is dominated by one hub's block.
    """
    total_deg = float(deg.sum())
    shard_room = max_task_bytes // 2
    n_shards = max(1, math.ceil(total_deg * ADJACENCY_ENTRY_BYTES / shard_room))
    if deg.size and float(deg.max()) * ADJACENCY_ENTRY_BYTES > shard_room:
        raise TaskMemoryTooSmall(
            f"one member has {int(deg.max())} connections, {int(deg.max()) * ADJACENCY_ENTRY_BYTES} B of "
            f"adjacency; max_task_bytes={max_task_bytes} gives a shard only {shard_room} B")
    block_room = max_task_bytes // 4
    by_memory = math.ceil(total_deg * ADJACENCY_ENTRY_BYTES / block_room)
    by_output = math.ceil(len(ids) * top_k * OUTPUT_ROW_BYTES / block_room)
    by_cores = math.ceil(BLOCKS_PER_CORE * max(1, parallelism) / n_shards)
    n_blocks = max(1, by_memory, by_output, by_cores)
    total_wedges = max(1.0, float(wedges.sum()))
    weight = wedges / total_wedges + deg / max(1.0, total_deg)
    block_bounds = split_by_weight(weight, n_blocks)
    shard_bounds = split_by_weight(deg.astype(np.float64), n_shards)
    positions = np.arange(len(ids))
    block = np.searchsorted(block_bounds, positions, side="right") - 1
    shard = np.searchsorted(shard_bounds, positions, side="right") - 1
    return WorkUnits(ids, block.astype(np.int32), shard.astype(np.int32),
                     int(len(block_bounds) - 1), int(len(shard_bounds) - 1))


def _node_stats(sym: DataFrame) -> pa.Table:
    """(node, deg, wedges) per node, sorted by node: O(nodes) rows, the only thing the driver collects."""
    deg = sym.groupBy(SRC).agg(F.count(F.lit(1)).alias("deg"))
    middle_deg = deg.select(F.col(SRC).alias(DST), F.col("deg").alias("middle_deg"))
    wedges = sym.join(middle_deg, on=DST, how="inner").groupBy(SRC).agg(F.sum("middle_deg").alias("wedges"))
    stats = deg.join(wedges, on=SRC, how="inner").select(
        F.col(SRC).alias("node"), F.col("deg").cast("long"), F.col("wedges").cast("long"))
    return stats.toArrow().sort_by("node")


def _work_unit_runner(top_k: int) -> Callable[[pa.Table, pa.Table], pa.Table]:
    def run_unit(sources: pa.Table, middles: pa.Table) -> pa.Table:
        from joins import triangle_kernel  # numba loads in the Python workers only, not on the driver

        member, cand, common = triangle_kernel.top_k_for_work_unit(
            sources[SRC].to_numpy(), sources[DST].to_numpy(),
            middles["middle"].to_numpy(), middles["cand"].to_numpy(), top_k)
        columns = [pa.array(member, pa.int64()), pa.array(cand, pa.int64()), pa.array(common, pa.int32())]
        return pa.table(columns, schema=_ARROW_OUTPUT)

    return run_unit


def _partitioned(edges: DataFrame, top_k: int, max_task_bytes: int) -> DataFrame:
    spark = edges.sparkSession
    sym = symmetric_edges(edges.select(SRC, DST)).localCheckpoint(eager=True)
    stats = _node_stats(sym)
    units = plan_work_units(stats["node"].to_numpy(), stats["deg"].to_numpy(), stats["wedges"].to_numpy(),
                            top_k, max_task_bytes, spark.sparkContext.defaultParallelism)
    assignment = spark.createDataFrame(pa.table({"node": pa.array(units.ids, pa.int64()),
                                                 "block": pa.array(units.block, pa.int32()),
                                                 "shard": pa.array(units.shard, pa.int32())}))
    all_shards = spark.range(units.n_shards).select(F.col("id").cast("int").alias("shard"))
    all_blocks = spark.range(units.n_blocks).select(F.col("id").cast("int").alias("block"))
    source_side = (sym.join(assignment.select(F.col("node").alias(SRC), "block"), on=SRC, how="inner")
                   .join(all_shards, how="cross")
                   .select("block", "shard", SRC, DST))
    middle_side = (sym.join(assignment.select(F.col("node").alias(DST), "shard"), on=DST, how="inner")
                   .join(all_blocks, how="cross")
                   .select("block", "shard", F.col(SRC).alias("middle"), F.col(DST).alias("cand")))
    per_shard = (source_side.groupBy(*PAIR_KEYS).cogroup(middle_side.groupBy(*PAIR_KEYS))
                 .applyInArrow(_work_unit_runner(top_k), CLOSED_TRIANGLES_SCHEMA))
    if units.n_shards == 1:
        return per_shard.select(MEMBER_ID, CANDIDATE_ID, COMMON)
    return per_shard.transform(top_k_per_member(top_k)).select(MEMBER_ID, CANDIDATE_ID, COMMON)


# ---------------------------------------------------------------- public API


def _estimated_csr_bytes(edges: DataFrame) -> int:
    """Upper bound of the CSR size from one cheap aggregate: distinct undirected edges and nodes."""
    sym = symmetric_edges(edges.select(SRC, DST))
    row = sym.agg(F.count(F.lit(1)).alias("entries"), F.approx_count_distinct(SRC).alias("nodes")).first()
    entries, nodes = int(row["entries"]), int(row["nodes"] * 1.05) + 1
    return entries * 4 + (nodes + 1) * 8 + nodes * 8


def close_triangles(
    edges: DataFrame,
    top_k: int,
    *,
    strategy: str = "auto",
    max_task_bytes: int = DEFAULT_MAX_TASK_BYTES,
    broadcast_limit_bytes: int = DEFAULT_BROADCAST_LIMIT_BYTES,
) -> DataFrame:
    """Top-K friends-of-friends per member, exactly (see the module docstring for the strategies).

    edges: `src`, `dst` integer columns, any direction, duplicates and self-loops allowed.
    Returns member_id long, candidate_id long, common_connections int.
    """
    require_edges(edges)
    require_top_k(top_k)
    _require_strategy(strategy)
    _require_positive("max_task_bytes", max_task_bytes)
    _require_positive("broadcast_limit_bytes", broadcast_limit_bytes)
    if strategy == "naive":
        return edges.transform(naive_close_triangles(top_k))
    if strategy == "auto":
        strategy = "broadcast" if _estimated_csr_bytes(edges) <= broadcast_limit_bytes else "partitioned"
    if strategy == "partitioned":
        return _partitioned(edges, top_k, max_task_bytes)
    return close_triangles_from_csr(edges.sparkSession, collect_csr(edges), top_k,
                                    max_task_bytes=max_task_bytes)
