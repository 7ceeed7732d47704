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

from joins.economic import DEFAULT_BLOCK_SIZE, DEFAULT_HUB_THRESHOLD, latest_records_as_of, overlap_candidates
from joins.ppr import DEFAULT_MAX_LENGTH, DEFAULT_RESTART_PROB, DEFAULT_WALKS_PER_MEMBER, personalized_pagerank
from joins.triangles import DEFAULT_BROADCAST_LIMIT_BYTES, close_triangles
from mutuals.checks import require_columns
from mutuals.tables import CANDIDATE_PAIRS, SOURCES

MEMBER, CANDIDATE = "member_id", "candidate_id"
SRC, DST = "src", "dst"
DEGREE = "degree"
COMMON = "common_connections"
COWORKER_DAYS, SCHOOLMATE_DAYS, PPR_SCORE = "coworker_overlap_days", "schoolmate_overlap_days", "ppr_score"
# One symmetric edge row as an entry of the broadcast neighbour lists: 8 bytes in its member's array, doubled
# for each member's row, key and slot. At 100k members (1,523,724 rows, 99,872 lists) Spark reported a
# 67.9 MB relation, most of it the first 64 MiB page it allocates for any relation.
BROADCAST_BYTES_PER_EDGE = 16


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


def lists_fit_broadcast(edge_rows: int, limit_bytes: int) -> bool:
    """Whether every member's neighbour list, as one broadcast hash relation, stays under `limit_bytes`."""
    return edge_rows * BROADCAST_BYTES_PER_EDGE <= limit_bytes


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


def _counted_by_lists(pairs: DataFrame, adjacency: DataFrame, known_common: str) -> DataFrame:
    """The common count of the pairs without `known_common` as the size of the intersection of the two
    endpoints' neighbour lists, both looked up in one broadcast relation: no pair row is ever expanded,
    shuffled or aggregated, and a pair costs the two list lengths."""
    lists = adjacency.groupBy(SRC).agg(F.collect_list(DST).alias("_neighbours"))
    of_member = F.broadcast(lists.select(F.col(SRC).alias(MEMBER), F.col("_neighbours").alias("_m_list")))
    of_candidate = F.broadcast(lists.select(F.col(SRC).alias(CANDIDATE), F.col("_neighbours").alias("_c_list")))
    shared = F.size(F.array_intersect(F.col("_m_list"), F.col("_c_list")))
    has_both = F.col("_m_list").isNotNull() & F.col("_c_list").isNotNull()
    count = F.coalesce(F.col(known_common), F.when(has_both, shared), F.lit(0))
    return (pairs.join(of_member, on=MEMBER, how="left").join(of_candidate, on=CANDIDATE, how="left")
            .select(*pairs.columns, count.cast("int").alias(COMMON)))


def with_exact_common_connections(
    edges: DataFrame, degrees: DataFrame, known_common: str, *, broadcast_lists: bool = False
) -> Callable[[DataFrame], DataFrame]:
    """Pairs (member_id, candidate_id, nullable `known_common`, ...) -> the same rows plus common_connections:
    the known count where there is one, else |N(m) & N(c)| computed for just that pair (0 if none).

    `broadcast_lists` (when `lists_fit_broadcast`): intersect the two neighbour lists of each pair from a
    broadcast relation (`_counted_by_lists`); otherwise expand the smaller endpoint's list through joins
    (`_counted_by_expansion`), which scales past any broadcast but shuffles and aggregates
    pairs x min degree rows.
    """
    adjacency = _adjacency(edges)
    require_columns(degrees, [MEMBER, DEGREE], "with_exact_common_connections degrees")

    def transform(pairs: DataFrame) -> DataFrame:
        require_columns(pairs, [MEMBER, CANDIDATE, known_common], "with_exact_common_connections")
        if broadcast_lists:
            return _counted_by_lists(pairs, adjacency, known_common)
        return _counted_by_expansion(pairs, adjacency, degrees, known_common)

    return transform


def _tagged(rows: DataFrame, source: str, **features: str) -> DataFrame:
    """One source's rows in the common long shape: member, candidate, source, and its own features."""
    columns = {COMMON: "int", COWORKER_DAYS: "int", SCHOOLMATE_DAYS: "int", PPR_SCORE: "double"}
    return rows.select(
        F.col(MEMBER).cast("long").alias(MEMBER), F.col(CANDIDATE).cast("long").alias(CANDIDATE),
        F.lit(source).alias("source"),
        *((F.col(features[name]) if name in features else F.lit(None)).cast(kind).alias(name)
          for name, kind in columns.items()),
    )


