"""The features of each candidate pair as of day D: candidates/pairs rows -> features/pairs rows.

One row per candidates/pairs row of D, every value known by the end of D (features/pairs ds=D is what the
scorer and the training samples of later days read). Column names are the `FEATURES_PAIRS` contract.

* Graph (`joins.pair_graph`, the ds=D snapshot): common_connections, adamic_adar, resource_allocation,
  jaccard, member_degree, candidate_degree, exact, with the sums added in ascending common-neighbour id.
* Carried from candidates/pairs: coworker_overlap_days, schoolmate_overlap_days, ppr_score, sources.
* Profile (`raw/members`, every landing partition up to D, the newest copy of a member winning; within one
  partition the smallest (industry, region), nulls last, so the pick never depends on file order):
  same_industry / same_region are null when either side's value is unknown (no profile, or null).
* Source ranks: `<source>_rank` is the pair's 1-based position among the member's pairs that `source`
  proposed, null when it did not propose the pair. Order per source, ties always by candidate_id ascending:
  triangle by common_connections desc (the triangle top-K order), coworker by coworker_overlap_days desc,
  schoolmate by schoolmate_overlap_days desc, ppr by ppr_score desc.
* History (impression discounting), from raw/events stamped in the 28 whole days before D,
  [D-28 00:00, D 00:00) UTC, as landed in the published partitions up to D (the lake's first days simply
  have fewer days). Events count once per event_id; impressions count once per showing, as the labels do
  (one per request_id, or per timestamp when the request_id is null):
  - shown_28d: the pair's showings in the window (0 when never shown);
  - days_since_last_shown: D minus the UTC day of the latest showing (1 = shown the day before D), null
    when never shown in the window;
  - previously_dismissed: the member dismissed the candidate in the window (false otherwise).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pyarrow as pa
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import IntegerType, StructField, StructType

from joins.csr import Csr, collect_csr
from joins.pair_graph import (
    DEFAULT_BROADCAST_LIMIT_BYTES,
    GRAPH_COLUMNS,
    GRAPH_FEATURES,
    choose_strategy,
    graph_feature_arrays,
    with_graph_pair_features,
)
from mutuals.checks import require_columns
from mutuals.tables import CANDIDATE_PAIRS, DS, FEATURES_PAIRS
from ranking.source_ranks import RANK_COLUMNS, RANK_KEYS, by_member, source_rank_arrays, whole_members

Transform = Callable[[DataFrame], DataFrame]

MEMBER, CANDIDATE = "member_id", "candidate_id"
HISTORY_DAYS = 28
IMPRESSION, DISMISS = "impression", "dismiss"

def shift_day(ds: str, days: int) -> str:
    return (dt.date.fromisoformat(ds) + dt.timedelta(days=days)).isoformat()


def history_window(as_of: str, days: int = HISTORY_DAYS) -> tuple[str, str]:
    """(first, last) landing partitions the history of `as_of` reads: events stamped from `as_of - days`
    may land up to `as_of` itself."""
    return shift_day(as_of, -days), as_of


def _day_start(ds: str) -> Column:
    dt.date.fromisoformat(ds)
    return F.to_timestamp(F.lit(f"{ds} 00:00:00"))


# ---------------------------------------------------------------- profile
def latest_profiles(members: DataFrame) -> DataFrame:
    """raw/members rows of many landing days (with `ds`) -> member_id, industry, region: the newest."""
    require_columns(members, [MEMBER, "industry", "region", DS], "latest_profiles")
    newest_first = Window.partitionBy(MEMBER).orderBy(
        F.col(DS).desc(), F.col("industry").asc_nulls_last(), F.col("region").asc_nulls_last(),
    ).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    return (members.withColumn("_rank", F.row_number().over(newest_first)).where(F.col("_rank") == 1)
            .select(F.col(MEMBER).cast("long").alias(MEMBER), "industry", "region"))


def with_profile_matches(profiles: DataFrame) -> Transform:
    """Pairs -> pairs plus same_industry, same_region (null when either side is unknown)."""
    require_columns(profiles, [MEMBER, "industry", "region"], "with_profile_matches")
    member = profiles.select(F.col(MEMBER), F.col("industry").alias("_m_industry"),
                             F.col("region").alias("_m_region"))
    candidate = profiles.select(F.col(MEMBER).alias(CANDIDATE), F.col("industry").alias("_c_industry"),
                                F.col("region").alias("_c_region"))

    def transform(pairs: DataFrame) -> DataFrame:
        require_columns(pairs, [MEMBER, CANDIDATE], "with_profile_matches")
        same_industry = F.col("_m_industry") == F.col("_c_industry")  # null when either is null
        same_region = F.col("_m_region") == F.col("_c_region")
        return (pairs.join(member, on=MEMBER, how="left").join(candidate, on=CANDIDATE, how="left")
                .withColumn("same_industry", same_industry).withColumn("same_region", same_region)
                .drop("_m_industry", "_m_region", "_c_industry", "_c_region"))

    return transform


# ---------------------------------------------------------------- source ranks and graph features
def _ranking_runner(csr_handle, out_schema: pa.Schema
                    ) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """mapInArrow body over member-sorted partitions: per chunk of whole members, the graph features from
    the broadcast CSR (when a handle is given; else the rows carry them already), then the source ranks
    over those values."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for chunk in whole_members(batches):
            columns: dict[str, pa.Array | pa.ChunkedArray] = {
                name: chunk.column(name) for name in chunk.column_names}
            if csr_handle is not None:
                member = chunk.column(MEMBER).to_numpy()
                candidate = chunk.column(CANDIDATE).to_numpy()
                graph = graph_feature_arrays(csr_handle.value, member, candidate)
                columns.update({name: pa.array(graph[name], type=out_schema.field(name).type)
                                for name in GRAPH_COLUMNS})
            columns.update(source_rank_arrays(columns))
            yield from pa.table([columns[f.name] for f in out_schema], schema=out_schema).to_batches()

    return run


