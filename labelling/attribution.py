"""Events to attribution, labels and point-in-time features: pure DataFrame -> DataFrame transforms.

A recommender learns from what happened after each impression, so every rule here is exact, deterministic
and written down. The jobs (`spark_jobs.labels`, `spark_jobs.samples`) only read, chain these transforms,
gate and write.

Semantics (every window is a `Windows` field and a CLI option of the jobs):

* Dedup. Rows with the same `event_id` count once (the earliest `ts` is kept; remaining ties are broken by
  every other column, so a re-run picks the same row). Impressions of the same (request_id, member_id,
  candidate_id) count once: the earliest is kept (ties: event_id ascending). An impression without a
  request_id cannot be told apart from another showing by request, so those are deduplicated on
  (member_id, candidate_id, ts) instead: two distinct no-request showings at different instants stay two.
* Attribution of a click, invite or dismiss by M on C at time t:
  1. the impression with the same request_id, M and C at or before t (`attributed_by = "request_id"`);
  2. failing that, the latest impression of (M, C) in [t - last_touch_hours, t] (`"last_touch"`);
     timestamp ties go to the smaller request_id (nulls last), then the smaller impression event_id;
  3. failing that, the action is unattributed, reason `"no_impression"`.
* An accept (member_id = invitee X, candidate_id = inviter M) is credited to M's latest invite to X in
  [t - accept_window_days, t] (ties: smaller invite event_id), and through that invite to the invite's
  impression. No such invite: reason `"no_invite"`; an invite that itself has no impression: reason
  `"invite_unattributed"`.
* Labels per impression (ds = the impression's UTC day):
  - clicked: at least one click is attributed to it; dwell_ms: the largest dwell among those clicks;
  - attributed_by: how the earliest attributed click (ts, then event_id) was attributed; null if no click;
  - invited: an attributed invite at most invite_window_days after the impression;
  - accepted: an accept credited to one of those invites, at most accept_window_days after that invite;
  - valid_click: clicked and (dwell_ms >= valid_dwell_ms or invited). "An attributed invite" uses the same
    7-day invite window as `invited`, so every label has a closing window;
  - dismissed: at least one dismiss is attributed to it;
  - provisional: the run's horizon (the end of run date R, R+1 00:00 UTC) is before
    impression_ts + invite_window_days + accept_window_days, i.e. some window is still open.
* Point-in-time features: an impression on day D takes every pair feature (`FEATURE_VALUES`) from the
  newest whole partition of features/pairs with ds < D (what the batch layer had published before serving
  D), never a per-pair "latest row", and never D itself or later. `features_ds` names the partition
  consulted; `feature_age_s` is impression_ts - (features_ds + 1 day, 00:00 UTC): the age since that
  partition was published at the end of its day. A pair absent from that partition keeps its row with
  null features; a day with no earlier partition has null features_ds and feature_age_s too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from mutuals.checks import require_columns
from mutuals.tables import DS, EVENTS, FEATURE_VALUES, LABELS_IMPRESSIONS, LABELS_UNATTRIBUTED, TRAINING_SAMPLES

Transform = Callable[[DataFrame], DataFrame]

IMPRESSION, CLICK, INVITE, ACCEPT, DISMISS = "impression", "click", "invite", "accept", "dismiss"
BY_REQUEST_ID, BY_LAST_TOUCH = "request_id", "last_touch"
NO_IMPRESSION, NO_INVITE, INVITE_UNATTRIBUTED = "no_impression", "no_invite", "invite_unattributed"
UNATTRIBUTED_REASONS = (NO_IMPRESSION, NO_INVITE, INVITE_UNATTRIBUTED)

# The output of `attribute_actions`: one row per deduplicated click, invite, dismiss and accept.
ATTRIBUTED_COLUMNS = (
    "event_id", "event_type", "member_id", "candidate_id", "ts", "request_id", "dwell_ms",
    "impression_id", "attributed_by", "invite_event_id", "invite_ts", "reason",
)
# The output of `dedup_impressions`.
IMPRESSION_COLUMNS = (
    "impression_id", "request_id", "member_id", "candidate_id", "impression_ts", "surface", "position",
)
FEATURE_COLUMNS = tuple(f.name for f in FEATURE_VALUES.fields)


@dataclass(frozen=True)
class Windows:
    """Every attribution and label window, with the production defaults."""

    last_touch_hours: int = 24
    invite_window_days: int = 7
    accept_window_days: int = 14
    valid_dwell_ms: int = 3000

    def __post_init__(self) -> None:
        for name in ("last_touch_hours", "invite_window_days", "accept_window_days", "valid_dwell_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, found {getattr(self, name)}")

    @property
    def history_days(self) -> int:
        """Whole days before the first label day whose events attribution may need: an accept on day D
        credits an invite up to accept_window_days earlier, whose last-touch impression may be up to
        last_touch_hours before that."""
        return self.accept_window_days + -(-self.last_touch_hours // 24)


def _hours(n: int) -> Column:
    return F.make_dt_interval(hours=F.lit(n))


def _days(n: int) -> Column:
    return F.make_dt_interval(days=F.lit(n))


def day_start(ds: str) -> Column:
    """00:00 UTC of a YYYY-MM-DD day as a timestamp literal (the session time zone is UTC)."""
    dt.date.fromisoformat(ds)  # fail early on a malformed date
    return F.to_timestamp(F.lit(f"{ds} 00:00:00"))


def utc_day(ts: Column) -> Column:
    return F.date_format(ts, "yyyy-MM-dd")


def first_per(keys: list[str], *order: Column) -> Transform:
    """Keep one row per `keys`: the first in `order` (which must end in a unique tie-break)."""
    window = Window.partitionBy(*keys).orderBy(*order).rowsBetween(Window.unboundedPreceding, Window.currentRow)

    def transform(df: DataFrame) -> DataFrame:
        return df.withColumn("_rank", F.row_number().over(window)).where(F.col("_rank") == 1).drop("_rank")

    return transform


# ------------------------------------------------------------------------------------------------ dedup
def dedup_events(events: DataFrame) -> DataFrame:
    """One row per event_id. The earliest ts wins; then a total order over the other columns, so the pick
    does not depend on file or partition order (duplicates are normally identical anyway)."""
    require_columns(events, [f.name for f in EVENTS.fields], "dedup_events")
    first_copy = first_per(
        ["event_id"],
        F.col("ts").asc(), F.col("event_type").asc(), F.col("member_id").asc(), F.col("candidate_id").asc(),
        F.col("request_id").asc_nulls_last(), F.col("dwell_ms").desc_nulls_last(),
        F.col("surface").asc_nulls_last(), F.col("position").asc_nulls_last(),
    )
    return events.transform(first_copy).select(*[F.col(f.name).cast(f.dataType) for f in EVENTS.fields])


def dedup_impressions(events: DataFrame) -> DataFrame:
    """Deduplicated impressions (input: `dedup_events` output). One per (request_id, member_id,
    candidate_id), the earliest; no-request impressions are one per (member_id, candidate_id, ts)."""
    require_columns(events, [f.name for f in EVENTS.fields], "dedup_impressions")
    has_request = F.col("request_id").isNotNull()
    showing_key = F.when(has_request, F.concat(F.lit("r:"), F.col("request_id"))).otherwise(
        F.concat(F.lit("t:"), F.col("ts").cast("string"))
    )
    earliest = first_per(["member_id", "candidate_id", "_showing"], F.col("ts").asc(), F.col("event_id").asc())
    return (
        events.where(F.col("event_type") == IMPRESSION)
        .withColumn("_showing", showing_key)
        .transform(earliest)
        .select(
            F.col("event_id").alias("impression_id"), "request_id", "member_id", "candidate_id",
            F.col("ts").alias("impression_ts"), "surface", "position",
        )
    )


# ------------------------------------------------------------------------------------------ attribution
def _attribute_to_impressions(impressions: DataFrame, windows: Windows) -> Transform:
    """Clicks, invites and dismisses -> the impression they are credited to (rules 1-3 above)."""

    def transform(actions: DataFrame) -> DataFrame:
        imp = impressions.select(
            F.col("impression_id"), F.col("request_id").alias("imp_request_id"),
            F.col("member_id").alias("imp_member_id"), F.col("candidate_id").alias("imp_candidate_id"),
            F.col("impression_ts"),
        )
        same_pair = (F.col("member_id") == F.col("imp_member_id")) & (
            F.col("candidate_id") == F.col("imp_candidate_id")
        )
        shown_before = F.col("impression_ts") <= F.col("ts")
        is_same_request = F.col("request_id") == F.col("imp_request_id")  # null never matches
        is_in_last_touch = F.col("impression_ts") >= F.col("ts") - _hours(windows.last_touch_hours)
        candidates = actions.join(imp, on=same_pair & shown_before & (is_same_request | is_in_last_touch),
                                  how="left")
        is_request_match = F.coalesce(is_same_request, F.lit(False))
        best_first = first_per(
            ["event_id"], is_request_match.desc(), F.col("impression_ts").desc_nulls_last(),
            F.col("imp_request_id").asc_nulls_last(), F.col("impression_id").asc_nulls_last(),
        )
        has_impression = F.col("impression_id").isNotNull()
        return (
            candidates.transform(best_first)
            .select(
                "event_id", "event_type", "member_id", "candidate_id", "ts", "request_id", "dwell_ms",
                "impression_id",
                F.when(is_request_match, F.lit(BY_REQUEST_ID))
                .when(has_impression, F.lit(BY_LAST_TOUCH)).alias("attributed_by"),
                F.lit(None).cast("string").alias("invite_event_id"),
                F.lit(None).cast("timestamp").alias("invite_ts"),
                F.when(~has_impression, F.lit(NO_IMPRESSION)).alias("reason"),
            )
        )

    return transform


def _attribute_accepts(invites: DataFrame, windows: Windows) -> Transform:
    """Accepts -> the inviter's latest invite to the invitee within the accept window -> its impression.
    `invites` are attributed invites (output of `_attribute_to_impressions`)."""

    def transform(accepts: DataFrame) -> DataFrame:
        inv = invites.select(
            F.col("event_id").alias("invite_event_id"), F.col("ts").alias("invite_ts"),
            F.col("member_id").alias("inviter_id"), F.col("candidate_id").alias("invitee_id"),
            "impression_id", F.col("attributed_by").alias("invite_attributed_by"),
        )
        inviter_to_invitee = (F.col("inviter_id") == F.col("candidate_id")) & (
            F.col("invitee_id") == F.col("member_id")
        )
        invited_before = F.col("invite_ts") <= F.col("ts")
        is_in_accept_window = F.col("invite_ts") >= F.col("ts") - _days(windows.accept_window_days)
        is_credited_invite = inviter_to_invitee & invited_before & is_in_accept_window
        candidates = accepts.join(inv, on=is_credited_invite, how="left")
        latest_invite = first_per(
            ["event_id"], F.col("invite_ts").desc_nulls_last(), F.col("invite_event_id").asc_nulls_last()
        )
        has_invite = F.col("invite_event_id").isNotNull()
        has_impression = F.col("impression_id").isNotNull()
        return (
            candidates.transform(latest_invite)
            .select(
                "event_id", "event_type", "member_id", "candidate_id", "ts", "request_id", "dwell_ms",
                "impression_id", F.col("invite_attributed_by").alias("attributed_by"),
                "invite_event_id", "invite_ts",
                F.when(~has_invite, F.lit(NO_INVITE))
                .when(~has_impression, F.lit(INVITE_UNATTRIBUTED)).alias("reason"),
            )
        )

    return transform


def attribute_actions(impressions: DataFrame, windows: Windows) -> Transform:
    """Deduplicated events -> one row per click, invite, dismiss and accept, with the impression it is
    credited to (`impression_id`, null when unattributed), how (`attributed_by`), the credited invite for
    accepts, and `reason` when unattributed. Columns: `ATTRIBUTED_COLUMNS`."""
    require_columns(impressions, IMPRESSION_COLUMNS, "attribute_actions(impressions)")

    def transform(events: DataFrame) -> DataFrame:
        require_columns(events, [f.name for f in EVENTS.fields], "attribute_actions(events)")
        direct = events.where(F.col("event_type").isin(CLICK, INVITE, DISMISS)).transform(
            _attribute_to_impressions(impressions, windows)
        )
        invites = direct.where(F.col("event_type") == INVITE)
        accepts = events.where(F.col("event_type") == ACCEPT).transform(_attribute_accepts(invites, windows))
        return direct.unionByName(accepts).select(*ATTRIBUTED_COLUMNS)

    return transform


def unattributed_actions(attributed: DataFrame) -> DataFrame:
    """Actions credited to no impression, partitioned by the action's UTC day, with the reason."""
    require_columns(attributed, ATTRIBUTED_COLUMNS, "unattributed_actions")
    return attributed.where(F.col("reason").isNotNull()).select(
        *[F.col(f.name).cast(f.dataType) for f in LABELS_UNATTRIBUTED.fields], utc_day(F.col("ts")).alias(DS)
    )


