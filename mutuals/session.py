"""One Spark session factory for every job, test and benchmark.

Why one factory: the Delta extension, UTC, AQE and the `ds`-stays-a-string setting must be
identical everywhere, or a table written by a job reads differently in a test.

Where the master comes from, in order:
1. the `master` argument (a job's `--master`);
2. launched by `spark-submit` (PYSPARK_GATEWAY_PORT is set): whatever spark-submit was given;
3. the active profile's (`mutuals.profiles`): `local[*]` for `local`; none for `cluster`, whose master
   comes from spark-submit or Spark's own defaults.

A driver JVM started here on a local or standalone master maps Spark's classes from a class-data-sharing archive that
`make setup` dumps (`mutuals.class_archive`), which takes about 4 s off starting Spark and about 5 s
off the first Delta read and write of every job, test session and `mutuals run` process.

The Spark UI is on for jobs (port 4040, or the next free one) and off when `$MUTUALS_SPARK_UI=false`.

Extra conf comes from the `conf` argument and from `$MUTUALS_SPARK_CONF` ("k=v,k=v"), so a cluster run
changes no code.

Which Python the workers run, as spark-submit ranks them: `spark.pyspark.python` given through `conf` or
`$MUTUALS_SPARK_CONF`, else `$PYSPARK_PYTHON` (spark-submit exports it from its own `spark.pyspark.python`),
else the driver's own interpreter. PySpark's fallback is the first `python3` on PATH, which outside the
venv has neither pyarrow nor numba, so every Python UDF and mapInArrow task would die. On a cluster whose
nodes do not have the driver's interpreter at the same path, set `spark.pyspark.python` (a shipped venv).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path

from pyspark.sql import SparkSession

from mutuals.profiles import Profile, active_profile

REPO_ROOT = Path(__file__).resolve().parents[1]
PYSPARK_PYTHON_ENV = "PYSPARK_PYTHON"
PYSPARK_PYTHON_CONF = "spark.pyspark.python"

DELTA_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

BASE_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    # Adaptive coalescing aims at 16 MB per shuffle partition, not Spark's 64 MB: candidate and feature
    # rows are narrow (about 11 bytes each, compressed) and costly per row, and 64 MB made a 15M-row
    # join of the candidates job run as 4 tasks of 30 s on 2 cores, one core idle for the last of them.
    "spark.sql.adaptive.advisoryPartitionSizeInBytes": "16m",
    # `ds` is a YYYY-MM-DD string by contract; without this Spark infers a date when reading by path.
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Progress goes out as plain lines (mutuals.progress), never the carriage-return bar.
    "spark.ui.showConsoleProgress": "false",
    "spark.databricks.delta.snapshotPartitions": "2",
}
DRIVER_MEMORY = "spark.driver.memory"
DRIVER_JAVA_OPTIONS = "spark.driver.extraJavaOptions"
CLIENT_DRIVER_MEMORY_GIB = 4
LOCAL_DRIVER_MEMORY_GIB = (4, 16)  # a third of the machine's memory, within these bounds


def jars_dir() -> Path:
    """Folder holding the delta-spark jars fetched by `make setup` (pom.xml)."""
    return Path(os.environ.get("MUTUALS_JARS_DIR", REPO_ROOT / ".jars"))


def delta_jars() -> list[str]:
    folder = jars_dir()
    return sorted(str(p) for p in folder.glob("*.jar")) if folder.is_dir() else []


SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"
SHUFFLE_PARTITIONS_PER_CORE = 8
MIN_SHUFFLE_PARTITIONS = 16


def default_shuffle_partitions(parallelism: int) -> int:
    """Enough shuffle partitions that a 100k-member day's largest aggregation (25M candidate pairs, 2 GiB
    of shuffle) keeps its hash map in memory instead of falling back to sorting and spilling; adaptive
    execution coalesces the small shuffles of small days back into a few tasks."""
    return max(MIN_SHUFFLE_PARTITIONS, SHUFFLE_PARTITIONS_PER_CORE * max(1, parallelism))


# The rows per shuffle partition of the jobs that carry candidate pairs at the 100k-member operating point
# (25M pairs in 16 partitions): about what one task's hash aggregation holds in memory.
PAIRS_PER_SHUFFLE_PARTITION = 2_000_000


def fit_shuffle_partitions(spark: SparkSession, rows: int, rows_per_partition: int = PAIRS_PER_SHUFFLE_PARTITION
                           ) -> int:
    """Raise the session's shuffle partition count to ceil(rows / rows_per_partition) when that is more,
    and return the count. Call it before building any plan: every by-member repartition reads it.

    Why: a fixed count made each task of a 1M-member day aggregate ten times the rows of a 100k day; the
    hash aggregation spilled hundreds of times and the merge of its spill files ran out of heap. Small
    days keep the session's count (adaptive execution coalesces what is too small). A count set at
    launch (`--conf spark.sql.shuffle.partitions=N`, `$MUTUALS_SPARK_CONF`) is never changed."""
    current = shuffle_partitions(spark)
    if spark.sparkContext.getConf().contains(SHUFFLE_PARTITIONS):
        return current
    wanted = -(-max(0, rows) // max(1, rows_per_partition))
    if wanted > current:
        spark.conf.set(SHUFFLE_PARTITIONS, str(wanted))
        return wanted
    return current


def shuffle_partitions(spark: SparkSession) -> int:
    """The session's shuffle partition count: the one number of partitions that every by-member
    repartition of a job uses, so that Spark sees the rows already placed for each later join or
    aggregation keyed on the member and shuffles them only once."""
    return int(spark.conf.get(SHUFFLE_PARTITIONS))


def machine_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def driver_memory(master: str | None, machine_bytes: int) -> str:
    """The driver heap. Under local[*] every task runs in the driver's JVM, so it gets a third of the
    machine (at least 4 GiB, at most 16): with 4 GiB a 100k-member day's merge of 25M candidate pairs ran
    out of execution memory, fell back to sorting and spilled 3.6 GB. A cluster driver only plans."""
    if master is None or not master.startswith("local"):
        return f"{CLIENT_DRIVER_MEMORY_GIB}g"
    low, high = LOCAL_DRIVER_MEMORY_GIB
    return f"{min(high, max(low, machine_bytes // 3 // 2**30))}g"


UI_ENV = "MUTUALS_SPARK_UI"


def ui_enabled() -> str:
    """The Spark UI is on (reachable while a job runs) unless `$MUTUALS_SPARK_UI` is false; tests turn it off."""
    return "false" if os.environ.get(UI_ENV, "true").strip().lower() in {"0", "false", "no", "off"} else "true"


def _env_conf() -> dict[str, str]:
    raw = os.environ.get("MUTUALS_SPARK_CONF", "")
    pairs = (item.split("=", 1) for item in raw.split(",") if "=" in item)
    return {k.strip(): v.strip() for k, v in pairs}


CLASS_ARCHIVE_NAME = "spark-classes.jsa"
LOG_CONFIG_NAME = "log4j2.properties"
SPARK_CONF_DIR_ENV = "SPARK_CONF_DIR"
NO_SPARK_CONF_DIR = "no-spark-conf-dir"
CLASS_SHARING_MASTERS = ("local", "spark://")
QUIET_CDS_LOGGING = "-Xlog:cds=off -Xlog:cds+dynamic=off"


def class_archive() -> Path:
    """The JVM class-data-sharing archive of Spark's and Delta's classes, beside the jars."""
    return jars_dir() / CLASS_ARCHIVE_NAME


def spark_conf_dir() -> Path:
    """The venv's Spark conf folder, where `mutuals.install` writes spark-defaults.conf and the log settings."""
    import pyspark

    return Path(pyspark.__file__).parent / "conf"


