"""The T+1 daily report on a small held-out lake written by hand, with rates counted by hand.

The day D has six labelled impressions (below, numbered 1-6). Members: m1 is in the experiment's treatment
from before D; m2 joins its control at D 10:30, so only m2's 11:00 impression counts there; m3 is in both
variants and is left out. The recs served on D are recs/topk ds=D-1 (D-2 is older, D itself is what the day
produced): (1, 10) triangle+coworker, (1, 11) ppr, (2, 13) triangle; every other pair is "not_ranked".
"""

from __future__ import annotations

import datetime as dt
import shutil
import xml.dom.minidom
from pathlib import Path

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from mutuals.errors import exit_code_of
from mutuals.lake import Lake
from mutuals.tables import (
    EXPERIMENT_ASSIGNMENTS,
    INGEST_COUNTS,
    LABELS_IMPRESSIONS,
    LABELS_UNATTRIBUTED,
    RECS_TOPK,
    REPORTS_DAILY,
    StringType,
    StructField,
    StructType,
)
from reports import html
from reports.daily import DailyConfig, DailyInputMissing, DailyReportRefused, audit_day
from reports.daily_html import not_published_uri, page_uri
from spark_jobs import daily_report as daily_job

D = "2026-01-14"
D_1, D_2, D_7 = "2026-01-13", "2026-01-12", "2026-01-07"
D_14 = "2025-12-31"
COLUMNS = [f.name for f in REPORTS_DAILY.fields]


def with_ds(schema: StructType) -> StructType:
    return StructType(schema.fields + [StructField("ds", StringType(), False)])


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# (request, member, candidate, hour on D, surface, position, clicked, dwell, valid, invited, accepted, dismissed,
#  provisional)
IMPRESSIONS = [
    ("r1", 1, 10, 9, "pymk", 1, True, 5000, True, True, True, False, True),  # 1
    ("r1", 1, 11, 9, "pymk", 2, True, 100, False, False, False, False, True),  # 2
    ("r2", 2, 12, 10, "pymk", 1, False, None, False, False, False, True, True),  # 3
    ("r3", 2, 13, 11, "feed", 1, True, 4000, True, True, False, False, False),  # 4
    ("r4", 3, 14, 12, "feed", 2, False, None, False, False, False, False, False),  # 5
    ("r5", 3, 10, 13, None, None, False, None, False, False, False, False, True),  # 6
]


def labels_rows(day: str, impressions=IMPRESSIONS) -> list[tuple]:
    return [(req, m, c, ts(f"{day} {hour:02d}:00:00"), surface, position, clicked, dwell, valid, invited,
             accepted, dismissed, "request_id" if clicked else None, provisional, day)
            for req, m, c, hour, surface, position, clicked, dwell, valid, invited, accepted, dismissed, provisional
            in impressions]


def plain_impressions(n: int) -> list[tuple]:
    """n impressions with no outcome, final labels."""
    return [(f"q{i}", 100 + i, 200 + i, 8, "pymk", 1, False, None, False, False, False, False, False)
            for i in range(n)]


def topk(member: int, candidate: int, sources: list[str], day: str) -> tuple:
    return (member, candidate, 1, 1.0, sources, 0, 0, 0, 0.0, "heuristic-v1", day)


