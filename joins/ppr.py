"""Personalized PageRank candidates for cold members, by Monte Carlo random walks with restart.

Why: a member with few friends-of-friends and no co-workers or schoolmates (a "cold" member) gets few
triangle/economic candidates. Walks that wander further than two hops find candidates for them.

Estimator: from each seed member, `walks_per_member` walks of exactly `max_length` steps. At each step the
walker restarts (jumps back to the seed) with probability `restart_prob`, otherwise it moves to a uniformly
chosen neighbour of its current node. `ppr_score(c)` = visits to c / (walks_per_member * max_length), the
fraction of steps spent at c, which estimates the seed's personalized PageRank of c. The seed itself and
its existing neighbours are excluded; the top `top_k` per member by score desc, candidate id asc are kept.

Determinism: the random numbers are not drawn from a generator with state. The uniform for step t of walk
w from member m is a hash of (seed, m, w, t, stream), so each walk's random sequence is derived from
(seed, member_id, walk index) alone. No number depends on partitioning, task order or retries, and
re-running with the same seed gives identical output; neighbours are indexed in ascending id order, so the
choice "neighbour number i" is the same everywhere.

Scale and skew: walks advance together, one join per step, so nothing needs to fit on the driver. The
join key is (current node, chosen neighbour index), not the node alone: walkers sitting on a hub are spread
over the hub's neighbour indexes instead of all landing in the hub's one task. Each walker carries its
visit path (at most `max_length` ids) so the plan is a plain chain of `max_length` joins with no re-use of
intermediate results and no recomputation. Seeds without any connection cannot walk and get no PPR rows.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from mutuals.checks import require_columns

MEMBER, CANDIDATE, PPR_SCORE = "member_id", "candidate_id", "ppr_score"
SRC, DST = "src", "dst"

DEFAULT_WALKS_PER_MEMBER = 100
DEFAULT_MAX_LENGTH = 10
DEFAULT_RESTART_PROB = 0.15
_UNIFORM_BITS = 1 << 53  # a double holds 53 bits exactly


def walk_uniform(seed: int, stream: int, *parts: Column) -> Column:
    """A uniform double in [0, 1) that is a pure function of (seed, stream, parts): counter-based RNG."""
    hashed = F.xxhash64(F.lit(seed).cast("long"), F.lit(stream).cast("int"), *parts)
    return F.pmod(hashed, F.lit(_UNIFORM_BITS)).cast("double") / float(_UNIFORM_BITS)


def indexed_adjacency(edges: DataFrame) -> DataFrame:
    """(node, idx, next_node, next_degree): each node's neighbours numbered 0..deg-1 in ascending id order,
    with the neighbour's own degree, so a walker never needs a second lookup after moving."""
    require_columns(edges, [SRC, DST], "indexed_adjacency")
    pairs = edges.select(F.col(SRC).cast("long").alias("node"), F.col(DST).cast("long").alias("next_node"))
    degrees = pairs.groupBy("node").agg(F.count(F.lit(1)).alias("degree"))
    by_neighbour_id = (
        Window.partitionBy("node").orderBy(F.col("next_node").asc())
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    next_degrees = degrees.select(F.col("node").alias("next_node"), F.col("degree").alias("next_degree"))
    return (
        pairs.withColumn("idx", F.row_number().over(by_neighbour_id) - 1)
        .join(next_degrees, on="next_node", how="inner")
        .select(F.col("node"), F.col("idx").cast("long"), F.col("next_node"), F.col("next_degree"))
    )


def _take_step(walkers: DataFrame, adjacency: DataFrame, step: int, seed: int, restart_prob: float) -> DataFrame:
    walk_key = (F.col(MEMBER), F.col("walk"), F.lit(step))
    is_restart = walk_uniform(seed, 0, *walk_key) < restart_prob
    choice = F.floor(walk_uniform(seed, 1, *walk_key) * F.col("node_degree")).cast("long")
    stepping = walkers.withColumn("is_restart", is_restart).withColumn("idx", choice)
    is_move = (
        (F.col("w.node") == F.col("a.node")) & (F.col("w.idx") == F.col("a.idx")) & ~F.col("w.is_restart")
    )
    moved = stepping.alias("w").join(adjacency.alias("a"), on=is_move, how="left")
    next_node = F.when(F.col("w.is_restart"), F.col(f"w.{MEMBER}")).otherwise(F.col("a.next_node"))
    next_degree = F.when(F.col("w.is_restart"), F.col("w.member_degree")).otherwise(F.col("a.next_degree"))
    return moved.select(
        F.col(f"w.{MEMBER}").alias(MEMBER), F.col("w.walk").alias("walk"),
        F.col("w.member_degree").alias("member_degree"),
        next_node.alias("node"), next_degree.alias("node_degree"),
        F.concat(F.col("w.path"), F.array(next_node)).alias("path"),
    )


def personalized_pagerank(
    edges: DataFrame,
    *,
    walks_per_member: int = DEFAULT_WALKS_PER_MEMBER,
    max_length: int = DEFAULT_MAX_LENGTH,
    restart_prob: float = DEFAULT_RESTART_PROB,
    seed: int,
    top_k: int,
) -> Callable[[DataFrame], DataFrame]:
    """Seeds (member_id) -> member_id long, candidate_id long, ppr_score double, top `top_k` per member.

    `edges` is the symmetric graph (src, dst); its pairs are also the exclusions (existing connections).
    """
    if walks_per_member < 1 or max_length < 1 or top_k < 1:
        raise ValueError(f"walks_per_member, max_length and top_k must be >= 1, "
                         f"got {walks_per_member}, {max_length}, {top_k}")
    if not 0.0 <= restart_prob < 1.0:
        raise ValueError(f"restart_prob must be in [0, 1), got {restart_prob}")
    require_columns(edges, [SRC, DST], "personalized_pagerank edges")

    def transform(seeds: DataFrame) -> DataFrame:
        require_columns(seeds, [MEMBER], "personalized_pagerank seeds")
        adjacency = indexed_adjacency(edges)
        degrees = adjacency.groupBy("node").agg(F.count(F.lit(1)).alias("member_degree"))
        walkers = (
            seeds.select(F.col(MEMBER).cast("long").alias(MEMBER)).distinct()
            .join(degrees.withColumnRenamed("node", MEMBER), on=MEMBER, how="inner")
            .withColumn("walk", F.explode(F.sequence(F.lit(0), F.lit(walks_per_member - 1))))
            .select(MEMBER, "walk", "member_degree", F.col(MEMBER).alias("node"),
                    F.col("member_degree").alias("node_degree"), F.array().cast("array<long>").alias("path"))
        )
        for step in range(1, max_length + 1):
            walkers = _take_step(walkers, adjacency, step, seed, restart_prob)
        connected = edges.select(F.col(SRC).cast("long").alias(MEMBER), F.col(DST).cast("long").alias(CANDIDATE))
        visits = walkers.select(MEMBER, F.explode("path").alias(CANDIDATE))
        is_other_member = F.col(CANDIDATE) != F.col(MEMBER)
        steps_per_member = float(walks_per_member * max_length)
        scored = (
            visits.where(is_other_member)
            .join(connected, on=[MEMBER, CANDIDATE], how="left_anti")
            .groupBy(MEMBER, CANDIDATE).agg((F.count(F.lit(1)) / steps_per_member).alias(PPR_SCORE))
        )
        by_score = (
            Window.partitionBy(MEMBER).orderBy(F.col(PPR_SCORE).desc(), F.col(CANDIDATE).asc())
            .rowsBetween(Window.unboundedPreceding, Window.currentRow)
        )
        is_kept = F.col("_rank") <= top_k
        return (
            scored.withColumn("_rank", F.row_number().over(by_score))
            .where(is_kept)
            .select(F.col(MEMBER).cast("long"), F.col(CANDIDATE).cast("long"), F.col(PPR_SCORE).cast("double"))
        )

    return transform
