"""The transparent, heuristic cold-start scorer ("heuristic-v1"): candidates/pairs rows -> recs/topk rows.

A trained model replaces it later behind the same output (model_version says which scored a row); until
then the ranking must be explainable to a member ("12 connections in common", "worked together at ..."),
hence a formula, not weights.

The score is lexicographic in effect: common connections first, then economic-graph overlap, then PPR:

    score = common_connections
          + (min(coworker_overlap_days, CAP) + min(schoolmate_overlap_days, CAP)) / (2 * CAP + 1)
          + min(ppr_score, 1) / (2 * (2 * CAP + 1))

with CAP = 36,500 days (100 years). The overlap term is in [0, 1), so it never outweighs one common
connection; it moves in steps of 1 / (2 * CAP + 1), and the PPR term is below half a step, so PPR only
orders candidates that tie on both before. Equal scores are broken by candidate id ascending, explicitly,
and ranks run 1..K per member. Existing connections (the symmetric edges) are excluded again here, so a
pair can never be recommended to two members who are already connected, whatever wrote candidates/pairs.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from joins.naive import require_top_k
from mutuals.checks import require_columns
from mutuals.tables import CANDIDATE_PAIRS, RECS_TOPK

MODEL_VERSION = "heuristic-v1"
DEFAULT_TOP_K = 20
OVERLAP_DAYS_CAP = 36_500
OVERLAP_STEPS = 2 * OVERLAP_DAYS_CAP + 1
MEMBER, CANDIDATE = "member_id", "candidate_id"


def heuristic_score() -> Column:
    """The documented heuristic-v1 formula (module docstring)."""
    coworker = F.least(F.col("coworker_overlap_days"), F.lit(OVERLAP_DAYS_CAP))
    schoolmate = F.least(F.col("schoolmate_overlap_days"), F.lit(OVERLAP_DAYS_CAP))
    economic = (coworker + schoolmate).cast("double") / float(OVERLAP_STEPS)
    ppr = F.least(F.col("ppr_score"), F.lit(1.0)) / float(2 * OVERLAP_STEPS)
    return F.col("common_connections").cast("double") + economic + ppr


def top_k_recommendations(top_k: int, edges: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """candidates/pairs rows -> recs/topk rows: heuristic score, connected pairs removed, ranks 1..K.
    A top_k below 1 is a usage error (TopKInvalid)."""
    require_top_k(top_k)
    require_columns(edges, ["src", "dst"], "top_k_recommendations edges")
    connected = edges.select(F.col("src").cast("long").alias(MEMBER), F.col("dst").cast("long").alias(CANDIDATE))

    def transform(pairs: DataFrame) -> DataFrame:
        require_columns(pairs, CANDIDATE_PAIRS.fieldNames(), "top_k_recommendations")
        best_first = (
            Window.partitionBy(MEMBER).orderBy(F.col("score").desc(), F.col(CANDIDATE).asc())
            .rowsBetween(Window.unboundedPreceding, Window.currentRow)
        )
        is_in_top_k = F.col("rank") <= top_k
        return (
            pairs.join(connected, on=[MEMBER, CANDIDATE], how="left_anti")
            .withColumn("score", heuristic_score())
            .withColumn("rank", F.row_number().over(best_first))
            .where(is_in_top_k)
            .select(
                F.col(MEMBER).cast("long"), F.col(CANDIDATE).cast("long"), F.col("rank").cast("int"),
                F.col("score").cast("double"), F.col("sources"), F.col("common_connections").cast("int"),
                F.col("coworker_overlap_days").cast("int"), F.col("schoolmate_overlap_days").cast("int"),
                F.col("ppr_score").cast("double"), F.lit(MODEL_VERSION).alias("model_version"),
            )
            .select(*RECS_TOPK.fieldNames())
        )

    return transform
