"""Candidate generation: triangle, co-worker, schoolmate and PPR candidates merged into candidates/pairs rows.

One row per (member, candidate) with the sources that proposed it, in the canonical order triangle,
coworker, schoolmate, ppr, and their features.

Sources, each capped at `max_per_source` per member and each excluding the member and their existing
connections:
- triangle: `joins.triangles.close_triangles`, exact common connections, top K by common desc, id asc;
- coworker / schoolmate: `joins.economic`, tenures at the same company / school overlapping >= 1 day,
  feature = max overlap days, top K by overlap desc, id asc;
- ppr: `joins.ppr`, only for cold members, those with fewer than `cold_threshold` candidates from the
  three sources above; Monte Carlo walks seeded by `seed`.

`common_connections` is always the true |N(member) & N(candidate)|: a co-worker who is also a
friend-of-friend but fell outside the triangle top K still carries their count (computed for just those
pairs), so features never depend on which source happened to propose a pair.

Inputs: `edges` is the symmetric graph (src, dst) and `degrees` its per-member degrees (member_id, degree),
as `joins.edges` builds them and the graph job publishes them; the degrees pick the cheaper endpoint to
expand when a pair's common count is computed, and name the members PPR may seed from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from joins.csr import Csr
from joins.economic import DEFAULT_BLOCK_SIZE, DEFAULT_HUB_THRESHOLD, latest_records_as_of, overlap_candidates
from joins.pair_graph import with_broadcast_common_connections
from joins.ppr import DEFAULT_MAX_LENGTH, DEFAULT_RESTART_PROB, DEFAULT_WALKS_PER_MEMBER, personalized_pagerank
from joins.triangles import DEFAULT_BROADCAST_LIMIT_BYTES, close_triangles
from mutuals.checks import require_columns
from mutuals.session import shuffle_partitions
from mutuals.tables import CANDIDATE_PAIRS, SOURCES

MEMBER, CANDIDATE = "member_id", "candidate_id"
SRC, DST = "src", "dst"
DEGREE = "degree"
COMMON = "common_connections"
COWORKER_DAYS, SCHOOLMATE_DAYS, PPR_SCORE = "coworker_overlap_days", "schoolmate_overlap_days", "ppr_score"
KNOWN_COMMON = "_triangle_common"
FEATURES = {KNOWN_COMMON: "int", COWORKER_DAYS: "int", SCHOOLMATE_DAYS: "int", PPR_SCORE: "double"}


@dataclass(frozen=True)
class CandidateOptions:
    """Every knob of candidate generation; the defaults are the job's defaults."""

    as_of: str
    max_per_source: int = 100
    cold_threshold: int = 10
    ppr_walks: int = DEFAULT_WALKS_PER_MEMBER
    ppr_max_length: int = DEFAULT_MAX_LENGTH
    ppr_restart_prob: float = DEFAULT_RESTART_PROB
    seed: int = 0
    hub_threshold: int = DEFAULT_HUB_THRESHOLD
    block_size: int = DEFAULT_BLOCK_SIZE
    triangle_strategy: str = "auto"
    broadcast_limit_bytes: int = DEFAULT_BROADCAST_LIMIT_BYTES


def _adjacency(edges: DataFrame) -> DataFrame:
    require_columns(edges, [SRC, DST], "candidate edges")
    return edges.select(F.col(SRC).cast("long").alias(SRC), F.col(DST).cast("long").alias(DST))


def _counted_by_expansion(pairs: DataFrame, adjacency: DataFrame, degrees: DataFrame, known_common: str
                          ) -> DataFrame:
    """The common count of the pairs without `known_common`, by joins that never hold the graph in a task:
    each such pair expands the neighbour list of its endpoint with the smaller degree and probes the other
    endpoint's edges, so a hub member costs min-degree rows per pair, not its own degree. Rows that
    already know their count ride through the left joins unexpanded."""
    via = adjacency.select(F.col(SRC).alias("_via_node"), F.col(DST).alias("_middle"))
    probe = adjacency.select(F.col(SRC).alias("_probe_node"), F.col(DST).alias("_probe_middle"),
                             F.lit(1).alias("_hit"))
    member_degree = degrees.select(F.col(MEMBER).cast("long").alias(MEMBER), F.col(DEGREE).alias("_m_degree"))
    candidate_degree = degrees.select(F.col(MEMBER).cast("long").alias(CANDIDATE), F.col(DEGREE).alias("_c_degree"))
    keys = pairs.columns
    is_member_smaller = F.coalesce(F.col("_m_degree"), F.lit(0)) <= F.coalesce(F.col("_c_degree"), F.lit(0))
    needs_count = F.col(known_common).isNull()
    oriented = (
        pairs.join(member_degree, on=MEMBER, how="left").join(candidate_degree, on=CANDIDATE, how="left")
        .withColumn("_expand", F.when(is_member_smaller, F.col(MEMBER)).otherwise(F.col(CANDIDATE)))
        .withColumn("_probe", F.when(is_member_smaller, F.col(CANDIDATE)).otherwise(F.col(MEMBER)))
    )
    is_expanded = (F.col("_expand") == F.col("_via_node")) & needs_count
    is_common = (F.col("_probe") == F.col("_probe_node")) & (F.col("_middle") == F.col("_probe_middle"))
    counted = (
        oriented.join(via, on=is_expanded, how="left")
        .join(probe, on=is_common, how="left")
        .groupBy(*keys).agg(F.count("_hit").alias("_counted"))
    )
    return counted.select(*keys, F.coalesce(F.col(known_common), F.col("_counted")).cast("int").alias(COMMON))