# ------------------------------------------------------------------------------------------------ labels
def label_impressions(attributed: DataFrame, windows: Windows, run_date: str) -> Transform:
    """Deduplicated impressions -> labels/impressions rows (with `ds`), one per impression.

    `run_date` is the job's --date R: a row is provisional while R+1 00:00 UTC is before
    impression_ts + invite_window_days + accept_window_days."""
    require_columns(attributed, ATTRIBUTED_COLUMNS, "label_impressions(attributed)")
    horizon = day_start(run_date) + _days(1)

    def transform(impressions: DataFrame) -> DataFrame:
        require_columns(impressions, IMPRESSION_COLUMNS, "label_impressions(impressions)")
        shown = impressions.select("impression_id", "impression_ts")
        credited = attributed.where(F.col("impression_id").isNotNull()).join(shown, on="impression_id",
                                                                            how="inner")
        is_click = F.col("event_type") == CLICK
        is_invite_in_window = (F.col("event_type") == INVITE) & (
            F.col("ts") <= F.col("impression_ts") + _days(windows.invite_window_days)
        )
        is_accept_of_window_invite = (
            (F.col("event_type") == ACCEPT)
            & (F.col("invite_ts") <= F.col("impression_ts") + _days(windows.invite_window_days))
            & (F.col("ts") <= F.col("invite_ts") + _days(windows.accept_window_days))
        )
        is_dismiss = F.col("event_type") == DISMISS
        per_impression = credited.groupBy("impression_id").agg(
            F.max(is_click).alias("_clicked"),
            F.max(F.when(is_click, F.col("dwell_ms"))).alias("_dwell_ms"),
            F.min(F.when(is_click, F.struct("ts", "event_id", "attributed_by"))).alias("_first_click"),
            F.max(is_invite_in_window).alias("_invited"),
            F.max(is_accept_of_window_invite).alias("_accepted"),
            F.max(is_dismiss).alias("_dismissed"),
        )
        clicked = F.coalesce(F.col("_clicked"), F.lit(False))
        invited = F.coalesce(F.col("_invited"), F.lit(False))
        has_long_dwell = F.coalesce(F.col("_dwell_ms") >= F.lit(windows.valid_dwell_ms), F.lit(False))
        is_valid_click = clicked & (has_long_dwell | invited)
        all_windows_days = windows.invite_window_days + windows.accept_window_days
        windows_close_at = F.col("impression_ts") + _days(all_windows_days)
        is_provisional = horizon < windows_close_at
        return impressions.join(per_impression, on="impression_id", how="left").select(
            "request_id", "member_id", "candidate_id", "impression_ts", "surface", "position",
            clicked.alias("clicked"),
            F.col("_dwell_ms").alias("dwell_ms"),
            is_valid_click.alias("valid_click"),
            invited.alias("invited"),
            F.coalesce(F.col("_accepted"), F.lit(False)).alias("accepted"),
            F.coalesce(F.col("_dismissed"), F.lit(False)).alias("dismissed"),
            F.col("_first_click.attributed_by").alias("attributed_by"),
            is_provisional.alias("provisional"),
            utc_day(F.col("impression_ts")).alias(DS),
        ).select(*[F.col(f.name).cast(f.dataType) for f in LABELS_IMPRESSIONS.fields], DS)

    return transform


