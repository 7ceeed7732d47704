"""Point-in-time training samples on tiny hand-built labels and features/pairs partitions with known answers.

Feature partitions carry the day in their values (common_connections = day of month, and others derived
from it), so an expected row says by itself which partition it came from. Expected values are written by hand.
"""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, Row
from pyspark.testing import assertDataFrameEqual

from labelling.attribution import point_in_time_features
from mutuals.lake import Lake, UnpublishedPartition
from mutuals.tables import FEATURES_PAIRS, LABELS_IMPRESSIONS, TRAINING_SAMPLES, StructField, StructType
from quality.label_gates import SampleCountMismatch
from spark_jobs import samples as samples_job

D = "2026-01-10"
SAMPLE_DAYS = ["2026-01-07", "2026-01-08", "2026-01-09", D]  # R-3 .. R, the default lookback
VIEW = ["ds", "request_id", "member_id", "candidate_id", "clicked", "features_ds", "feature_age_s",
        "common_connections", "adamic_adar", "jaccard", "coworker_overlap_days", "schoolmate_overlap_days",
        "ppr_score", "same_region", "sources", "triangle_rank", "ppr_rank", "shown_28d", "days_since_last_shown",
        "previously_dismissed"]
WITH_DS = StructType(LABELS_IMPRESSIONS.fields + [StructField("ds", LABELS_IMPRESSIONS["request_id"].dataType)])
FEATURES_WITH_DS = StructType(FEATURES_PAIRS.fields + [StructField("ds", LABELS_IMPRESSIONS["request_id"].dataType)])


def labels_df(spark, rows: list[tuple[str, str, int, int, str, bool]]) -> DataFrame:
    """(ds, request_id, member_id, candidate_id, impression_ts, clicked) -> labels/impressions rows."""
    full = [(req, m, c, dt.datetime.fromisoformat(shown), "pymk", 1, clicked, None, clicked, False, False, False,
             "request_id" if clicked else None, True, ds) for ds, req, m, c, shown, clicked in rows]
    return spark.createDataFrame(full, WITH_DS)


def day_features(day: int) -> dict[str, object]:
    """The feature values of a partition of day-of-month `day` (the columns VIEW shows are derived from it)."""
    return {"common_connections": day, "adamic_adar": day / 10, "resource_allocation": 0.5, "jaccard": day / 1000,
            "member_degree": 3, "candidate_degree": 4, "coworker_overlap_days": 10 * day,
            "schoolmate_overlap_days": 0, "ppr_score": day / 100, "same_industry": True, "same_region": None,
            "sources": ["triangle"], "triangle_rank": day, "coworker_rank": None, "schoolmate_rank": None,
            "ppr_rank": None, "shown_28d": day - 5, "days_since_last_shown": 2, "previously_dismissed": day % 2 == 0}


def pairs_df(spark, ds: str, pairs: list[tuple[int, int]]) -> DataFrame:
    """A features/pairs partition: the pairs with `day_features` of its day of month."""
    values = day_features(int(ds[-2:]))
    rows = [{"member_id": m, "candidate_id": c, **values, "ds": ds} for m, c in pairs]
    return spark.createDataFrame([tuple(r[f.name] for f in FEATURES_WITH_DS.fields) for r in rows],
                                 FEATURES_WITH_DS)


def sample(ds, req, m, c, clicked, features_ds=None, age=None, day=None) -> Row:
    """An expected sample; `day` = the day of month of the partition its features come from (None: none).
    Values spelled out by hand (see `day_features`)."""
    has = day is not None
    return Row(ds=ds, request_id=req, member_id=m, candidate_id=c, clicked=clicked, features_ds=features_ds,
               feature_age_s=age, common_connections=day if has else None, adamic_adar=day / 10 if has else None,
               jaccard=day / 1000 if has else None, coworker_overlap_days=10 * day if has else None,
               schoolmate_overlap_days=0 if has else None, ppr_score=day / 100 if has else None, same_region=None,
               sources=["triangle"] if has else None, triangle_rank=day if has else None, ppr_rank=None,
               shown_28d=day - 5 if has else None, days_since_last_shown=2 if has else None,
               previously_dismissed=(day % 2 == 0) if has else None)


LABELS = [
    (D, "r1", 1, 2, f"{D} 10:00:00", True),
    (D, "r2", 1, 3, f"{D} 10:00:05", False),  # (1, 3) is missing from the 01-09 partition
    ("2026-01-08", "r0", 1, 2, "2026-01-08 23:00:00", False),  # no partition before 01-08
]


def feature_partitions(spark) -> DataFrame:
    """(1, 2) everywhere, (1, 3) only on 01-08 and on D itself: neither may reach a sample of D."""
    return (pairs_df(spark, "2026-01-08", [(1, 2), (1, 3)])
            .unionByName(pairs_df(spark, "2026-01-09", [(1, 2)]))
            .unionByName(pairs_df(spark, D, [(1, 2), (1, 3)]))
            .unionByName(pairs_df(spark, "2026-01-11", [(1, 2), (1, 3)])))


