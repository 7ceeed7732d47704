"""The options the labels and samples jobs share: the lookback, and one flag per `Windows` field."""

from __future__ import annotations

import argparse

from labelling.attribution import Windows
from labelling.days import DEFAULT_LOOKBACK_DAYS


def add_lookback_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lookback-days", type=int, default=DEFAULT_LOOKBACK_DAYS,
                        help="recompute the partitions R-L..R for late data (default %(default)s)")


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Windows()
    parser.add_argument("--last-touch-hours", type=int, default=defaults.last_touch_hours,
                        help="last-touch attribution window (default %(default)s)")
    parser.add_argument("--invite-window-days", type=int, default=defaults.invite_window_days,
                        help="an invite counts for an impression this long after it (default %(default)s)")
    parser.add_argument("--accept-window-days", type=int, default=defaults.accept_window_days,
                        help="an accept counts for an invite this long after it (default %(default)s)")
    parser.add_argument("--valid-dwell-ms", type=int, default=defaults.valid_dwell_ms,
                        help="dwell that makes a click valid without an invite (default %(default)s)")


def windows_from_args(args: argparse.Namespace) -> Windows:
    return Windows(
        last_touch_hours=args.last_touch_hours,
        invite_window_days=args.invite_window_days,
        accept_window_days=args.accept_window_days,
        valid_dwell_ms=args.valid_dwell_ms,
    )
