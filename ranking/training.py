"""Training data, the time split, the two learners and their scores: pure DataFrame transforms and fits.

Two labels (`spark_jobs.train --label`):

* `invited` (default): training/samples rows (one per labelled impression, FEATURE_VALUES as of before the
  impression), label = `invited`. Only rows whose label windows have all closed are used: `provisional`
  is false once the labels run's horizon passed impression + invite window + accept window (see
  `labelling.attribution`), so a row still waiting for its invite can never be read as a negative.
* `connected`: the pairs of features/pairs ds=S (S = D - horizon), label = the pair is an edge of
  graph/edges ds=D and was not one of ds=S: it became a connection in (S, D].

Time split (`split_by_time`): train on every labelled day before the last, evaluate on the last. With a
single labelled day, members whose seeded hash falls in the held-out share are evaluated and the others
trained on; splitting by member (never by row) keeps one member's candidates on one side.

Learners: a `GBTClassifier` and a `LogisticRegression` baseline behind the same two stages (explicit
imputation, vector assembly: `ranking.model_features`); every random choice has an explicit seed, and the
training rows are put in a total order first, so the same rows give the same model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mutuals.checks import require_columns
from mutuals.tables import DS, FEATURE_VALUES
from ranking.heuristic import heuristic_score
from ranking.model_features import FEATURES_COLUMN, assembler_stage, imputation_stage, with_feature_columns

LABEL, SCORE, MEMBER, CANDIDATE = "label", "score", "member_id", "candidate_id"
INVITED, CONNECTED = "invited", "connected"
LABEL_MODES = (INVITED, CONNECTED)
FEATURE_NAMES = tuple(f.name for f in FEATURE_VALUES.fields)
# The source files whose code defines a model: their hash is part of the model version.
MODEL_CODE_FILES = ("model_features.py", "training.py", "heuristic.py")
VERSION_PREFIX = "gbt-"


@dataclass(frozen=True)
class TrainParams:
    """Every knob of a training run; all of it goes into the model version."""

    label: str = INVITED
    horizon_days: int = 7
    window_days: int = 28
    holdout_share: float = 0.3
    seed: int = 7
    gbt_max_iter: int = 30
    gbt_max_depth: int = 4
    gbt_step_size: float = 0.1
    lr_max_iter: int = 100
    lr_reg_param: float = 0.01
    top_k: int = 20

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _labelled(frame: DataFrame, label: F.Column) -> DataFrame:
    """The common shape of training rows: keys, day, label (0/1 double), FEATURE_VALUES."""
    return with_feature_columns(frame).select(
        F.col(MEMBER).cast("long"), F.col(CANDIDATE).cast("long"), F.col(DS), label.cast("double").alias(LABEL),
        *FEATURE_NAMES,
    )


def closed_impression_labels(samples: DataFrame) -> DataFrame:
    """training/samples rows -> training rows labelled `invited`, final rows only (`provisional` false)."""
    require_columns(samples, [MEMBER, CANDIDATE, DS, "invited", "provisional"], "closed_impression_labels")
    is_final = ~F.col("provisional")
    return _labelled(samples.where(is_final), F.col("invited"))


def connection_labels(edges_before: DataFrame, edges_after: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """features/pairs rows of day S -> training rows labelled by "is an edge at the later day and was not
    one at S" (edges are the symmetric graph/edges rows)."""
    require_columns(edges_before, ["src", "dst"], "connection_labels(edges_before)")
    require_columns(edges_after, ["src", "dst"], "connection_labels(edges_after)")
    as_pair = [F.col("src").cast("long").alias(MEMBER), F.col("dst").cast("long").alias(CANDIDATE)]
    new_edges = (edges_after.select(*as_pair)
                 .join(edges_before.select(*as_pair), on=[MEMBER, CANDIDATE], how="left_anti")
                 .distinct().withColumn("_new", F.lit(True)))

    def transform(features: DataFrame) -> DataFrame:
        require_columns(features, [MEMBER, CANDIDATE, DS], "connection_labels(features)")
        joined = features.join(new_edges, on=[MEMBER, CANDIDATE], how="left")
        return _labelled(joined, F.coalesce(F.col("_new"), F.lit(False)))

    return transform