def with_exact_common_connections(
    edges: DataFrame, degrees: DataFrame, known_common: str, *, csr: Csr | None = None
) -> Callable[[DataFrame], DataFrame]:
    """Pairs (member_id, candidate_id, nullable `known_common`, ...) -> the same rows plus common_connections:
    the known count where there is one, else |N(m) & N(c)| computed for just that pair (0 if none).

    `csr` (the graph's CSR, when the caller holds it because it fits a broadcast): intersect the two sorted
    neighbour lists of each pair in it, broadcast, with the numba kernel
    (`joins.pair_graph.with_broadcast_common_connections`), where the pairs are; otherwise expand the
    smaller endpoint's list through joins (`_counted_by_expansion`), which scales past any broadcast but
    shuffles and aggregates pairs x min degree rows.
    """
    adjacency = _adjacency(edges)
    require_columns(degrees, [MEMBER, DEGREE], "with_exact_common_connections degrees")

    def transform(pairs: DataFrame) -> DataFrame:
        require_columns(pairs, [MEMBER, CANDIDATE, known_common], "with_exact_common_connections")
        if csr is not None:
            return pairs.transform(with_broadcast_common_connections(csr, known_common))
        return _counted_by_expansion(pairs, adjacency, degrees, known_common)

    return transform


SOURCE_BITS = "_sources"


def _source_bit(source: str) -> int:
    return 1 << SOURCES.index(source)


def _flagged(rows: DataFrame, source: str, **features: str) -> DataFrame:
    """One source's rows in the merge shape: member, candidate, `_sources` (a bit per source, only its
    own set) and every source's feature column (only its own filled).

    Why one bit mask and not a flag column per source: the merge of 25M pairs at 100k members is a hash
    aggregation whose cost grows with the width of its buffer; one bitwise or replaces four maxes."""
    return rows.select(
        F.col(MEMBER).cast("long").alias(MEMBER), F.col(CANDIDATE).cast("long").alias(CANDIDATE),
        F.lit(_source_bit(source)).alias(SOURCE_BITS),
        *((F.col(features[name]) if name in features else F.lit(None)).cast(kind).alias(name)
          for name, kind in FEATURES.items()),
    )


def _merged(rows: DataFrame) -> DataFrame:
    """Rows in the merge shape -> one row per (member, candidate): a source's bit is set when any row sets
    it, and each feature is its max (every source fills only its own, so the max is that source's value)."""
    return rows.groupBy(MEMBER, CANDIDATE).agg(F.bit_or(SOURCE_BITS).alias(SOURCE_BITS),
                                               *(F.max(name).alias(name) for name in FEATURES))


