"""The experiment report's data side: exposure, per-member metrics, CUPED covariates and the stats-engine input.

The unit is the member. Semantics (the job `spark_jobs.experiment_report` only reads, chains these and writes):

* Exposure. A member is exposed to an experiment from their earliest `assigned_at` in
  raw/experiment_assignments up to the end of report day D. A member assigned to two or more variants of
  the same experiment (as of D) cannot be attributed to either arm: they are left out of every arm and
  counted (`excluded`), never silently kept in the first arm they reached.
* Per-member metrics. Over the exposure window (impression_ts >= assigned_at, impression day <= D) from
  labels/impressions: impressions (rows), clicks (`clicked`), invites (`invited`), accepts (`accepted`),
  and the ratio ctr = clicks / impressions computed per arm as sum(clicks) / sum(impressions) with the
  delta method (members are the units, so it needs per-member numerator and denominator sums, sums of
  squares and sums of products). An exposed member with no impressions counts with zeros: the means are
  per exposed member, not per active member.
* Goals and guardrails. invites (the experiments' purpose) and accepts (the invites that became
  connections) are goals: their p-values are corrected over goals x non-control variants. impressions,
  clicks and ctr are guardrails: they watch that the change does not hurt the page, and are not corrected.
* CUPED. The covariate of a member's metric is the same metric over the pre-period: the `pre_days` days
  before their assignment (impression_ts in [assigned_at - pre_days, assigned_at)). A member with no
  pre-period impressions has covariate 0. When the covariate does not vary over the experiment's members
  (no pre-period data, e.g. the lake starts on the assignment day), CUPED cannot change anything, so it is
  not sent to the engine and the metric is reported with `cuped` false. ctr, a ratio, is adjusted with
  gbstats' ratio CUPED: its covariates are each member's pre-period clicks (numerator) and impressions
  (denominator), with the cross products of the four; it is adjusted when the pre-period clicks vary over
  the experiment's members and every variant has pre-period impressions (an arm without any would have a
  zero-variance adjusted ratio, which the engine can only answer with its default result).
* Cumulative lift by day. For every day d from the experiment's first exposure day through D, the same
  analysis on what was known at the end of d: members exposed by d, their impressions of days <= d. It is
  one aggregation of per-member-day increments grouped by day, then cumulative sums on the driver (a
  member's contribution to a sum of squares moves from prev**2 to cum**2 on each day they are active).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from mutuals.errors import MissingInput, UsageError
from mutuals.tables import DS, REPORTS_EXPERIMENTS
from reports.stats import DEFAULT_ALPHA, DEFAULT_CORRECTION, DEFAULT_SRM_THRESHOLD, analyze

Transform = Callable[[DataFrame], DataFrame]

CONTROL = "control"
COUNTS = ("impressions", "clicks", "invites", "accepts")
LABEL_OF = {"clicks": "clicked", "invites": "invited", "accepts": "accepted"}  # impressions: one per row
KEYS = ("experiment", "variant")
DAY = "day"
SRM_THRESHOLD = DEFAULT_SRM_THRESHOLD
DEFAULT_PRE_DAYS = 14
# Products of a ratio's numerator and denominator, post- and pre-period, beyond those of one count with its own
# covariate (`<metric>_sum_products_covariate`): what ratio CUPED on ctr needs.
RATIO_PRODUCTS = (("clicks", "impressions"), ("pre_clicks", "pre_impressions"), ("clicks", "pre_impressions"),
                  ("pre_clicks", "impressions"))


@dataclass(frozen=True)
class Metric:
    """One reported metric: a per-member mean of a count, or a ratio of two counts' sums."""

    name: str
    kind: str  # "mean" or "ratio"
    goal: bool
    numerator: str
    denominator: str | None = None


METRICS: tuple[Metric, ...] = (
    Metric("invites", "mean", True, "invites"),
    Metric("accepts", "mean", True, "accepts"),
    Metric("impressions", "mean", False, "impressions"),
    Metric("clicks", "mean", False, "clicks"),
    Metric("ctr", "ratio", False, "clicks", "impressions"),
)


class NoAssignments(MissingInput):
    """The experiment asked for has no assignment up to the report day."""


class WeightsInvalid(UsageError):
    """--weights that cannot be used for an experiment's variants."""


# ------------------------------------------------------------------ exposure
def end_of_day(ds: str) -> Column:
    """The first instant after day `ds` (UTC, the session time zone) as a timestamp literal."""
    following = dt.date.fromisoformat(ds) + dt.timedelta(days=1)
    return F.to_timestamp(F.lit(f"{following.isoformat()} 00:00:00"))


