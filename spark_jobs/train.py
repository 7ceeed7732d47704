"""train: labelled pairs -> a GBT model, its held-out metrics beside baselines, the promotion gate -> models/registry.

    spark-submit spark_jobs/train.py --date D --lake ROOT [--label invited|connected] [--horizon-days H]
                                     [--window-days N] [--margin 0.005]
    mutuals run train --date D --lake ROOT

* Labels (`ranking.training`): `invited` reads the published training/samples days of (D-N, D] and keeps
  the rows whose label windows have closed (`provisional` false); `connected` labels the pairs of
  features/pairs ds=D-H by whether they became connections by D (graph/edges ds=D against ds=D-H).
  No final label row in the window is a missing input (exit 10): labels stay provisional until a labels run
  whose horizon is past impression + 21 days (`--lookback-days 22`) rewrites them.
* Split: train on the earlier labelled days, evaluate on the last; a single labelled day holds out a
  seeded member-hash share (`--holdout-share`).
* Evaluated on the held-out rows: the GBT pipeline, a logistic regression on the same inputs, heuristic-v1
  and the current champion (`ranking.model_metrics`).
* Version: a hash of the Delta versions of the published partitions read, the parameters and the model's
  source files. A version already in the registry is not trained again: the job prints its stored result
  and writes nothing (same inputs, same version, one registry row).
* Gate (`ranking.registry.decide`): promoted to `champion` only when its AUC beats heuristic-v1's and is
  not worse than the champion's by more than `--margin`; a refused model is recorded with the reason and
  serving keeps the champion. Artifacts: `PipelineModel` at `<lake>/models/<version>/`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import operator
import sys
import time
from collections.abc import Sequence
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mutuals.errors import BadInput, MissingInput, run_and_exit_code
from mutuals.jobargs import job_parser, run_job
from mutuals.lake import PUBLICATIONS, Lake, days_between, writer_of
from mutuals.ledger import emit_summary
from mutuals.tables import DS, JOB
from ranking import model_metrics, registry
from ranking.training import (
    CONNECTED,
    INVITED,
    LABEL_MODES,
    TrainParams,
    closed_impression_labels,
    code_hash,
    connection_labels,
    evaluation_frame,
    fit_gbt,
    fit_logistic_regression,
    heuristic_scores,
    model_scores,
    model_version,
    split_by_time,
)

SAMPLES, FEATURES, EDGES = "training/samples", "features/pairs", "graph/edges"


class NoFinalLabels(MissingInput):
    """The training window holds no labelled row whose label windows have closed."""


class SingleClassTraining(BadInput):
    """The training rows are all positive or all negative: nothing to learn, no model is registered."""


def require_two_classes(train: DataFrame, eval_ds: str) -> int:
    """The training rows' count, after checking both labels occur."""
    counts = train.agg(F.count(F.lit(1)).alias("rows"), F.sum("label").alias("positives")).first()
    rows, positives = int(counts["rows"]), int(counts["positives"] or 0)
    if positives == 0 or positives == rows:
        raise SingleClassTraining(f"training rows (held-out day {eval_ds}): {rows} rows, {positives} positive; "
                                  f"a model needs both labels")
    return rows