def cold_members(threshold: int, proposed: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """Members (member_id: every member with a connection) -> those with fewer than `threshold` proposed
    candidates. `proposed` holds one row per (member, candidate), as `propose_candidates` returns it, so a
    row count per member is its count of distinct candidates."""

    def transform(members: DataFrame) -> DataFrame:
        require_columns(members, [MEMBER], "cold_members")
        require_columns(proposed, [MEMBER, CANDIDATE], "cold_members proposed")
        warm = (proposed.groupBy(MEMBER).agg(F.count(F.lit(1)).alias("_proposed"))
                .where(F.col("_proposed") >= threshold).select(MEMBER))
        return members.select(F.col(MEMBER).cast("long").alias(MEMBER)).join(warm, on=MEMBER, how="left_anti")

    return transform


def _pairs_row(merged: DataFrame) -> DataFrame:
    """Merged rows with their exact common count -> the candidates/pairs schema: the sources as an array
    in canonical order, and 0 for a feature no source filled."""
    is_proposed_by = {s: (F.col(SOURCE_BITS).bitwiseAND(_source_bit(s)) != 0) for s in SOURCES}
    sources = F.array_compact(F.array(*(F.when(is_proposed_by[s], F.lit(s)) for s in SOURCES)))
    return merged.select(
        F.col(MEMBER).cast("long").alias(MEMBER),
        F.col(CANDIDATE).cast("long").alias(CANDIDATE),
        sources.alias("sources"),
        F.col(COMMON).cast("int").alias(COMMON),
        F.coalesce(F.col(COWORKER_DAYS), F.lit(0)).cast("int").alias(COWORKER_DAYS),
        F.coalesce(F.col(SCHOOLMATE_DAYS), F.lit(0)).cast("int").alias(SCHOOLMATE_DAYS),
        F.coalesce(F.col(PPR_SCORE), F.lit(0.0)).cast("double").alias(PPR_SCORE),
    )


def propose_candidates(
    edges: DataFrame, positions: DataFrame, educations: DataFrame, options: CandidateOptions,
    triangles: DataFrame | None = None, csr: Csr | None = None,
) -> DataFrame:
    """Triangle, co-worker and schoolmate candidates merged: one row per proposed (member, candidate) with
    a bit per source and the sources' features (the merge shape of `_flagged`).
    positions/educations carry their landing `ds`; the caller has already dropped partitions after D.
    `triangles`: the triangle top K (member_id, candidate_id, common_connections) when the caller already
    has it exactly, e.g. from `joins.incremental`; otherwise it is closed here in full. Only the triangle
    source is ever incremental: the co-worker, schoolmate and PPR sources are recomputed every day.
    `csr`: the graph's CSR when the caller holds it; the economic sources look the connections up in it.

    Every source arrives partitioned by member into `shuffle_partitions` partitions (the economic ones
    leave `joins.economic` that way, the triangle rows are shuffled so), so the merge of 25M rows at 100k
    members aggregates where the rows are, without a shuffle of its own."""
    edges = _adjacency(edges)
    k = options.max_per_source
    economic = dict(hub_threshold=options.hub_threshold, block_size=options.block_size, csr=csr)
    if triangles is None:
        triangles = close_triangles(edges, k, strategy=options.triangle_strategy)
    by_member = shuffle_partitions(edges.sparkSession)
    coworkers = (
        positions.transform(latest_records_as_of([MEMBER, "company_id", "start_date"]))
        .transform(overlap_candidates("company_id", options.as_of, k, edges, **economic))
    )
    schoolmates = (
        educations.transform(latest_records_as_of([MEMBER, "school_id", "start_date"]))
        .transform(overlap_candidates("school_id", options.as_of, k, edges, **economic))
    )
    return (
        _flagged(triangles.repartition(by_member, MEMBER), "triangle", **{KNOWN_COMMON: COMMON})
        .unionByName(_flagged(coworkers, "coworker", **{COWORKER_DAYS: "overlap_days"}))
        .unionByName(_flagged(schoolmates, "schoolmate", **{SCHOOLMATE_DAYS: "overlap_days"}))
        .transform(_merged)
    )


def complete_candidates(
    edges: DataFrame, degrees: DataFrame, proposed: DataFrame, cold: DataFrame, options: CandidateOptions,
    csr: Csr | None = None,
) -> DataFrame:
    """Add PPR candidates for the `cold` members (`cold_members` of `proposed`) and finish every pair ->
    the candidates/pairs rows.

    Only the cold members' rows are merged again, with their PPR rows; every other member's rows go
    through as `proposed` has them. `proposed` is read three times (the warm rows with a triangle count,
    those without, the cold rows) and `cold` four times (the walks and those three splits of the proposals
    by a broadcast of the cold ids): the job persists both. A warm row that the
    triangle source proposed already carries its exact count and goes straight to the output; only the
    other rows are counted (about 60% of them at 100k members), so the rows with a count never cross into
    Python or the expansion joins. Splitting the cold rows the same way would run the walks twice, and
    there are few of them. `csr`: the graph's
    CSR when the caller holds it (it fits a broadcast): the exact common counts intersect in it; without
    it they are counted by joins that never hold the graph in a task."""
    edges = _adjacency(edges)
    require_columns(cold, [MEMBER], "complete_candidates cold")
    walked = cold.transform(personalized_pagerank(
        edges, walks_per_member=options.ppr_walks, max_length=options.ppr_max_length,
        restart_prob=options.ppr_restart_prob, seed=options.seed, top_k=options.max_per_source,
    ))
    cold_ids = F.broadcast(cold.select(F.col(MEMBER).cast("long").alias(MEMBER)))
    warm_rows = proposed.join(cold_ids, on=MEMBER, how="left_anti")
    cold_rows = (proposed.join(cold_ids, on=MEMBER, how="left_semi")
                 .unionByName(_flagged(walked, "ppr", **{PPR_SCORE: PPR_SCORE})).transform(_merged))
    has_count = F.col(KNOWN_COMMON).isNotNull()
    counted = warm_rows.where(has_count).withColumn(COMMON, F.col(KNOWN_COMMON))
    uncounted = (warm_rows.where(~has_count).unionByName(cold_rows)
                 .transform(with_exact_common_connections(edges, degrees, KNOWN_COMMON, csr=csr)))
    return counted.unionByName(uncounted).transform(_pairs_row).select(*CANDIDATE_PAIRS.fieldNames())
