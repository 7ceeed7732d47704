"""The experiment report's page: one self-contained HTML document per experiment and day.

Why this order on the page: a sample ratio mismatch means the arms are not comparable (assignment or
logging is broken), so every number below it is suspect. When the SRM check fails, its warning is the first
element of the page, before the title, and every result is labelled untrustworthy. Then come the summary
(units, weights, members excluded for being assigned to two variants, CUPED), the results table, and the
cumulative lift by day with its confidence band, one chart per metric.
"""

from __future__ import annotations

from reports import html
from reports.experiment import METRICS, ExperimentResult


def render_page(report: ExperimentResult) -> str:
    """The whole HTML document for one experiment's report."""
    parts = []
    if not report.srm_passed:
        parts.append(srm_warning(report))
    parts.append(html.heading(f"Experiment {report.experiment}: report for ds={report.ds}", 1))
    if report.srm_passed:
        parts.append(html.banner(f"Sample ratio check passed: p = {_p(report.analysis['srm']['p_value'])} "
                                 f"(threshold {report.analysis.get('srm_threshold', 0.001)}).", "ok"))
    parts += [html.heading("Summary"), html.bullet_list(summary_lines(report)),
              html.heading("Results" + ("" if report.srm_passed else " (UNTRUSTWORTHY: sample ratio mismatch)")),
              results_table(report),
              html.paragraph("Goals (corrected for multiple comparisons): "
                             + ", ".join(m.name for m in METRICS if m.goal)
                             + ". Guardrails (not corrected): " + ", ".join(m.name for m in METRICS if not m.goal)
                             + ". Lifts are variant minus control; relative lift is that difference over the "
                               "control mean.", muted=True),
              html.heading("Cumulative relative lift by day"),
              html.paragraph("Each point is the analysis of everything known at the end of that day: members "
                             "exposed by then and their impressions up to then. The band is the "
                             f"{1 - report.alpha:.0%} confidence interval.", muted=True),
              lift_charts(report)]
    return html.page(f"Experiment {report.experiment} ds={report.ds}", *parts)


def srm_warning(report: ExperimentResult) -> str:
    units = ", ".join(f"{v}: {report.units[v]:,} units (expected share {report.weights[v]:.1%})"
                      for v in report.variants)
    return html.banner(f"SAMPLE RATIO MISMATCH: the arms' sizes do not match their weights "
                       f"(chi-squared p = {_p(report.analysis['srm']['p_value'])} < 0.001; {units}). "
                       "Assignment or logging is broken; the results below are UNTRUSTWORTHY and must not "
                       "be used for a decision.", "alert")


def summary_lines(report: ExperimentResult) -> list[str]:
    lines = [f"Control: {report.control}; variants: " + ", ".join(
        f"{v} ({report.units[v]:,} members, weight {report.weights[v]:.3g})" for v in report.variants),
        f"Members excluded for being assigned to more than one variant: {report.excluded:,}",
        f"Exposure: from each member's assignment through the end of {report.ds}; members without "
        "impressions count as zeros.",
        f"Significance level {report.alpha}; multiple-comparison correction: {report.correction}.",
        cuped_line(report)]
    return lines


def cuped_line(report: ExperimentResult) -> str:
    if not report.cuped_requested:
        return "CUPED: off."
    pre = f"each member's own value over the {report.pre_days} days before assignment"
    if not report.cuped:
        return (f"CUPED: on, covariate = {pre}; no pre-period data varies for this experiment (the covariate "
                "is 0 for every member), so CUPED changes nothing and no metric is adjusted.")
    return (f"CUPED: on, covariate = {pre} (for ctr, its pre-period clicks and impressions); adjusted metrics: "
            f"{', '.join(report.cuped)}.")


def results_table(report: ExperimentResult) -> str:
    goals = {m.name: m.goal for m in METRICS}
    header = ["metric", "role", "variant", "units", "control mean", "variant mean", "absolute lift",
              "absolute CI", "relative lift", "relative CI", "p-value", "adjusted p", "CUPED", "trustworthy"]
    rows, flagged, untestable = [], [], False
    for i, r in enumerate(report.analysis["results"]):
        absolute, relative = r["absolute"], r["relative"]
        if uninformative(relative):
            untestable = True
            lifts = ["—"] * 6
        else:
            lifts = [absolute["estimate"], _ci(absolute["ci"]), _percent(relative["estimate"]),
                     _ci(relative["ci"], percent=True), _p(relative["p_value"]), _p(r["p_value_adjusted"])]
        rows.append([r["metric"], "goal" if goals.get(r["metric"]) else "guardrail", r["variant"],
                     report.units[r["variant"]], r["control_mean"], r["variant_mean"], *lifts,
                     r["metric"] in report.cuped, report.srm_passed])
        if not report.srm_passed:
            flagged.append(i)
    note = html.paragraph(UNTESTABLE_NOTE) if untestable else ""
    return f'<div style="overflow-x:auto">{html.table(header, rows, flagged)}</div>{note}'


UNTESTABLE_NOTE = ("—: not testable (a variant with fewer than two members or no variance, or a control mean of 0); "
                   "the stats engine returns gbstats' uninformative result there (lift 0, CI [0, 0], p-value 1).")


def uninformative(effect: dict) -> bool:
    """The engine's default result: a real test always has a CI of positive width, so CI [0, 0] is the default."""
    return effect["ci"] == [0.0, 0.0] and effect["p_value"] == 1.0


def lift_charts(report: ExperimentResult) -> str:
    days = [day for day, _ in report.curve]
    charts = []
    for metric in METRICS:
        series = []
        for variant in report.variants[1:]:
            points = [_relative(analysis, metric.name, variant) for _, analysis in report.curve]
            series.append(html.Series(variant, [p[0] for p in points], [p[1] for p in points],
                                      [p[2] for p in points]))
        charts.append(html.line_chart(series, days, f"{metric.name}: relative lift vs {report.control}",
                                      y_label="relative lift", reference=0.0))
    return html.charts(*charts)


def _relative(analysis: dict | None, metric: str, variant: str) -> tuple[float | None, float | None, float | None]:
    if analysis is None:
        return None, None, None
    for r in analysis["results"]:
        if r["metric"] == metric and r["variant"] == variant:
            relative = r["relative"]
            if uninformative(relative):
                return None, None, None
            return relative["estimate"], relative["ci"][0], relative["ci"][1]
    return None, None, None


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:+.2%}"


def _ci(bounds: list, percent: bool = False) -> str:
    low, high = bounds
    if low is None or high is None:
        return "—"
    return f"[{low:+.2%}, {high:+.2%}]" if percent else f"[{low:.4g}, {high:.4g}]"
