"""Vectorised date and timestamp text in the landing formats (YYYY-MM-DD and ISO 8601 UTC with a Z)."""

from __future__ import annotations

import numpy as np


def iso_timestamps(seconds: np.ndarray) -> np.ndarray:
    """Seconds since the epoch -> '2026-01-01T13:45:00Z'."""
    return np.datetime_as_string(np.asarray(seconds, np.int64).astype("datetime64[s]"), unit="s", timezone="UTC")


def iso_dates(days: np.ndarray) -> np.ndarray:
    """Days since the epoch -> '2026-01-01'."""
    return np.datetime_as_string(np.asarray(days, np.int64).astype("datetime64[D]"), unit="D")


def day_number(iso_date: str) -> int:
    """'2026-01-01' -> days since the epoch."""
    return int(np.datetime64(iso_date, "D").astype(np.int64))
