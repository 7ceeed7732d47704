"""Economic-graph candidates: co-workers (same company) and schoolmates (same school) whose tenures overlap.

Semantics
---------
Two members are co-workers (schoolmates) when they have a tenure ("stint") at the same organisation and
the two stints overlap by at least one day: ``overlap_days = min(end) - max(start) + 1`` (both ends
inclusive, so two stints that touch on one day overlap by 1). An open stint (``end_date`` null) is current
and ends on the as-of date D; an end after D is clamped to D, because as of D we only know up to D. A stint
that is empty after clamping (it starts after D, or ends before it starts) overlaps nothing.

Feature: a pair that overlaps at several organisations (or in several stints at one) keeps the **maximum**
overlap, the longest single shared tenure. We pick max rather than sum on purpose: top-K of a max equals
top-K of the union of partial top-Ks, so the per-member cap can be applied early and piecewise without
changing the answer, and a member with two overlapping (duplicate-ish) stints is not double counted.

Skew
----
The same-organisation self-join is quadratic in the organisation's size, and large employers are hubs just
like high-degree members. Organisations with more than ``hub_threshold`` stints take the blocked path so
no single task gets the whole hub:

0. *Finding hubs.* Stints are counted per organisation (a distributed aggregate). Whether any
   organisation is a hub is checked eagerly (one small job), so the plan holds the blocked path only
   when it has work to do; query planning time grows with plan size, and most days have no hub in a
   small lake.
1. *Tenure-sorted blocks.* The hub's stints are bucketed by start date into ``B = ceil(n / block_size)``
   equal-width time buckets between its earliest and latest start (an aggregate, no per-hub sort).
2. *Salted sub-blocks.* A bucket that still holds more than ``block_size`` stints (a hiring spree, or
   everyone with the same start date) is split by a hash of (member, start) into
   ``ceil(count / block_size)`` sub-blocks. No block then holds much more than ``block_size`` stints
   (hash salting is balanced only in expectation); sparse time buckets hold fewer.
3. *Block pairs, pruned by tenure hulls.* Each block's hull is [earliest start, latest end]. Only ordered
   block pairs (l, r) whose hulls intersect can hold overlapping stints, so only those are kept. Because
   blocks are tenure-sorted, blocks far apart in time are pruned. Known limit: one very long stint
   stretches its block's hull over every later block, which then cannot be pruned against it; the answer
   stays exact, only the pruning weakens.
4. *Replicate and join on (org, l, r).* Each stint is copied to the pairs its block takes part in, as the
   left side for (block, r) and as the right side for (l, block); the join key is the block pair, so each
   task compares about ``block_size**2`` stint pairs. Every ordered pair of overlapping stints is produced
   exactly once (its two blocks' hulls intersect, and the block pair is unique).

Small organisations take the plain equi-join on the organisation. Both paths produce identical rows;
tests force ``hub_threshold`` low to check it.

Early cap: pairs are reduced to max overlap per (member, candidate) (Spark aggregates partially inside each
join task), existing connections are removed, and the top ``max_per_member`` by overlap desc, candidate id
asc are kept. The ``row_number() <= K`` filter becomes a ``WindowGroupLimit`` that Spark also applies
(Partial) before the shuffle by member (checked in the physical plan), so a hub member's full candidate
list is never gathered into one task; only per-partition top Ks are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from mutuals.checks import require_columns

MEMBER = "member_id"
CANDIDATE = "candidate_id"
ORG = "org_id"
START, END = "start_date", "end_date"
OVERLAP_DAYS = "overlap_days"
DS = "ds"

DEFAULT_HUB_THRESHOLD = 2_000
DEFAULT_BLOCK_SIZE = 500


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


def _assign_blocks(hub_stints: DataFrame, block_size: int) -> DataFrame:
    """Tenure-sorted time buckets, then salted sub-blocks for crowded buckets (see module docstring).
    `hub_stints` carries its organisation's stint count and first/last start day (`_n`, `_first`, `_last`)."""
    buckets = F.ceil(F.col("_n") / F.lit(block_size))
    span = F.col("_last") - F.col("_first") + 1
    bucket = F.floor((F.col("_day") - F.col("_first")) * buckets / span).cast("long")
    bucketed = hub_stints.withColumn("_bucket", bucket).withColumn("_buckets", buckets.cast("long"))
    bucket_sizes = bucketed.groupBy(ORG, "_bucket").agg(F.count(F.lit(1)).alias("_in_bucket"))
    salts = F.ceil(F.col("_in_bucket") / F.lit(block_size)).cast("long")
    sub_block = F.pmod(F.xxhash64(F.col(MEMBER), F.col(START)), salts)
    # sub_block < salts <= buckets, so bucket * buckets + sub_block is unique within the org.
    block = F.col("_bucket") * F.col("_buckets") + sub_block
    return (
        bucketed.join(bucket_sizes, on=[ORG, "_bucket"], how="inner")
        .select(MEMBER, ORG, START, END, block.alias("block"))
    )