def build_parser() -> argparse.ArgumentParser:
    defaults = TrainParams()
    parser = job_parser("train", __doc__)
    parser.add_argument("--label", choices=LABEL_MODES, default=defaults.label, help="default %(default)s")
    parser.add_argument("--horizon-days", type=int, default=defaults.horizon_days,
                        help="--label connected: features of D-H, connections by D (default %(default)s)")
    parser.add_argument("--window-days", type=int, default=defaults.window_days,
                        help="--label invited: sample days (D-N, D] (default %(default)s)")
    parser.add_argument("--holdout-share", type=float, default=defaults.holdout_share,
                        help="members held out when only one day is labelled (default %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="default %(default)s")
    parser.add_argument("--gbt-max-iter", type=int, default=defaults.gbt_max_iter, help="default %(default)s")
    parser.add_argument("--gbt-max-depth", type=int, default=defaults.gbt_max_depth, help="default %(default)s")
    parser.add_argument("--top-k", type=int, default=defaults.top_k, help="K of recall@K, NDCG@K (default %(default)s)")
    parser.add_argument("--margin", type=float, default=registry.DEFAULT_MARGIN,
                        help="AUC the new model may lose against the champion (default %(default)s)")
    return parser


def params_of(args: argparse.Namespace) -> TrainParams:
    base = TrainParams(label=args.label, horizon_days=args.horizon_days, window_days=args.window_days,
                       holdout_share=args.holdout_share, seed=args.seed, gbt_max_iter=args.gbt_max_iter,
                       gbt_max_depth=args.gbt_max_depth, top_k=args.top_k)
    # The knob the other label does not read stays at its default, so it cannot change the version.
    if args.label == INVITED:
        return TrainParams(**{**base.__dict__, "horizon_days": TrainParams().horizon_days})
    return TrainParams(**{**base.__dict__, "window_days": TrainParams().window_days})


def published_versions(spark: SparkSession, lake: Lake, reads: Sequence[tuple[str, str]]) -> dict[str, int]:
    """{"table@ds": Delta version its writer published} for each (table, ds) read: the data part of the
    model version."""
    wanted = sorted({(writer_of(key), ds) for key, ds in reads})
    if not wanted:
        return {}
    is_wanted = reduce(operator.or_, [(F.col(JOB) == job) & (F.col(DS) == ds) for job, ds in wanted])
    records = (lake.read(spark, PUBLICATIONS).where(is_wanted)
               .select(DS, F.explode("tables").alias("t")).select(DS, "t.table", "t.version").collect())
    found = {(r["table"], r[DS]): int(r["version"]) for r in records}
    return {f"{key}@{ds}": found[(key, ds)] for key, ds in sorted(reads)}


def labelled_rows(spark: SparkSession, lake: Lake, params: TrainParams, date: str) -> tuple[DataFrame, dict]:
    """(training rows, data versions) for the label mode."""
    if params.label == CONNECTED:
        start = (dt.date.fromisoformat(date) - dt.timedelta(days=params.horizon_days)).isoformat()
        features = lake.read_published(spark, FEATURES, start)
        before, after = lake.read_published(spark, EDGES, start), lake.read_published(spark, EDGES, date)
        reads = [(FEATURES, start), (EDGES, start), (EDGES, date)]
        return features.transform(connection_labels(before, after)), published_versions(spark, lake, reads)
    first = (dt.date.fromisoformat(date) - dt.timedelta(days=params.window_days - 1)).isoformat()
    days = lake.published_days(spark, SAMPLES, first, date)
    samples = lake.read_published_range(spark, SAMPLES, first, date)
    return closed_impression_labels(samples), published_versions(spark, lake, [(SAMPLES, d) for d in days])


def labelled_days(rows: DataFrame, params: TrainParams, date: str) -> list[str]:
    days = sorted(r[DS] for r in rows.select(DS).distinct().collect())
    if not days:
        window = days_between((dt.date.fromisoformat(date) - dt.timedelta(days=params.window_days - 1))
                              .isoformat(), date)
        raise NoFinalLabels(
            f"{SAMPLES} ds={window[0]}..{date}: no sample with final labels (every row is provisional or the "
            f"days are not published); run `mutuals run labels --date {date} --lookback-days 22` then samples, "
            f"or train with --label connected")
    return days


def evaluate_all(spark: SparkSession, lake: Lake, train: DataFrame, held_out: DataFrame,
                 params: TrainParams, date: str) -> tuple[object, dict]:
    """Fit GBT and LR; metrics of GBT, LR, heuristic-v1 and the current champion on the held-out rows."""
    gbt = fit_gbt(train, params)
    lr = fit_logistic_regression(train, params)
    k = params.top_k
    metrics = {
        "model": model_metrics.evaluate(evaluation_frame(held_out.transform(model_scores(gbt))), k),
        "logistic_regression": model_metrics.evaluate(evaluation_frame(held_out.transform(model_scores(lr))), k),
        "heuristic-v1": model_metrics.evaluate(evaluation_frame(heuristic_scores(held_out)), k,
                                               probabilities=False),
    }
    current = registry.champion(spark, lake, as_of=date)
    if current is not None:
        scored = held_out.transform(model_scores(registry.load_model(current["artifact"])))
        metrics["champion"] = {"version": current["version"], **model_metrics.evaluate(evaluation_frame(scored), k)}
    return gbt, metrics


def short(metrics: dict) -> dict:
    """The headline figures of one scorer, for the summary line."""
    keys = ("version", "auc_roc", "auc_pr", "log_loss", "rows", "positives")
    out = {key: metrics[key] for key in keys if key in metrics}
    out.update({key: value for key, value in metrics.items() if key.startswith(("recall@", "ndcg@"))})
    return out


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    lake = Lake(args.lake)
    params = params_of(args)
    rows, data_versions = labelled_rows(spark, lake, params, args.date)
    code = code_hash()
    version = model_version(data_versions, params, code)
    existing = registry.find_version(spark, lake, version)
    if existing is not None:
        stored = json.loads(existing["metrics"])
        summary = {"job": "train", "ds": args.date, "version": version, "already_registered": True,
                   "status": existing["status"], "reason": existing["reason"], "eval_ds": existing["eval_ds"],
                   **{name: short(m) for name, m in stored.items()},
                   "seconds": round(time.perf_counter() - started, 1)}
        emit_summary(summary)
        return summary
    rows = rows.persist()
    try:
        days = labelled_days(rows, params, args.date)
        train, held_out, eval_ds = split_by_time(rows, days, params.holdout_share, params.seed)
        train_rows = require_two_classes(train, eval_ds)
        gbt, metrics = evaluate_all(spark, lake, train, held_out, params, args.date)
    finally:
        rows.unpersist()
    champion_auc = metrics["champion"]["auc_roc"] if "champion" in metrics else None
    decision = registry.decide(metrics["model"]["auc_roc"], metrics["heuristic-v1"]["auc_roc"], champion_auc,
                               args.margin)
    artifact = registry.save_model(spark, lake, gbt, version)
    new_row = registry.registry_row(
        spark, version=version, label=params.label, params=params.as_json(), metrics=metrics,
        data_versions=data_versions, code=code, decision=decision, eval_ds=eval_ds, artifact=artifact,
        created_at=dt.datetime.now(dt.UTC))
    earlier_today = lake.read_or_empty(spark, registry.REGISTRY, args.date).drop(DS)
    day = lake.day_run(spark, "train", [args.date])
    day.write_partition(earlier_today.unionByName(new_row), registry.REGISTRY, args.date)
    published = day.publish()
    summary = {"job": "train", "ds": args.date, "version": version, "label": params.label, "eval_ds": eval_ds,
               "train_rows": train_rows, "labelled_days": days,
               "status": registry.PROMOTED if decision.promoted else registry.REFUSED, "reason": decision.reason,
               **{name: short(m) for name, m in metrics.items()},
               "seconds": round(time.perf_counter() - started, 1), "run_id": published["run_id"]}
    emit_summary(summary)
    return summary


def main(argv: Sequence[str] | None = None) -> object:
    return run_job(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(run_and_exit_code(main))