def build_lake(spark, root: Path) -> Lake:
    """The held-out lake of the module docstring, every input published."""
    lake = Lake(str(root))
    lake.write_partitions(spark.createDataFrame(labels_rows(D), with_ds(LABELS_IMPRESSIONS)), "labels/impressions",
                          [D])
    unattributed = [("u1", 5, 6, "click", ts(f"{D} 15:00:00"), None, "no_impression", D),
                    ("u2", 7, 8, "accept", ts(f"{D} 16:00:00"), None, "no_invite", D)]
    lake.write_partitions(spark.createDataFrame(unattributed, with_ds(LABELS_UNATTRIBUTED)), "labels/unattributed",
                          [D])
    lake.publish_tables(spark, "labels", [D], ["labels/impressions", "labels/unattributed"])

    counts = [("events", 1, 1000, 990, 10, D), ("members", 1, 50, 49, 1, D)]
    lake.write_partitions(spark.createDataFrame(counts, with_ds(INGEST_COUNTS)), "quarantine/ingest_counts", [D])
    assignments = [
        (1, "pymk_ranker_v2", "treatment", ts(f"{D_1} 08:00:00"), D_1),
        (3, "pymk_ranker_v2", "control", ts(f"{D_1} 08:00:00"), D_1),
        (3, "pymk_ranker_v2", "treatment", ts(f"{D_1} 09:00:00"), D_1),
        (2, "pymk_ranker_v2", "control", ts(f"{D} 10:30:00"), D),
    ]
    lake.write_partitions(spark.createDataFrame(assignments, with_ds(EXPERIMENT_ASSIGNMENTS)),
                          "raw/experiment_assignments", [D_1, D])
    lake.publish_tables(spark, "ingest", [D_1], ["raw/experiment_assignments"])
    lake.publish_tables(spark, "ingest", [D], ["quarantine/ingest_counts", "raw/experiment_assignments"])

    recs = [topk(2, 12, ["schoolmate"], D_2),  # older than the serving partition: never used
            topk(1, 10, ["triangle", "coworker"], D_1), topk(1, 11, ["ppr"], D_1), topk(2, 13, ["triangle"], D_1),
            topk(1, 10, ["ppr"], D), topk(2, 12, ["ppr"], D), topk(4, 12, ["ppr"], D)]  # D: served to 3 members
    lake.write_partitions(spark.createDataFrame(recs, with_ds(RECS_TOPK)), "recs/topk", [D_2, D_1, D])
    lake.publish_tables(spark, "recs", [D_2, D_1, D], ["recs/topk"])
    return lake


def derive(spark, template: Lake, root: Path, *, publish_recs_today: bool = True,
           trailing: dict[str, int] | None = None, history: list[tuple] | None = None) -> Lake:
    """A copy of the held-out lake (Delta tables are files, so a copy is a lake of its own) with changes:
    recs/topk ds=D retracted, `trailing` label days of that many plain impressions, published reports/daily
    `history` rows (with ds). Copying is much cheaper than writing and publishing every table again."""
    shutil.copytree(template.root, root)
    lake = Lake(str(root))
    if not publish_recs_today:
        lake.retract(spark, "recs", [D])
    if trailing:
        rows = [r for day, n in trailing.items() for r in labels_rows(day, plain_impressions(n))]
        lake.write_partitions(spark.createDataFrame(rows, with_ds(LABELS_IMPRESSIONS)), "labels/impressions",
                              list(trailing))
        lake.publish_tables(spark, "labels", list(trailing), ["labels/impressions", "labels/unattributed"])
    if history:
        days = sorted({r[-1] for r in history})
        lake.write_partitions(spark.createDataFrame(history, with_ds(REPORTS_DAILY)), "reports/daily", days)
        lake.publish_tables(spark, "daily_report", days, ["reports/daily"])
    return lake


@pytest.fixture(scope="module")
def template(spark, tmp_path_factory) -> Lake:
    """The held-out lake, written once; each test works on a copy (`derive`)."""
    return build_lake(spark, tmp_path_factory.mktemp("daily-template") / "lake")


def run_report(spark, lake: Lake, *options: str) -> dict:
    args = daily_job.build_parser().parse_args(["--date", D, "--lake", lake.root, *options])
    return daily_job.run(spark, args)


def report(metric, dimension, value, numerator, denominator, result, mature, small, moved=None) -> Row:
    return Row(metric=metric, dimension=dimension, dimension_value=value, numerator=float(numerator),
               denominator=None if denominator is None else float(denominator), value=result, mature=mature,
               small=small, moved=moved)


