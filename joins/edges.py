"""The graph as every kernel sees it: symmetric, deduplicated, loop-free edges, and each member's degree.

Why symmetric: every kernel asks "who are the neighbours of a?"; storing both directions makes that one
filter on `src`, and one row per direction is exactly the adjacency the triangle kernel needs. Why one
normaliser: the graph snapshot, the triangle strategies and the self-join reference must agree on what
the graph is (design.md: undirected, self-loops dropped, duplicate edges merged), so they share this one.

A hub is a member whose degree is at least sqrt(number of undirected edges): the classic heavy-hitter cut
of triangle listing, above which a member's wedges dominate the join's output.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mutuals.checks import require_columns

SRC, DST, CONNECTED_AT = "src", "dst", "connected_at"
MEMBER, DEGREE, IS_HUB = "member_id", "degree", "is_hub"


def symmetric_edges(edges: DataFrame) -> DataFrame:
    """Edges in any direction, with duplicates, self-loops and null ends -> both directions of every
    undirected edge once, as longs. When `connected_at` is present an edge keeps its earliest one and the
    output is (src, dst, connected_at); otherwise it is (src, dst)."""
    require_columns(edges, [SRC, DST], "symmetric_edges")
    has_time = CONNECTED_AT in edges.columns
    time = [CONNECTED_AT] if has_time else []
    is_proper_edge = F.col(SRC) != F.col(DST)
    has_both_ends = F.col(SRC).isNotNull() & F.col(DST).isNotNull()
    canonical = edges.where(is_proper_edge & has_both_ends).select(
        F.least(SRC, DST).cast("long").alias("a"), F.greatest(SRC, DST).cast("long").alias("b"), *time,
    )
    if has_time:
        undirected = canonical.groupBy("a", "b").agg(F.min(CONNECTED_AT).alias(CONNECTED_AT))
    else:
        undirected = canonical.distinct()
    forward = undirected.select(F.col("a").alias(SRC), F.col("b").alias(DST), *time)
    backward = undirected.select(F.col("b").alias(SRC), F.col("a").alias(DST), *time)
    return forward.unionByName(backward).select(F.col(SRC), F.col(DST), *time)


def member_degrees(edges: DataFrame) -> DataFrame:
    """Symmetric edges -> member_id, degree, is_hub (degree >= sqrt(#undirected edges)), one row per member
    with at least one connection. Counts the edges once on the driver to place the hub cut."""
    require_columns(edges, [SRC, DST], "member_degrees")
    degrees = edges.groupBy(SRC).agg(F.count(F.lit(1)).alias(DEGREE))
    undirected_edge_count = edges.count() // 2
    hub_cut = max(1.0, undirected_edge_count**0.5)
    return degrees.select(
        F.col(SRC).cast("long").alias(MEMBER),
        F.col(DEGREE).cast("long"),
        (F.col(DEGREE) >= F.lit(hub_cut)).alias(IS_HUB),
    )