def spark_log_config() -> Path:
    """The log4j2 settings `mutuals.install` writes into the venv's Spark conf folder."""
    return spark_conf_dir() / LOG_CONFIG_NAME


def class_sharing_options(master: str | None, archive_option: str) -> str | None:
    """Java options that let the driver JVM about to start use (or dump) the class archive, or None.

    Only for a local or standalone (`spark://`) master and a `$SPARK_CONF_DIR` the user has not set (YARN
    and Kubernetes deployments keep their conf folder, as does a master left to spark-submit's or Spark's
    defaults): the JVM refuses a class path holding a non-empty folder, and spark-submit puts the Spark
    conf folder first on it, so the JVM is launched with `$SPARK_CONF_DIR` pointing at a folder that does
    not exist (`without_spark_conf_dir`).
    Nothing is lost there: this session passes every setting of the venv's spark-defaults.conf itself, and
    the log settings beside it are named by `-Dlog4j2.configurationFile`. An archive that does not match
    this JVM and class path (a reinstalled jar, another Java) is ignored by the JVM, which then loads every
    class as usual.
    """
    if master is None or not master.startswith(CLASS_SHARING_MASTERS) or os.environ.get(SPARK_CONF_DIR_ENV):
        return None
    log_config = spark_log_config()
    logging = f"-Dlog4j2.configurationFile={log_config} " if log_config.exists() else ""
    return f"{logging}{archive_option} {QUIET_CDS_LOGGING}"


THROUGHPUT_GC = "-XX:+UseParallelGC"


