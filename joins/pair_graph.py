"""Graph features of candidate pairs, exact and skew-aware: `with_graph_pair_features`.

For a pair (a, c) of the graph snapshot, with N(x) the neighbours of x and d(x) = |N(x)|:
- common_connections = |N(a) & N(c)|;
- adamic_adar = sum over z in N(a) & N(c) of 1 / ln d(z); resource_allocation = sum of 1 / d(z); both
  float64, added in ascending z (member id) order, so a sum is reproducible bit for bit;
- jaccard = common / |N(a) | N(c)| = common / (d(a) + d(c) - common); 0.0 when both have no edges;
- member_degree = d(a), candidate_degree = d(c); 0 for a member with no edges (not in the snapshot).

Strategies:

- "broadcast": the snapshot as a compact CSR (`joins.csr`, dense indices in id order) is built on the
  driver and broadcast once. The pairs stay where they are (no shuffle): every Arrow batch of every
  partition runs the numba kernel (`joins.pair_kernel`) on its own, as a scalar Arrow UDF of the two ids,
  and the pairs' other columns stay on the JVM side. A pair costs about min(d) * (1 + log2(1 + max(d) / min(d))) in
  the galloping kernel, never a hub's whole list, so a partition of pairs costs about its rows and a hub
  member does not make a straggler.
- "expand": for a snapshot whose CSR exceeds `broadcast_limit_bytes`. No task holds the graph: each pair
  expands the neighbour list of its endpoint with the SMALLER degree and probes the other endpoint's edges
  (the pattern of `joins.candidates.with_exact_common_connections`), so a leaf paired with a hub costs the
  leaf's degree in rows, never the hub's; only a pair of two hubs expands a hub's list. The terms of each
  pair are then sorted by z and folded left in that order (Spark's `aggregate`), so the sums are added in
  the same ascending z order as the kernel's (they agree with it to the last bit or two: the JVM's and
  libm's `log` may round differently).
- "auto": "broadcast" when the CSR fits in `broadcast_limit_bytes`, else "expand".
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.functions import arrow_udf
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import BooleanType, DoubleType, IntegerType, LongType, StructField, StructType

from joins.csr import Csr, collect_csr
from mutuals.checks import require_columns
from mutuals.errors import UsageError

MEMBER, CANDIDATE = "member_id", "candidate_id"
SRC, DST, DEGREE = "src", "dst", "degree"
COMMON, ADAMIC_ADAR, RESOURCE_ALLOCATION, JACCARD = (
    "common_connections", "adamic_adar", "resource_allocation", "jaccard")
MEMBER_DEGREE, CANDIDATE_DEGREE = "member_degree", "candidate_degree"
GRAPH_FEATURES = StructType([
    StructField(COMMON, IntegerType(), False), StructField(ADAMIC_ADAR, DoubleType(), False),
    StructField(RESOURCE_ALLOCATION, DoubleType(), False), StructField(JACCARD, DoubleType(), False),
    StructField(MEMBER_DEGREE, LongType(), False), StructField(CANDIDATE_DEGREE, LongType(), False),
])
GRAPH_COLUMNS = tuple(GRAPH_FEATURES.fieldNames())

STRATEGIES = ("auto", "broadcast", "expand")
DEFAULT_BROADCAST_LIMIT_BYTES = 256 * 1024 * 1024

Transform = Callable[[DataFrame], DataFrame]


class PairStrategyUnknown(UsageError, ValueError):
    """`strategy` is not one of STRATEGIES."""


def _require_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise PairStrategyUnknown(f"strategy must be one of {STRATEGIES}, found {strategy!r}")


# ---------------------------------------------------------------- broadcast


def graph_feature_arrays(csr: Csr, member: np.ndarray, candidate: np.ndarray) -> dict[str, np.ndarray]:
    """Every graph feature of the pairs (member[i], candidate[i]) of one CSR, as numpy columns."""
    from joins.pair_kernel import pair_sums  # numba loads where the kernel runs

    a, c = _dense_pairs(csr, member, candidate)
    common, adamic_adar, resource_allocation = pair_sums(csr.indptr, csr.indices, a, c)
    deg = csr.degrees()
    member_degree = np.where(a >= 0, deg[np.maximum(a, 0)] if deg.size else 0, 0).astype(np.int64)
    candidate_degree = np.where(c >= 0, deg[np.maximum(c, 0)] if deg.size else 0, 0).astype(np.int64)
    union = member_degree + candidate_degree - common
    jaccard = np.divide(common, union, out=np.zeros(common.shape[0], dtype=np.float64), where=union > 0)
    return {COMMON: common, ADAMIC_ADAR: adamic_adar, RESOURCE_ALLOCATION: resource_allocation,
            JACCARD: jaccard, MEMBER_DEGREE: member_degree, CANDIDATE_DEGREE: candidate_degree}


def common_connection_counts(csr: Csr, member: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """|N(member[i]) & N(candidate[i])| per pair, int32 (0 for a member with no edges)."""
    from joins.pair_kernel import pair_sums  # numba loads where the kernel runs

    return pair_sums(csr.indptr, csr.indices, *_dense_pairs(csr, member, candidate))[0]


def _dense_pairs(csr: Csr, member: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs' dense CSR indices (-1 for a member with no edges)."""
    from joins.pair_kernel import dense_index

    return (dense_index(csr.ids, np.asarray(member, dtype=np.int64)),
            dense_index(csr.ids, np.asarray(candidate, dtype=np.int64)))