def is_held_out_member(share: float, seed: int) -> F.Column:
    """A seeded, partition-independent draw per member: the held-out share of a single labelled day."""
    bucket = F.pmod(F.xxhash64(F.col(MEMBER), F.lit(seed)), F.lit(10_000))
    return bucket < F.lit(int(round(share * 10_000)))


def split_by_time(labelled: DataFrame, days: list[str], share: float, seed: int) -> tuple[DataFrame, DataFrame, str]:
    """(train, held out, held-out day): the last labelled day is held out; one day is split by member."""
    if not days:
        raise ValueError("split_by_time needs at least one labelled day")
    last = days[-1]
    if len(days) > 1:
        return labelled.where(F.col(DS) < last), labelled.where(F.col(DS) == last), last
    held_out = is_held_out_member(share, seed)
    return labelled.where(~held_out), labelled.where(held_out), last


def _in_total_order(frame: DataFrame) -> DataFrame:
    """Every FEATURE_VALUES column present, rows in one order: the same rows give the same fit."""
    return with_feature_columns(frame).orderBy(DS, MEMBER, CANDIDATE, LABEL)


def fit_gbt(train: DataFrame, params: TrainParams) -> PipelineModel:
    classifier = GBTClassifier(
        featuresCol=FEATURES_COLUMN, labelCol=LABEL, maxIter=params.gbt_max_iter, maxDepth=params.gbt_max_depth,
        stepSize=params.gbt_step_size, seed=params.seed, subsamplingRate=1.0, featureSubsetStrategy="all",
    )
    return Pipeline(stages=[imputation_stage(), assembler_stage(), classifier]).fit(_in_total_order(train))


def fit_logistic_regression(train: DataFrame, params: TrainParams) -> PipelineModel:
    classifier = LogisticRegression(featuresCol=FEATURES_COLUMN, labelCol=LABEL, maxIter=params.lr_max_iter,
                                    regParam=params.lr_reg_param, standardization=True)
    return Pipeline(stages=[imputation_stage(), assembler_stage(), classifier]).fit(_in_total_order(train))


def model_scores(model: PipelineModel) -> Callable[[DataFrame], DataFrame]:
    """Rows with FEATURE_VALUES -> the same rows plus `score`, the model's probability of the positive class."""

    def transform(frame: DataFrame) -> DataFrame:
        complete = with_feature_columns(frame)
        positive = vector_to_array(F.col("probability"))[1]
        return model.transform(complete).select(*complete.columns, positive.alias(SCORE))

    return transform


def heuristic_scores(frame: DataFrame) -> DataFrame:
    """heuristic-v1 on training rows (null pair columns count as 0, as a pair without them)."""
    filled = frame.fillna(0, subset=["common_connections", "coworker_overlap_days", "schoolmate_overlap_days"])
    filled = filled.fillna(0.0, subset=["ppr_score"])
    return filled.withColumn(SCORE, heuristic_score())


def evaluation_frame(scored: DataFrame):  # noqa: ANN201 - a pandas DataFrame
    """The four columns the metrics need, collected to the driver."""
    return scored.select(MEMBER, CANDIDATE, F.col(LABEL).cast("int").alias(LABEL), SCORE).toPandas()


def code_hash() -> str:
    """sha256 of the source files that define the model (`MODEL_CODE_FILES`)."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in MODEL_CODE_FILES:
        digest.update(name.encode())
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


def model_version(data_versions: dict[str, int], params: TrainParams, code: str) -> str:
    """The same inputs (Delta versions of the partitions read), parameters and code give the same version."""
    document = json.dumps({"data": data_versions, "params": json.loads(params.as_json()), "code": code},
                          sort_keys=True)
    return VERSION_PREFIX + hashlib.sha256(document.encode()).hexdigest()[:16]
