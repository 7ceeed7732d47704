"""Progress lines of a running job and the UI switch."""

from __future__ import annotations

import io
import time

import pytest

from mutuals.progress import reporting
from mutuals.session import ui_enabled


def slow_partition(rows):
    time.sleep(0.4)
    yield from rows


def test_a_running_job_prints_a_line_per_moving_stage(spark):
    out = io.StringIO()
    with reporting(spark, "probe", stream=out, every_s=0.1):
        spark.sparkContext.parallelize(range(40), 8).mapPartitions(slow_partition).count()
    lines = [line for line in out.getvalue().splitlines() if "stage" in line]
    assert lines, out.getvalue()
    assert all(line.startswith("[probe +") for line in lines)
    assert any("/8 tasks done" in line for line in lines)


def test_progress_off_prints_nothing(spark):
    out = io.StringIO()
    with reporting(spark, "probe", stream=out, every_s=0):
        spark.sparkContext.parallelize(range(8), 2).mapPartitions(slow_partition).count()
    assert out.getvalue() == ""


@pytest.mark.parametrize(("value", "expected"), [(None, "true"), ("false", "false"), ("0", "false"),
                                                 ("OFF", "false"), ("true", "true")])
def test_the_ui_is_on_unless_turned_off(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("MUTUALS_SPARK_UI", raising=False)
    else:
        monkeypatch.setenv("MUTUALS_SPARK_UI", value)
    assert ui_enabled() == expected
