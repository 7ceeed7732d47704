"""Economic-graph candidates: co-workers (same company) and schoolmates (same school) whose tenures overlap.

Semantics
---------
Two members are co-workers (schoolmates) when they have a tenure ("stint") at the same organisation and
the two stints overlap by at least one day: ``overlap_days = min(end) - max(start) + 1`` (both ends
inclusive, so two stints that touch on one day overlap by 1). An open stint (``end_date`` null) is current
and ends on the as-of date D; an end after D is clamped to D, because as of D we only know up to D. A stint
that is empty after clamping (it starts after D, or ends before it starts) overlaps nothing.

Feature: a pair that overlaps at several organisations (or in several stints at one) keeps the **maximum**
overlap, the longest single shared tenure, never the sum. Existing connections and the member itself are
never candidates. Per member the top ``max_per_member`` by (overlap desc, candidate id asc) are kept.

Why the cap can be applied piecewise, exactly: split the pairs of a member m into any pieces (one
organisation, or one block of an organisation) and keep, per piece, the top K of the piece's max overlap,
with m and m's connections already removed inside the piece. The global top K is then the top K of the
union of the per-piece top Ks (max per candidate over the pieces). Proof: if c is in m's global top K and
piece P holds c's best overlap s(c), any candidate d that beats c inside P has s(d) >= s_P(d) >= s(c), with
a smaller id on a tie, so d beats c globally too; K such d would push c out of the global top K. This holds
for max and would NOT hold for a sum over organisations (a pair below every piece's cut could win on its
sum), which is one more reason the feature is the max. It needs the exclusion of connections before each
piece's cut: cutting first and excluding afterwards could leave fewer than K.

Skew: where the pairs explode
-----------------------------
The same-organisation self-join emits one row per ordered pair of overlapping stints, quadratic in the
organisation's size. At 100,000 members the largest company has 14,196 stints: over 10^8 pair rows, every
one shuffled and hash-aggregated (max per member and candidate) before the per-member window limit. The
former "blocked hub path" only spread the *comparisons* over block pairs; every overlapping pair still left
the join as a row, and AQE coalesced the block-pair partitions into one or two tasks because their *input*
(a few hundred stints per block) is tiny: the skew is in the join's output, which AQE cannot see. Measured
on one 3,000-stint company: 6.1M pair rows, one join task of 48 s, then 45 s in the aggregate + window-limit
stage; the 14,196-stint company is 22x that.

Organisations with more than ``hub_threshold`` stints therefore never form pair rows. They go through the
kernel (``joins.economic_kernel``):

1. *Planning on the driver* (O(organisations) numbers, never stints): each kernel organisation's stint
   count n is collected; its members are cut into ``B = ceil(n / block_size)`` blocks by a hash of the
   member id (all of a member's stints there land in the same block). A piece (organisation, block)
   costs about ``n/B * n`` comparisons (its row stints times the organisation's stints). Pieces are packed
   into ``UNITS_PER_CORE * parallelism`` work units, heaviest first onto the lightest unit, so a hub is
   spread over many tasks and no task carries a hub plus a full share of small organisations.
2. *Shipping*: each unit receives, per organisation it works on, the organisation's whole stint list
   (marking its own blocks' stints as rows) and the connections of its row members that point inside the
   organisation. Both sides are repartitioned by the unit into exactly one partition per unit (keys chosen
   so that Spark's hash sends unit u to partition u; a repartition with a number of partitions is never
   coalesced by AQE), then cogrouped.
3. *The kernel* sorts the organisation's stints by start and, per row member, sweeps them up to the first
   one that starts after its own end, keeps the max overlap per candidate in a dense array, drops itself and
   its connections, and keeps the top K in a bounded heap. Only those K rows per member and organisation
   leave the task.

Small organisations take the plain equi-join on the organisation (cheaper there: no Python worker, at
most ``hub_threshold**2`` pairs per organisation). Both paths give identical rows; tests force every
organisation through each path and compare with an independent brute force.

Merge: kernel rows and plain pairs are reduced to the max per (member, candidate), connections are removed
(again, for the plain rows), and the top K per member kept; the ``row_number() <= K`` filter becomes a
``WindowGroupLimit``. A member's rows entering that step are at most K per kernel organisation plus its
small organisations' pairs.

Known limits: a unit holds the whole stint list of each organisation it works on (16 bytes a stint in the
kernel), so one organisation must fit a task (10^7 stints is about 160 MB); beyond that the stints would
need splitting into column shards as well (still exact by the argument above). The sweep reads every stint
that starts before a row stint's end, so a row's work is O(organisation) even when few of them overlap.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from joins.csr import Csr
from joins.pair_graph import is_connected_in
from mutuals.checks import require_columns
from mutuals.errors import UsageError
from mutuals.session import shuffle_partitions

MEMBER = "member_id"
CANDIDATE = "candidate_id"
ORG = "org_id"
START, END = "start_date", "end_date"
OVERLAP_DAYS = "overlap_days"
DS = "ds"
SRC, DST = "src", "dst"

DEFAULT_HUB_THRESHOLD = 500
DEFAULT_BLOCK_SIZE = 500
UNITS_PER_CORE = 4
STRATEGIES = ("kernel", "naive")

UNIT_KEY, BLOCK, N_BLOCKS, OWN_UNIT = "_unit_key", "_block", "_n_blocks", "_own_unit"
START_DAY, END_DAY, IS_ROW = "_start_day", "_end_day", "_is_row"
PAIRS_SCHEMA = "member_id long, candidate_id long, overlap_days int"
_ARROW_PAIRS = pa.schema([pa.field(MEMBER, pa.int64(), False), pa.field(CANDIDATE, pa.int64(), False),
                          pa.field(OVERLAP_DAYS, pa.int32(), False)])


class EconomicStrategyUnknown(UsageError, ValueError):
    """`strategy` is not one of STRATEGIES."""


def latest_records_as_of(key_columns: Sequence[str]) -> Callable[[DataFrame], DataFrame]:
    """Resolve records that land by `ds` into the state as of the newest partition read.

    A changed record lands again with the same key (e.g. member, company, start date) and a new end date;
    the copy from the latest `ds` wins. Within one `ds` an open record (null end) wins, then the later end,
    so the result does not depend on file or partition order.
    """
    key_columns = list(key_columns)

    def transform(records: DataFrame) -> DataFrame:
        require_columns(records, [*key_columns, END, DS], "latest_records_as_of")
        newest_first = (
            Window.partitionBy(*key_columns)
            .orderBy(F.col(DS).desc(), F.col(END).desc_nulls_first())
            .rowsBetween(Window.unboundedPreceding, Window.currentRow)
        )
        is_latest = F.col("_version") == 1
        value_columns = [c for c in records.columns if c != DS]
        return (
            records.withColumn("_version", F.row_number().over(newest_first))
            .where(is_latest)
            .select(*value_columns)
        )

    return transform


def tenure_intervals(org_column: str, as_of: str) -> Callable[[DataFrame], DataFrame]:
    """Records (member_id, <org_column>, start_date, end_date) -> closed stints [start, end] as of D."""

    def transform(records: DataFrame) -> DataFrame:
        require_columns(records, [MEMBER, org_column, START, END], "tenure_intervals")
        as_of_date = F.to_date(F.lit(as_of))
        effective_end = F.least(F.coalesce(F.col(END), as_of_date), as_of_date)
        is_nonempty = effective_end >= F.col(START)
        return (
            records.withColumn("_end", effective_end)
            .where(is_nonempty)
            .select(
                F.col(MEMBER).cast("long").alias(MEMBER),
                F.col(org_column).cast("long").alias(ORG),
                F.col(START).alias(START),
                F.col("_end").alias(END),
            )
        )

    return transform


def _overlap_days(left_start: Column, left_end: Column, right_start: Column, right_end: Column) -> Column:
    return F.datediff(F.least(left_end, right_end), F.greatest(left_start, right_start)) + 1


def _pairs_from_join(left: DataFrame, right: DataFrame, keys: Sequence[str]) -> DataFrame:
    """Ordered stint pairs between `left` (l_*) and `right` (r_*) that share `keys` and overlap."""
    same_keys = [F.col(f"l_{k}") == F.col(f"r_{k}") for k in keys]
    is_overlapping = (F.col("l_start") <= F.col("r_end")) & (F.col("r_start") <= F.col("l_end"))
    is_other_member = F.col("l_member") != F.col("r_member")
    condition = same_keys[0]
    for extra in same_keys[1:]:
        condition = condition & extra
    return left.join(right, on=condition & is_overlapping & is_other_member, how="inner").select(
        F.col("l_member").alias(MEMBER),
        F.col("r_member").alias(CANDIDATE),
        _overlap_days(F.col("l_start"), F.col("l_end"), F.col("r_start"), F.col("r_end"))
        .cast("int").alias(OVERLAP_DAYS),
    )


def _side(stints: DataFrame, prefix: str, extra: Sequence[str] = ()) -> DataFrame:
    return stints.select(
        F.col(MEMBER).alias(f"{prefix}_member"), F.col(START).alias(f"{prefix}_start"),
        F.col(END).alias(f"{prefix}_end"), *(F.col(c).alias(f"{prefix}_{c}") for c in extra),
    )


def _plain_pairs(stints: DataFrame) -> DataFrame:
    return _pairs_from_join(_side(stints, "l", [ORG]), _side(stints, "r", [ORG]), [ORG])


def overlapping_tenure_pairs() -> Callable[[DataFrame], DataFrame]:
    """The reference: stints (member_id, org_id, start_date, end_date) -> one row per ordered pair of
    overlapping stints of two different members at the same organisation (member_id, candidate_id,
    overlap_days), by a plain equi-join on the organisation. Quadratic in an organisation's size: used for
    small organisations, and as the naive baseline of tests and `bench/economic.py`."""

    def transform(stints: DataFrame) -> DataFrame:
        require_columns(stints, [MEMBER, ORG, START, END], "overlapping_tenure_pairs")
        return _plain_pairs(stints)

    return transform


# ---------------------------------------------------------------- kernel planning


def _rotl32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & 0xFFFFFFFF


def spark_hash_int(value: int, seed: int = 42) -> int:
    """Spark's `hash()` (Murmur3 x86_32, seed 42) of an int column value, as a signed 32-bit int. It is the
    hash behind `repartition(n, col)`, so the driver can pick keys that land on chosen partitions."""
    k1 = (value & 0xFFFFFFFF) * 0xCC9E2D51 & 0xFFFFFFFF
    k1 = _rotl32(k1, 15) * 0x1B873593 & 0xFFFFFFFF
    h1 = _rotl32(seed ^ k1, 13)
    h1 = (h1 * 5 + 0xE6546B64) & 0xFFFFFFFF
    h1 ^= 4
    h1 ^= h1 >> 16
    h1 = h1 * 0x85EBCA6B & 0xFFFFFFFF
    h1 ^= h1 >> 13
    h1 = h1 * 0xC2B2AE35 & 0xFFFFFFFF
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 >= 1 << 31 else h1


def partition_keys(n_partitions: int) -> np.ndarray:
    """keys[p] = the smallest non-negative int that `repartition(n_partitions, col)` sends to partition p."""
    keys = np.full(n_partitions, -1, dtype=np.int32)
    found, candidate = 0, 0
    while found < n_partitions:
        partition = spark_hash_int(candidate) % n_partitions  # Python's % is Spark's pmod for n > 0
        if keys[partition] < 0:
            keys[partition] = candidate
            found += 1
        candidate += 1
    return keys


@dataclass(frozen=True)
class KernelPlan:
    """Which organisations take the kernel, into how many member blocks each is cut, and which work unit
    (one task) runs each (organisation, block) piece."""

    org: np.ndarray  # int64, the kernel organisations
    n_blocks: np.ndarray  # int64, member blocks per organisation
    piece_org: np.ndarray  # int64
    piece_block: np.ndarray  # int64
    piece_unit: np.ndarray  # int32
    unit_work: np.ndarray  # float64, estimated stint comparisons per unit
    unit_keys: np.ndarray  # int32, the partition key of each unit

    @property
    def n_units(self) -> int:
        return int(self.unit_keys.shape[0])


def plan_kernel_units(org: np.ndarray, stints: np.ndarray, block_size: int, max_units: int) -> KernelPlan:
    """Cut each organisation into member blocks of about `block_size` stints and pack the pieces into at
    most `max_units` units balanced by estimated comparisons (rows x organisation stints), heaviest
    first onto the lightest unit."""
    org = np.asarray(org, dtype=np.int64)
    stints = np.asarray(stints, dtype=np.int64)
    n_blocks = np.maximum(1, -(-stints // block_size))
    piece_org = np.repeat(org, n_blocks)
    piece_block = np.concatenate([np.arange(b, dtype=np.int64) for b in n_blocks]) if org.size else \
        np.empty(0, np.int64)
    piece_work = np.repeat(stints.astype(np.float64) ** 2 / n_blocks, n_blocks)
    n_units = max(1, min(int(max_units), int(piece_org.shape[0])))
    lightest = [(0.0, unit) for unit in range(n_units)]
    piece_unit = np.empty(piece_org.shape[0], dtype=np.int32)
    unit_work = np.zeros(n_units)
    for piece in np.argsort(-piece_work, kind="stable"):
        work, unit = heapq.heappop(lightest)
        piece_unit[piece] = unit
        unit_work[unit] = work + piece_work[piece]
        heapq.heappush(lightest, (unit_work[unit], unit))
    return KernelPlan(org, n_blocks, piece_org, piece_block, piece_unit, unit_work, partition_keys(n_units))


# ---------------------------------------------------------------- kernel path


def _unit_runner(top_k: int) -> Callable[[pa.Table, pa.Table], pa.Table]:
    def run_unit(stints: pa.Table, neighbours: pa.Table) -> pa.Table:
        from joins import economic_kernel  # numba loads in the Python workers only, not on the driver

        org = stints[ORG].to_numpy()
        by_org = np.argsort(org, kind="stable")
        orgs, first = np.unique(org[by_org], return_index=True)
        bounds = np.append(first, org.shape[0])
        member, start = stints[MEMBER].to_numpy()[by_org], stints[START_DAY].to_numpy()[by_org]
        end, is_row = stints[END_DAY].to_numpy()[by_org], stints[IS_ROW].to_numpy(zero_copy_only=False)[by_org]
        nbr_org, src, dst = (neighbours[c].to_numpy() for c in (ORG, SRC, DST))
        parts = []
        for i, current in enumerate(orgs):
            rows = slice(bounds[i], bounds[i + 1])
            inside = nbr_org == current
            found = economic_kernel.top_overlaps_in_org(
                member[rows], start[rows], end[rows], is_row[rows], src[inside], dst[inside], top_k)
            parts.append(pa.table([pa.array(found[0], pa.int64()), pa.array(found[1], pa.int64()),
                                   pa.array(found[2], pa.int32())], schema=_ARROW_PAIRS))
        return pa.concat_tables(parts) if parts else _ARROW_PAIRS.empty_table()

    return run_unit


def _kernel_top_overlaps(stints: DataFrame, plan: KernelPlan, connected: DataFrame, top_k: int) -> DataFrame:
    """Stints of the plan's organisations -> per (member, organisation) top K rows, connections excluded."""
    spark = stints.sparkSession
    blocks = spark.createDataFrame(pa.table({ORG: pa.array(plan.org), N_BLOCKS: pa.array(plan.n_blocks)}))
    unit_keys = plan.unit_keys[plan.piece_unit]
    pieces = spark.createDataFrame(pa.table({
        ORG: pa.array(plan.piece_org), BLOCK: pa.array(plan.piece_block),
        OWN_UNIT: pa.array(unit_keys)}))
    org_units = pieces.select(ORG, F.col(OWN_UNIT).alias(UNIT_KEY)).distinct()
    epoch = F.lit("1970-01-01").cast("date")
    owned = (
        stints.join(F.broadcast(blocks), on=ORG, how="inner")
        .withColumn(BLOCK, F.pmod(F.xxhash64(F.col(MEMBER)), F.col(N_BLOCKS)))
        .join(F.broadcast(pieces), on=[ORG, BLOCK], how="inner")
    )
    shipped = owned.join(F.broadcast(org_units), on=ORG, how="inner").select(
        F.col(UNIT_KEY).cast("int").alias(UNIT_KEY), F.col(ORG).cast("long").alias(ORG),
        F.col(MEMBER).cast("long").alias(MEMBER),
        F.datediff(F.col(START), epoch).cast("int").alias(START_DAY),
        F.datediff(F.col(END), epoch).cast("int").alias(END_DAY),
        (F.col(OWN_UNIT) == F.col(UNIT_KEY)).alias(IS_ROW),
    )
    row_members = owned.select(F.col(OWN_UNIT).alias(UNIT_KEY), ORG, F.col(MEMBER).alias(SRC)).distinct()
    org_members = owned.select(ORG, F.col(MEMBER).alias(DST)).distinct()
    inside_connections = (
        connected.join(row_members, on=SRC, how="inner")
        .join(org_members, on=[ORG, DST], how="left_semi")
        .select(F.col(UNIT_KEY).cast("int").alias(UNIT_KEY), F.col(ORG).cast("long").alias(ORG),
                F.col(SRC).cast("long").alias(SRC), F.col(DST).cast("long").alias(DST))
    )
    one_task_per_unit = [plan.n_units, F.col(UNIT_KEY)]
    return (
        shipped.repartition(*one_task_per_unit).groupBy(UNIT_KEY)
        .cogroup(inside_connections.repartition(*one_task_per_unit).groupBy(UNIT_KEY))
        .applyInArrow(_unit_runner(top_k), PAIRS_SCHEMA)
    )


