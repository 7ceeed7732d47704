"""Run a Great Expectations 1.x suite on a Spark DataFrame, inside the job, and return plain results.

Why a thin wrapper: GX's fluent API needs five objects (context, datasource, asset, batch definition,
validation definition) before one check runs. Jobs only want "did these expectations pass, and if not,
which and by how much", so they declare expectations and call `validate`. One ephemeral context per
process is reused, because building it (and importing GX) costs seconds.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pyspark.sql import DataFrame

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None
    observed_value: Any

    def describe(self) -> str:
        where = f" on {self.column}" if self.column else ""
        if self.unexpected_count:
            return f"{self.expectation}{where}: {self.unexpected_count} unexpected"
        return f"{self.expectation}{where}: observed {self.observed_value!r}"


@dataclass(frozen=True)
class SuiteOutcome:
    suite: str
    success: bool
    outcomes: tuple[ExpectationOutcome, ...]

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]


def _import_gx() -> None:
    import great_expectations  # noqa: F401 - imported for its side effect: the module is loaded


def preload() -> threading.Thread:
    """Start importing Great Expectations in a background thread and return it.

    Why: the import runs seconds of Python (more than a small day's validation) and a job needs it only
    for its gates, after reading its inputs. Started before the session, it runs while the driver waits
    for the JVM to start and for the first Delta snapshot (the main thread holds no lock then); the gate's
    own import then finds the module loaded, or waits for the rest of it."""
    thread = threading.Thread(target=_import_gx, name="gx-preload", daemon=True)
    thread.start()
    return thread


@lru_cache(maxsize=1)
def _context() -> Any:
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    # Progress bars are cosmetic; a different variable shape in another GX release must not fail a job.
    with contextlib.suppress(Exception):
        context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    return context


def validate(df: DataFrame, suite_name: str, expectations: list[Any]) -> SuiteOutcome:
    """Validate `df` against `expectations` (GX expectation objects); names must be unique per process."""
    import great_expectations as gx

    context = _context()
    datasource = context.data_sources.add_or_update_spark(name=f"ds_{suite_name}")
    asset = datasource.add_dataframe_asset(name=f"asset_{suite_name}")
    batch = asset.add_batch_definition_whole_dataframe(f"batch_{suite_name}")
    with contextlib.suppress(Exception):  # not there yet
        context.suites.delete(suite_name)
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
    for expectation in expectations:
        suite.add_expectation(expectation)
    with contextlib.suppress(Exception):  # not there yet
        context.validation_definitions.delete(f"vd_{suite_name}")
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"vd_{suite_name}", data=batch, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": df})
    outcomes = []
    for item in result.results:
        config = item.expectation_config
        res = item.result or {}
        outcomes.append(ExpectationOutcome(
            expectation=config.type,
            column=config.kwargs.get("column"),
            success=bool(item.success),
            unexpected_count=res.get("unexpected_count"),
            observed_value=res.get("observed_value"),
        ))
    return SuiteOutcome(suite_name, bool(result.success), tuple(outcomes))
