"""What `mutuals demo` prints about the reports: the pages of the last day and the ranker experiment's invite
lift with its CI, read from reports/experiments; nothing at all when no report was written."""

from __future__ import annotations

from demo.run import invite_lift_line, print_reports, report_pages
from mutuals.lake import Lake
from mutuals.tables import REPORTS_EXPERIMENTS

DS = "2026-01-03"


def experiment_row(experiment: str, metric: str, **overrides) -> dict:
    row = {
        "experiment": experiment, "variant": "treatment", "metric": metric, "units": 1000,
        "control_mean": 0.4, "variant_mean": 0.5252, "absolute_estimate": 0.1252, "absolute_ci_low": 0.08,
        "absolute_ci_high": 0.17, "absolute_p_value": 1e-9, "relative_estimate": 0.313, "relative_ci_low": 0.2,
        "relative_ci_high": 0.426, "relative_p_value": 1e-9, "p_value_adjusted": 2e-9, "srm_p_value": 0.61,
        "srm_passed": True, "cuped": True, "trustworthy": True,
    }
    return {**row, **overrides}


def test_an_empty_lake_prints_no_report(spark, tmp_path, capsys):
    print_reports(spark, Lake(str(tmp_path / "lake")), DS)
    assert capsys.readouterr().out == ""


def test_the_pages_and_the_ranker_invite_lift_are_printed(spark, tmp_path, capsys):
    lake = Lake(str(tmp_path / "lake"))
    html = tmp_path / "lake" / "reports" / "html"
    for page in (html / "daily" / f"ds={DS}.html", html / "daily" / "ds=2026-01-02.html",
                 html / "experiments" / "pymk_ranker_v2" / f"ds={DS}.html",
                 html / "experiments" / "pymk_layout" / f"ds={DS}.html"):
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text("<!doctype html><title>r</title>")
    rows = [experiment_row("pymk_ranker_v2", "invites"),
            experiment_row("pymk_ranker_v2", "clicks", relative_estimate=0.01),
            experiment_row("pymk_layout", "invites", relative_estimate=0.0)]
    lake.write_partition(spark.createDataFrame(rows, REPORTS_EXPERIMENTS), "reports/experiments", DS)

    print_reports(spark, lake, DS)

    assert capsys.readouterr().out.splitlines() == [
        "",
        f"report pages for {DS}:",
        f"  daily:      {html}/daily/ds={DS}.html",
        f"  experiment: {html}/experiments/pymk_layout/ds={DS}.html",
        f"  experiment: {html}/experiments/pymk_ranker_v2/ds={DS}.html",
        "pymk_ranker_v2 treatment vs control, invites per member: +31.3% (CI +20.0% to +42.6%), "
        "absolute +0.1252 (CI +0.0800 to +0.1700), p adjusted 2e-09, 1000 members",
    ]


def test_pages_without_a_table_print_only_the_pages(tmp_path):
    daily = tmp_path / "reports" / "html" / "daily" / f"ds={DS}.html"
    daily.parent.mkdir(parents=True)
    daily.write_text("x")
    assert report_pages(str(tmp_path), DS) == (daily, [])
    assert report_pages(str(tmp_path), "2026-01-04") == (None, [])


def test_an_untrustworthy_lift_says_so_and_missing_figures_read_n_a():
    row = experiment_row("pymk_ranker_v2", "invites", trustworthy=False, relative_ci_low=None,
                         relative_ci_high=None, p_value_adjusted=None)
    assert invite_lift_line(row) == (
        "pymk_ranker_v2 treatment vs control, invites per member: +31.3% (CI n/a to n/a), "
        "absolute +0.1252 (CI +0.0800 to +0.1700), p adjusted n/a, 1000 members"
        "  UNTRUSTWORTHY (sample ratio mismatch)"
    )
