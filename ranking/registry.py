"""The model registry: `models/registry` (a Delta table) and the saved pipelines under `<lake>/models/<version>/`.

Why a Delta table and not MLflow: no MLflow 3.x release resolves together with the pinned lock (3.16 and
3.17 need pyarrow < 26, 3.15 and older cryptography < 50, 3.18's tracing package is not installable here),
so the registry lives in the lake beside the data it was trained on, written through the same publish path.

Rows are never rewritten: one row per model version (version, label, params, metrics, data versions, code
hash, status, alias, reason, held-out day, artifact folder, created_at), partitioned by the training date.
A promoted model has status "promoted" and alias "champion"; a refused one status "refused", no alias and
the reason. The champion as of day D is the newest promoted row with ds <= D (ds, then created_at), so a
refused model changes nothing served, and re-scoring an old day uses the champion of that day.
Only days the train job published are read.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from mutuals.errors import MissingInput, UsageError
from mutuals.lake import Lake
from mutuals.tables import DS, spec

REGISTRY = "models/registry"
CHAMPION = "champion"
PROMOTED, REFUSED = "promoted", "refused"
DEFAULT_MARGIN = 0.005


class UnknownModel(MissingInput):
    """A model version that is not in the registry (or whose training day is not published)."""


class BadMargin(UsageError):
    """A promotion margin below zero."""


@dataclass(frozen=True)
class GateDecision:
    promoted: bool
    reason: str


def artifact_folder(lake: Lake, version: str) -> str:
    return lake.folder("models", version)


def save_model(spark: SparkSession, lake: Lake, model: PipelineModel, version: str) -> str:
    """Save the pipeline at `models/<version>/`: written into a staging folder, then swapped in whole."""
    target = artifact_folder(lake, version)
    staging = Lake.staging_folder(target)
    model.write().save(staging)
    Lake.replace_folder(spark, staging, target)
    return target


def load_model(artifact: str) -> PipelineModel:
    return PipelineModel.load(artifact)


def registry_rows(spark: SparkSession, lake: Lake, as_of: str | None = None) -> DataFrame:
    """The published registry rows (ds <= as_of when given)."""
    days = lake.published_days(spark, REGISTRY, end=as_of)
    return lake.read_or_empty(spark, REGISTRY).where(F.col(DS).isin(days))


def find_version(spark: SparkSession, lake: Lake, version: str) -> Row | None:
    return registry_rows(spark, lake).where(F.col("version") == version).orderBy(DS, "created_at").first()


def require_version(spark: SparkSession, lake: Lake, version: str) -> Row:
    row = find_version(spark, lake, version)
    if row is None:
        known = [r["version"] for r in registry_rows(spark, lake).select("version").orderBy("version").collect()]
        raise UnknownModel(f"model {version!r} is not in {REGISTRY}; registered: {known[:10]}"
                           f"{' ...' if len(known) > 10 else ''}")
    return row


def champion(spark: SparkSession, lake: Lake, as_of: str | None = None) -> Row | None:
    """The newest promoted model with ds <= as_of, or None (day one: nothing promoted yet)."""
    is_champion = (F.col("status") == PROMOTED) & (F.col("alias") == CHAMPION)
    return (registry_rows(spark, lake, as_of).where(is_champion)
            .orderBy(F.col(DS).desc(), F.col("created_at").desc(), F.col("version").desc()).first())


def decide(model_auc: float | None, heuristic_auc: float | None, champion_auc: float | None,
           margin: float) -> GateDecision:
    """Promote only when the model's held-out AUC beats heuristic-v1's and is not worse than the current
    champion's (same held-out day) by more than `margin`."""
    if margin < 0:
        raise BadMargin(f"--margin must be >= 0, found {margin}")
    if model_auc is None:
        return GateDecision(False, "held-out day has a single class: AUC undefined")
    if heuristic_auc is not None and model_auc <= heuristic_auc:
        return GateDecision(False, f"AUC {model_auc:.4f} does not beat heuristic-v1's {heuristic_auc:.4f}")
    if champion_auc is not None and model_auc < champion_auc - margin:
        return GateDecision(False, f"AUC {model_auc:.4f} is worse than the champion's {champion_auc:.4f} "
                                   f"by more than {margin}")
    beats = "beats heuristic-v1" + (f" ({heuristic_auc:.4f})" if heuristic_auc is not None else "")
    versus = (f"; within {margin} of the champion's {champion_auc:.4f}" if champion_auc is not None
              else "; no champion yet")
    return GateDecision(True, f"AUC {model_auc:.4f} {beats}{versus}")


def registry_row(spark: SparkSession, *, version: str, label: str, params: str, metrics: dict,
                 data_versions: dict[str, int], code: str, decision: GateDecision, eval_ds: str, artifact: str,
                 created_at: dt.datetime) -> DataFrame:
    """One registry row (without ds) in the registered schema."""
    row = (version, label, params, json.dumps(metrics, sort_keys=True), json.dumps(data_versions, sort_keys=True),
           code, PROMOTED if decision.promoted else REFUSED, CHAMPION if decision.promoted else None,
           decision.reason, eval_ds, artifact, created_at)
    return spark.createDataFrame([row], spec(REGISTRY).schema)
