"""The landing contract's validation rules, declared once per table, and the GX suite built from them.

Why one declaration with two uses: ingest routes each row to `raw/` or `quarantine/` with Spark column
expressions built from these rules (fast, and it keeps file, line, field and reason), then runs the Great
Expectations suite built from the SAME rules on the accepted rows before publishing. If the routing ever
lets a bad row through, the GX gate fails the job and nothing is published.

Reasons, in the order they are checked for each row (the first failing check is the one recorded):
`wrong_field_count` / `unparseable_json` (the line), then per field in column order `missing_field`,
`bad_type`, `unknown_enum`, `out_of_window`, then the row rules `self_loop` and `invalid_range`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pyspark.sql.types import DataType, DateType, StructType, TimestampType

from mutuals.tables import EVENT_TYPES, LANDING_SCHEMAS

# How late a timestamped row may arrive: an event of day D-3 may land in the file of day D.
DEFAULT_ALLOWED_LATENESS_DAYS = 3


@dataclass(frozen=True)
class FieldRule:
    name: str
    data_type: DataType
    required: bool
    allowed: tuple[str, ...] | None = None
    in_day_window: bool = False  # timestamp must fall in [D - lateness, D + 1 day)


@dataclass(frozen=True)
class RowRule:
    reason: str
    field: str
    sql_violation: str  # a SQL predicate over typed columns that is TRUE for a bad row


@dataclass(frozen=True)
class LandingRules:
    table: str
    fields: tuple[FieldRule, ...]
    row_rules: tuple[RowRule, ...] = field(default_factory=tuple)

    @property
    def header(self) -> str:
        return ",".join(f.name for f in self.fields)


def _fields(schema: StructType, *, allowed: dict[str, tuple[str, ...]] | None = None,
            windowed: tuple[str, ...] = ()) -> tuple[FieldRule, ...]:
    allowed = allowed or {}
    return tuple(
        FieldRule(f.name, f.dataType, not f.nullable, allowed.get(f.name), f.name in windowed)
        for f in schema.fields
    )


RULES: dict[str, LandingRules] = {
    "members": LandingRules("members", _fields(LANDING_SCHEMAS["members"])),
    "connections": LandingRules(
        "connections",
        _fields(LANDING_SCHEMAS["connections"], windowed=("connected_at",)),
        (RowRule("self_loop", "dst", "src = dst"),),
    ),
    "positions": LandingRules(
        "positions", _fields(LANDING_SCHEMAS["positions"]),
        (RowRule("invalid_range", "end_date", "end_date IS NOT NULL AND end_date < start_date"),),
    ),
    "educations": LandingRules(
        "educations", _fields(LANDING_SCHEMAS["educations"]),
        (RowRule("invalid_range", "end_date", "end_date IS NOT NULL AND end_date < start_date"),),
    ),
    "events": LandingRules(
        "events", _fields(LANDING_SCHEMAS["events"], allowed={"event_type": EVENT_TYPES}, windowed=("ts",)),
    ),
    "experiment_assignments": LandingRules(
        "experiment_assignments", _fields(LANDING_SCHEMAS["experiment_assignments"], windowed=("assigned_at",)),
    ),
}


def day_window(ds: str, lateness_days: int) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the timestamps a file of day `ds` may carry."""
    day = dt.datetime.fromisoformat(ds)
    return day - dt.timedelta(days=lateness_days), day + dt.timedelta(days=1)


def gx_expectations(rules: LandingRules, ds: str, lateness_days: int) -> list:
    """The GX suite for accepted rows of one landing table and day."""
    import great_expectations.expectations as gxe

    start, end = day_window(ds, lateness_days)
    expectations: list = []
    for rule in rules.fields:
        if rule.required:
            expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=rule.name))
        if rule.allowed:
            expectations.append(gxe.ExpectColumnValuesToBeInSet(column=rule.name, value_set=list(rule.allowed)))
        if rule.in_day_window and isinstance(rule.data_type, TimestampType | DateType):
            expectations.append(gxe.ExpectColumnValuesToBeBetween(
                column=rule.name, min_value=start, max_value=end - dt.timedelta(microseconds=1)))
    return expectations
