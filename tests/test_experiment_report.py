"""The experiment report on hand-built lakes with known per-member values, on an SRM failure, and on a
synthetic lake whose `pymk_ranker_v2` has a real invite lift.

The small lake (report day D = 2026-01-05, experiment `exp_a`), per member: exposure start, then the labelled
impressions in the exposure window (impressions, clicks, invites, accepts) and in the 14-day pre-period:

    control   m1  01-03 10:00   window 3, 2, 2, 1   pre 2, 1, 0, 0  (one pre impression the same day, before)
              m2  01-03 12:00   window 1, 1, 0, 0   pre 0
              m3  01-04 09:00   window 0 (no impressions: counts as zeros)
              m8  01-03 00:00   window 2, 0, 1, 0   pre 1, 0, 1, 0  (assigned to control twice: kept, earliest)
    treatment m4  01-03 08:00   window 3, 2, 3, 1   pre 1, 1, 1, 0  (plus one impression on 01-06, after D)
              m5  01-04 10:00   window 1, 1, 1, 0   pre 1, 0, 0, 0
              m6  01-05 01:00   window 2, 1, 0, 0   pre 0
    excluded  m7  control on 01-03, treatment on 01-04: left out of both arms, counted once
    after D   m9  assigned on 01-06 (not exposed by D); m20 is in no experiment

so control has 4 units (impressions 6, clicks 3, invites 3, accepts 1) and treatment 3 (6, 4, 4, 1).

The same lake holds two more experiments, on members of their own: `exp_srm` (members 1000-1999, 900 in
control and 100 in treatment under equal weights: a sample ratio mismatch) and `exp_lift` (members 3000-3079,
assigned 01-03 10:00, two impressions each on 01-04: 40 control members with 0 or 1 invite, alternately, and 40
treated ones with 1 or 2, a real +200 % invite lift). One module-scoped lake, one gather and one job run
serve every test that only reads them; the test that retracts a label day runs last and restores it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import pytest
from pyspark.sql.types import StringType, StructField, StructType
from scipy import stats as scipy_stats

from mutuals.errors import MissingInput, UsageError
from mutuals.lake import Lake, UnpublishedPartition, days_between
from mutuals.tables import EXPERIMENT_ASSIGNMENTS, LABELS_IMPRESSIONS, REPORTS_EXPERIMENTS
from reports.experiment import (
    NoAssignments,
    WeightsInvalid,
    cumulative_by_day,
    cuped_metrics,
    engine_input,
    order_variants,
    parse_weights,
    weights_for,
)
from spark_jobs import experiment_report as job

D = "2026-01-05"
LAKE_DAYS = days_between("2026-01-01", "2026-01-06")
WITH_DS = [StructField("ds", StringType(), False)]
ASSIGNMENTS = StructType(EXPERIMENT_ASSIGNMENTS.fields + WITH_DS)
LABELS = StructType(LABELS_IMPRESSIONS.fields + WITH_DS)
REPORT_VIEW = ["variant", "metric", "units", "control_mean", "variant_mean", "absolute_estimate", "cuped",
               "srm_passed", "trustworthy"]


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def assigned(member: int, variant: str, at: str, experiment: str = "exp_a") -> tuple:
    return member, experiment, variant, ts(at), at[:10]


def shown(member: int, at: str, clicked: bool = False, invited: bool = False, accepted: bool = False) -> tuple:
    """One labelled impression (ds = its UTC day)."""
    return (f"r{member}-{at}", member, 1000 + member, ts(at), "pymk", 1, clicked, None, clicked, invited, accepted,
            False, "request_id" if clicked else None, True, at[:10])


SMALL_ASSIGNMENTS = [
    assigned(1, "control", "2026-01-03 10:00:00"), assigned(2, "control", "2026-01-03 12:00:00"),
    assigned(3, "control", "2026-01-04 09:00:00"), assigned(8, "control", "2026-01-03 00:00:00"),
    assigned(8, "control", "2026-01-04 07:00:00"),
    assigned(4, "treatment", "2026-01-03 08:00:00"), assigned(5, "treatment", "2026-01-04 10:00:00"),
    assigned(6, "treatment", "2026-01-05 01:00:00"),
    assigned(7, "control", "2026-01-03 05:00:00"), assigned(7, "treatment", "2026-01-04 05:00:00"),
    assigned(9, "treatment", "2026-01-06 09:00:00"),
]
SMALL_LABELS = [
    # m1: pre-period 01-02 (clicked) and 01-03 09:00 (before its 10:00 assignment)
    shown(1, "2026-01-02 15:00:00", clicked=True), shown(1, "2026-01-03 09:00:00"),
    shown(1, "2026-01-03 11:00:00", clicked=True, invited=True),
    shown(1, "2026-01-04 10:00:00", clicked=True, invited=True, accepted=True), shown(1, "2026-01-05 10:00:00"),
    shown(2, "2026-01-05 08:00:00", clicked=True),
    shown(8, "2026-01-01 12:00:00", invited=True), shown(8, "2026-01-03 06:00:00"),
    shown(8, "2026-01-04 06:00:00", invited=True),
    shown(4, "2026-01-02 10:00:00", clicked=True, invited=True),
    shown(4, "2026-01-03 09:00:00", clicked=True, invited=True), shown(4, "2026-01-03 09:30:00", invited=True),
    shown(4, "2026-01-04 12:00:00", clicked=True, invited=True, accepted=True),
    shown(4, "2026-01-06 12:00:00", clicked=True, invited=True),
    shown(5, "2026-01-04 09:00:00"), shown(5, "2026-01-05 09:00:00", clicked=True, invited=True),
    shown(6, "2026-01-05 02:00:00"), shown(6, "2026-01-05 03:00:00", clicked=True),
    shown(7, "2026-01-04 08:00:00", clicked=True, invited=True, accepted=True),
    shown(20, "2026-01-04 08:00:00", clicked=True, invited=True),
]


SRM_ASSIGNMENTS = [assigned(m, "control" if m < 1900 else "treatment", "2026-01-03 10:00:00", "exp_srm")
                   for m in range(1000, 2000)]
SRM_LABELS = [shown(m, "2026-01-04 10:00:00", clicked=True, invited=m % 3 == 0) for m in range(1000, 2000, 2)]
LIFT_CONTROL, LIFT_TREATMENT = range(3000, 3040), range(3040, 3080)


def lift_invites(member: int) -> int:
    """exp_lift's invites of a member: 0/1 alternately in control, 1/2 in treatment."""
    return member % 2 + (1 if member in LIFT_TREATMENT else 0)