def assignments_by_member(ds: str) -> Transform:
    """Assignments made by the end of `ds` -> one row per (experiment, member_id) with the number of distinct
    variants, the variant (when there is one) and the earliest assigned_at."""

    def transform(assignments: DataFrame) -> DataFrame:
        made_by_end_of_day = F.col("assigned_at") < end_of_day(ds)
        return (assignments.where(made_by_end_of_day)
                .groupBy("experiment", "member_id")
                .agg(F.countDistinct("variant").alias("variants"), F.min("variant").alias("variant"),
                     F.min("assigned_at").alias("assigned_at"))
                .select("experiment", "member_id", "variant", "variants", "assigned_at"))

    return transform


def exposures(by_member: DataFrame) -> DataFrame:
    """Members with exactly one variant: (experiment, variant, member_id, assigned_at, exposure_day)."""
    one_variant = F.col("variants") == 1
    return by_member.where(one_variant).select(
        "experiment", "variant", "member_id", "assigned_at",
        F.date_format("assigned_at", "yyyy-MM-dd").alias("exposure_day"))


def excluded_counts(by_member: DataFrame) -> dict[str, int]:
    """experiment -> members assigned to more than one of its variants (left out of every arm)."""
    several_variants = F.col("variants") > 1
    rows = by_member.where(several_variants).groupBy("experiment").agg(F.count(F.lit(1)).alias("n")).collect()
    return {r["experiment"]: int(r["n"]) for r in rows}


# ------------------------------------------------------------------ per-member metrics
def _count_columns(prefix: str, when: Column) -> list[Column]:
    """impressions, clicks, invites, accepts of the rows where `when` holds, named `<prefix><metric>`."""
    columns = [F.sum(F.when(when, 1).otherwise(0)).cast("long").alias(f"{prefix}impressions")]
    for metric, label in LABEL_OF.items():
        is_counted = when & F.col(label)
        columns.append(F.sum(F.when(is_counted, 1).otherwise(0)).cast("long").alias(f"{prefix}{metric}"))
    return columns


def exposed_impressions(labels: DataFrame, pre_days: int) -> Transform:
    """Exposures joined with each member's labelled impressions from `pre_days` before assignment onwards
    (the caller reads labels only up to D). Keeps `in_window` (on or after assignment) per row."""

    def transform(exposed: DataFrame) -> DataFrame:
        shown = labels.select("member_id", "impression_ts", F.col(DS).alias(DAY), *LABEL_OF.values())
        from_pre_period = F.col("impression_ts") >= F.col("assigned_at") - F.make_dt_interval(days=F.lit(pre_days))
        joined = exposed.join(shown, on="member_id", how="inner").where(from_pre_period)
        return joined.select(*KEYS, "member_id", "exposure_day", DAY, *LABEL_OF.values(),
                             (F.col("impression_ts") >= F.col("assigned_at")).alias("in_window"))

    return transform


def pre_period_covariates(impressions: DataFrame) -> DataFrame:
    """(experiment, member_id, pre_<metric>...) over the pre-period rows; members without any are absent."""
    in_pre_period = ~F.col("in_window")
    return (impressions.where(in_pre_period).groupBy("experiment", "member_id")
            .agg(*_count_columns("pre_", F.lit(True))))


def member_days(exposed: DataFrame, impressions: DataFrame) -> DataFrame:
    """One row per exposed member and day with activity, plus their exposure day (possibly all zeros):
    (experiment, variant, member_id, exposure_day, day, impressions, clicks, invites, accepts)."""
    active = (impressions.where(F.col("in_window"))
              .groupBy(*KEYS, "member_id", "exposure_day", DAY).agg(*_count_columns("", F.lit(True))))
    entry = exposed.select(*KEYS, "member_id", "exposure_day", F.col("exposure_day").alias(DAY),
                           *[F.lit(0).cast("long").alias(m) for m in COUNTS])
    return (active.unionByName(entry).groupBy(*KEYS, "member_id", "exposure_day", DAY)
            .agg(*[F.sum(m).cast("long").alias(m) for m in COUNTS]))


def with_covariates(covariates: DataFrame) -> Transform:
    """Attach each member's pre-period values (0 when they had none)."""

    def transform(df: DataFrame) -> DataFrame:
        joined = df.join(covariates, on=["experiment", "member_id"], how="left")
        return joined.select(*df.columns, *[F.coalesce(F.col(f"pre_{m}"), F.lit(0)).alias(f"pre_{m}")
                                            for m in COUNTS])

    return transform


