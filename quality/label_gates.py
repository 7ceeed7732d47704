"""Quality gates of the labels and samples jobs, run inside the job before anything is written.

Why gates before the write: a job that publishes wrong labels quietly ruins the next model, and a
published partition is what training reads. So a failed gate raises, and the job never reaches
`Lake.write_partitions`: the previously published partitions stay as they were.

The checks (Great Expectations 1.x through `quality.gx_runner`, on small derived frames):

* labels, rate bands: per label day, the positive rate of clicked, valid_click, invited, accepted and
  dismissed must lie in a configured band. Days with fewer than `min_rows_for_rates` impressions are not
  judged (a rate over a handful of rows is noise, not a signal).
* labels, volume: the run day's deduplicated impressions against the mean of the trailing
  `volume_trailing_days` days that have any impressions; the ratio must lie in `volume_band`. The band is
  judged only when that trailing mean reaches `min_impressions_for_volume` (default 100): a ratio against
  a mean of one or two impressions is noise (1, 1, then 5 is a normal small day, not a 5x spike). The
  floor applies to the baseline only, so a collapse from thousands a day to a handful is still caught.
  With no trailing day (the first day of a lake) the check is skipped. The run day is usually still
  missing its late events, hence the generous default lower bound.
* labels and samples, unique keys: (ds, request_id, member_id, candidate_id, impression_ts) is unique.
* samples, exactly one sample per labelled impression: row count equals the labels' row count, which with
  unique keys and a left join means one row each.
* samples, point in time: features_ds < ds and feature_age_s >= 0 wherever features are present.

Every gate message starts with the rule that refused the data (rate band, volume band, unique key, one
sample per impression, point in time) and says why that rule was judged (the floors it passed); the
labels summary carries the volume rule's verdict even when it passed or was not judged. Every refusal is a
`mutuals.errors.GateFailed` (exit 5), except rows sharing a key: that is `mutuals.errors.DuplicateKey`
(bad input, exit 3), the one exception for a repeated key wherever it is found.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F

from mutuals.errors import DuplicateKey, GateFailed, MutualsError
from mutuals.jobargs import band
from mutuals.tables import DS
from quality.gx_runner import SuiteOutcome, validate

LABELS = ("clicked", "valid_click", "invited", "accepted", "dismissed")
KEY_COLUMNS = (DS, "request_id", "member_id", "candidate_id", "impression_ts")

DEFAULT_RATE_BANDS: dict[str, tuple[float, float]] = {
    "clicked": (0.001, 0.6),
    "valid_click": (0.0, 0.6),
    "invited": (0.0, 0.4),
    "accepted": (0.0, 0.4),
    "dismissed": (0.0, 0.6),
}


class LabelRateOutOfBand(GateFailed):
    """A day's positive-label rate is outside its configured band."""


class ImpressionVolumeOutOfBand(GateFailed):
    """The day's impressions are too few or too many against the trailing days."""


class SampleCountMismatch(GateFailed):
    """Samples are not exactly one per labelled impression."""


class FeatureFromFuture(GateFailed):
    """A sample took features published on or after its own day."""


@dataclass(frozen=True)
class LabelGateConfig:
    rate_bands: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_RATE_BANDS))
    min_rows_for_rates: int = 200
    volume_band: tuple[float, float] = (0.5, 2.0)
    volume_trailing_days: int = 7
    min_impressions_for_volume: int = 100


def _rate_band(text: str) -> tuple[str, tuple[float, float]]:
    name, sep, bounds = text.partition("=")
    if not sep or name not in LABELS:
        raise argparse.ArgumentTypeError(
            f"--rate-band is LABEL=LOW:HIGH with LABEL in {LABELS}, got {text!r}")
    return name, band(bounds)


def add_label_gate_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = LabelGateConfig()
    parser.add_argument("--rate-band", action="append", type=_rate_band, default=[], metavar="LABEL=LOW:HIGH",
                        help=f"positive-rate band of a label (repeatable); defaults {DEFAULT_RATE_BANDS}")
    parser.add_argument("--min-rows-for-rates", type=int, default=defaults.min_rows_for_rates,
                        help="judge a day's rates only with this many impressions (default %(default)s)")
    parser.add_argument("--volume-band", type=band, default=defaults.volume_band, metavar="LOW:HIGH",
                        help="allowed ratio of the day's impressions to the trailing mean (default 0.5:2.0)")
    parser.add_argument("--volume-trailing-days", type=int, default=defaults.volume_trailing_days,
                        help="trailing days for the volume check (default %(default)s)")
    parser.add_argument("--min-impressions-for-volume", type=int, default=defaults.min_impressions_for_volume,
                        help="judge the volume band only when the trailing mean has this many impressions "
                             "(default %(default)s)")


def label_gate_config(args: argparse.Namespace) -> LabelGateConfig:
    return LabelGateConfig(
        rate_bands={**DEFAULT_RATE_BANDS, **dict(args.rate_band)},
        min_rows_for_rates=args.min_rows_for_rates,
        volume_band=tuple(args.volume_band),
        volume_trailing_days=args.volume_trailing_days,
        min_impressions_for_volume=args.min_impressions_for_volume,
    )