def local_gc_options(master: str | None, java_options: str) -> str | None:
    """The garbage collector for a driver that runs every task itself (a local master), or None.

    Why the throughput collector: a local driver is a batch process on a few cores, where G1's concurrent
    threads and write barriers take cores from the tasks; on this 2-core machine the recs job at 100k
    members ran 10% faster with it (A/B, same lake). Pause times do not matter to a batch job. A cluster
    driver only plans, and executors keep their own settings; options that already choose a collector
    win (the JVM refuses two)."""
    if master is None or not master.startswith("local") or re.search(r"-XX:\+Use\w*GC\b", java_options):
        return None
    return THROUGHPUT_GC


def add_java_options(merged: dict[str, str], options: str) -> None:
    merged[DRIVER_JAVA_OPTIONS] = f"{merged.get(DRIVER_JAVA_OPTIONS, '')} {options}".strip()


@contextmanager
def without_spark_conf_dir() -> Iterator[None]:
    """`$SPARK_CONF_DIR` names a missing folder while PySpark launches the JVM, and is unset again after,
    so spark-submit processes this one starts later still read the venv's spark-defaults.conf."""
    os.environ[SPARK_CONF_DIR_ENV] = str(jars_dir() / NO_SPARK_CONF_DIR)
    try:
        yield
    finally:
        os.environ.pop(SPARK_CONF_DIR_ENV, None)


@contextmanager
def sql_conf(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """Runtime SQL settings for the length of a block; what was there before (or nothing) comes back."""
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def launched_by_spark_submit() -> bool:
    return "PYSPARK_GATEWAY_PORT" in os.environ


def worker_python(conf: Mapping[str, str]) -> str:
    """The interpreter Python workers start: the user's choice if any, else the driver's own."""
    return conf.get(PYSPARK_PYTHON_CONF) or os.environ.get(PYSPARK_PYTHON_ENV) or sys.executable


def pin_worker_python(conf: Mapping[str, str]) -> str:
    """Export the worker interpreter before the SparkContext exists, the only point where PySpark reads it.

    PySpark takes the workers' interpreter from `$PYSPARK_PYTHON` when the context is created and never
    from `spark.pyspark.python` (only spark-submit turns that setting into the variable), so both are set.
    """
    python = worker_python(conf)
    os.environ[PYSPARK_PYTHON_ENV] = python
    return python


def master_for(master: str | None, profile: Profile) -> str | None:
    """The master to set on the builder, or None to leave it to spark-submit or Spark's defaults."""
    if master:
        return master
    if launched_by_spark_submit():
        return None
    return profile.master


def build_session(
    app_name: str = "mutuals",
    master: str | None = None,
    conf: Mapping[str, str] | None = None,
    profile: Profile | None = None,
    dump_classes_to: Path | None = None,
) -> SparkSession:
    """Return the (shared) Spark session, configured for Delta and the lake contracts.

    An already active session is returned as it is: static settings (jars, master) cannot change once the
    JVM runs, so several jobs in one process (the demo, the tests) share the first session's settings.
    `dump_classes_to` makes the JVM write the class archive there when it exits (`mutuals.class_archive`).
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(app_name)
    chosen = master_for(master, profile or active_profile())
    if chosen:
        builder = builder.master(chosen)
    merged = {**BASE_CONF, **DELTA_CONF, "spark.ui.enabled": ui_enabled(),
              DRIVER_MEMORY: driver_memory(chosen, machine_memory_bytes())}
    jars = delta_jars()
    if jars and not launched_by_spark_submit():
        merged["spark.jars"] = ",".join(jars)
    merged.update(_env_conf())
    merged.update(conf or {})
    merged[PYSPARK_PYTHON_CONF] = pin_worker_python(merged)
    gc = local_gc_options(chosen, merged.get(DRIVER_JAVA_OPTIONS, ""))
    if gc and not launched_by_spark_submit():
        add_java_options(merged, gc)
    archive, archive_option = class_archive(), None
    if dump_classes_to is not None:
        archive_option = f"-XX:ArchiveClassesAtExit={dump_classes_to}"
    elif archive.exists() and not launched_by_spark_submit():
        archive_option = f"-XX:SharedArchiveFile={archive}"
    sharing = class_sharing_options(chosen, archive_option) if archive_option else None
    if sharing:
        add_java_options(merged, sharing)
    for key, value in merged.items():
        builder = builder.config(key, value)
    with without_spark_conf_dir() if sharing else nullcontext():
        spark = builder.getOrCreate()
    if not spark.sparkContext.getConf().contains(SHUFFLE_PARTITIONS):  # a --conf or MUTUALS_SPARK_CONF wins
        spark.conf.set(SHUFFLE_PARTITIONS, str(default_shuffle_partitions(spark.sparkContext.defaultParallelism)))
    spark.sparkContext.setLogLevel(os.environ.get("MUTUALS_SPARK_LOG_LEVEL", "ERROR"))
    return spark
