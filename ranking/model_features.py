"""The model's input: FEATURE_VALUES columns -> one numeric vector, with every null imputed explicitly.

Why the preparation is a pipeline stage (a `SQLTransformer`) and not a DataFrame step before it: the saved
`PipelineModel` then carries its own imputation, so the scorer, the promotion gate (re-scoring an older
champion) and any tool outside this repo apply exactly the rules the model was trained with.

The rules, one per kind of column:

* counts and scores (`common_connections`, `adamic_adar`, ..., `shown_28d`): null -> 0. A pair missing a
  graph or history value has none of it (no common neighbour, never shown).
* booleans (`same_industry`, `same_region`, `previously_dismissed`): true -> 1, false or null -> 0.
* `<source>_rank`: null (the source did not propose the pair) -> RANK_SENTINEL, far below any real rank,
  plus `proposed_by_<source>` (1 when the rank is known), so a tree can split on "proposed at all".
* `days_since_last_shown`: null (never shown) -> NEVER_SHOWN_DAYS, beyond the 28-day history.

A frame without some FEATURE_VALUES column (older training samples carry only the candidate-pair
columns) gets it as a typed null first (`with_feature_columns`), so it is imputed by the same rules.
"""

from __future__ import annotations

from pyspark.ml.feature import SQLTransformer, VectorAssembler
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType

from mutuals.tables import FEATURE_SOURCES, FEATURE_VALUES

RANK_SENTINEL = 10_000
NEVER_SHOWN_DAYS = 10_000
FEATURES_COLUMN = "features"
PREFIX = "f_"

COUNT_COLUMNS = (
    "common_connections", "adamic_adar", "resource_allocation", "jaccard", "member_degree", "candidate_degree",
    "coworker_overlap_days", "schoolmate_overlap_days", "ppr_score", "shown_28d",
)
BOOLEAN_COLUMNS = ("same_industry", "same_region", "previously_dismissed")
RANK_COLUMNS = tuple(f"{source}_rank" for source in FEATURE_SOURCES)


def _expressions() -> list[tuple[str, str]]:
    """(model input name, SQL expression) in vector order."""
    out = [(f"{PREFIX}{c}", f"CAST(COALESCE({c}, 0) AS DOUBLE)") for c in COUNT_COLUMNS]
    out += [(f"{PREFIX}{c}", f"CASE WHEN {c} THEN 1.0 ELSE 0.0 END") for c in BOOLEAN_COLUMNS]
    for source, rank in zip(FEATURE_SOURCES, RANK_COLUMNS, strict=True):
        out.append((f"{PREFIX}{rank}", f"CAST(COALESCE({rank}, {RANK_SENTINEL}) AS DOUBLE)"))
        out.append((f"{PREFIX}proposed_by_{source}", f"CASE WHEN {rank} IS NULL THEN 0.0 ELSE 1.0 END"))
    out.append((f"{PREFIX}days_since_last_shown",
                f"CAST(COALESCE(days_since_last_shown, {NEVER_SHOWN_DAYS}) AS DOUBLE)"))
    return out


MODEL_INPUTS: tuple[str, ...] = tuple(name for name, _ in _expressions())


def with_feature_columns(df: DataFrame) -> DataFrame:
    """Add every FEATURE_VALUES column `df` lacks as a typed null (booleans false is NOT assumed here:
    the imputation stage decides)."""
    missing = [f for f in FEATURE_VALUES.fields if f.name not in df.columns]
    for field in missing:
        df = df.withColumn(field.name, F.lit(None).cast(field.dataType))
    for name in BOOLEAN_COLUMNS:
        if not isinstance(df.schema[name].dataType, BooleanType):
            df = df.withColumn(name, F.col(name).cast("boolean"))
    return df


def imputation_stage() -> SQLTransformer:
    """The explicit null rules (module docstring) as a pipeline stage adding the `f_*` columns."""
    selected = ", ".join(f"{expression} AS {name}" for name, expression in _expressions())
    return SQLTransformer(statement=f"SELECT *, {selected} FROM __THIS__")


def assembler_stage() -> VectorAssembler:
    """The `f_*` columns -> one vector; nulls never reach it (handleInvalid error would catch a bug)."""
    return VectorAssembler(inputCols=list(MODEL_INPUTS), outputCol=FEATURES_COLUMN, handleInvalid="error")
