"""Scoring features/pairs ds=D into recs/topk rows: the champion model, a chosen version, or heuristic-v1.

What is never recommended, whatever the scorer:

* an existing connection (a pair of graph/edges ds=D, which is symmetric);
* a pair the member acted on recently: a `dismiss` or an `invite` by the member for that candidate in
  raw/events of the RECENT_ACTION_DAYS days ending with D (ds in [D-27, D] by default). A dismissal says
  "not this person" and an invite is already on its way; 28 days matches the impression history of
  features/pairs, after which a dismissed pair may come back.

The top K per member are by score descending, candidate id ascending; ranks run 1..K. Pair columns that
features/pairs leaves null are served as 0 (no common connection, no overlap, no PPR) or an empty source list.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from joins.naive import require_top_k
from joins.pair_graph import DEFAULT_BROADCAST_LIMIT_BYTES
from mutuals.checks import require_columns
from mutuals.tables import DS, RECS_TOPK

RECENT_ACTION_DAYS = 28
EXCLUDING_ACTIONS = ("dismiss", "invite")
MEMBER, CANDIDATE, SCORE = "member_id", "candidate_id", "score"


def recent_action_window(date: str, days: int = RECENT_ACTION_DAYS) -> tuple[str, str]:
    """(first, last) event day whose dismisses and invites exclude a pair on `date`."""
    first = dt.date.fromisoformat(date) - dt.timedelta(days=days - 1)
    return first.isoformat(), date


def recently_acted_pairs(events: DataFrame, date: str, days: int = RECENT_ACTION_DAYS) -> DataFrame:
    """raw/events -> distinct (member_id, candidate_id) the member dismissed or invited in the window."""
    require_columns(events, [MEMBER, CANDIDATE, "event_type", DS], "recently_acted_pairs")
    first, last = recent_action_window(date, days)
    is_in_window = (F.col(DS) >= first) & (F.col(DS) <= last)
    is_excluding = F.col("event_type").isin(*EXCLUDING_ACTIONS)
    return (events.where(is_in_window & is_excluding)
            .select(F.col(MEMBER).cast("long"), F.col(CANDIDATE).cast("long")).distinct())


def connected_pairs(edges: DataFrame) -> DataFrame:
    require_columns(edges, ["src", "dst"], "connected_pairs")
    return edges.select(F.col("src").cast("long").alias(MEMBER), F.col("dst").cast("long").alias(CANDIDATE))


# What one excluded pair costs in a broadcast hash relation (two long keys, row and map overhead).
BROADCAST_BYTES_PER_PAIR = 48


def broadcast_when_small(pairs: DataFrame, rows: int,
                         limit_bytes: int = DEFAULT_BROADCAST_LIMIT_BYTES) -> DataFrame:
    """`pairs` marked for a broadcast join when its `rows` fit `limit_bytes` (by default the same budget as
    a broadcast graph), else as it is.

    Why: an anti-join of the scored pairs against a broadcast relation keeps them where they are, so the
    top K's window shuffles them once, by member; a shuffled join would first shuffle all of them by
    (member, candidate) and the window again by member. Past the limit (a graph of millions of members)
    the join shuffles, and scales."""
    return F.broadcast(pairs) if rows * BROADCAST_BYTES_PER_PAIR <= limit_bytes else pairs


def top_k_by_score(top_k: int, model_version: str,
                   excluded: Sequence[DataFrame]) -> Callable[[DataFrame], DataFrame]:
    """Scored features/pairs rows (with `score`) -> recs/topk rows, excluded pairs removed (each of
    `excluded` is joined as given: `broadcast_when_small` marks the ones to broadcast)."""
    require_top_k(top_k)

    def transform(scored: DataFrame) -> DataFrame:
        require_columns(scored, [MEMBER, CANDIDATE, SCORE, "sources", "common_connections",
                                 "coworker_overlap_days", "schoolmate_overlap_days", "ppr_score"], "top_k_by_score")
        kept = scored
        for pairs in excluded:
            kept = kept.join(pairs, on=[MEMBER, CANDIDATE], how="left_anti")
        best_first = (Window.partitionBy(MEMBER).orderBy(F.col(SCORE).desc(), F.col(CANDIDATE).asc())
                      .rowsBetween(Window.unboundedPreceding, Window.currentRow))
        is_in_top_k = F.col("rank") <= top_k
        no_sources = F.array().cast("array<string>")
        return (
            kept.withColumn("rank", F.row_number().over(best_first))
            .where(is_in_top_k)
            .select(
                F.col(MEMBER).cast("long"), F.col(CANDIDATE).cast("long"), F.col("rank").cast("int"),
                F.col(SCORE).cast("double"), F.coalesce(F.col("sources"), no_sources).alias("sources"),
                F.coalesce(F.col("common_connections"), F.lit(0)).cast("int").alias("common_connections"),
                F.coalesce(F.col("coworker_overlap_days"), F.lit(0)).cast("int").alias("coworker_overlap_days"),
                F.coalesce(F.col("schoolmate_overlap_days"), F.lit(0)).cast("int")
                .alias("schoolmate_overlap_days"),
                F.coalesce(F.col("ppr_score"), F.lit(0.0)).cast("double").alias("ppr_score"),
                F.lit(model_version).alias("model_version"),
            )
            .select(*RECS_TOPK.fieldNames())
        )

    return transform