LIFT_ASSIGNMENTS = [assigned(m, "control" if m in LIFT_CONTROL else "treatment", "2026-01-03 10:00:00", "exp_lift")
                    for m in (*LIFT_CONTROL, *LIFT_TREATMENT)]
LIFT_LABELS = [shown(m, f"2026-01-04 1{k}:00:00", clicked=k < lift_invites(m), invited=k < lift_invites(m))
               for m in (*LIFT_CONTROL, *LIFT_TREATMENT) for k in range(2)]


def build_lake(spark, root: Path, assignments: list[tuple], labels: list[tuple],
               label_days: list[str] = LAKE_DAYS) -> Lake:
    """Write and publish the inputs as ingest and labels would have (every lake day for ingest)."""
    lake = Lake(str(root))
    lake.write_partitions(spark.createDataFrame(assignments, ASSIGNMENTS), "raw/experiment_assignments",
                          sorted({a[-1] for a in assignments}))
    lake.publish_tables(spark, "ingest", LAKE_DAYS, ["raw/experiment_assignments"])
    lake.write_partitions(spark.createDataFrame(labels, LABELS), "labels/impressions",
                          sorted({r[-1] for r in labels}))
    lake.publish_tables(spark, "labels", label_days, ["labels/impressions"])
    return lake


def job_args(lake: Lake, *extra: str):
    return job.build_parser().parse_args(["--date", D, "--lake", lake.root, *extra])


