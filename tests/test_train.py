"""train: metrics against independent computations, the promotion gate, idempotent versions, both labels.

The lakes are hand-built: training/samples and features/pairs partitions written with the lake API and
published as their writers would. The invited signal lives in `coworker_overlap_days` (invited exactly when
it exceeds 200 days) while `common_connections` is noise, so a model can learn what heuristic-v1, which
ranks by common connections first, cannot.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F
from scipy.stats import mannwhitneyu, rankdata

from mutuals.lake import Lake
from mutuals.tables import FEATURES_PAIRS, GRAPH_EDGES, spec
from ranking import registry
from ranking.model_metrics import auc_pr, auc_roc, calibration_table, log_loss, ranking_metrics
from spark_jobs import train

DAYS = ["2026-03-01", "2026-03-02", "2026-03-03"]
NOISE_DAY = "2026-03-04"
MEMBERS, CANDIDATES = range(1, 21), range(100, 108)
FAST = ["--gbt-max-iter", "3", "--gbt-max-depth", "2"]


# ------------------------------------------------------------------------------------------ metrics
def test_auc_roc_agrees_with_scipy_mann_whitney_on_scores_with_ties():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 200).astype(bool)
    scores = np.round(rng.normal(labels * 0.7, 1.0), 1)  # rounded: many ties
    u_statistic = mannwhitneyu(scores[labels], scores[~labels]).statistic
    assert auc_roc(labels, scores) == pytest.approx(u_statistic / (labels.sum() * (~labels).sum()), abs=1e-12)
    ranks = rankdata(scores)
    by_ranks = (ranks[labels].sum() - labels.sum() * (labels.sum() + 1) / 2) / (labels.sum() * (~labels).sum())
    assert auc_roc(labels, scores) == pytest.approx(by_ranks, abs=1e-12)


def test_auc_roc_hand_cases():
    assert auc_roc(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == pytest.approx(0.75)
    assert auc_roc(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert auc_roc(np.array([1, 1]), np.array([0.5, 0.2])) is None


def test_average_precision_log_loss_and_calibration_by_hand():
    # descending: 0.9 (+), 0.8 (-), 0.7 (+), 0.1 (-): precision at the positives 1 and 2/3
    assert auc_pr(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == pytest.approx((1 + 2 / 3) / 2)
    # a tie of one positive and one negative enters together: precision 1/2 at recall 1
    assert auc_pr(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert log_loss(np.array([1, 0]), np.array([0.8, 0.4])) == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)
    table = calibration_table(np.array([0] * 10 + [1] * 10), np.arange(20) / 20)
    assert [row["rows"] for row in table] == [2] * 10
    assert table[0] == {"decile": 1, "rows": 2, "mean_predicted": 0.025, "observed": 0.0}
    assert table[9] == {"decile": 10, "rows": 2, "mean_predicted": 0.925, "observed": 1.0}


def test_recall_and_ndcg_per_member_averaged_with_the_candidate_id_tie_break():
    frame = pd.DataFrame({
        "member_id": [1, 1, 1, 2, 2, 3],
        "candidate_id": [11, 10, 12, 20, 21, 30],
        "label": [1, 0, 1, 0, 1, 0],        # member 3 has no positive: left out of the averages
        "score": [0.5, 0.5, 0.1, 0.9, 0.2, 0.7],
    })
    got = ranking_metrics(frame, k=2)
    # member 1 at K=2: 10 (tie, smaller id first), 11 -> one of two positives; DCG 1/log2(3); ideal 1 + 1/log2(3)
    # member 2: 20, 21 -> its positive at rank 2; DCG 1/log2(3); ideal 1
    assert got["members"] == 2
    assert got["recall@2"] == pytest.approx((0.5 + 1.0) / 2)
    assert got["ndcg@2"] == pytest.approx(((1 / np.log2(3)) / (1 + 1 / np.log2(3)) + 1 / np.log2(3)) / 2)


# ------------------------------------------------------------------------------------------ gate
def test_gate_needs_to_beat_the_heuristic_and_stay_within_the_margin_of_the_champion():
    assert registry.decide(0.80, 0.70, None, 0.005).promoted
    assert not registry.decide(0.70, 0.70, None, 0.005).promoted
    assert registry.decide(0.796, 0.70, 0.80, 0.005).promoted
    refused = registry.decide(0.794, 0.70, 0.80, 0.005)
    assert not refused.promoted and "worse than the champion's 0.8000 by more than 0.005" in refused.reason
    assert not registry.decide(None, 0.70, None, 0.005).promoted
    with pytest.raises(registry.BadMargin):
        registry.decide(0.9, 0.5, None, -0.1)


# ------------------------------------------------------------------------------------------ lakes
def sample_rows(ds: str, day_index: int, signal: str) -> list[dict]:
    """One impression per (member, candidate). `signal` "coworker": invited iff overlap > 200 days;
    "common": invited iff common_connections >= 3 (what heuristic-v1 ranks by)."""
    rows = []
    shown = dt.datetime.fromisoformat(ds) + dt.timedelta(hours=12)
    for m in MEMBERS:
        for c in CANDIDATES:
            overlap = ((m * 7 + c * 13 + day_index * 5) % 20) * 20
            common = (m * 3 + c * 5 + day_index) % 6
            invited = overlap > 200 if signal == "coworker" else common >= 3
            rows.append({"request_id": f"r{m}", "member_id": m, "candidate_id": c, "impression_ts": shown,
                         "clicked": invited, "valid_click": invited, "invited": invited, "accepted": False,
                         "dismissed": False, "provisional": False, "common_connections": common,
                         "coworker_overlap_days": overlap, "schoolmate_overlap_days": 0, "ppr_score": 0.0})
    # a still-open row that contradicts the signal: it must never be trained or evaluated on
    rows.append({**rows[0], "candidate_id": 999, "invited": not rows[0]["invited"], "provisional": True})
    return rows


def write_samples(spark, lake: Lake, ds: str, rows: list[dict]) -> None:
    schema = spec("training/samples").schema
    frame = spark.createDataFrame([tuple(row.get(f.name) for f in schema.fields) for row in rows], schema)
    lake.write_partition(frame, "training/samples", ds)
    lake.publish_tables(spark, "samples", [ds], ["training/samples"])


def registry_frame(spark, lake: Lake):
    return lake.read(spark, "models/registry").orderBy("created_at").toPandas()


@pytest.fixture(scope="module")
def invited_lake(spark, tmp_path_factory):
    lake = Lake(str(tmp_path_factory.mktemp("train_lake")))
    for index, ds in enumerate(DAYS):
        write_samples(spark, lake, ds, sample_rows(ds, index, "coworker"))
    return lake


@pytest.fixture(scope="module")
def first_training(invited_lake):
    return train.main(["--date", DAYS[-1], "--lake", invited_lake.root, "--window-days", "3", *FAST])


def test_model_learns_what_the_heuristic_cannot_and_is_promoted(spark, invited_lake, first_training):
    summary = first_training
    assert summary["status"] == "promoted" and summary["eval_ds"] == DAYS[-1]
    assert summary["labelled_days"] == DAYS
    assert summary["train_rows"] == 2 * len(MEMBERS) * len(CANDIDATES)  # final rows of the first two days
    assert summary["model"]["rows"] == len(MEMBERS) * len(CANDIDATES)
    assert summary["model"]["auc_roc"] > 0.95
    assert summary["model"]["auc_roc"] > summary["heuristic-v1"]["auc_roc"] + 0.2
    assert summary["logistic_regression"]["auc_roc"] is not None
    assert summary["heuristic-v1"]["log_loss"] is None and summary["model"]["log_loss"] is not None
    row = registry.champion(spark, invited_lake)
    assert row["version"] == summary["version"] and row["alias"] == "champion"
    assert Path(row["artifact"], "metadata").is_dir()
    stored = json.loads(row["metrics"])
    assert len(stored["model"]["calibration"]) == 10
    assert json.loads(row["data_versions"]).keys() == {f"training/samples@{d}" for d in DAYS}


def test_same_inputs_give_the_same_version_and_no_new_row(spark, invited_lake, first_training):
    again = train.main(["--date", DAYS[-1], "--lake", invited_lake.root, "--window-days", "3", *FAST])
    assert again["version"] == first_training["version"] and again["already_registered"]
    assert again["model"]["auc_roc"] == first_training["model"]["auc_roc"]
    assert len(registry_frame(spark, invited_lake)) == 1


def test_a_worse_model_is_refused_with_its_reason_and_the_champion_stays(spark, invited_lake, first_training):
    """Day 4's invites follow common connections, not the overlap the model learned on days 1-3: the new
    model loses to heuristic-v1 on day 4 and is recorded as refused; the champion is unchanged."""
    write_samples(spark, invited_lake, NOISE_DAY, sample_rows(NOISE_DAY, 3, "common"))
    summary = train.main(["--date", NOISE_DAY, "--lake", invited_lake.root, "--window-days", "4", *FAST])
    assert summary["status"] == "refused" and "does not beat heuristic-v1" in summary["reason"]
    assert summary["version"] != first_training["version"]
    assert summary["champion"]["version"] == first_training["version"]
    rows = registry_frame(spark, invited_lake)
    assert list(rows["status"]) == ["promoted", "refused"]
    assert rows["alias"].iloc[1] is None and "heuristic-v1" in rows["reason"].iloc[1]
    assert registry.champion(spark, invited_lake, as_of=NOISE_DAY)["version"] == first_training["version"]


def test_only_provisional_labels_in_the_window_is_a_missing_input(spark, tmp_path):
    lake = Lake(str(tmp_path))
    rows = [{**row, "provisional": True} for row in sample_rows(DAYS[0], 0, "coworker")]
    write_samples(spark, lake, DAYS[0], rows)
    with pytest.raises(train.NoFinalLabels, match="no sample with final labels") as raised:
        train.main(["--date", DAYS[0], "--lake", lake.root, *FAST])
    assert raised.value.exit_code == 10
    assert not lake.exists(spark, "models/registry")


# ------------------------------------------------------------------------------------------ connected
def test_connected_label_on_a_temporal_graph_recalls_at_least_as_well_as_common_connections(spark, tmp_path):
    """Pairs in the same industry with a high Adamic-Adar connect within the horizon; common connections
    are noise. Features of S = D - 2, edges of S and D."""
    lake = Lake(str(tmp_path))
    start, end = "2026-04-01", "2026-04-03"
    features, new_edges = [], []
    for m in range(1, 31):
        for c in range(200, 225):
            adamic = ((m * 11 + c * 7) % 10) / 10
            same_industry = (m + c) % 3 != 0
            common = (m * 5 + c * 3) % 7
            features.append({"member_id": m, "candidate_id": c, "common_connections": common,
                             "adamic_adar": adamic, "same_industry": same_industry, "sources": ["triangle"],
                             "triangle_rank": 1 + (c - 200), "coworker_overlap_days": 0,
                             "schoolmate_overlap_days": 0, "ppr_score": 0.0})
            if same_industry and adamic >= 0.8:
                new_edges.append((m, c))
    frame = spark.createDataFrame([tuple(r.get(f.name) for f in FEATURES_PAIRS.fields) for r in features],
                                  FEATURES_PAIRS)
    lake.write_partition(frame, "features/pairs", start)
    lake.publish_tables(spark, "features", [start], ["features/pairs"])
    old = [(1, 2), (3, 4)]
    edges = {start: old, end: old + new_edges}
    for ds, undirected in edges.items():
        rows = [(a, b, None) for a, b in undirected] + [(b, a, None) for a, b in undirected]
        lake.write_partition(spark.createDataFrame(rows, GRAPH_EDGES), "graph/edges", ds)
        lake.publish_tables(spark, "graph", [ds], ["graph/edges"])
    summary = train.main(["--date", end, "--lake", lake.root, "--label", "connected", "--horizon-days", "2",
                          "--top-k", "5", *FAST])
    assert summary["label"] == "connected" and summary["eval_ds"] == start
    assert summary["model"]["recall@5"] >= summary["heuristic-v1"]["recall@5"]
    assert summary["model"]["auc_roc"] > summary["heuristic-v1"]["auc_roc"]
    assert summary["model"]["recall@5"] > 0.9
    assert summary["status"] == "promoted"
    data = json.loads(registry.champion(spark, lake)["data_versions"])
    assert set(data) == {f"features/pairs@{start}", f"graph/edges@{start}", f"graph/edges@{end}"}
    assert lake.read(spark, "models/registry").where(F.col("label") == "connected").count() == 1