def cold_members(threshold: int, proposed: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """Members (member_id: every member with a connection) -> those with fewer than `threshold` distinct
    proposed candidates.

    `proposed` holds at most one row per (member, candidate, source), as every source caps its own top K.
    So a member with at least `threshold` rows per source has at least `threshold` distinct candidates,
    and only the few members below that row count have their distinct candidates counted: a row count
    per member instead of a distinct count over every proposed pair."""

    def transform(members: DataFrame) -> DataFrame:
        require_columns(members, [MEMBER], "cold_members")
        require_columns(proposed, [MEMBER, CANDIDATE, "source"], "cold_members proposed")
        per_member = proposed.groupBy(MEMBER).agg(F.count(F.lit(1)).alias("_rows"),
                                                  F.count_distinct("source").alias("_sources"))
        is_surely_warm = F.col("_rows") >= F.col("_sources") * threshold
        uncertain = per_member.where(~is_surely_warm).select(MEMBER)
        counted = (proposed.join(F.broadcast(uncertain), on=MEMBER, how="left_semi")
                   .groupBy(MEMBER).agg(F.count_distinct(CANDIDATE).alias("_proposed")))
        warm = (per_member.where(is_surely_warm).select(MEMBER)
                .unionByName(counted.where(F.col("_proposed") >= threshold).select(MEMBER)))
        return members.select(F.col(MEMBER).cast("long").alias(MEMBER)).join(warm, on=MEMBER, how="left_anti")

    return transform


def merge_sources(edges: DataFrame, degrees: DataFrame, *, broadcast_lists: bool = False
                  ) -> Callable[[DataFrame], DataFrame]:
    """Long rows (member, candidate, source, features) -> one row per pair in the candidates/pairs schema."""

    def transform(tagged: DataFrame) -> DataFrame:
        flags = [F.max(F.col("source") == source).alias(f"_is_{source}") for source in SOURCES]
        merged = tagged.groupBy(MEMBER, CANDIDATE).agg(
            *flags, F.max(COMMON).alias("_triangle_common"), F.max(COWORKER_DAYS).alias(COWORKER_DAYS),
            F.max(SCHOOLMATE_DAYS).alias(SCHOOLMATE_DAYS), F.max(PPR_SCORE).alias(PPR_SCORE),
        )
        sources = F.array_compact(F.array(*(F.when(F.col(f"_is_{s}"), F.lit(s)) for s in SOURCES)))
        return merged.transform(with_exact_common_connections(
            edges, degrees, "_triangle_common", broadcast_lists=broadcast_lists)).select(
            F.col(MEMBER).cast("long").alias(MEMBER),
            F.col(CANDIDATE).cast("long").alias(CANDIDATE),
            sources.alias("sources"),
            F.col(COMMON).cast("int").alias(COMMON),
            F.coalesce(F.col(COWORKER_DAYS), F.lit(0)).cast("int").alias(COWORKER_DAYS),
            F.coalesce(F.col(SCHOOLMATE_DAYS), F.lit(0)).cast("int").alias(SCHOOLMATE_DAYS),
            F.coalesce(F.col(PPR_SCORE), F.lit(0.0)).cast("double").alias(PPR_SCORE),
        )

    return transform


def propose_candidates(
    edges: DataFrame, positions: DataFrame, educations: DataFrame, options: CandidateOptions,
    triangles: DataFrame | None = None,
) -> DataFrame:
    """Triangle, co-worker and schoolmate candidates in the long shape (member, candidate, source, features).
    positions/educations carry their landing `ds`; the caller has already dropped partitions after D.
    `triangles`: the triangle top K (member_id, candidate_id, common_connections) when the caller already
    has it exactly, e.g. from `joins.incremental`; otherwise it is closed here in full. Only the triangle
    source is ever incremental: the co-worker, schoolmate and PPR sources are recomputed every day."""
    edges = _adjacency(edges)
    k = options.max_per_source
    economic = dict(hub_threshold=options.hub_threshold, block_size=options.block_size)
    if triangles is None:
        triangles = close_triangles(edges, k, strategy=options.triangle_strategy)
    coworkers = (
        positions.transform(latest_records_as_of([MEMBER, "company_id", "start_date"]))
        .transform(overlap_candidates("company_id", options.as_of, k, edges, **economic))
    )
    schoolmates = (
        educations.transform(latest_records_as_of([MEMBER, "school_id", "start_date"]))
        .transform(overlap_candidates("school_id", options.as_of, k, edges, **economic))
    )
    tagged = (
        _tagged(triangles, "triangle", **{COMMON: COMMON})
        .unionByName(_tagged(coworkers, "coworker", **{COWORKER_DAYS: "overlap_days"}))
        .unionByName(_tagged(schoolmates, "schoolmate", **{SCHOOLMATE_DAYS: "overlap_days"}))
    )
    # The projection on top keeps this union whole: Spark flattens a union of unions as it builds it, so
    # without it the PPR union in `complete_candidates` would dissolve these rows into its own union and
    # the persisted copy the job makes of them would no longer be found (every source ran twice).
    return tagged.select(*tagged.columns)


def complete_candidates(
    edges: DataFrame, degrees: DataFrame, proposed: DataFrame, options: CandidateOptions,
    edge_rows: int | None = None,
) -> DataFrame:
    """Add PPR candidates for cold members to `proposed`, merge per pair -> the candidates/pairs rows.
    `proposed` is read twice (cold members, merge); the job persists it so it is computed once.
    `edge_rows` (the symmetric edge count, when known) lets the exact common counts intersect broadcast
    neighbour lists when they fit `options.broadcast_limit_bytes`."""
    broadcast_lists = edge_rows is not None and lists_fit_broadcast(edge_rows, options.broadcast_limit_bytes)
    edges = _adjacency(edges)
    ppr = degrees.transform(cold_members(options.cold_threshold, proposed)).transform(personalized_pagerank(
        edges, walks_per_member=options.ppr_walks, max_length=options.ppr_max_length,
        restart_prob=options.ppr_restart_prob, seed=options.seed, top_k=options.max_per_source,
    ))
    return (
        proposed.unionByName(_tagged(ppr, "ppr", **{PPR_SCORE: PPR_SCORE}))
        .transform(merge_sources(edges, degrees, broadcast_lists=broadcast_lists))
        .select(*CANDIDATE_PAIRS.fieldNames())
    )