# ------------------------------------------------------------------------------------------ derived frames
def impression_key() -> Column:
    """One string per impression key; null request_ids are spelled out so they compare equal."""
    return F.concat_ws("|", *[F.coalesce(F.col(c).cast("string"), F.lit("<null>")) for c in KEY_COLUMNS])


def daily_label_stats(labels: DataFrame) -> DataFrame:
    """Per label day: impressions, rows sharing a key with another row, provisional rows and each label's
    positive rate. One aggregation, so the gate costs one pass over the labels."""
    return labels.groupBy(DS).agg(
        F.count(F.lit(1)).alias("impressions"),
        (F.count(F.lit(1)) - F.countDistinct(impression_key())).alias("duplicate_keys"),
        F.sum(F.col("provisional").cast("long")).alias("provisional"),
        *[F.avg(F.col(label).cast("double")).alias(f"{label}_rate") for label in LABELS],
    ).select(DS, "impressions", "duplicate_keys", "provisional", *[f"{label}_rate" for label in LABELS])


@dataclass(frozen=True)
class VolumeCheck:
    day_impressions: int
    trailing_mean: float | None
    trailing_days: int

    @property
    def ratio(self) -> float | None:
        if self.trailing_mean is None:
            return None
        return self.day_impressions / self.trailing_mean

    def is_judged(self, floor: int) -> bool:
        """Only a trailing mean of at least `floor` impressions is a baseline worth a ratio."""
        return self.trailing_mean is not None and self.trailing_mean >= floor

    def rule(self, run_date: str, band: tuple[float, float], floor: int) -> str:
        """The volume rule as applied to this day: what was compared, the band, and why it was (not) judged."""
        if self.trailing_mean is None:
            return (f"volume band: not judged, {run_date} has {self.day_impressions} impressions and no "
                    "trailing day has any")
        found = (f"found {self.day_impressions} against a mean of {self.trailing_mean} over "
                 f"{self.trailing_days} days (ratio {self.ratio:.3g})")
        if not self.is_judged(floor):
            return (f"volume band: not judged, {found}; the trailing mean is below the floor of {floor} "
                    "impressions")
        return (f"volume band: impressions on {run_date} expected within [{band[0]}, {band[1]}] x the trailing "
                f"mean, {found}; judged because the trailing mean {self.trailing_mean} >= floor {floor}")


def impression_volume(impressions: DataFrame, run_date: str, trailing_days: int) -> VolumeCheck:
    """The run day's deduplicated impressions and the mean over trailing days that have any."""
    counts = {
        r["day"]: r["n"]
        for r in impressions.select(F.date_format("impression_ts", "yyyy-MM-dd").alias("day"))
        .where((F.col("day") <= run_date) & (F.col("day") >= F.date_format(
            F.date_sub(F.to_date(F.lit(run_date)), trailing_days), "yyyy-MM-dd")))
        .groupBy("day").agg(F.count(F.lit(1)).alias("n")).collect()
    }
    trailing = [n for day, n in counts.items() if day < run_date]
    mean = sum(trailing) / len(trailing) if trailing else None
    return VolumeCheck(counts.get(run_date, 0), mean, len(trailing))


# --------------------------------------------------------------------------------------------- the gates
def _fail(outcome: SuiteOutcome, checks: Sequence[tuple[tuple[str, str | None], type[MutualsError], str]]) -> None:
    """Raise the first failed check's exception, with every failed check's message."""
    failed = {(o.expectation, o.column) for o in outcome.failures}
    messages = [(cls, msg) for key, cls, msg in checks if key in failed]
    if not messages and outcome.failures:
        messages = [(GateFailed, "expectation: " + "; ".join(o.describe() for o in outcome.failures))]
    if messages:
        raise messages[0][0](f"{outcome.suite} failed: " + " | ".join(m for _, m in messages))


def _stats_messages(stats: list[Row], config: LabelGateConfig) -> dict[str, str]:
    """One rate-band message per label, naming the floor and the days left unjudged below it."""
    floor = config.min_rows_for_rates
    judged = [r for r in stats if r["impressions"] >= floor]
    unjudged = ", ".join(f"ds={r[DS]} ({r['impressions']})" for r in stats if r["impressions"] < floor)
    messages: dict[str, str] = {}
    for label in LABELS:
        low, high = config.rate_bands[label]
        bad = [f"ds={r[DS]}: {r[f'{label}_rate']:.4f} over {r['impressions']} impressions" for r in judged
               if r[f"{label}_rate"] is not None and not low <= r[f"{label}_rate"] <= high]
        messages[label] = (f"rate band, judged on days with >= {floor} impressions: {label} rate expected "
                           f"within [{low}, {high}], found {', '.join(bad) or 'n/a'}"
                           + (f"; not judged below the floor: {unjudged}" if unjudged else ""))
    return messages