# -------------------------------------------------------------------------------- point-in-time features
def point_in_time_features(features: DataFrame) -> Transform:
    """labels/impressions rows (with `ds`) -> training/samples rows: each label day D joined with the
    newest features/pairs partition whose ds < D (whole partition, see the module docstring).

    `features` carries `ds`, member_id, candidate_id and every `FEATURE_VALUES` column; it may hold any
    partitions, including D and later, which are never used for day D."""
    require_columns(features, [DS, "member_id", "candidate_id", *FEATURE_COLUMNS], "point_in_time_features")
    feature_days = features.select(F.col(DS).alias("features_ds")).distinct()
    by_day = features.select(F.col(DS).alias("features_ds"), "member_id", "candidate_id", *FEATURE_COLUMNS)

    def transform(labels: DataFrame) -> DataFrame:
        require_columns(labels, [DS, *(f.name for f in LABELS_IMPRESSIONS.fields)], "point_in_time_features")
        published_before = F.col("features_ds") < F.col(DS)
        feature_day_of = (
            labels.select(DS).distinct()
            .join(feature_days, on=published_before, how="left")
            .groupBy(DS).agg(F.max("features_ds").alias("features_ds"))
        )
        published_at = F.to_timestamp(F.col("features_ds"), "yyyy-MM-dd") + _days(1)
        feature_age_s = F.unix_seconds(F.col("impression_ts")) - F.unix_seconds(published_at)
        return (
            labels.join(feature_day_of, on=DS, how="left")
            .join(by_day, on=["features_ds", "member_id", "candidate_id"], how="left")
            .select(
                *[F.col(f.name).cast(f.dataType) for f in LABELS_IMPRESSIONS.fields],
                F.col("features_ds").cast("string").alias("features_ds"),
                feature_age_s.cast("long").alias("feature_age_s"),
                *[F.col(f.name).cast(f.dataType) for f in FEATURE_VALUES.fields],
                DS,
            )
            .select(*[f.name for f in TRAINING_SAMPLES.fields], DS)
        )

    return transform
