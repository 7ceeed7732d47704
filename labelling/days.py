"""Which days a labels or samples run for date R owns, must find published, and reads.

Why whole days and a lookback: events of day D may land in the landing partitions D+1 .. D+L, so a run
for R rewrites the label (and sample) days R-L .. R, and a late click changes an earlier day's labels on
the next run. Attribution reaches back further than the first label day (an accept credits an invite up
to the accept window earlier, whose impression may be up to the last-touch window before that), so the
events read start `Windows.history_days` before it. Nothing here looks at the clock: every day derives
from R.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from labelling.attribution import Windows, day_start

DEFAULT_LOOKBACK_DAYS = 3


def shift_day(ds: str, days: int) -> str:
    return (dt.date.fromisoformat(ds) + dt.timedelta(days=days)).isoformat()


def recompute_days(run_date: str, lookback_days: int) -> list[str]:
    """R-L .. R, oldest first: the label partitions a run for R owns."""
    if lookback_days < 0:
        raise ValueError(f"--lookback-days must be >= 0, found {lookback_days}")
    return [shift_day(run_date, -back) for back in range(lookback_days, -1, -1)]


def required_event_days(run_date: str, days: list[str], first_published: str | None) -> list[str]:
    """The raw/events days that must be published: R, and every label day from the first day ingest ever
    published on (before it the lake holds no events, so those label days are legitimately empty)."""
    return sorted({run_date, *(d for d in days if first_published is not None and d >= first_published)})


def first_event_day(days: Sequence[str], windows: Windows) -> str:
    """The oldest landing partition whose events can still be credited to the first label day."""
    return shift_day(days[0], -windows.history_days)


def landed_by_end_of(run_date: str) -> Callable[[DataFrame], DataFrame]:
    """Keep events stamped before R+1 00:00 UTC, so a run's result depends only on R and what had landed."""
    horizon = day_start(run_date) + F.make_dt_interval(days=F.lit(1))

    def transform(events: DataFrame) -> DataFrame:
        return events.where(F.col("ts") < horizon)

    return transform


def feature_partitions_for(published: Sequence[str], days: Sequence[str]) -> list[str]:
    """The features/pairs partitions the sample days read: for each day, the newest one before it.
    Only an I/O bound: `point_in_time_features` picks the partition per day itself."""
    return sorted({max(older) for day in days if (older := [p for p in published if p < day])})
