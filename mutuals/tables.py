"""The table registry: every lake table's layer, name, schema and partitioning, declared once.

Why one registry: jobs, tests, quality suites and the push side all derive column lists from these
`StructType` constants, so a schema change is one edit and a mismatch fails loudly at write time
(see `mutuals.lake`). Every derived table is partitioned by `ds`, a YYYY-MM-DD string.

Each table also names its `writer`, the one job that writes it. A job publishes its day last, in
`meta/publications` (see `mutuals.lake`), and a reader of table T for day D asks for the publication of
T's writer for D: the registry is where "who must have run first" is written down.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

DS = "ds"


def _schema(*fields: tuple[str, DataType] | tuple[str, DataType, bool]) -> StructType:
    """Build a StructType; a field is nullable unless its third element says False."""
    return StructType([StructField(f[0], f[1], f[2] if len(f) > 2 else True) for f in fields])


@dataclass(frozen=True)
class TableSpec:
    layer: str
    name: str
    schema: StructType  # without the partition column
    partition_by: tuple[str, ...] = (DS,)
    writer: str | None = None  # the job that writes and publishes it (None: lake bookkeeping)
    # Leading columns whose min/max/null counts Delta keeps per file (None: Delta's default, 32). The
    # wide per-pair tables keep them for their (member_id, candidate_id) keys only: readers select them
    # by partition and member, and collecting statistics of every column cost about a fifth of the
    # write time of a 24-column table.
    stats_columns: int | None = None

    @property
    def key(self) -> str:
        return f"{self.layer}/{self.name}"

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.schema.fields]

    @property
    def full_schema(self) -> StructType:
        """The stored schema: data columns then the partition columns."""
        parts = [StructField(p, StringType(), False) for p in self.partition_by if p not in self.columns]
        return StructType(list(self.schema.fields) + parts)


# ---------------------------------------------------------------- landing contract (design.md)
MEMBERS = _schema(
    ("member_id", LongType(), False), ("industry", StringType()), ("region", StringType()),
    ("joined_on", DateType()),
)
CONNECTIONS = _schema(("src", LongType(), False), ("dst", LongType(), False), ("connected_at", TimestampType()))
POSITIONS = _schema(
    ("member_id", LongType(), False), ("company_id", LongType(), False),
    ("start_date", DateType(), False), ("end_date", DateType()),
)
EDUCATIONS = _schema(
    ("member_id", LongType(), False), ("school_id", LongType(), False),
    ("start_date", DateType(), False), ("end_date", DateType()),
)
EVENT_TYPES = ("impression", "click", "invite", "accept", "dismiss")
EVENTS = _schema(
    ("event_id", StringType(), False), ("member_id", LongType(), False), ("ts", TimestampType(), False),
    ("event_type", StringType(), False), ("candidate_id", LongType(), False), ("request_id", StringType()),
    ("surface", StringType()), ("position", IntegerType()), ("dwell_ms", LongType()),
)
EXPERIMENT_ASSIGNMENTS = _schema(
    ("member_id", LongType(), False), ("experiment", StringType(), False), ("variant", StringType(), False),
    ("assigned_at", TimestampType(), False),
)

# ---------------------------------------------------------------- quarantine
QUARANTINE = _schema(
    ("source_file", StringType(), False), ("line_number", LongType(), False), ("field", StringType()),
    ("reason", StringType(), False), ("raw_line", StringType()),
)
INGEST_COUNTS = _schema(
    ("table", StringType(), False), ("files", IntegerType(), False), ("rows_read", LongType(), False),
    ("rows_accepted", LongType(), False), ("rows_quarantined", LongType(), False),
)

# ---------------------------------------------------------------- graph
GRAPH_EDGES = _schema(("src", LongType(), False), ("dst", LongType(), False), ("connected_at", TimestampType()))
GRAPH_DEGREES = _schema(
    ("member_id", LongType(), False), ("degree", LongType(), False), ("is_hub", BooleanType(), False),
)

# ---------------------------------------------------------------- candidates and recs
SOURCES = ("triangle", "coworker", "schoolmate", "ppr")
CANDIDATE_PAIRS = _schema(
    ("member_id", LongType(), False), ("candidate_id", LongType(), False),
    ("sources", ArrayType(StringType(), False), False), ("common_connections", IntegerType(), False),
    ("coworker_overlap_days", IntegerType(), False), ("schoolmate_overlap_days", IntegerType(), False),
    ("ppr_score", DoubleType(), False),
)
RECS_TOPK = _schema(
    ("member_id", LongType(), False), ("candidate_id", LongType(), False), ("rank", IntegerType(), False),
    ("score", DoubleType(), False), ("sources", ArrayType(StringType(), False), False),
    ("common_connections", IntegerType(), False), ("coworker_overlap_days", IntegerType(), False),
    ("schoolmate_overlap_days", IntegerType(), False), ("ppr_score", DoubleType(), False),
    ("model_version", StringType(), False),
)

# ---------------------------------------------------------------- labels and training
LABEL_COLUMNS = _schema(
    ("clicked", BooleanType(), False), ("dwell_ms", LongType()), ("valid_click", BooleanType(), False),
    ("invited", BooleanType(), False), ("accepted", BooleanType(), False), ("dismissed", BooleanType(), False),
)
IMPRESSION_KEY = _schema(
    ("request_id", StringType()), ("member_id", LongType(), False), ("candidate_id", LongType(), False),
    ("impression_ts", TimestampType(), False), ("surface", StringType()), ("position", IntegerType()),
)
LABELS_IMPRESSIONS = StructType(
    IMPRESSION_KEY.fields + LABEL_COLUMNS.fields
    + [StructField("attributed_by", StringType()), StructField("provisional", BooleanType(), False)]
)
LABELS_UNATTRIBUTED = _schema(
    ("event_id", StringType(), False), ("member_id", LongType(), False), ("candidate_id", LongType(), False),
    ("event_type", StringType(), False), ("ts", TimestampType(), False), ("request_id", StringType()),
    ("reason", StringType(), False),
)

# ---------------------------------------------------------------- pair features (features/pairs)
# One row per row of candidates/pairs ds=D, everything as of D. Column names are a contract: tools outside
# this repo read them. Graph features come from the ds=D snapshot; adamic_adar and resource_allocation are
# float64 sums over the common neighbours z in ascending z order (exact and reproducible); jaccard is
# common / |N(a) u N(c)|. Source ranks are 1-based within each source (null when that source did not
# propose the pair). History covers the 28 days before D from labels/impressions (days_since_last_shown
# null when never shown; previously_dismissed false when never shown).
FEATURE_SOURCES = ("triangle", "coworker", "schoolmate", "ppr")
FEATURE_VALUES = _schema(
    ("common_connections", IntegerType()), ("adamic_adar", DoubleType()), ("resource_allocation", DoubleType()),
    ("jaccard", DoubleType()), ("member_degree", LongType()), ("candidate_degree", LongType()),
    ("coworker_overlap_days", IntegerType()), ("schoolmate_overlap_days", IntegerType()),
    ("ppr_score", DoubleType()), ("same_industry", BooleanType()), ("same_region", BooleanType()),
    ("sources", ArrayType(StringType(), False)),
    *((f"{source}_rank", IntegerType()) for source in FEATURE_SOURCES),
    ("shown_28d", IntegerType()), ("days_since_last_shown", IntegerType()), ("previously_dismissed", BooleanType()),
)
FEATURES_PAIRS = StructType(
    [StructField("member_id", LongType(), False), StructField("candidate_id", LongType(), False)]
    + FEATURE_VALUES.fields
)
# A labelled impression of day D with every feature of its pair from the newest published features/pairs
# partition before D (null features when the pair is not in it, or no partition precedes D).
TRAINING_SAMPLES = StructType(
    LABELS_IMPRESSIONS.fields
    + [StructField("features_ds", StringType()), StructField("feature_age_s", LongType())]
    + FEATURE_VALUES.fields
)

# ---------------------------------------------------------------- model registry (models/registry)
# One row per trained model version, partitioned by the training date; rows are never rewritten. A row with
# status "promoted" carries alias "champion": the champion as of day D is the newest promoted row with ds <= D
# (see `ranking.registry`). params, metrics and data_versions are JSON documents.
MODELS_REGISTRY = _schema(
    ("version", StringType(), False), ("label", StringType(), False), ("params", StringType(), False),
    ("metrics", StringType(), False), ("data_versions", StringType(), False), ("code_hash", StringType(), False),
    ("status", StringType(), False), ("alias", StringType()), ("reason", StringType(), False),
    ("eval_ds", StringType(), False), ("artifact", StringType(), False), ("created_at", TimestampType(), False),
)

# ---------------------------------------------------------------- daily report
# Long form: one row per (metric, dimension, dimension_value) of day D. `mature` is false while a label window
# the metric needs is still open; `small` marks figures under the minimum volume; `moved` marks a value
# outside the band of the same weekday's trailing values (null when not judged).
REPORTS_DAILY = _schema(
    ("metric", StringType(), False), ("dimension", StringType(), False), ("dimension_value", StringType(), False),
    ("numerator", DoubleType()), ("denominator", DoubleType()), ("value", DoubleType()),
    ("mature", BooleanType(), False), ("small", BooleanType(), False), ("moved", BooleanType()),
)

# ---------------------------------------------------------------- experiment report
# One row per (experiment, non-control variant, metric): lifts against the control, SRM, CUPED flag.
REPORTS_EXPERIMENTS = _schema(
    ("experiment", StringType(), False), ("variant", StringType(), False), ("metric", StringType(), False),
    ("units", LongType(), False), ("control_mean", DoubleType()), ("variant_mean", DoubleType()),
    ("absolute_estimate", DoubleType()), ("absolute_ci_low", DoubleType()), ("absolute_ci_high", DoubleType()),
    ("absolute_p_value", DoubleType()), ("relative_estimate", DoubleType()), ("relative_ci_low", DoubleType()),
    ("relative_ci_high", DoubleType()), ("relative_p_value", DoubleType()), ("p_value_adjusted", DoubleType()),
    ("srm_p_value", DoubleType()), ("srm_passed", BooleanType(), False), ("cuped", BooleanType(), False),
    ("trustworthy", BooleanType(), False),
)

# ---------------------------------------------------------------- lake bookkeeping
# Delta refuses NOT NULL inside arrays, so the element's fields are nullable; the lake always fills them.
PUBLISHED_TABLE = _schema(("table", StringType()), ("version", LongType()), ("rows", LongType()))
PUBLICATIONS = _schema(
    ("run_id", StringType(), False), ("tables", ArrayType(PUBLISHED_TABLE, False), False),
    ("published_at", TimestampType(), False),
)
JOB = "job"

LANDING_SCHEMAS: dict[str, StructType] = {
    "members": MEMBERS,
    "connections": CONNECTIONS,
    "positions": POSITIONS,
    "educations": EDUCATIONS,
    "events": EVENTS,
    "experiment_assignments": EXPERIMENT_ASSIGNMENTS,
}
LANDING_FORMATS: dict[str, str] = {
    "members": "csv", "connections": "csv", "positions": "csv", "educations": "csv",
    "events": "jsonl", "experiment_assignments": "jsonl",
}

PAIR_KEY_COLUMNS = 2  # member_id, candidate_id: the first columns of every per-pair table

_SPECS = [
    *(TableSpec("raw", name, schema, writer="ingest") for name, schema in LANDING_SCHEMAS.items()),
    *(TableSpec("quarantine", name, QUARANTINE, writer="ingest") for name in LANDING_SCHEMAS),
    TableSpec("quarantine", "ingest_counts", INGEST_COUNTS, writer="ingest"),
    TableSpec("graph", "edges", GRAPH_EDGES, writer="graph"),
    TableSpec("graph", "degrees", GRAPH_DEGREES, writer="graph"),
    TableSpec("candidates", "pairs", CANDIDATE_PAIRS, writer="candidates", stats_columns=PAIR_KEY_COLUMNS),
    TableSpec("features", "pairs", FEATURES_PAIRS, writer="features", stats_columns=PAIR_KEY_COLUMNS),
    TableSpec("recs", "topk", RECS_TOPK, writer="recs", stats_columns=PAIR_KEY_COLUMNS),
    TableSpec("labels", "impressions", LABELS_IMPRESSIONS, writer="labels"),
    TableSpec("labels", "unattributed", LABELS_UNATTRIBUTED, writer="labels"),
    TableSpec("training", "samples", TRAINING_SAMPLES, writer="samples"),
    TableSpec("reports", "daily", REPORTS_DAILY, writer="daily_report"),
    TableSpec("reports", "experiments", REPORTS_EXPERIMENTS, writer="experiment_report"),
    TableSpec("models", "registry", MODELS_REGISTRY, writer="train"),
    TableSpec("meta", "publications", PUBLICATIONS, partition_by=(JOB, DS)),
]
TABLES: dict[str, TableSpec] = {spec.key: spec for spec in _SPECS}


class UnknownTable(KeyError):
    """A table key that is not in the registry."""


def spec(key: str) -> TableSpec:
    """Look up `layer/name`; the error lists what is registered."""
    try:
        return TABLES[key]
    except KeyError:
        raise UnknownTable(f"unknown table {key!r}; registered: {sorted(TABLES)}") from None


def tables_written_by(job: str) -> list[str]:
    """The keys a job writes, in registry order: what its publication must list."""
    return [key for key, table in TABLES.items() if table.writer == job]