def _blocked_pairs(hub_stints: DataFrame, block_size: int) -> DataFrame:
    blocked = _assign_blocks(hub_stints, block_size)
    hulls = blocked.groupBy(ORG, "block").agg(F.min(START).alias("lo"), F.max(END).alias("hi"))
    left_hull, right_hull = hulls.alias("lh"), hulls.alias("rh")
    hulls_intersect = (F.col("lh.lo") <= F.col("rh.hi")) & (F.col("rh.lo") <= F.col("lh.hi"))
    block_pairs = left_hull.join(
        right_hull, on=(F.col(f"lh.{ORG}") == F.col(f"rh.{ORG}")) & hulls_intersect, how="inner"
    ).select(F.col(f"lh.{ORG}").alias(ORG), F.col("lh.block").alias("l_block"), F.col("rh.block").alias("r_block"))
    left = blocked.join(block_pairs.withColumnRenamed("l_block", "block"), on=[ORG, "block"], how="inner")
    right = blocked.join(block_pairs.withColumnRenamed("r_block", "block"), on=[ORG, "block"], how="inner")
    left_side = left.select(
        F.col(MEMBER).alias("l_member"), F.col(START).alias("l_start"), F.col(END).alias("l_end"),
        F.col(ORG).alias(f"l_{ORG}"), F.col("block").alias("l_lblock"), F.col("r_block").alias("l_rblock"),
    )
    right_side = right.select(
        F.col(MEMBER).alias("r_member"), F.col(START).alias("r_start"), F.col(END).alias("r_end"),
        F.col(ORG).alias(f"r_{ORG}"), F.col("l_block").alias("r_lblock"), F.col("block").alias("r_rblock"),
    )
    return _pairs_from_join(left_side, right_side, [ORG, "lblock", "rblock"])


def overlapping_tenure_pairs(
    hub_threshold: int = DEFAULT_HUB_THRESHOLD, block_size: int = DEFAULT_BLOCK_SIZE,
) -> Callable[[DataFrame], DataFrame]:
    """Stints (member_id, org_id, start_date, end_date) -> one row per ordered pair of overlapping stints
    of two different members at the same organisation: member_id, candidate_id, overlap_days."""
    if hub_threshold < 1 or block_size < 1:
        raise ValueError(f"hub_threshold and block_size must be >= 1, got {hub_threshold}, {block_size}")

    def transform(stints: DataFrame) -> DataFrame:
        require_columns(stints, [MEMBER, ORG, START, END], "overlapping_tenure_pairs")
        start_day = F.datediff(F.col(START), F.lit("1970-01-01").cast("date"))
        org_stats = stints.groupBy(ORG).agg(
            F.count(F.lit(1)).alias("_n"), F.min(start_day).alias("_first"), F.max(start_day).alias("_last"),
        )
        is_hub_org = F.col("_n") > hub_threshold
        if org_stats.where(is_hub_org).isEmpty():  # the common case: no blocked path in the plan
            return _plain_pairs(stints)
        sized = stints.join(org_stats, on=ORG, how="inner").withColumn("_day", start_day)
        plain = _plain_pairs(sized.where(~is_hub_org))
        blocked = _blocked_pairs(sized.where(is_hub_org), block_size)
        return plain.unionByName(blocked).select(MEMBER, CANDIDATE, OVERLAP_DAYS)

    return transform


def top_overlaps(max_per_member: int, neighbours: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """Pair rows -> max overlap per (member, candidate), existing connections removed, top-K per member
    by overlap desc then candidate id asc. `neighbours` has `src`, `dst` (symmetric edges)."""
    if max_per_member < 1:
        raise ValueError(f"max_per_member must be >= 1, got {max_per_member}")
    require_columns(neighbours, ["src", "dst"], "top_overlaps neighbours")
    connected = neighbours.select(F.col("src").alias(MEMBER), F.col("dst").alias(CANDIDATE))

    def transform(pairs: DataFrame) -> DataFrame:
        require_columns(pairs, [MEMBER, CANDIDATE, OVERLAP_DAYS], "top_overlaps")
        best = pairs.groupBy(MEMBER, CANDIDATE).agg(F.max(OVERLAP_DAYS).alias(OVERLAP_DAYS))
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


def overlap_candidates(
    org_column: str,
    as_of: str,
    max_per_member: int,
    neighbours: DataFrame,
    *,
    hub_threshold: int = DEFAULT_HUB_THRESHOLD,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Callable[[DataFrame], DataFrame]:
    """Resolved records (member_id, <org_column>, start_date, end_date) -> capped overlap candidates:
    member_id, candidate_id, overlap_days. Used with company_id (co-workers) and school_id (schoolmates)."""

    def transform(records: DataFrame) -> DataFrame:
        return (
            records.transform(tenure_intervals(org_column, as_of))
            .transform(overlapping_tenure_pairs(hub_threshold, block_size))
            .transform(top_overlaps(max_per_member, neighbours))
        )

    return transform