def connection_flags(csr: Csr, member: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Per pair, whether member[i] and candidate[i] are connected in the CSR's graph."""
    from joins.pair_kernel import has_edges  # numba loads where the kernel runs

    return has_edges(csr.indptr, csr.indices, *_dense_pairs(csr, member, candidate))


def is_connected_in(csr: Csr, spark: SparkSession) -> Callable[[Column, Column], Column]:
    """A column function (member, candidate) -> whether the two are connected in `csr`, broadcast once:
    the anti-join with the connections as a lookup where the pairs are, with no shuffle of the pairs."""
    handle = spark.sparkContext.broadcast(csr)

    def connected(member: pa.Array, candidate: pa.Array) -> pa.Array:
        return pa.array(connection_flags(handle.value, member.to_numpy(zero_copy_only=False),
                                         candidate.to_numpy(zero_copy_only=False)), type=pa.bool_())

    udf = arrow_udf(connected, BooleanType())
    return lambda member, candidate: udf(member.cast("long"), candidate.cast("long"))


def _common_count_udf(csr_handle) -> Callable[[pa.Array, pa.Array, pa.Array], pa.Array]:
    def common_connections(member: pa.Array, candidate: pa.Array, known: pa.Array) -> pa.Array:
        counts = known.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int32)
        missing = np.flatnonzero(known.is_null().to_numpy(zero_copy_only=False))
        if missing.size:
            counts[missing] = common_connection_counts(
                csr_handle.value, member.to_numpy(zero_copy_only=False)[missing],
                candidate.to_numpy(zero_copy_only=False)[missing])
        return pa.array(counts, type=pa.int32())

    return common_connections


def with_broadcast_common_connections(csr: Csr, known_common: str) -> Transform:
    """Pairs (member_id, candidate_id, nullable int `known_common`, ...) -> the same rows plus
    common_connections: the known count where there is one, else |N(m) & N(c)| from the snapshot's CSR
    (`joins.csr.collect_csr`), broadcast once. Only the two ids and the known count of each row cross into
    Python, and the kernel runs for the rows without a count; the pairs are never shuffled."""

    def transform(pairs: DataFrame) -> DataFrame:
        require_columns(pairs, [MEMBER, CANDIDATE, known_common], "with_broadcast_common_connections")
        handle = pairs.sparkSession.sparkContext.broadcast(csr)
        count = arrow_udf(_common_count_udf(handle), IntegerType())(
            F.col(MEMBER).cast("long"), F.col(CANDIDATE).cast("long"), F.col(known_common).cast("int"))
        return pairs.select(*pairs.columns, count.alias(COMMON))

    return transform


def _kernel_udf(csr_handle) -> Callable[[pa.Array, pa.Array], pa.Array]:
    arrow_type = to_arrow_schema(GRAPH_FEATURES)

    def graph_features(member: pa.Array, candidate: pa.Array) -> pa.Array:
        csr: Csr = csr_handle.value
        features = graph_feature_arrays(csr, member.to_numpy(zero_copy_only=False),
                                        candidate.to_numpy(zero_copy_only=False))
        return pa.StructArray.from_arrays([pa.array(features[f.name], type=f.type) for f in arrow_type],
                                          fields=list(arrow_type))

    return graph_features


def _broadcast(pairs: DataFrame, edges: DataFrame) -> DataFrame:
    """Only the two id columns of each Arrow batch go to Python and only the features come back; Spark keeps
    the pairs' other columns on the JVM side and zips them with the result, so a wide pair row never
    crosses into Python."""
    spark = pairs.sparkSession
    handle = spark.sparkContext.broadcast(collect_csr(edges))
    kernel = arrow_udf(_kernel_udf(handle), GRAPH_FEATURES)
    graph = kernel(F.col(MEMBER).cast("long"), F.col(CANDIDATE).cast("long"))
    return (pairs.withColumn("_graph", graph)
            .select(*pairs.columns, *(F.col("_graph")[name].alias(name) for name in GRAPH_COLUMNS)))


# ---------------------------------------------------------------- expand


