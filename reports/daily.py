"""The T+1 daily report: labelled impressions of day D -> `reports/daily` rows in long form, and its audits.

Every figure is a ratio of sums over day D's rows, written as (metric, dimension, dimension_value,
numerator, denominator, value): a count has no denominator and its value is the count. Long form keeps
one schema for every metric and breakdown, and a reader can re-aggregate numerators and denominators.

Metrics over the labelled impressions of D (labels/impressions ds=D), and the label window each needs:

| metric           | numerator   | denominator | window it needs                         |
|------------------|-------------|-------------|-----------------------------------------|
| impressions      | impressions | -           | none                                    |
| ctr              | clicked     | impressions | click (last touch, hours)               |
| valid_click_rate | valid_click | impressions | invite (a valid click may be an invite) |
| invite_rate      | invited     | impressions | invite                                  |
| accept_rate      | accepted    | invited     | invite + accept                         |
| dismiss_rate     | dismissed   | impressions | click (last touch)                      |

Dimensions: `all`, `surface`, `position` (null as "unknown"), `variant` ("experiment:variant" of the
member's assignments made at or before the impression; a member assigned to two variants of one
experiment is left out of that experiment), and `source` (the candidate sources of the pair in the newest
recs/topk partition before D, what was serving that day; one impression counts once per source, and a
pair not in that partition counts as "not_ranked"). Day-level figures, dimension `all` only:
`unattributed_share` (labels/unattributed actions of D over those plus the labelled outcomes of D's
impressions, each counted once per impression and kind; it needs every window), `members_served`
(members with recommendations in recs/topk ds=D), and `quarantine_share` per landing table (dimension
`table`, and `all` over every table).

Maturity. The labels job that precedes the report sees events up to the end of D (the horizon, D+1 00:00
UTC). A figure is `mature` when it needs no window, when its window has closed for the group's latest
impression by the horizon, or when none of the group's label rows is provisional (the labels job marks a
row final once every window closed at its own, possibly later, horizon).

Flags. `small`: the figure's denominator (a count's own value) is under `min_volume`; small figures are
published, never refused. `moved`: the value lies outside the band of the same weekday's trailing values
(D-7, D-14, D-21, D-28, at least two that are not small): |value - mean| > max(band_sigmas x sd,
band_min_relative x |mean|); null when not judged (small today, or too little history).

Audits (`audit_day`), each a reason to refuse: no labelled impressions; the day's impressions outside
`volume_band` x the mean of the trailing days that had any, judged only when that mean reaches
`min_volume`; a landing table's quarantine share above `max_quarantine_share`, judged only when it read at
least `min_volume` rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from mutuals.checks import require_columns
from mutuals.errors import GateFailed, MissingInput
from mutuals.tables import DS, REPORTS_DAILY

Transform = Callable[[DataFrame], DataFrame]

ALL, SURFACE, POSITION, VARIANT, SOURCE, TABLE = "all", "surface", "position", "variant", "source", "table"
UNKNOWN, NOT_RANKED = "unknown", "not_ranked"
LABEL_SUMS = ("clicked", "valid_click", "invited", "accepted", "dismissed")
DIMENSION_COLUMNS = ("dimension", "dimension_value", "impression_ts", "provisional", *LABEL_SUMS)
NONE_WINDOW, CLICK_WINDOW, INVITE_WINDOW, FULL_WINDOW = "none", "click", "invite", "full"
SAME_WEEKDAY_LAGS = (7, 14, 21, 28)
REPORT_COLUMNS = tuple(f.name for f in REPORTS_DAILY.fields)


class DailyReportRefused(GateFailed):
    """An audit refused day D's report; reports/daily is unchanged and a NOT PUBLISHED page says why."""


class DailyInputMissing(MissingInput):
    """An input partition of day D's report is not published; nothing was written but the NOT PUBLISHED page."""


@dataclass(frozen=True)
class Metric:
    """A labelled-impression metric: sums named after the label columns (or `impressions`)."""

    name: str
    numerator: str
    denominator: str | None
    window: str


LABEL_METRICS = (
    Metric("impressions", "impressions", None, NONE_WINDOW),
    Metric("ctr", "clicked", "impressions", CLICK_WINDOW),
    Metric("valid_click_rate", "valid_click", "impressions", INVITE_WINDOW),
    Metric("invite_rate", "invited", "impressions", INVITE_WINDOW),
    Metric("accept_rate", "accepted", "invited", FULL_WINDOW),
    Metric("dismiss_rate", "dismissed", "impressions", CLICK_WINDOW),
)
RATES = tuple(m.name for m in LABEL_METRICS if m.denominator is not None) + ("unattributed_share",)