def _kernel_organisations(stints: DataFrame, hub_threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """(organisation ids, stint counts) of the organisations with more than `hub_threshold` stints: one
    small eager job, O(organisations) rows at most, so the plan holds the kernel only when it has work."""
    sizes = stints.groupBy(ORG).agg(F.count(F.lit(1)).alias("_n")).where(F.col("_n") > hub_threshold)
    table = sizes.toArrow()
    return table[ORG].to_numpy().astype(np.int64), table["_n"].to_numpy().astype(np.int64)


def top_overlaps(max_per_member: int, neighbours: DataFrame, csr: Csr | None = None
                 ) -> Callable[[DataFrame], DataFrame]:
    """Pair rows -> max overlap per (member, candidate), existing connections removed, top-K per member
    by overlap desc then candidate id asc. `neighbours` has `src`, `dst` (symmetric edges).

    The pairs are shuffled once, by member into `shuffle_partitions` partitions: the max per pair and the
    per-member limit run where the rows already are, and the result stays partitioned by member, so the
    candidate merge that unions the sources needs no shuffle of its own.

    `csr`: the graph of `neighbours` as a CSR, when the caller holds it: the connections are removed by a
    lookup in it (`joins.pair_graph.is_connected_in`) where the pairs are. Without it they are removed by
    a join, for which Spark shuffles the pairs again by (member, candidate) and then back by member."""
    if max_per_member < 1:
        raise ValueError(f"max_per_member must be >= 1, got {max_per_member}")
    require_columns(neighbours, ["src", "dst"], "top_overlaps neighbours")
    connected = neighbours.select(F.col("src").alias(MEMBER), F.col("dst").alias(CANDIDATE))

    def transform(pairs: DataFrame) -> DataFrame:
        require_columns(pairs, [MEMBER, CANDIDATE, OVERLAP_DAYS], "top_overlaps")
        by_member = pairs.repartition(shuffle_partitions(pairs.sparkSession), MEMBER)
        best = by_member.groupBy(MEMBER, CANDIDATE).agg(F.max(OVERLAP_DAYS).alias(OVERLAP_DAYS))
        if csr is not None:
            strangers = best.where(~is_connected_in(csr, pairs.sparkSession)(F.col(MEMBER), F.col(CANDIDATE)))
        else:
            strangers = best.join(connected, on=[MEMBER, CANDIDATE], how="left_anti")
        by_overlap = (
            Window.partitionBy(MEMBER)
            .orderBy(F.col(OVERLAP_DAYS).desc(), F.col(CANDIDATE).asc())
            .rowsBetween(Window.unboundedPreceding, Window.currentRow)
        )
        is_kept = F.col("_rank") <= max_per_member
        return (
            strangers.withColumn("_rank", F.row_number().over(by_overlap))
            .where(is_kept)
            .select(
                F.col(MEMBER).cast("long").alias(MEMBER),
                F.col(CANDIDATE).cast("long").alias(CANDIDATE),
                F.col(OVERLAP_DAYS).cast("int").alias(OVERLAP_DAYS),
            )
        )

    return transform


def _require_options(max_per_member: int, hub_threshold: int, block_size: int, strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise EconomicStrategyUnknown(f"strategy must be one of {STRATEGIES}, found {strategy!r}")
    if max_per_member < 1 or hub_threshold < 0 or block_size < 1:
        raise ValueError(f"need max_per_member >= 1, hub_threshold >= 0, block_size >= 1; found "
                         f"{max_per_member}, {hub_threshold}, {block_size}")


def overlap_candidates(
    org_column: str,
    as_of: str,
    max_per_member: int,
    neighbours: DataFrame,
    *,
    hub_threshold: int = DEFAULT_HUB_THRESHOLD,
    block_size: int = DEFAULT_BLOCK_SIZE,
    strategy: str = "kernel",
    csr: Csr | None = None,
) -> Callable[[DataFrame], DataFrame]:
    """Resolved records (member_id, <org_column>, start_date, end_date) -> capped overlap candidates:
    member_id, candidate_id, overlap_days. Used with company_id (co-workers) and school_id (schoolmates).

    strategy "kernel": organisations with more than `hub_threshold` stints (0: all of them) go through the
    blocked kernel in member blocks of about `block_size` stints, the others through the plain join;
    "naive": the plain join for every organisation (the reference). Both give the same rows.
    `csr`: the graph of `neighbours` when the caller holds it (see `top_overlaps`).
    """
    _require_options(max_per_member, hub_threshold, block_size, strategy)
    require_columns(neighbours, [SRC, DST], "overlap_candidates neighbours")
    connected = neighbours.select(F.col(SRC).cast("long").alias(SRC), F.col(DST).cast("long").alias(DST))

    def transform(records: DataFrame) -> DataFrame:
        stints = records.transform(tenure_intervals(org_column, as_of))
        capped = top_overlaps(max_per_member, neighbours, csr)
        if strategy == "naive":
            return stints.transform(overlapping_tenure_pairs()).transform(capped)
        org, sizes = _kernel_organisations(stints, hub_threshold)
        if org.shape[0] == 0:  # the common case in a small lake: no kernel in the plan
            return stints.transform(overlapping_tenure_pairs()).transform(capped)
        spark = stints.sparkSession
        plan = plan_kernel_units(org, sizes, block_size, UNITS_PER_CORE * spark.sparkContext.defaultParallelism)
        kernel_orgs = spark.createDataFrame(pa.table({ORG: pa.array(plan.org)}))
        small = stints.join(F.broadcast(kernel_orgs), on=ORG, how="left_anti")
        kernel_rows = _kernel_top_overlaps(stints, plan, connected, max_per_member)
        return small.transform(overlapping_tenure_pairs()).unionByName(kernel_rows).transform(capped)

    return transform
