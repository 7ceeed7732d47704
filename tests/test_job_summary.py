"""Every job ends with one JSON line: rows in (from the publications it read), rows out, seconds."""

from __future__ import annotations

import json

from mutuals import ledger
from mutuals.lake import Lake


def test_rows_in_and_out_come_from_publication_records(spark, tmp_path, capsys):
    lake = Lake(str(tmp_path / "lake"))
    edges = spark.createDataFrame([(1, 2, None), (2, 1, None), (2, 3, None)],
                                  "src long, dst long, connected_at timestamp")
    day = lake.day_run(spark, "graph", ["2026-01-01"])
    day.write_partition(edges, "graph/edges", "2026-01-01")
    day.write_partition(spark.createDataFrame([(1, 1, False), (2, 2, False), (3, 1, False)],
                                              "member_id long, degree long, is_hub boolean"),
                        "graph/degrees", "2026-01-01")
    ledger.start()
    day.publish()
    assert ledger.current().figures()["rows_out"] == 3 + 3
    ledger.start()
    lake.read_published(spark, "graph/edges", "2026-01-01")
    lake.read_published(spark, "graph/edges", "2026-01-01")   # the same partition twice counts once
    lake.read_published_range(spark, "graph/degrees", "2025-12-01", "2026-01-31")
    ledger.emit_summary({"job": "probe", "ds": "2026-01-01"})
    line = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(line)
    assert summary["rows_in"] == 3 + 3
    assert summary["rows_out"] == 0
    assert summary["job"] == "probe" and summary["seconds"] >= 0


def test_a_jobs_own_figure_wins():
    ledger.start()
    assert json.loads(ledger.summary_line({"rows_in": 7}))["rows_in"] == 7


def test_spark_start_is_the_time_until_the_session_was_ready_and_counts_once():
    job = ledger.start()
    assert "spark_start_s" not in job.figures()
    job.started -= 2.0                      # as if the session took two seconds to start
    job.session_ready()
    job.started -= 5.0                      # a later call (a reused session) does not move it
    job.session_ready()
    figures = job.figures()
    assert 2.0 <= figures["spark_start_s"] < 3.0
    assert figures["seconds"] >= 7.0