@dataclass(frozen=True)
class LabelWindows:
    """The label windows of the labels job (`labelling.attribution.Windows`), in the units it uses."""

    last_touch_hours: int = 24
    invite_window_days: int = 7
    accept_window_days: int = 14

    def hours(self, window: str) -> int:
        """How long after an impression the label a metric needs may still change."""
        return {
            NONE_WINDOW: 0,
            CLICK_WINDOW: self.last_touch_hours,
            INVITE_WINDOW: 24 * self.invite_window_days,
            FULL_WINDOW: 24 * (self.invite_window_days + self.accept_window_days),
        }[window]


@dataclass(frozen=True)
class DailyConfig:
    min_volume: int = 100
    volume_band: tuple[float, float] = (0.5, 2.0)
    volume_trailing_days: int = 7
    max_quarantine_share: float = 0.05
    band_sigmas: float = 3.0
    band_min_relative: float = 0.1


def shift_day(ds: str, days: int) -> str:
    return (dt.date.fromisoformat(ds) + dt.timedelta(days=days)).isoformat()


def horizon_of(run_date: str) -> Column:
    """D+1 00:00 UTC: the end of what the labels of D have seen."""
    return F.to_timestamp(F.lit(f"{shift_day(run_date, 1)} 00:00:00"))


# ------------------------------------------------------------------------------------------- dimensions
def _dimension(labels: DataFrame, name: str, value: Column) -> DataFrame:
    return labels.select(F.lit(name).alias("dimension"), value.cast("string").alias("dimension_value"),
                         "impression_ts", "provisional", *LABEL_SUMS)


def exclusive_assignments(assignments: DataFrame) -> DataFrame:
    """One row per (member, experiment) of members assigned to exactly one variant of it, with the
    earliest assignment time of that variant."""
    require_columns(assignments, ["member_id", "experiment", "variant", "assigned_at"], "exclusive_assignments")
    per_member = assignments.groupBy("member_id", "experiment").agg(
        F.countDistinct("variant").alias("_variants"), F.min("variant").alias("variant"),
        F.min("assigned_at").alias("assigned_at"),
    )
    return per_member.where(F.col("_variants") == 1).select("member_id", "experiment", "variant", "assigned_at")


def label_dimensions(assignments: DataFrame, serving_recs: DataFrame) -> Transform:
    """labels/impressions rows of D -> one row per (impression, dimension value) for every dimension."""
    require_columns(serving_recs, ["member_id", "candidate_id", "sources"], "label_dimensions(serving_recs)")
    exclusive = exclusive_assignments(assignments)
    recs = serving_recs.select("member_id", "candidate_id", F.col("sources").alias("_sources"))

    def transform(labels: DataFrame) -> DataFrame:
        require_columns(labels, ["member_id", "candidate_id", "surface", "position", "impression_ts",
                                 "provisional", *LABEL_SUMS], "label_dimensions(labels)")
        is_assigned_before = F.col("assigned_at") <= F.col("impression_ts")
        with_variant = labels.join(exclusive, on="member_id", how="inner").where(is_assigned_before)
        with_sources = (labels.join(recs, on=["member_id", "candidate_id"], how="left")
                        .withColumn("_source", F.explode_outer("_sources")))
        parts = [
            _dimension(labels, ALL, F.lit(ALL)),
            _dimension(labels, SURFACE, F.coalesce(F.col("surface"), F.lit(UNKNOWN))),
            _dimension(labels, POSITION, F.coalesce(F.col("position").cast("string"), F.lit(UNKNOWN))),
            _dimension(with_variant, VARIANT, F.concat_ws(":", "experiment", "variant")),
            _dimension(with_sources, SOURCE, F.coalesce(F.col("_source"), F.lit(NOT_RANKED))),
        ]
        out = parts[0]
        for part in parts[1:]:
            out = out.unionByName(part)
        return out.select(*DIMENSION_COLUMNS)

    return transform