def group(dimension, value, *, impressions, clicked, valid, invited, accepted, dismissed, final, small) -> list[Row]:
    """The six label metrics of one dimension value from its hand-counted sums. With a last-touch window of
    11 h every impression (at 13:00 the latest) has its click window closed by D+1 00:00, so ctr and
    dismiss_rate are mature; the other rates are mature only where every label row is final. `small` names
    the metrics whose denominator is under the floor of 3."""
    def rate(num, den):
        return num / den if den else None

    return [
        report("impressions", dimension, value, impressions, None, float(impressions), True, "impressions" in small),
        report("ctr", dimension, value, clicked, impressions, rate(clicked, impressions), True, "ctr" in small),
        report("valid_click_rate", dimension, value, valid, impressions, rate(valid, impressions), final,
               "valid_click_rate" in small),
        report("invite_rate", dimension, value, invited, impressions, rate(invited, impressions), final,
               "invite_rate" in small),
        report("accept_rate", dimension, value, accepted, invited, rate(accepted, invited), final,
               "accept_rate" in small),
        report("dismiss_rate", dimension, value, dismissed, impressions, rate(dismissed, impressions), True,
               "dismiss_rate" in small),
    ]


PER_IMPRESSION = {"impressions", "ctr", "valid_click_rate", "invite_rate", "dismiss_rate"}
EVERY = PER_IMPRESSION | {"accept_rate"}
# same weekday one and two weeks before D: ctr 0.20 and 0.22 (band 0.21 +- 0.042: today's 0.5 moved),
# impressions 6 and 6 (band 6 +- 0.6: today's 6 did not)
HISTORY = [
    ("ctr", "all", "all", 20.0, 100.0, 0.20, True, False, None, D_7),
    ("ctr", "all", "all", 22.0, 100.0, 0.22, True, False, None, D_14),
    ("impressions", "all", "all", 6.0, None, 6.0, True, False, None, D_7),
    ("impressions", "all", "all", 6.0, None, 6.0, True, False, None, D_14),
]

EXPECTED = [
    # all: 6 impressions, clicks 1 2 4, valid 1 4, invites 1 4, accept 1, dismiss 3; some rows provisional
    report("impressions", "all", "all", 6, None, 6.0, True, False, moved=False),
    report("ctr", "all", "all", 3, 6, 0.5, True, False, moved=True),
    report("valid_click_rate", "all", "all", 2, 6, 2 / 6, False, False),
    report("invite_rate", "all", "all", 2, 6, 2 / 6, False, False),
    report("accept_rate", "all", "all", 1, 2, 0.5, False, True),
    report("dismiss_rate", "all", "all", 1, 6, 1 / 6, True, False),
    # 2 unattributed actions over 2 + 3 clicks + 2 invites + 1 accept + 1 dismiss; needs every window
    report("unattributed_share", "all", "all", 2, 9, 2 / 9, False, False),
    report("members_served", "all", "all", 3, None, 3.0, True, False),
    report("quarantine_share", "table", "events", 10, 1000, 0.01, True, False),
    report("quarantine_share", "table", "members", 1, 50, 0.02, True, False),
    report("quarantine_share", "all", "all", 11, 1050, 11 / 1050, True, False),
    *group("surface", "pymk", impressions=3, clicked=2, valid=1, invited=1, accepted=1, dismissed=1, final=False,
           small={"accept_rate"}),
    *group("surface", "feed", impressions=2, clicked=1, valid=1, invited=1, accepted=0, dismissed=0, final=True,
           small=EVERY),
    *group("surface", "unknown", impressions=1, clicked=0, valid=0, invited=0, accepted=0, dismissed=0, final=False,
           small=EVERY),
    *group("position", "1", impressions=3, clicked=2, valid=2, invited=2, accepted=1, dismissed=1, final=False,
           small={"accept_rate"}),
    *group("position", "2", impressions=2, clicked=1, valid=0, invited=0, accepted=0, dismissed=0, final=False,
           small=EVERY),
    *group("position", "unknown", impressions=1, clicked=0, valid=0, invited=0, accepted=0, dismissed=0,
           final=False, small=EVERY),
    *group("variant", "pymk_ranker_v2:treatment", impressions=2, clicked=2, valid=1, invited=1, accepted=1,
           dismissed=0, final=False, small=EVERY),
    *group("variant", "pymk_ranker_v2:control", impressions=1, clicked=1, valid=1, invited=1, accepted=0,
           dismissed=0, final=True, small=EVERY),
    *group("source", "triangle", impressions=2, clicked=2, valid=2, invited=2, accepted=1, dismissed=0, final=False,
           small=EVERY),
    *group("source", "coworker", impressions=1, clicked=1, valid=1, invited=1, accepted=1, dismissed=0, final=False,
           small=EVERY),
    *group("source", "ppr", impressions=1, clicked=1, valid=0, invited=0, accepted=0, dismissed=0, final=False,
           small=EVERY),
    *group("source", "not_ranked", impressions=3, clicked=0, valid=0, invited=0, accepted=0, dismissed=1,
           final=False, small={"accept_rate"}),
]