EXPECTED = [
    # 01-10 10:00:00 is 36,000 s after the 01-09 partition was published (01-10 00:00 UTC)
    sample(D, "r1", 1, 2, True, "2026-01-09", 36_000, day=9),
    # the whole-partition rule: (1, 3) is absent from 01-09, so null features, not 01-08's or D's values
    sample(D, "r2", 1, 3, False, "2026-01-09", 36_005),
    sample("2026-01-08", "r0", 1, 2, False),
]


def test_a_sample_takes_the_newest_partition_before_its_day_never_its_own_day_or_later(spark):
    samples = labels_df(spark, LABELS).transform(point_in_time_features(feature_partitions(spark)))
    assert samples.columns == [*(f.name for f in TRAINING_SAMPLES.fields), "ds"]
    assertDataFrameEqual(samples.select(VIEW), EXPECTED)


def test_samples_job_writes_one_row_per_label_and_its_gate_keeps_the_published_rows(spark, tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    lake.write_partitions(labels_df(spark, LABELS), "labels/impressions", ["2026-01-08", D])
    lake.write_partitions(feature_partitions(spark), "features/pairs",
                          ["2026-01-08", "2026-01-09", D, "2026-01-11"])
    lake.publish_tables(spark, "labels", SAMPLE_DAYS, ["labels/impressions"])
    lake.publish_tables(spark, "features", ["2026-01-08", "2026-01-09", D, "2026-01-11"], ["features/pairs"])
    args = samples_job.build_parser().parse_args(["--date", D, "--lake", lake.root])
    summary = samples_job.run(spark, args)
    assert summary["rows"] == 3
    assertDataFrameEqual(lake.read(spark, "training/samples").select(VIEW), EXPECTED)

    # a feature partition with a duplicated pair would fan a label out into two samples: the gate refuses
    duplicated = pairs_df(spark, "2026-01-09", [(1, 2), (1, 2)])
    lake.write_partition(duplicated.drop("ds"), "features/pairs", "2026-01-09")
    with pytest.raises(SampleCountMismatch, match=r"exactly one row per labelled impression \(3 rows\), found 4"):
        samples_job.run(spark, args)
    assertDataFrameEqual(lake.read(spark, "training/samples").select(VIEW), EXPECTED)


def test_an_unpublished_feature_partition_is_never_read(spark, tmp_path):
    """features of 01-09 were written but never published (a run that stopped before publishing): the
    samples of D take the newest published partition before D, 01-08, not the half-written one."""
    lake = Lake(str(tmp_path / "lake"))
    lake.write_partitions(labels_df(spark, LABELS), "labels/impressions", ["2026-01-08", D])
    lake.write_partitions(feature_partitions(spark), "features/pairs",
                          ["2026-01-08", "2026-01-09", D, "2026-01-11"])
    lake.publish_tables(spark, "labels", SAMPLE_DAYS, ["labels/impressions"])
    lake.publish_tables(spark, "features", ["2026-01-08", D, "2026-01-11"], ["features/pairs"])
    samples_job.run(spark, samples_job.build_parser().parse_args(["--date", D, "--lake", lake.root]))
    assertDataFrameEqual(lake.read(spark, "training/samples").select(VIEW), [
        # 01-08's partition was published at 01-09 00:00 UTC: 34 h (+5 s) before the impressions
        sample(D, "r1", 1, 2, True, "2026-01-08", 122_400, day=8),
        sample(D, "r2", 1, 3, False, "2026-01-08", 122_405, day=8),
        sample("2026-01-08", "r0", 1, 2, False),
    ])


def test_samples_fail_when_a_label_day_is_not_published(spark, tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    lake.write_partitions(labels_df(spark, LABELS), "labels/impressions", ["2026-01-08", D])
    lake.publish_tables(spark, "labels", ["2026-01-08", D], ["labels/impressions"])
    with pytest.raises(UnpublishedPartition, match=r"^labels/impressions ds=2026-01-07, ds=2026-01-09 are not "
                                                   r"published: run `mutuals run labels --date D`"):
        samples_job.run(spark, samples_job.build_parser().parse_args(["--date", D, "--lake", lake.root]))
    assert not lake.exists(spark, "training/samples")


def test_no_job_imports_another_job():
    """Entrypoints are thin: what two jobs share lives in a room (labelling.days, labelling.options)."""
    jobs_dir = Path(__file__).resolve().parents[1] / "spark_jobs"
    found = {}
    for job in sorted(jobs_dir.glob("*.py")):
        for node in ast.walk(ast.parse(job.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found.update({(job.name, n): True for n in names if n == "spark_jobs" or n.startswith("spark_jobs.")})
    assert list(found) == []