def with_ranks_and_graph(csr: Csr | None) -> Transform:
    """Pairs (CANDIDATE_PAIRS columns; with GRAPH_COLUMNS already when `csr` is None) -> plus the graph
    features of `csr` (when given) and RANK_COLUMNS, in one Python pass after one shuffle by member.

    The graph features are computed where the ranks are, so the pairs cross into Python once and the
    shuffle carries the candidate columns only."""

    def transform(pairs: DataFrame) -> DataFrame:
        require_columns(pairs, [MEMBER, CANDIDATE, "sources", *RANK_KEYS.values()], "with_ranks_and_graph")
        carried = pairs.drop(*GRAPH_COLUMNS) if csr is not None else pairs
        graph_fields = list(GRAPH_FEATURES.fields) if csr is not None else []
        rank_fields = [StructField(name, IntegerType(), True) for name in RANK_COLUMNS]
        out = StructType(list(carried.schema.fields) + graph_fields + rank_fields)
        handle = pairs.sparkSession.sparkContext.broadcast(csr) if csr is not None else None
        return carried.transform(by_member).mapInArrow(_ranking_runner(handle, to_arrow_schema(out)), out)

    return transform


# ---------------------------------------------------------------- history
def impression_history(as_of: str, days: int = HISTORY_DAYS) -> Transform:
    """raw/events rows (any landing days) -> member_id, candidate_id, shown_28d, days_since_last_shown,
    previously_dismissed for every pair shown or dismissed in [as_of - days, as_of)."""
    start, end = _day_start(shift_day(as_of, -days)), _day_start(as_of)

    def transform(events: DataFrame) -> DataFrame:
        require_columns(events, ["event_id", MEMBER, CANDIDATE, "ts", "event_type", "request_id"],
                        "impression_history")
        is_in_window = (F.col("ts") >= start) & (F.col("ts") < end)
        earliest_copy = F.min(F.struct("ts", "event_type", MEMBER, CANDIDATE, "request_id")).alias("_e")
        once = (events.groupBy("event_id").agg(earliest_copy).select("_e.*")
                .where(is_in_window & F.col("event_type").isin(IMPRESSION, DISMISS)))
        is_impression = F.col("event_type") == IMPRESSION
        showing = F.when(is_impression, F.coalesce(F.concat(F.lit("r:"), F.col("request_id")),
                                                   F.concat(F.lit("t:"), F.col("ts").cast("string"))))
        last_shown_day = F.to_date(F.max(F.when(is_impression, F.col("ts"))))
        return once.groupBy(MEMBER, CANDIDATE).agg(
            F.count_distinct(showing).cast("int").alias("shown_28d"),
            F.datediff(F.to_date(F.lit(as_of)), last_shown_day).cast("int").alias("days_since_last_shown"),
            F.max(F.col("event_type") == DISMISS).alias("previously_dismissed"),
        )

    return transform


def with_history(history: DataFrame) -> Transform:
    """Pairs -> plus the history columns; a pair with no event in the window: 0, null, false."""

    def transform(pairs: DataFrame) -> DataFrame:
        return (pairs.join(history, on=[MEMBER, CANDIDATE], how="left")
                .withColumn("shown_28d", F.coalesce(F.col("shown_28d"), F.lit(0)))
                .withColumn("previously_dismissed", F.coalesce(F.col("previously_dismissed"), F.lit(False))))

    return transform


# ---------------------------------------------------------------- assembly
def pair_features(
    edges: DataFrame, degrees: DataFrame, members: DataFrame, events: DataFrame, as_of: str, *,
    graph_strategy: str = "auto", broadcast_limit_bytes: int = DEFAULT_BROADCAST_LIMIT_BYTES,
) -> Transform:
    """candidates/pairs rows of `as_of` -> features/pairs rows (FEATURES_PAIRS columns, no `ds`).

    edges/degrees: the graph snapshot of `as_of`; members: raw/members partitions up to `as_of` (with ds);
    events: raw/events partitions of `history_window(as_of)` (with ds)."""
    profiles = latest_profiles(members)
    history = events.transform(impression_history(as_of))

    def transform(pairs: DataFrame) -> DataFrame:
        require_columns(pairs, CANDIDATE_PAIRS.fieldNames(), "pair_features")
        rows = pairs.select(*CANDIDATE_PAIRS.fieldNames())
        if choose_strategy(graph_strategy, degrees, broadcast_limit_bytes) == "expand":
            rows, csr = rows.transform(with_graph_pair_features(edges, degrees, strategy="expand")), None
        else:
            csr = collect_csr(edges)
        return (
            rows.transform(with_ranks_and_graph(csr))
            .transform(with_profile_matches(profiles))
            .transform(with_history(history))
            .select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in FEATURES_PAIRS.fields])
        )

    return transform