@pytest.fixture(scope="module")
def published(spark, template, tmp_path_factory):
    """The held-out lake after one report run for D (floor 3, last-touch window 11 h)."""
    lake = derive(spark, template, tmp_path_factory.mktemp("daily") / "lake", history=HISTORY)
    summary = run_report(spark, lake, "--min-volume", "3", "--last-touch-hours", "11")
    return lake, summary


def test_reports_daily_holds_exactly_the_hand_computed_rows(spark, published):
    lake, summary = published
    assertDataFrameEqual(lake.read(spark, "reports/daily", D).select(COLUMNS), EXPECTED)
    assert summary["rows"] == len(EXPECTED)
    assert lake.published_days(spark, "reports/daily") == [D_14, D_7, D]
    page = Path(page_uri(lake.root, D)).read_text()
    assert "Moved beyond the same-weekday band: ctr (all=all)" in page
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not Path(not_published_uri(lake.root, D)).exists()


def test_the_page_loads_offline_in_chromium_and_its_plots_render(published, tmp_path):
    browser = pytest.importorskip("tests.browser")
    lake, _ = published
    result = browser.open_page(page_uri(lake.root, D), tmp_path)
    assert result.console_errors == []
    assert not browser.is_blank(result.screenshot)
    assert browser.distinct_colours(result.screenshot) > 20
    assert f"PYMK daily report · {D}" in result.dom_text


def test_a_missing_input_partition_publishes_nothing_and_writes_the_not_published_page(spark, template, tmp_path):
    lake = derive(spark, template, tmp_path / "lake", publish_recs_today=False)
    with pytest.raises(DailyInputMissing, match=r"recs/topk ds=2026-01-14 is not published") as refused:
        run_report(spark, lake)
    assert exit_code_of(refused.value) == 10
    assert lake.partitions(spark, "reports/daily") == []
    assert lake.published_days(spark, "reports/daily") == []
    assert not Path(page_uri(lake.root, D)).exists()
    refused_page = Path(not_published_uri(lake.root, D)).read_text()
    assert "NOT PUBLISHED" in refused_page and "mutuals run recs --date 2026-01-14" in refused_page

    # once the input is there the report is published and the stale refusal goes
    lake.publish_tables(spark, "recs", [D_2, D_1, D], ["recs/topk"])
    run_report(spark, lake)
    good_page = Path(page_uri(lake.root, D)).read_text()
    version = lake.version(spark, "reports/daily")
    assert not Path(not_published_uri(lake.root, D)).exists()

    # a later refusal sits beside the last good page and leaves the table as it was
    lake.retract(spark, "recs", [D])
    with pytest.raises(DailyInputMissing):
        run_report(spark, lake)
    assert Path(page_uri(lake.root, D)).read_text() == good_page
    assert Path(not_published_uri(lake.root, D)).exists()
    assert lake.version(spark, "reports/daily") == version
    assert lake.published_days(spark, "reports/daily") == [D]


def test_a_small_valid_day_is_published_with_its_figures_flagged_small(spark, template, tmp_path):
    """Six impressions against trailing days of two: three times the trailing mean, but the mean is under
    the default floor (100), so the volume band is not judged and every label figure is small."""
    trailing = {f"2026-01-{day:02d}": 2 for day in range(7, 14)}
    lake = derive(spark, template, tmp_path / "lake", trailing=trailing)
    summary = run_report(spark, lake)
    rows = lake.read(spark, "reports/daily", D).collect()
    label_rows = [r for r in rows if r.metric not in ("members_served", "quarantine_share")]
    assert label_rows and all(r.small for r in label_rows)
    assert summary["impressions"] == 6 and summary["small"] == len(label_rows) + 1  # + members' 50-row quarantine
    assert [(r.numerator, r.denominator) for r in rows if r.metric == "ctr" and r.dimension == "all"] == [(3.0, 6.0)]
    assert "Small day: 6 impressions" in Path(page_uri(lake.root, D)).read_text()