@pytest.fixture(scope="module")
def small_lake(spark, tmp_path_factory) -> Lake:
    return build_lake(spark, tmp_path_factory.mktemp("small") / "lake",
                      SMALL_ASSIGNMENTS + SRM_ASSIGNMENTS + LIFT_ASSIGNMENTS, SMALL_LABELS + SRM_LABELS + LIFT_LABELS)


@pytest.fixture(scope="module")
def gathered(spark, small_lake) -> tuple[dict, dict, dict]:
    """The job's Spark side on the small lake: (totals, daily increments, excluded)."""
    return job.gather(spark, small_lake, job_args(small_lake))


@pytest.fixture(scope="module")
def reported(spark, small_lake) -> dict:
    """One job run on the small lake (CUPED on, equal weights): its summary."""
    return job.run(spark, job_args(small_lake))


@pytest.fixture(scope="module")
def report_rows(spark, small_lake, reported) -> dict[tuple[str, str], object]:
    """reports/experiments ds=D of that run: (experiment, metric) -> row."""
    return {(r["experiment"], r["metric"]): r for r in small_lake.read(spark, "reports/experiments", D).collect()}


def test_per_member_sums_covariates_and_exclusions_give_the_engine_the_hand_computed_input(gathered):
    totals, _, excluded = gathered
    assert excluded == {"exp_a": 1}
    stats = {v: totals[("exp_a", v)] for v in order_variants(["treatment", "control"])}
    adjusted = cuped_metrics(stats, cuped=True)
    assert adjusted == ["invites", "impressions", "clicks", "ctr"]  # nobody accepted in a pre-period
    spec = engine_input(stats, {"control": 0.5, "treatment": 0.5}, adjusted)
    assert spec["variants"] == [{"name": "control", "weight": 0.5, "units": 4},
                                {"name": "treatment", "weight": 0.5, "units": 3}]
    by_name = {m["name"]: m for m in spec["metrics"]}
    assert [(m["name"], m["kind"], m["goal"]) for m in spec["metrics"]] == [
        ("invites", "mean", True), ("accepts", "mean", True), ("impressions", "mean", False),
        ("clicks", "mean", False), ("ctr", "ratio", False)]
    assert by_name["invites"]["stats"] == {
        "control": {"n": 4, "sum": 3, "sum_squares": 5,
                    "covariate_sum": 1, "covariate_sum_squares": 1, "sum_products_covariate": 1},
        "treatment": {"n": 3, "sum": 4, "sum_squares": 10,
                      "covariate_sum": 1, "covariate_sum_squares": 1, "sum_products_covariate": 3}}
    assert by_name["impressions"]["stats"] == {
        "control": {"n": 4, "sum": 6, "sum_squares": 14,
                    "covariate_sum": 3, "covariate_sum_squares": 5, "sum_products_covariate": 8},
        "treatment": {"n": 3, "sum": 6, "sum_squares": 14,
                      "covariate_sum": 2, "covariate_sum_squares": 2, "sum_products_covariate": 4}}
    assert by_name["clicks"]["stats"] == {
        "control": {"n": 4, "sum": 3, "sum_squares": 5,
                    "covariate_sum": 1, "covariate_sum_squares": 1, "sum_products_covariate": 2},
        "treatment": {"n": 3, "sum": 4, "sum_squares": 6,
                      "covariate_sum": 1, "covariate_sum_squares": 1, "sum_products_covariate": 2}}
    assert by_name["accepts"]["stats"] == {"control": {"n": 4, "sum": 1, "sum_squares": 1},
                                           "treatment": {"n": 3, "sum": 1, "sum_squares": 1}}
    # ctr's pre-period: clicks (numerator) control m1 1, treatment m4 1; impressions (denominator) control
    # m1 2 + m8 1, treatment m4 1 + m5 1. Products: clicks x pre clicks m1 2*1, m4 2*1; pre clicks x pre
    # impressions m1 1*2, m4 1*1; clicks x pre impressions m1 2*2 + m8 0*1, m4 2*1 + m5 1*1; pre clicks x
    # impressions m1 1*3, m4 1*3; impressions x pre impressions m1 3*2 + m8 2*1, m4 3*1 + m5 1*1
    assert by_name["ctr"]["stats"] == {
        "control": {"n": 4, "sum": 3, "sum_squares": 5, "denominator_sum": 6, "denominator_sum_squares": 14,
                    "sum_products": 7, "covariate_sum": 1, "covariate_sum_squares": 1, "sum_products_covariate": 2,
                    "denominator_pre_sum": 3, "denominator_pre_sum_squares": 5,
                    "main_pre_denominator_pre_sum_product": 2, "main_post_denominator_pre_sum_product": 4,
                    "main_pre_denominator_post_sum_product": 3, "denominator_post_denominator_pre_sum_product": 8},
        "treatment": {"n": 3, "sum": 4, "sum_squares": 6, "denominator_sum": 6, "denominator_sum_squares": 14,
                      "sum_products": 9, "covariate_sum": 1, "covariate_sum_squares": 1, "sum_products_covariate": 2,
                      "denominator_pre_sum": 2, "denominator_pre_sum_squares": 2,
                      "main_pre_denominator_pre_sum_product": 1, "main_post_denominator_pre_sum_product": 3,
                      "main_pre_denominator_post_sum_product": 3, "denominator_post_denominator_pre_sum_product": 4}}
    # without CUPED no covariate is sent
    assert "covariate_sum" not in engine_input(stats, {"control": 0.5, "treatment": 0.5},
                                               cuped_metrics(stats, cuped=False))["metrics"][0]["stats"]["control"]


