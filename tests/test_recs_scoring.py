"""recs scoring features/pairs: heuristic-v1 before any champion, the champion after, `--model`, exclusions
(connections, recent dismissals and invites) and the candidate-id tie-break.

The models are fitted here on hand rows whose label is `same_industry` alone (or its negation), every other
column constant, so a fitted tree splits on nothing else: on the lake's pairs it gives exactly two scores,
and the expected order is "same industry first (or last), then candidate id".
"""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from mutuals.lake import Lake
from mutuals.tables import EVENTS, FEATURES_PAIRS, GRAPH_EDGES
from ranking import registry
from ranking.training import TrainParams, fit_gbt
from spark_jobs import recs

D = "2026-05-30"
RECENT = "2026-05-25"        # inside the 28 days ending D
LONG_AGO = "2026-04-20"      # 40 days before D: outside
SAME_INDUSTRY = {10, 12, 13, 15, 17}
# member 1's candidates 10..17; member 2's 20, 21
PAIRS = [(1, c, c in SAME_INDUSTRY, 17 - c) for c in range(10, 18)] + [(2, 20, False, 1), (2, 21, True, 0)]


def features_frame(spark):
    rows = [{"member_id": m, "candidate_id": c, "same_industry": same, "common_connections": common,
             "sources": ["triangle"], "coworker_overlap_days": 0, "schoolmate_overlap_days": 0, "ppr_score": 0.0}
            for m, c, same, common in PAIRS]
    return spark.createDataFrame([tuple(r.get(f.name) for f in FEATURES_PAIRS.fields) for r in rows],
                                 FEATURES_PAIRS)


def event(ds: str, member: int, candidate: int, kind: str) -> tuple:
    ts = dt.datetime.fromisoformat(ds) + dt.timedelta(hours=9)
    return (f"{kind}-{ds}-{member}-{candidate}", member, ts, kind, candidate, None, "pymk", 1, None)


def register(spark, lake: Lake, version: str, ds: str, promote: bool, label_is_same_industry: bool) -> None:
    """Fit a small GBT on same_industry (or its negation) and record it as the train job would."""
    rows = [{"member_id": m, "candidate_id": c, "ds": ds, "label": float(same == label_is_same_industry),
             "same_industry": same} for m in range(1, 5) for c, same in ((1, True), (2, False), (3, True))]
    train = spark.createDataFrame(rows, "member_id long, candidate_id long, ds string, label double, "
                                        "same_industry boolean")
    model = fit_gbt(train, TrainParams(gbt_max_iter=3, gbt_max_depth=2))
    artifact = registry.save_model(spark, lake, model, version)
    decision = registry.GateDecision(promote, "hand-registered")
    row = registry.registry_row(spark, version=version, label="invited", params="{}", metrics={},
                                data_versions={}, code="test", decision=decision, eval_ds=ds, artifact=artifact,
                                created_at=dt.datetime(2026, 5, 1))
    day = lake.day_run(spark, "train", [ds])
    day.write_partition(lake.read_or_empty(spark, "models/registry", ds).drop("ds").unionByName(row),
                        "models/registry", ds)
    day.publish()


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    lake = Lake(str(tmp_path_factory.mktemp("recs_lake")))
    lake.write_partition(features_frame(spark), "features/pairs", D)
    lake.publish_tables(spark, "features", [D], ["features/pairs"])
    edges = [(1, 11, None), (11, 1, None)]                       # 1 and 11 are connected
    lake.write_partition(spark.createDataFrame(edges, GRAPH_EDGES), "graph/edges", D)
    lake.publish_tables(spark, "graph", [D], ["graph/edges"])
    for ds, rows in ((LONG_AGO, [event(LONG_AGO, 1, 16, "dismiss")]),                  # too old: kept
                     (RECENT, [event(RECENT, 1, 13, "dismiss"), event(RECENT, 1, 14, "click")]),
                     (D, [event(D, 1, 15, "invite"), event(D, 2, 1, "invite")])):
        lake.write_partition(spark.createDataFrame(rows, EVENTS), "raw/events", ds)
        lake.publish_tables(spark, "ingest", [ds], ["raw/events"])
    return lake


def ranked(spark, lake: Lake) -> dict[int, list[tuple[int, int]]]:
    """member -> [(rank, candidate)] of recs/topk ds=D."""
    out: dict[int, list[tuple[int, int]]] = {}
    for row in lake.read(spark, "recs/topk", D).orderBy("member_id", "rank").collect():
        out.setdefault(row["member_id"], []).append((row["rank"], row["candidate_id"]))
    return out


def versions(spark, lake: Lake) -> set[str]:
    return {r[0] for r in lake.read(spark, "recs/topk", D).select("model_version").distinct().collect()}


def test_without_a_champion_recs_fall_back_to_heuristic_v1(spark, lake):
    recs.main(["--date", D, "--lake", lake.root, "--top-k", "4"])
    # common connections 17 - c: 10 (7), 12 (5), 14 (3), 16 (1) ... ; 11 connected, 13 dismissed on RECENT,
    # 15 invited on D; 16 dismissed 40 days ago stays; 14 was only clicked.
    assert ranked(spark, lake) == {1: [(1, 10), (2, 12), (3, 14), (4, 16)], 2: [(1, 20), (2, 21)]}
    assert versions(spark, lake) == {"heuristic-v1"}


def test_the_champion_scores_and_ties_go_by_candidate_id(spark, lake):
    register(spark, lake, "gbt-samefirst", "2026-05-01", promote=True, label_is_same_industry=True)
    register(spark, lake, "gbt-samelast", "2026-05-02", promote=False, label_is_same_industry=False)
    assert registry.champion(spark, lake, as_of=D)["version"] == "gbt-samefirst"
    recs.main(["--date", D, "--lake", lake.root, "--top-k", "4"])
    # same industry first (10, 12, 17 left of 10/12/13/15/17), then the rest by candidate id (14, 16)
    assert ranked(spark, lake) == {1: [(1, 10), (2, 12), (3, 17), (4, 14)], 2: [(1, 21), (2, 20)]}
    assert versions(spark, lake) == {"gbt-samefirst"}
    top = lake.read(spark, "recs/topk", D).where(F.col("member_id") == 1).orderBy("rank").collect()
    assert top[0]["score"] == top[1]["score"] == top[2]["score"] > top[3]["score"]
    assert top[2]["common_connections"] == 0 and top[2]["sources"] == ["triangle"]


def test_model_picks_another_registered_version(spark, lake):
    recs.main(["--date", D, "--lake", lake.root, "--top-k", "3", "--model", "gbt-samelast"])
    assert ranked(spark, lake) == {1: [(1, 14), (2, 16), (3, 10)], 2: [(1, 20), (2, 21)]}
    assert versions(spark, lake) == {"gbt-samelast"}


def test_an_unknown_model_is_a_missing_input_and_writes_nothing(spark, lake):
    before = lake.version(spark, "recs/topk")
    with pytest.raises(registry.UnknownModel, match="'gbt-nope' is not in models/registry") as raised:
        recs.main(["--date", D, "--lake", lake.root, "--model", "gbt-nope"])
    assert raised.value.exit_code == 10
    assert lake.version(spark, "recs/topk") == before


def test_a_champion_promoted_after_the_day_is_not_used_for_it(spark, lake):
    register(spark, lake, "gbt-later", "2026-06-05", promote=True, label_is_same_industry=False)
    assert registry.champion(spark, lake, as_of=D)["version"] == "gbt-samefirst"
    assert registry.champion(spark, lake)["version"] == "gbt-later"