def member_totals(days: DataFrame) -> DataFrame:
    """Per-member metrics over the whole exposure window: (experiment, variant, member_id, <metric>...,
    pre_<metric>...)."""
    return (days.groupBy(*KEYS, "member_id")
            .agg(*[F.sum(m).cast("long").alias(m) for m in COUNTS],
                 *[F.first(f"pre_{m}").alias(f"pre_{m}") for m in COUNTS]))


# ------------------------------------------------------------------ sufficient statistics
def _d(name: str) -> Column:
    return F.col(name).cast("double")


def sufficient_statistics(units: Column, value: Callable[[str], Column], square: Callable[[str], Column],
                          product: Callable[[str, str], Column]) -> list[Column]:
    """The aggregate columns the engine needs, from three ways of reading a row: its value of a column, its
    contribution to a sum of squares and to a sum of products. Shared by the totals and the daily increments
    so both produce the same names."""
    columns = [F.sum(units).cast("long").alias("n")]
    for m in COUNTS:
        columns += [F.sum(value(m)).alias(f"{m}_sum"), F.sum(square(m)).alias(f"{m}_sum_squares"),
                    F.sum(value(f"pre_{m}")).alias(f"pre_{m}_sum"),
                    F.sum(square(f"pre_{m}")).alias(f"pre_{m}_sum_squares"),
                    F.sum(product(m, f"pre_{m}")).alias(f"{m}_sum_products_covariate")]
    for a, b in RATIO_PRODUCTS:
        columns.append(F.sum(product(a, b)).alias(f"{a}_{b}_sum_products"))
    return columns


def variant_sums(totals: DataFrame) -> DataFrame:
    """Per-member totals -> one row of sufficient statistics per (experiment, variant)."""
    return totals.groupBy(*KEYS).agg(*sufficient_statistics(
        F.lit(1), _d, lambda c: _d(c) * _d(c), lambda a, b: _d(a) * _d(b)))


def daily_increments(days: DataFrame) -> DataFrame:
    """Per-member-day rows -> per (experiment, variant, day) increments of every sufficient statistic, so that
    cumulative sums over days give the statistics as known at the end of each day.

    On a member's day, a sum grows by the day's value, a sum of squares by cum**2 - prev**2 (prev = the
    member's cumulative value before the day), a product by cum_a*cum_b - prev_a*prev_b. The member (n) and
    their fixed pre-period covariate enter on their exposure day."""
    upto = Window.partitionBy("experiment", "member_id").orderBy(DAY).rowsBetween(Window.unboundedPreceding,
                                                                                  Window.currentRow)
    cumulative = days.select("*", *[F.sum(m).over(upto).alias(f"cum_{m}") for m in COUNTS])
    is_entry = F.col(DAY) == F.col("exposure_day")

    def value(c: str) -> Column:
        return F.when(is_entry, _d(c)).otherwise(0.0) if c.startswith("pre_") else _d(c)

    def prev(c: str) -> Column:
        return _d(f"cum_{c}") - _d(c)

    def square(c: str) -> Column:
        if c.startswith("pre_"):
            return F.when(is_entry, _d(c) * _d(c)).otherwise(0.0)
        return _d(f"cum_{c}") * _d(f"cum_{c}") - prev(c) * prev(c)

    def product(a: str, b: str) -> Column:
        fixed_a, fixed_b = a.startswith("pre_"), b.startswith("pre_")
        if fixed_a and fixed_b:  # two fixed covariates: their product enters once, with the member
            return F.when(is_entry, _d(a) * _d(b)).otherwise(0.0)
        if fixed_a or fixed_b:  # a fixed covariate times a value: it grows by covariate x the day's value
            return _d(a) * _d(b)
        return _d(f"cum_{a}") * _d(f"cum_{b}") - prev(a) * prev(b)

    return cumulative.groupBy(*KEYS, DAY).agg(*sufficient_statistics(is_entry.cast("int"), value, square, product))


def collect_sums(df: DataFrame, keys: Sequence[str]) -> dict[tuple, dict[str, float]]:
    """Collect a small aggregate to the driver: key tuple -> {statistic: value} (nulls as 0)."""
    out: dict[tuple, dict[str, float]] = {}
    for row in df.collect():
        values = row.asDict()
        key = tuple(values.pop(k) for k in keys)
        out[key] = {name: (v or 0) for name, v in values.items()}
    return out