def test_daily_increments_add_up_to_what_was_known_at_the_end_of_each_day(gathered):
    totals, increments, _ = gathered
    own = {(v, d): s for (e, v, d), s in increments.items() if e == "exp_a"}
    by_day = cumulative_by_day(own, ["control", "treatment"], days_between("2026-01-03", D))
    first, second = by_day["2026-01-03"], by_day["2026-01-04"]
    # end of 01-03: control m1 (1 impression: invited, clicked), m2, m8 (1 impression); treatment m4 (2)
    assert (first["control"]["n"], first["treatment"]["n"]) == (3, 1)
    assert (first["control"]["impressions_sum"], first["control"]["impressions_sum_squares"]) == (2, 2)
    assert (first["treatment"]["invites_sum"], first["treatment"]["invites_sum_squares"]) == (2, 4)
    # end of 01-04: m1 has 2 invites, m8 1 -> sum 3, squares 4 + 1; m4 has 3 (squares 9), m5 joined with 0
    assert (second["control"]["n"], second["treatment"]["n"]) == (4, 2)
    assert (second["control"]["invites_sum"], second["control"]["invites_sum_squares"]) == (3, 5)
    assert (second["treatment"]["invites_sum"], second["treatment"]["invites_sum_squares"]) == (3, 9)
    # m1: 2 clicks x 2 impressions, m8: 0 x 2, m2: 0 -> 4
    assert second["control"]["clicks_impressions_sum_products"] == 4
    # ratio CUPED's products by the end of 01-03 and 01-04 (pre-period: m1 1 click of 2 impressions, m8 0 of 1):
    # clicks x pre impressions m1 1*2 then 2*2; pre clicks x impressions m1 1*1 then 1*2; pre clicks x pre
    # impressions m1 1*2, entered once on the exposure day
    assert [by_day[d]["control"]["clicks_pre_impressions_sum_products"] for d in ("2026-01-03", "2026-01-04")] \
        == [2, 4]
    assert [by_day[d]["control"]["pre_clicks_impressions_sum_products"] for d in ("2026-01-03", "2026-01-04")] \
        == [1, 2]
    assert [by_day[d]["control"]["pre_clicks_pre_impressions_sum_products"] for d in ("2026-01-03", "2026-01-04")] \
        == [2, 2]
    # the pre-period covariates enter with the member: m1 2 + m8 1 impressions, products m1 2*2 + m8 1*2
    assert (second["control"]["pre_impressions_sum"], second["control"]["impressions_sum_products_covariate"]) \
        == (3, 6)
    for variant in ("control", "treatment"):
        assert by_day[D][variant] == pytest.approx(totals[("exp_a", variant)])


