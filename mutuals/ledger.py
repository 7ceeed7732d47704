"""What one job run read and wrote, for its one-line JSON summary.

Why a ledger instead of counting: every published partition's row count is already in its publication
record (`meta/publications`), so a job's rows in and rows out come for free from the lake's published reads
and its own publish, with no extra Spark action. The lake records into the process's current ledger;
`mutuals.jobargs.run_job` starts a fresh one per job, and the job prints its summary with `emit_summary`.

A partition read twice (two jobs of one process, or one job reading a table twice) counts once.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class RunLedger:
    started: float = field(default_factory=time.perf_counter)
    rows_in: dict[tuple[str, str], int] = field(default_factory=dict)
    rows_out: dict[tuple[str, str], int] = field(default_factory=dict)
    # Seconds from the job's start until its Spark session was ready (None until then): the share of a
    # short job that is JVM start-up, not work.
    spark_start_s: float | None = None

    def session_ready(self) -> None:
        """Record that the Spark session exists (the first call counts; a reused session costs ~0 s)."""
        if self.spark_start_s is None:
            self.spark_start_s = round(time.perf_counter() - self.started, 1)

    def read(self, key: str, rows_per_day: Mapping[str, int]) -> None:
        for ds, rows in rows_per_day.items():
            self.rows_in[(key, ds)] = int(rows)

    def wrote(self, key: str, rows_per_day: Mapping[str, int]) -> None:
        for ds, rows in rows_per_day.items():
            self.rows_out[(key, ds)] = int(rows)

    def figures(self) -> dict[str, Any]:
        figures = {"rows_in": sum(self.rows_in.values()), "rows_out": sum(self.rows_out.values()),
                   "seconds": round(time.perf_counter() - self.started, 1)}
        if self.spark_start_s is not None:
            figures["spark_start_s"] = self.spark_start_s
        return figures


_current = RunLedger()


def current() -> RunLedger:
    return _current


def start() -> RunLedger:
    """A fresh ledger for the job that starts now."""
    global _current
    _current = RunLedger()
    return _current


def summary_line(summary: Mapping[str, Any]) -> str:
    """The job's summary with rows in, rows out and seconds added (a job's own figure of the same name wins)."""
    return json.dumps({**current().figures(), **summary}, sort_keys=True, default=str)


def emit_summary(summary: Mapping[str, Any], stream: TextIO | None = None) -> None:
    """Print the job's one-line JSON summary on stdout."""
    print(summary_line(summary), file=stream or sys.stdout, flush=True)