def test_a_day_out_of_the_volume_band_is_refused_and_reports_daily_is_untouched(spark, template, tmp_path):
    """Trailing days of 120 impressions (mean 120 reaches the floor of 100): six is 0.05x, below 0.5."""
    trailing = {D_1: 120, D_2: 120}
    lake = derive(spark, template, tmp_path / "lake", trailing=trailing, history=HISTORY)
    before = lake.version(spark, "reports/daily")
    with pytest.raises(DailyReportRefused, match=r"volume band: 6 impressions are 0.05x the trailing mean 120.0"):
        run_report(spark, lake)
    assert lake.version(spark, "reports/daily") == before
    assert lake.published_days(spark, "reports/daily") == [D_14, D_7]
    assert not Path(page_uri(lake.root, D)).exists()
    assert "volume band" in Path(not_published_uri(lake.root, D)).read_text()


# ------------------------------------------------------------------------------------ audits, no Spark
def test_audits_refuse_absent_labels_and_judge_bands_only_from_the_floor():
    config = DailyConfig(min_volume=100, volume_band=(0.5, 2.0), max_quarantine_share=0.05)
    assert audit_day(0, [500], [], config) == ["labels absent: labels/impressions has no rows for the day"]
    assert audit_day(5, [1, 1, 0], [], config) == []  # trailing mean 1 is under the floor: not judged
    assert audit_day(5, [0, 0], [], config) == []  # no trailing day at all
    assert audit_day(150, [100, 100, 0], [], config) == []  # 1.5x the mean of the days that had any
    assert audit_day(201, [100, 100], [], config)[0].startswith("volume band: 201 impressions are 2.01x")
    assert audit_day(49, [100], [], config)[0].startswith("volume band: 49 impressions are 0.49x")
    # quarantine: 6 of 100 is over 5 %; 10 of 99 rows read is under the floor; 5 of 100 is at the limit
    assert audit_day(100, [], [("events", 99, 10), ("members", 100, 5)], config) == []
    reasons = audit_day(100, [], [("events", 100, 6)], config)
    assert reasons == ["quarantine share: events quarantined 6 of 100 rows (6.00%), above 5.00% "
                       "(judged from 100 rows read)"]


# ------------------------------------------------------------------------------------ HTML, no Spark
def test_charts_are_well_formed_svg_and_escape_what_they_show():
    days = ["01-01", "01-02", "01-03"]
    line = html.line_chart([html.Series("ctr <&>", [0.1, None, 0.3], lower=[0.05, None, 0.2],
                                        upper=[0.15, None, 0.4])], days, "a <title>", reference=0.0, flagged_x=[2])
    bars = html.bar_chart([html.Bar("pymk", 0.2, 0.1, 0.3), html.Bar("<feed>", -0.1, flagged=True)], "bars")
    funnel = html.funnel([("impressions", 100), ("clicked", 10)], "funnel")
    for svg in (line, bars, funnel, html.line_chart([], [], "empty")):
        xml.dom.minidom.parseString(svg)  # raises on malformed markup
    assert "a &lt;title&gt;" in line and "<title>" not in line.replace("<title>a &lt;title&gt;</title>", "")
    assert line.count("<polyline") == 0  # a gap between two single points draws no line
    assert line.count("stroke-dasharray") == 1 and "r=\"6\"" in line  # the reference line and the flag ring
    assert "&lt;feed&gt;" in bars and html.FLAG_COLOR in bars
    assert "10 (10.00%)" in funnel
    with pytest.raises(ValueError, match="2 values for 3 x labels"):
        html.line_chart([html.Series("short", [1.0, 2.0])], days, "t")