def test_report_table_and_page_hold_the_hand_computed_means_units_and_exclusions(spark, small_lake, reported,
                                                                                report_rows):
    summary = reported
    rows = {metric: r for (experiment, metric), r in report_rows.items() if experiment == "exp_a"}
    assert sorted(rows) == ["accepts", "clicks", "ctr", "impressions", "invites"]
    expected_means = {"invites": (0.75, 4 / 3), "accepts": (0.25, 1 / 3), "impressions": (1.5, 2.0),
                      "clicks": (0.75, 4 / 3), "ctr": (0.5, 4 / 6)}
    for metric, (control, treatment) in expected_means.items():
        row = rows[metric]
        assert (row["experiment"], row["variant"], row["units"]) == ("exp_a", "treatment", 3)
        assert (row["control_mean"], row["variant_mean"]) == pytest.approx((control, treatment), abs=1e-12)
        assert row["srm_passed"] and row["trustworthy"]
    # an unadjusted metric: the absolute lift is the plain difference of the means
    assert rows["accepts"]["absolute_estimate"] == pytest.approx(1 / 3 - 1 / 4, abs=1e-12)
    assert {m: rows[m]["cuped"] for m in rows} == {"invites": True, "accepts": False, "impressions": True,
                                                   "clicks": True, "ctr": True}
    assert rows["clicks"]["p_value_adjusted"] is None and rows["invites"]["p_value_adjusted"] is not None
    assert summary["excluded_members"] == {"exp_a": 1}
    assert summary["experiments"]["exp_a"]["units"] == {"control": 4, "treatment": 3}
    page = Path(small_lake.root) / "reports/html/experiments/exp_a" / f"ds={D}.html"
    assert summary["experiments"]["exp_a"]["page"] == str(page)
    text = page.read_text()
    assert "assigned to more than one variant: 1" in text
    assert "SAMPLE RATIO MISMATCH" not in text and "Sample ratio check passed" in text
    assert text.count("<svg") == 5 and "<script" not in text
    assert small_lake.publication(spark, "experiment_report", D) is not None


def test_no_cuped_sends_no_covariate_and_reports_every_metric_unadjusted(small_lake, gathered):
    # what the job does with --no-cuped after its Spark side: the same sums, analyzed without covariates
    totals, increments, excluded = gathered
    results, _ = job.analyze_all(job_args(small_lake, "--no-cuped"), totals, increments, excluded)
    (exp_a,) = [r for r in results if r.experiment == "exp_a"]
    assert exp_a.cuped == [] and not exp_a.cuped_requested
    rows = {row[2]: dict(zip(REPORTS_EXPERIMENTS.fieldNames(), row, strict=True)) for row in exp_a.rows()}
    assert not any(r["cuped"] for r in rows.values())
    assert rows["ctr"]["absolute_estimate"] == pytest.approx(4 / 6 - 3 / 6, abs=1e-12)
    assert rows["invites"]["absolute_estimate"] == pytest.approx(4 / 3 - 3 / 4, abs=1e-12)


def test_the_report_finds_a_real_invite_lift(report_rows, reported):
    # exp_lift: control invites 0,1,0,1,... (mean 0.5), treatment 1,2,1,2,... (mean 1.5) over 40 members each;
    # no pre-period, so no CUPED: Welch's test written out with scipy
    row = report_rows[("exp_lift", "invites")]
    assert (row["units"], row["cuped"], row["trustworthy"]) == (40, False, True)
    assert (row["control_mean"], row["variant_mean"]) == pytest.approx((0.5, 1.5), abs=1e-12)
    assert row["absolute_estimate"] == pytest.approx(1.0, abs=1e-12)
    assert row["relative_estimate"] == pytest.approx(2.0, abs=1e-12)
    sd = math.sqrt(0.25 * 40 / 39)  # both arms: values a, a+1 half and half
    welch = scipy_stats.ttest_ind_from_stats(1.5, sd, 40, 0.5, sd, 40, equal_var=False)
    assert row["absolute_p_value"] == pytest.approx(float(welch.pvalue), rel=1e-6)
    assert row["relative_ci_low"] > 0 and row["p_value_adjusted"] < 0.05
    goals = reported["experiments"]["exp_lift"]["goals"]
    assert goals["invites:treatment"]["relative_lift"] == pytest.approx(2.0, abs=1e-12)


