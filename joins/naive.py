"""The plain Spark self-join for triangle closing: the reference answer and the benchmark baseline.

Why keep it: it is the textbook formulation (join the edge list with itself on the middle member,
anti-join the existing edges, group, rank), short enough to check by eye, so tests compare the kernel
strategies against it. Why not use it in production: it materializes and shuffles every wedge, so its
cost and memory follow sum(deg^2) and one hub dominates one reducer (see joins.triangles).

This module also holds what every strategy shares: the input checks and the top-K order. The edge
normalization they share is `joins.edges.symmetric_edges`.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, LongType, StructField, StructType

from joins.edges import symmetric_edges
from mutuals.errors import SchemaError, UsageError

SRC, DST = "src", "dst"
MEMBER_ID, CANDIDATE_ID, COMMON = "member_id", "candidate_id", "common_connections"

EDGE_SCHEMA = StructType([StructField(SRC, LongType(), False), StructField(DST, LongType(), False)])
CLOSED_TRIANGLES_SCHEMA = StructType([
    StructField(MEMBER_ID, LongType(), False),
    StructField(CANDIDATE_ID, LongType(), False),
    StructField(COMMON, IntegerType(), False),
])


class EdgeColumnsMissing(SchemaError, ValueError):
    """The edge DataFrame lacks `src` or `dst`."""


class EdgeColumnsNotIntegral(SchemaError, TypeError):
    """`src`/`dst` exist but are not integer columns, so they cannot be member ids (longs)."""


class TopKInvalid(UsageError, ValueError):
    """top_k is not a positive integer."""


def require_edges(edges: DataFrame) -> None:
    """Fail on entry, naming what is missing and what is present."""
    present = edges.columns
    missing = [name for name in EDGE_SCHEMA.fieldNames() if name not in present]
    if missing:
        raise EdgeColumnsMissing(f"edges need columns {EDGE_SCHEMA.fieldNames()}; missing {missing}, "
                                 f"present {present}")
    types = {f.name: f.dataType.simpleString() for f in edges.schema.fields if f.name in (SRC, DST)}
    wrong = {name: t for name, t in types.items() if t not in ("bigint", "int", "smallint", "tinyint")}
    if wrong:
        raise EdgeColumnsNotIntegral(f"src and dst must be integer (long) member ids, found {wrong}")


def require_top_k(top_k: object) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise TopKInvalid(f"top_k must be a positive int, found {top_k!r}")
    return top_k


def top_k_per_member(top_k: int) -> Callable[[DataFrame], DataFrame]:
    """Keep the K best rows per member: common DESC, then candidate id ASC (design.md)."""

    def keep_top_k(pairs: DataFrame) -> DataFrame:
        best_first = (Window.partitionBy(MEMBER_ID)
                      .orderBy(F.col(COMMON).desc(), F.col(CANDIDATE_ID).asc())
                      .rowsBetween(Window.unboundedPreceding, Window.currentRow))
        rank: Column = F.row_number().over(best_first)
        is_in_top_k = F.col("rank") <= top_k
        return (pairs.withColumn("rank", rank).where(is_in_top_k)
                .select(F.col(MEMBER_ID).cast("long"), F.col(CANDIDATE_ID).cast("long"),
                        F.col(COMMON).cast("int")))

    return keep_top_k


def naive_close_triangles(top_k: int) -> Callable[[DataFrame], DataFrame]:
    """Self-join on the middle member, drop existing edges and self-pairs, count, keep the top K."""
    require_top_k(top_k)

    def close(edges: DataFrame) -> DataFrame:
        require_edges(edges)
        sym = symmetric_edges(edges.select(SRC, DST))
        first_hop = sym.select(F.col(SRC).alias(MEMBER_ID), F.col(DST).alias("middle"))
        second_hop = sym.select(F.col(SRC).alias("middle"), F.col(DST).alias(CANDIDATE_ID))
        existing = sym.select(F.col(SRC).alias(MEMBER_ID), F.col(DST).alias(CANDIDATE_ID))
        wedges = first_hop.join(second_hop, on="middle", how="inner")
        is_not_self = F.col(MEMBER_ID) != F.col(CANDIDATE_ID)
        open_wedges = (wedges.where(is_not_self)
                       .join(existing, on=[MEMBER_ID, CANDIDATE_ID], how="left_anti"))
        counted = open_wedges.groupBy(MEMBER_ID, CANDIDATE_ID).agg(F.count(F.lit(1)).alias(COMMON))
        return counted.transform(top_k_per_member(top_k)).select(MEMBER_ID, CANDIDATE_ID, COMMON)

    return close