def _expand(pairs: DataFrame, edges: DataFrame, degrees: DataFrame) -> DataFrame:
    adjacency = edges.select(F.col(SRC).cast("long").alias(SRC), F.col(DST).cast("long").alias(DST))
    degree = degrees.select(F.col(MEMBER).cast("long").alias(MEMBER), F.col(DEGREE).cast("long").alias(DEGREE))
    keys = [MEMBER, CANDIDATE]
    member_degree = degree.select(F.col(MEMBER), F.col(DEGREE).alias(MEMBER_DEGREE))
    candidate_degree = degree.select(F.col(MEMBER).alias(CANDIDATE), F.col(DEGREE).alias(CANDIDATE_DEGREE))
    oriented = (
        pairs.select(*keys)
        .join(member_degree, on=MEMBER, how="left").join(candidate_degree, on=CANDIDATE, how="left")
        .select(*keys, F.coalesce(MEMBER_DEGREE, F.lit(0)).alias(MEMBER_DEGREE),
                F.coalesce(CANDIDATE_DEGREE, F.lit(0)).alias(CANDIDATE_DEGREE))
    )
    is_member_smaller = F.col(MEMBER_DEGREE) <= F.col(CANDIDATE_DEGREE)
    expand_node = F.when(is_member_smaller, F.col(MEMBER)).otherwise(F.col(CANDIDATE))
    probe_node = F.when(is_member_smaller, F.col(CANDIDATE)).otherwise(F.col(MEMBER))
    via = adjacency.select(F.col(SRC).alias("_expand"), F.col(DST).alias("_z"))
    probe = adjacency.select(F.col(SRC).alias("_probe"), F.col(DST).alias("_z"))
    z_degree = degree.select(F.col(MEMBER).alias("_z"), F.col(DEGREE).alias("_dz"))
    terms = (
        oriented.select(*keys, expand_node.alias("_expand"), probe_node.alias("_probe"))
        .join(via, on="_expand", how="inner")
        .join(probe, on=["_probe", "_z"], how="inner")
        .join(z_degree, on="_z", how="inner")
        .groupBy(*keys)
        .agg(F.array_sort(F.collect_list(F.struct(F.col("_z"), F.col("_dz")))).alias("_terms"))
    )
    fold = F.aggregate  # left fold in array order: ascending z, as in the kernel
    sums = terms.select(
        *keys, F.size("_terms").alias(COMMON),
        fold("_terms", F.lit(0.0), lambda acc, t: acc + F.when(
            t["_dz"] > 1, F.lit(1.0) / F.log(t["_dz"].cast("double"))).otherwise(F.lit(0.0))).alias(ADAMIC_ADAR),
        fold("_terms", F.lit(0.0), lambda acc, t: acc + F.lit(1.0) / t["_dz"].cast("double")).alias(
            RESOURCE_ALLOCATION),
    )
    common = F.coalesce(F.col(COMMON), F.lit(0))
    union = F.col(MEMBER_DEGREE) + F.col(CANDIDATE_DEGREE) - common
    graph = oriented.join(sums, on=keys, how="left").select(
        *keys, common.cast("int").alias(COMMON),
        F.coalesce(F.col(ADAMIC_ADAR), F.lit(0.0)).alias(ADAMIC_ADAR),
        F.coalesce(F.col(RESOURCE_ALLOCATION), F.lit(0.0)).alias(RESOURCE_ALLOCATION),
        F.when(union > 0, common.cast("double") / union.cast("double")).otherwise(F.lit(0.0)).alias(JACCARD),
        F.col(MEMBER_DEGREE).cast("long"), F.col(CANDIDATE_DEGREE).cast("long"),
    )
    return pairs.join(graph, on=keys, how="inner")


# ---------------------------------------------------------------- public API


def estimated_csr_bytes(degrees: DataFrame) -> int:
    """The CSR's size from the published degrees: int32 per adjacency entry, int64 id and offset per node."""
    row = degrees.agg(F.count(F.lit(1)).alias("nodes"), F.sum(DEGREE).alias("entries")).first()
    nodes, entries = int(row["nodes"]), int(row["entries"] or 0)
    return entries * 4 + (nodes + 1) * 8 + nodes * 8


def choose_strategy(strategy: str, degrees: DataFrame, broadcast_limit_bytes: int) -> str:
    """The concrete strategy ("broadcast" or "expand") for `strategy`, which may be "auto"."""
    _require_strategy(strategy)
    if strategy != "auto":
        return strategy
    return "broadcast" if estimated_csr_bytes(degrees) <= broadcast_limit_bytes else "expand"


def with_graph_pair_features(
    edges: DataFrame, degrees: DataFrame, *, strategy: str = "auto",
    broadcast_limit_bytes: int = DEFAULT_BROADCAST_LIMIT_BYTES,
) -> Transform:
    """Pairs (member_id, candidate_id, other columns) -> the same rows, the other columns untouched, plus
    GRAPH_COLUMNS (a column of the pairs with one of those names is replaced).

    edges: the snapshot (src, dst), symmetric as graph/edges holds it (any direction works for
    "broadcast"; "expand" needs both directions); degrees: member_id, degree of the same snapshot.
    Pairs must be unique per (member_id, candidate_id)."""
    require_columns(edges, [SRC, DST], "with_graph_pair_features edges")
    require_columns(degrees, [MEMBER, DEGREE], "with_graph_pair_features degrees")
    _require_strategy(strategy)

    def transform(pairs: DataFrame) -> DataFrame:
        require_columns(pairs, [MEMBER, CANDIDATE], "with_graph_pair_features")
        carried = pairs.drop(*GRAPH_COLUMNS)
        chosen = choose_strategy(strategy, degrees, broadcast_limit_bytes)
        if chosen == "expand":
            return _expand(carried, edges, degrees)
        return _broadcast(carried, edges)

    return transform