def test_an_unknown_experiment_is_missing_input_and_bad_weights_are_usage_errors(spark, small_lake):
    with pytest.raises(NoAssignments, match=r"exp_b: no assignment in raw/experiment_assignments up to 2026-01-05"):
        job.run(spark, job_args(small_lake, "--experiment", "exp_b"))
    assert issubclass(NoAssignments, MissingInput) and issubclass(WeightsInvalid, UsageError)
    assert parse_weights("control=1,treatment=3") == {"control": 1.0, "treatment": 3.0}
    assert weights_for("exp_a", ["control", "treatment"], {"control": 1, "treatment": 3}) == {
        "control": 0.25, "treatment": 0.75}
    with pytest.raises(WeightsInvalid, match=r"'treatment=-1' is not VARIANT=POSITIVE_NUMBER"):
        parse_weights("control=1,treatment=-1")
    with pytest.raises(WeightsInvalid, match=r"no weight for exp_a's variants \['treatment'\]"):
        weights_for("exp_a", ["control", "treatment"], {"control": 1.0})


def test_a_sample_ratio_mismatch_marks_results_untrustworthy_and_is_the_first_thing_on_the_page(small_lake, reported,
                                                                                                report_rows):
    """exp_srm: 900 control members against 100 treated ones under equal weights."""
    rows = [r for (experiment, _), r in report_rows.items() if experiment == "exp_srm"]
    assert len(rows) == 5
    assert all(r["srm_passed"] is False and r["trustworthy"] is False for r in rows)
    assert all(r["srm_p_value"] < 1e-100 for r in rows)
    assert reported["experiments"]["exp_srm"]["trustworthy"] is False
    text = (Path(small_lake.root) / "reports/html/experiments/exp_srm" / f"ds={D}.html").read_text()
    body = text.split("<body>", 1)[1]
    first_element = re.match(r"\s*(<[^>]+>)([^<]*)", body)
    assert 'class="banner alert"' in first_element.group(1)
    assert first_element.group(2).startswith("SAMPLE RATIO MISMATCH")
    assert "UNTRUSTWORTHY" in first_element.group(2)


def test_the_page_opens_in_a_real_browser_without_errors_and_its_plots_render(small_lake, reported, tmp_path):
    from tests.browser import is_blank, open_page

    result = open_page(Path(small_lake.root) / "reports/html/experiments/exp_a" / f"ds={D}.html", tmp_path)
    assert result.console_errors == []
    assert not is_blank(result.screenshot)
    assert "Cumulative relative lift by day" in result.dom_text


def test_an_unpublished_label_day_in_the_exposure_window_fails_naming_it(spark, small_lake, reported):
    # runs after every reader of the shared lake: it retracts a label day and publishes it again at the end
    before = (small_lake.version(spark, "reports/experiments"),
              small_lake.publication(spark, "experiment_report", D)["run_id"])
    small_lake.retract(spark, "labels", ["2026-01-04"])
    try:
        with pytest.raises(UnpublishedPartition, match=r"labels/impressions ds=2026-01-04 is not published"):
            job.run(spark, job_args(small_lake))
        after = (small_lake.version(spark, "reports/experiments"),
                 small_lake.publication(spark, "experiment_report", D)["run_id"])
        assert after == before  # nothing written, nothing published
    finally:
        small_lake.publish_tables(spark, "labels", ["2026-01-04"], ["labels/impressions"])


SYNTHETIC_DAYS = days_between("2026-01-01", "2026-01-02")