# ---------------------------------------------------------------------------------------------- metrics
def _ratio(numerator: Column, denominator: Column) -> Column:
    """numerator / denominator; a count (null denominator) is its numerator; 0 / 0 is null."""
    return (F.when(denominator.isNull(), numerator)
            .when(denominator > 0, numerator / denominator))


def _flags(run_date: str, min_volume: int) -> list[Column]:
    """value, mature and small of rows carrying numerator, denominator, window_hours, last_impression_ts
    and any_provisional."""
    is_window_closed = (F.col("last_impression_ts") + F.make_dt_interval(hours=F.col("window_hours"))
                        <= horizon_of(run_date))
    is_final = ~F.col("any_provisional")
    is_mature = (F.col("window_hours") == 0) | F.coalesce(is_window_closed, F.lit(False)) | is_final
    volume = F.coalesce(F.col("denominator"), F.col("numerator"))
    return [_ratio(F.col("numerator"), F.col("denominator")).alias("value"), is_mature.alias("mature"),
            (volume < F.lit(min_volume)).alias("small")]


def label_metrics(unattributed: DataFrame, run_date: str, windows: LabelWindows, min_volume: int) -> Transform:
    """`label_dimensions` rows -> one row per (metric, dimension, dimension_value), plus
    `unattributed_share` on dimension `all`. `unattributed` is labels/unattributed of D."""
    unattributed_count = unattributed.agg(F.count(F.lit(1)).cast("double").alias("_unattributed"))

    def metric(m: Metric) -> Column:
        denominator = F.col(m.denominator) if m.denominator is not None else F.lit(None)
        return F.struct(F.lit(m.name).alias("metric"), F.col(m.numerator).cast("double").alias("numerator"),
                        denominator.cast("double").alias("denominator"),
                        F.lit(windows.hours(m.window)).alias("window_hours"))

    def transform(dimension_rows: DataFrame) -> DataFrame:
        require_columns(dimension_rows, DIMENSION_COLUMNS, "label_metrics")
        sums = dimension_rows.groupBy("dimension", "dimension_value").agg(
            F.count(F.lit(1)).alias("impressions"),
            *[F.sum(F.col(c).cast("long")).alias(c) for c in LABEL_SUMS],
            F.max("impression_ts").alias("last_impression_ts"),
            F.max(F.col("provisional")).alias("any_provisional"),
        ).crossJoin(unattributed_count)
        outcomes = sum((F.col(c) for c in ("clicked", "invited", "accepted", "dismissed")), F.lit(0))
        share = F.struct(F.lit("unattributed_share").alias("metric"), F.col("_unattributed").alias("numerator"),
                         (F.col("_unattributed") + outcomes).cast("double").alias("denominator"),
                         F.lit(windows.hours(FULL_WINDOW)).alias("window_hours"))
        metrics = F.array(*[metric(m) for m in LABEL_METRICS], share)
        is_day_level_elsewhere = (F.col("metric") == "unattributed_share") & (F.col("dimension") != ALL)
        return (
            sums.select("dimension", "dimension_value", "last_impression_ts", "any_provisional",
                        F.explode(metrics).alias("m"))
            .select("dimension", "dimension_value", "last_impression_ts", "any_provisional", "m.*")
            .where(~is_day_level_elsewhere)
            .select("metric", "dimension", "dimension_value", "numerator", "denominator",
                    *_flags(run_date, min_volume))
        )

    return transform


def members_served(served: DataFrame) -> DataFrame:
    """recs/topk of D -> the count of members with recommendations (dimension `all`)."""
    require_columns(served, ["member_id"], "members_served")
    return served.agg(F.countDistinct("member_id").cast("double").alias("numerator")).select(
        F.lit("members_served").alias("metric"), F.lit(ALL).alias("dimension"), F.lit(ALL).alias("dimension_value"),
        "numerator", F.lit(None).cast("double").alias("denominator"), F.col("numerator").alias("value"),
        F.lit(True).alias("mature"), F.lit(False).alias("small"),
    )