def check_labels(
    labels: DataFrame, impressions: DataFrame, run_date: str, config: LabelGateConfig, suite: str = "labels"
) -> dict[str, object]:
    """Rate bands, volume and key uniqueness of the labels about to be written, as one GX suite over a
    per-day metrics frame (one row per label day). Returns the figures (per-day rows and rates, the volume
    check) for the job's summary; raises a `GateFailed` subclass, or `DuplicateKey` for rows sharing a key."""
    import great_expectations as gx

    stats = sorted(daily_label_stats(labels).collect(), key=lambda r: r[DS])
    volume = impression_volume(impressions, run_date, config.volume_trailing_days)

    def metrics_row(day: str, row: Row | None) -> tuple:
        is_judged = row is not None and row["impressions"] >= config.min_rows_for_rates
        rates = [row[f"{label}_rate"] if is_judged else None for label in LABELS]
        dups = row["duplicate_keys"] if row is not None else 0
        is_volume_judged = day == run_date and volume.is_judged(config.min_impressions_for_volume)
        return (day, *rates, dups, volume.ratio if is_volume_judged else None)

    by_day = {r[DS]: r for r in stats}
    metrics = labels.sparkSession.createDataFrame(
        [metrics_row(day, by_day.get(day)) for day in sorted({*by_day, run_date})],
        f"{DS} string, " + ", ".join(f"{label}_rate double" for label in LABELS)
        + ", duplicate_keys long, volume_ratio double",
    )
    low_v, high_v = config.volume_band
    between = gx.expectations.ExpectColumnValuesToBeBetween
    expectations = [
        *(between(column=f"{label}_rate", min_value=config.rate_bands[label][0],
                  max_value=config.rate_bands[label][1]) for label in LABELS),
        between(column="volume_ratio", min_value=low_v, max_value=high_v),
        between(column="duplicate_keys", min_value=0, max_value=0),
    ]
    rate_messages = _stats_messages(stats, config)
    volume_message = volume.rule(run_date, config.volume_band, config.min_impressions_for_volume)
    duplicates = {r[DS]: r["duplicate_keys"] for r in stats if r["duplicate_keys"]}
    key_message = ("unique key: labels/impressions key (ds, request_id, member_id, candidate_id, impression_ts) "
                   f"expected unique, found rows sharing a key per day: {duplicates}")
    _fail(
        validate(metrics, suite, expectations),
        [*((("expect_column_values_to_be_between", f"{label}_rate"), LabelRateOutOfBand, rate_messages[label])
           for label in LABELS),
         (("expect_column_values_to_be_between", "volume_ratio"), ImpressionVolumeOutOfBand, volume_message),
         (("expect_column_values_to_be_between", "duplicate_keys"), DuplicateKey, key_message)],
    )
    return {
        "days": [{"ds": r[DS], "impressions": r["impressions"], "provisional": r["provisional"],
                  **{f"{label}_rate": r[f"{label}_rate"] for label in LABELS}} for r in stats],
        "volume": {"day_impressions": volume.day_impressions, "trailing_mean": volume.trailing_mean,
                   "trailing_days": volume.trailing_days, "ratio": volume.ratio},
        "volume_rule": volume_message,
    }


def check_samples(samples: DataFrame, label_rows: int, suite: str = "samples") -> None:
    """Exactly one sample per labelled impression, unique keys, and no feature from the sample's own day
    or later. Raises a `GateFailed` subclass, or `DuplicateKey` for rows sharing a key."""
    import great_expectations as gx

    is_published_before = F.col("features_ds") < F.col(DS)
    checked = samples.select(
        impression_key().alias("impression_key"),
        is_published_before.alias("features_before_day"),
        "feature_age_s",
    )
    outcome = validate(checked, suite, [
        gx.expectations.ExpectTableRowCountToEqual(value=label_rows),
        gx.expectations.ExpectColumnValuesToBeUnique(column="impression_key"),
        gx.expectations.ExpectColumnValuesToBeInSet(column="features_before_day", value_set=[True]),
        gx.expectations.ExpectColumnValuesToBeBetween(column="feature_age_s", min_value=0),
    ])
    by_type = {(o.expectation, o.column): o for o in outcome.outcomes}
    found_rows = by_type[("expect_table_row_count_to_equal", None)].observed_value
    dup = by_type[("expect_column_values_to_be_unique", "impression_key")].unexpected_count
    _fail(outcome, [
        (("expect_table_row_count_to_equal", None), SampleCountMismatch,
         f"one sample per impression: training/samples expected exactly one row per labelled impression "
         f"({label_rows} rows), found {found_rows}"),
        (("expect_column_values_to_be_unique", "impression_key"), DuplicateKey,
         f"unique key: training/samples key expected unique, found {dup} rows sharing a key"),
        (("expect_column_values_to_be_in_set", "features_before_day"), FeatureFromFuture,
         "point in time: features_ds expected strictly before the sample's ds, found later or equal partitions"),
        (("expect_column_values_to_be_between", "feature_age_s"), FeatureFromFuture,
         "point in time: feature_age_s expected >= 0, found negative ages"),
    ])