@pytest.fixture(scope="module")
def synthetic_lake(spark, tmp_path_factory) -> Lake:
    """A small generated lake (300 members, two days, 3 events per member a day, seed pinned), ingested and
    labelled by the jobs' own main(), then reported on its last day. Small on purpose: at this size a lift of
    the generator's +30 % invite probability is inside the noise, so the test checks the report against an
    independent computation from the lake's own rows, not a lift threshold."""
    from spark_jobs import ingest, labels
    from synthetic.generate import generate

    root = tmp_path_factory.mktemp("synthetic") / "lake"
    generate(root, SYNTHETIC_DAYS[0], len(SYNTHETIC_DAYS), 300, seed=7, events_per_member=3.0)
    for day in SYNTHETIC_DAYS:
        ingest.main(["--date", day, "--lake", str(root)])
        labels.main(["--date", day, "--lake", str(root)])
    return Lake(str(root))


def invites_by_arm_by_hand(assignments: list, impressions: list, day: str) -> dict[tuple[str, str], list[int]]:
    """(experiment, variant) -> invites per exposed member, in plain Python: members with one variant as of the
    end of `day`, from their earliest assignment, over labelled impressions of days <= `day` (none: 0)."""
    end = dt.datetime.fromisoformat(day) + dt.timedelta(days=1)
    variants: dict[tuple[str, int], set[str]] = {}
    start: dict[tuple[str, int], dt.datetime] = {}
    for a in assignments:
        if a["assigned_at"] < end:
            key = (a["experiment"], a["member_id"])
            variants.setdefault(key, set()).add(a["variant"])
            start[key] = min(start.get(key, a["assigned_at"]), a["assigned_at"])
    shown_to: dict[int, list] = {}
    for i in impressions:
        if i["ds"] <= day:
            shown_to.setdefault(i["member_id"], []).append(i)
    arms: dict[tuple[str, str], list[int]] = {}
    for (experiment, member), arm in variants.items():
        if len(arm) == 1:
            invites = sum(1 for i in shown_to.get(member, []) if i["impression_ts"] >= start[(experiment, member)]
                          and i["invited"])
            arms.setdefault((experiment, next(iter(arm))), []).append(invites)
    return arms


def test_the_report_on_a_generated_lake_agrees_with_a_computation_by_hand(spark, synthetic_lake):
    day = SYNTHETIC_DAYS[-1]
    summary = job.run(spark, job.build_parser().parse_args(["--date", day, "--lake", synthetic_lake.root]))
    assert set(summary["experiments"]) == {"pymk_ranker_v2", "pymk_layout"}
    rows = {(r["experiment"], r["metric"]): r for r in synthetic_lake.read(spark, "reports/experiments", day)
            .collect()}
    arms = invites_by_arm_by_hand(synthetic_lake.read(spark, "raw/experiment_assignments").collect(),
                                  synthetic_lake.read(spark, "labels/impressions").collect(), day)
    for experiment in ("pymk_ranker_v2", "pymk_layout"):
        row = rows[(experiment, "invites")]
        control, treatment = arms[(experiment, "control")], arms[(experiment, "treatment")]
        assert summary["experiments"][experiment]["units"] == {"control": len(control), "treatment": len(treatment)}
        assert row["variant"] == "treatment" and row["units"] == len(treatment)
        assert row["control_mean"] == pytest.approx(sum(control) / len(control), abs=1e-12)
        assert row["variant_mean"] == pytest.approx(sum(treatment) / len(treatment), abs=1e-12)
        srm = scipy_stats.chisquare([len(control), len(treatment)])
        assert row["srm_p_value"] == pytest.approx(float(srm.pvalue), rel=1e-9, abs=1e-300)
        assert row["trustworthy"] is bool(srm.pvalue >= 0.001)
        if not row["cuped"]:  # unadjusted: the relative lift is the ratio of the means
            assert row["relative_estimate"] == pytest.approx(row["variant_mean"] / row["control_mean"] - 1, abs=1e-12)
