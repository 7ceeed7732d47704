"""Held-out metrics of a scorer: AUC-ROC, AUC-PR, log loss, a decile calibration table, recall@K and NDCG@K.

Plain numpy over one held-out day collected to the driver (member, candidate, label, score): every
formula is written out here, so a test can check it against an independent computation, and the model,
logistic regression and heuristic-v1 are measured by the same code on the same rows.

* AUC-ROC: the Mann-Whitney form, (sum of the positives' ranks - P(P+1)/2) / (P N), with average ranks
  for tied scores (a tie counts one half). None when the day has only one class.
* AUC-PR: average precision, sum over distinct score thresholds (descending) of (recall step) x precision
  at that threshold; tied scores enter together.
* log loss: mean of -(y log p + (1-y) log(1-p)), p clipped to [1e-15, 1 - 1e-15]; only for scores that are
  probabilities (None for heuristic-v1, whose score is not one).
* calibration: rows sorted by score (ties by member, then candidate id) cut into 10 equal-count deciles;
  per decile the rows, mean predicted score and observed positive rate.
* recall@K and NDCG@K per member, then averaged over the members with at least one positive (a member
  with no positive has neither). Each member's list is ordered as served: score descending, candidate id
  ascending. recall@K = positives in the top K / the member's positives; NDCG@K = DCG@K / ideal DCG@K with
  binary gains and 1 / log2(rank + 1) discounts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

DEFAULT_K = 20
DECILES = 10
EPSILON = 1e-15


def _average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks of `scores`, ascending, ties given the mean of the ranks they span."""
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(scores)]))
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + 1 + end) / 2.0
    return ranks


def auc_roc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    labels = np.asarray(labels, dtype=bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return None
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[labels].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def auc_pr(labels: np.ndarray, scores: np.ndarray) -> float | None:
    labels = np.asarray(labels, dtype=bool)
    positives = int(labels.sum())
    if positives == 0:
        return None
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last_of_tie = np.concatenate((np.flatnonzero(np.diff(sorted_scores)), [len(scores) - 1]))
    true_positives = np.cumsum(sorted_labels)[last_of_tie]
    predicted = last_of_tie + 1
    precision = true_positives / predicted
    recall = true_positives / positives
    recall_steps = np.diff(np.concatenate(([0.0], recall)))
    return float((recall_steps * precision).sum())


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    y = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(probabilities, dtype=np.float64), EPSILON, 1 - EPSILON)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def calibration_table(labels: np.ndarray, scores: np.ndarray) -> list[dict[str, float]]:
    """Deciles of rows in score order (input order must already be deterministic for ties)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    order = np.argsort(scores, kind="mergesort")
    table = []
    for decile, rows in enumerate(np.array_split(order, DECILES), start=1):
        if len(rows) == 0:
            continue
        table.append({"decile": decile, "rows": int(len(rows)), "mean_predicted": float(scores[rows].mean()),
                      "observed": float(labels[rows].mean())})
    return table


def ranking_metrics(frame: pd.DataFrame, k: int = DEFAULT_K) -> dict[str, float | None]:
    """recall@K and NDCG@K per member, averaged. `frame` has member_id, candidate_id, label, score."""
    ordered = frame.sort_values(["member_id", "score", "candidate_id"], ascending=[True, False, True],
                                kind="mergesort")
    ordered = ordered.assign(position=ordered.groupby("member_id").cumcount() + 1)
    labels = ordered["label"].astype(bool)
    discount = 1.0 / np.log2(ordered["position"].to_numpy() + 1.0)
    per_member = pd.DataFrame({
        "member_id": ordered["member_id"].to_numpy(),
        "positives": labels.to_numpy().astype(np.int64),
        "hits": (labels & (ordered["position"] <= k)).to_numpy().astype(np.int64),
        "dcg": np.where(labels & (ordered["position"] <= k), discount, 0.0),
    }).groupby("member_id").sum()
    per_member = per_member[per_member["positives"] > 0]
    if per_member.empty:
        return {f"recall@{k}": None, f"ndcg@{k}": None, "members": 0}
    ideal_positions = np.minimum(per_member["positives"].to_numpy(), k)
    ideal = np.array([(1.0 / np.log2(np.arange(2, n + 2))).sum() for n in ideal_positions])
    recall = per_member["hits"].to_numpy() / per_member["positives"].to_numpy()
    ndcg = per_member["dcg"].to_numpy() / ideal
    return {f"recall@{k}": float(recall.mean()), f"ndcg@{k}": float(ndcg.mean()), "members": int(len(per_member))}


def evaluate(frame: pd.DataFrame, k: int = DEFAULT_K, probabilities: bool = True) -> dict[str, Any]:
    """Every metric of one scorer on one held-out frame (member_id, candidate_id, label, score)."""
    frame = frame.sort_values(["member_id", "candidate_id"], kind="mergesort").reset_index(drop=True)
    labels, scores = frame["label"].to_numpy(dtype=bool), frame["score"].to_numpy(dtype=np.float64)
    metrics: dict[str, Any] = {
        "rows": int(len(frame)), "positives": int(labels.sum()),
        "auc_roc": auc_roc(labels, scores), "auc_pr": auc_pr(labels, scores),
        "log_loss": log_loss(labels, scores) if probabilities and len(frame) else None,
    }
    metrics.update(ranking_metrics(frame, k))
    metrics["calibration"] = calibration_table(labels, scores)
    return metrics