def cumulative_by_day(increments: Mapping[tuple, Mapping[str, float]], variants: Sequence[str],
                      days: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
    """{(variant, day): increments} of one experiment -> day -> variant -> statistics as of that day's end."""
    running = {v: {} for v in variants}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for day in days:
        for v in variants:
            for name, amount in increments.get((v, day), {}).items():
                running[v][name] = running[v].get(name, 0) + amount
        out[day] = {v: dict(running[v]) for v in variants}
    return out


# ------------------------------------------------------------------ the stats engine's input
def order_variants(variants: Iterable[str]) -> list[str]:
    """Control first (the variant named `control`, else the alphabetically first), then the rest by name."""
    names = sorted(set(variants))
    control = CONTROL if CONTROL in names else names[0]
    return [control, *(v for v in names if v != control)]


def parse_weights(text: str | None) -> dict[str, float]:
    """`control=0.5,treatment=0.5` -> {variant: weight}; None -> {} (equal weights)."""
    if not text:
        return {}
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = math.nan
        if not sep or not name.strip() or not weight > 0:
            raise WeightsInvalid(f"--weights: {part!r} is not VARIANT=POSITIVE_NUMBER")
        weights[name.strip()] = weight
    return weights


def weights_for(experiment: str, variants: Sequence[str], configured: Mapping[str, float]) -> dict[str, float]:
    """The configured weight of each variant (normalised to sum 1); equal weights when none is configured."""
    if not configured:
        return {v: 1 / len(variants) for v in variants}
    missing = [v for v in variants if v not in configured]
    if missing:
        raise WeightsInvalid(f"--weights has no weight for {experiment}'s variants {missing} "
                             f"(configured: {sorted(configured)})")
    total = sum(configured[v] for v in variants)
    return {v: configured[v] / total for v in variants}


def covariate_varies(stats: Mapping[str, Mapping[str, float]], metric: str) -> bool:
    """True when the pre-period value of `metric` varies over the experiment's members (else CUPED is a no-op)."""
    n = sum(s.get("n", 0) for s in stats.values())
    total = sum(s.get(f"pre_{metric}_sum", 0) for s in stats.values())
    squares = sum(s.get(f"pre_{metric}_sum_squares", 0) for s in stats.values())
    return n > 1 and squares - total * total / n > 1e-9 * max(1.0, squares)


def ratio_covariates_vary(stats: Mapping[str, Mapping[str, float]], metric: Metric) -> bool:
    """True when a ratio's pre-period numerator varies over the experiment's members and every variant has a
    pre-period denominator (else ratio CUPED adjusts nothing, or leaves an arm without variance)."""
    return (covariate_varies(stats, metric.numerator)
            and all(s.get(f"pre_{metric.denominator}_sum", 0) > 0 for s in stats.values()))


def metric_stats(metric: Metric, sums: Mapping[str, float], cuped: bool) -> dict[str, float]:
    """One variant's statistics of one metric, in the engine's input shape."""
    num = metric.numerator

    def total(name: str) -> float:
        return float(sums.get(name, 0))

    stats = {"n": int(sums.get("n", 0)), "sum": total(f"{num}_sum"), "sum_squares": total(f"{num}_sum_squares")}
    if metric.kind == "ratio":
        den = metric.denominator
        stats |= {"denominator_sum": total(f"{den}_sum"), "denominator_sum_squares": total(f"{den}_sum_squares"),
                  "sum_products": total(f"{num}_{den}_sum_products")}
        if cuped:
            stats |= {"covariate_sum": total(f"pre_{num}_sum"),
                      "covariate_sum_squares": total(f"pre_{num}_sum_squares"),
                      "sum_products_covariate": total(f"{num}_sum_products_covariate"),
                      "denominator_pre_sum": total(f"pre_{den}_sum"),
                      "denominator_pre_sum_squares": total(f"pre_{den}_sum_squares"),
                      "main_pre_denominator_pre_sum_product": total(f"pre_{num}_pre_{den}_sum_products"),
                      "main_post_denominator_pre_sum_product": total(f"{num}_pre_{den}_sum_products"),
                      "main_pre_denominator_post_sum_product": total(f"pre_{num}_{den}_sum_products"),
                      "denominator_post_denominator_pre_sum_product": total(f"{den}_sum_products_covariate")}
    elif cuped:
        stats |= {"covariate_sum": float(sums.get(f"pre_{num}_sum", 0)),
                  "covariate_sum_squares": float(sums.get(f"pre_{num}_sum_squares", 0)),
                  "sum_products_covariate": float(sums.get(f"{num}_sum_products_covariate", 0))}
    return stats


def cuped_metrics(stats: Mapping[str, Mapping[str, float]], cuped: bool) -> list[str]:
    """The metrics CUPED adjusts, when it is on: mean metrics whose covariate varies, and ratios whose
    pre-period numerator varies with a pre-period denominator in every variant."""
    if not cuped:
        return []
    return [m.name for m in METRICS
            if (ratio_covariates_vary(stats, m) if m.kind == "ratio" else covariate_varies(stats, m.numerator))]


def engine_input(stats: Mapping[str, Mapping[str, float]], weights: Mapping[str, float], adjusted: Sequence[str],
                 alpha: float = DEFAULT_ALPHA, correction: str = DEFAULT_CORRECTION) -> dict:
    """variant -> sufficient statistics (control first, in order) -> the `reports.stats.analyze` input."""
    variants = list(stats)
    return {
        "alpha": alpha, "correction": correction, "srm_threshold": SRM_THRESHOLD,
        "variants": [{"name": v, "weight": weights[v], "units": int(stats[v].get("n", 0))} for v in variants],
        "metrics": [{"name": m.name, "kind": m.kind, "goal": m.goal,
                     "stats": {v: metric_stats(m, stats[v], m.name in adjusted) for v in variants}}
                    for m in METRICS],
    }


# ------------------------------------------------------------------ the engine's output
def finite(value: object) -> float | None:
    """A float for the table, or None for a missing or non-finite value."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass
class ExperimentResult:
    """One experiment's report for day D: what the table row and the page are built from."""

    experiment: str
    ds: str
    variants: list[str]
    weights: dict[str, float]
    units: dict[str, int]
    excluded: int
    analysis: dict  # the engine's output
    cuped_requested: bool
    cuped: list[str]
    pre_days: int
    alpha: float
    correction: str
    curve: list[tuple[str, dict | None]] = field(default_factory=list)  # (day, engine output or None)

    @property
    def srm_passed(self) -> bool:
        return bool(self.analysis["srm"]["passed"])

    @property
    def control(self) -> str:
        return self.variants[0]

    def rows(self) -> list[tuple]:
        """reports/experiments rows, in the registry's column order."""
        srm = self.analysis["srm"]
        out = []
        for r in self.analysis["results"]:
            absolute, relative = r["absolute"], r["relative"]
            values = {
                "experiment": self.experiment, "variant": r["variant"], "metric": r["metric"],
                "units": int(self.units[r["variant"]]), "control_mean": finite(r["control_mean"]),
                "variant_mean": finite(r["variant_mean"]), "absolute_estimate": finite(absolute["estimate"]),
                "absolute_ci_low": finite(absolute["ci"][0]), "absolute_ci_high": finite(absolute["ci"][1]),
                "absolute_p_value": finite(absolute["p_value"]), "relative_estimate": finite(relative["estimate"]),
                "relative_ci_low": finite(relative["ci"][0]), "relative_ci_high": finite(relative["ci"][1]),
                "relative_p_value": finite(relative["p_value"]), "p_value_adjusted": finite(r["p_value_adjusted"]),
                "srm_p_value": finite(srm["p_value"]), "srm_passed": self.srm_passed,
                "cuped": r["metric"] in self.cuped, "trustworthy": self.srm_passed,
            }
            out.append(tuple(values[c] for c in REPORTS_EXPERIMENTS.fieldNames()))
        return out

    def result(self, metric: str, variant: str) -> dict | None:
        return next((r for r in self.analysis["results"] if r["metric"] == metric and r["variant"] == variant),
                    None)


def enough_units(stats: Mapping[str, Mapping[str, float]]) -> bool:
    """Every variant has at least two units (a variance needs two)."""
    return all(s.get("n", 0) >= 2 for s in stats.values())


def analyze_experiment(experiment: str, ds: str, totals: Mapping[str, Mapping[str, float]],
                       by_day: Mapping[str, Mapping[str, Mapping[str, float]]], weights: Mapping[str, float],
                       excluded: int, cuped: bool, pre_days: int, alpha: float = DEFAULT_ALPHA,
                       correction: str = DEFAULT_CORRECTION) -> ExperimentResult:
    """Run the stats engine on D's statistics and on each day's cumulative ones (variant order = `totals`'s,
    control first). A day on which some variant has fewer than two members has no point on the curve."""
    adjusted = cuped_metrics(totals, cuped)
    analysis = analyze(engine_input(totals, weights, adjusted, alpha, correction))
    curve = []
    for day, stats in by_day.items():
        point = None
        if enough_units(stats):
            point = analyze(engine_input(stats, weights, cuped_metrics(stats, cuped), alpha, correction))
        curve.append((day, point))
    return ExperimentResult(experiment, ds, list(totals), dict(weights), {v: int(s.get("n", 0)) for v, s in
                                                                          totals.items()},
                            excluded, analysis, cuped, adjusted, pre_days, alpha, correction, curve)