def quarantine_shares(min_volume: int) -> Transform:
    """quarantine/ingest_counts of D -> rows quarantined / rows read per landing table and over all."""

    def transform(counts: DataFrame) -> DataFrame:
        require_columns(counts, ["table", "rows_read", "rows_quarantined"], "quarantine_shares")
        per_table = counts.select(F.lit(TABLE).alias("dimension"), F.col("table").alias("dimension_value"),
                                  "rows_quarantined", "rows_read")
        total = counts.agg(F.sum("rows_quarantined").alias("rows_quarantined"), F.sum("rows_read").alias("rows_read"))
        overall = total.select(F.lit(ALL).alias("dimension"), F.lit(ALL).alias("dimension_value"),
                               "rows_quarantined", "rows_read").where(F.col("rows_read").isNotNull())
        numerator, denominator = F.col("rows_quarantined").cast("double"), F.col("rows_read").cast("double")
        return per_table.unionByName(overall).select(
            F.lit("quarantine_share").alias("metric"), "dimension", "dimension_value",
            numerator.alias("numerator"), denominator.alias("denominator"),
            _ratio(numerator, denominator).alias("value"),
            F.lit(True).alias("mature"), (denominator < F.lit(min_volume)).alias("small"),
        )

    return transform


# -------------------------------------------------------------------------------------------- the band
def flag_moved(history: DataFrame, run_date: str, config: DailyConfig) -> Transform:
    """Today's rows -> the same rows with `moved` (see the module docstring). `history` is reports/daily
    with `ds`; only the same weekday's partitions of the four previous weeks are used."""
    require_columns(history, [DS, "metric", "dimension", "dimension_value", "value", "small"], "flag_moved")
    keys = ["metric", "dimension", "dimension_value"]
    same_weekday = [shift_day(run_date, -lag) for lag in SAME_WEEKDAY_LAGS]
    is_usable = F.col(DS).isin(same_weekday) & ~F.col("small") & F.col("value").isNotNull()
    band = history.where(is_usable).groupBy(*keys).agg(
        F.count(F.lit(1)).alias("_n"), F.avg("value").alias("_mean"),
        F.coalesce(F.stddev_samp("value"), F.lit(0.0)).alias("_sd"),
    )

    def transform(today: DataFrame) -> DataFrame:
        half_width = F.greatest(F.lit(config.band_sigmas) * F.col("_sd"),
                                F.lit(config.band_min_relative) * F.abs(F.col("_mean")))
        is_judged = ~F.col("small") & F.col("value").isNotNull() & (F.coalesce(F.col("_n"), F.lit(0)) >= 2)
        is_outside = F.abs(F.col("value") - F.col("_mean")) > half_width
        return today.join(band, on=keys, how="left").select(
            *[c for c in REPORT_COLUMNS if c != "moved"],
            F.when(is_judged, is_outside).alias("moved"),
        ).select(*[F.col(f.name).cast(f.dataType) for f in REPORTS_DAILY.fields])

    return transform


def report_rows(label_rows: DataFrame, members: DataFrame, quarantine: DataFrame) -> DataFrame:
    """Every figure of the day, before the band."""
    return label_rows.unionByName(members).unionByName(quarantine)


# ---------------------------------------------------------------------------------------------- audits
def audit_day(day_impressions: int, trailing_impressions: Sequence[int],
              quarantine: Sequence[tuple[str, int, int]], config: DailyConfig) -> list[str]:
    """The reasons to refuse the day (empty: publish). `trailing_impressions` are the trailing days'
    counts; `quarantine` is (table, rows_read, rows_quarantined) per landing table."""
    if day_impressions == 0:
        return ["labels absent: labels/impressions has no rows for the day"]
    reasons = []
    reasons.extend(_volume_reasons(day_impressions, trailing_impressions, config))
    for table, rows_read, rows_quarantined in quarantine:
        share = rows_quarantined / rows_read if rows_read else 0.0
        if rows_read >= config.min_volume and share > config.max_quarantine_share:
            reasons.append(f"quarantine share: {table} quarantined {rows_quarantined} of {rows_read} rows "
                           f"({share:.2%}), above {config.max_quarantine_share:.2%} (judged from "
                           f"{config.min_volume} rows read)")
    return reasons


def _volume_reasons(day_impressions: int, trailing: Sequence[int], config: DailyConfig) -> list[str]:
    seen = [n for n in trailing if n > 0]
    if not seen:
        return []
    mean = sum(seen) / len(seen)
    if mean < config.min_volume:
        return []
    low, high = config.volume_band
    ratio = day_impressions / mean
    if low <= ratio <= high:
        return []
    return [f"volume band: {day_impressions} impressions are {ratio:.2f}x the trailing mean {mean:.1f} "
            f"({len(seen)} days), outside {low}:{high} (judged because the mean reaches {config.min_volume})"]
