"""Bench ingest's read of a landing day against Spark's own readers and DuckDB, in the same run.

    python -m bench.ingest --lake DIR [--date 2026-01-01] [--repeats 2] [--contenders ours,spark,duckdb]
    python -m bench.ingest --members 100000        (generates a seeded day into a temporary lake first)

What is timed is the read of every landing table of one day, the part of ingest whose cost grows with the
files (the GX gate and the Delta commits come after it):

- "ours": `spark_jobs.ingest.read_tables_at_once`, the job's own read: every line with its file and line
  number, field counts and UTF-8 checks, parsed, typed, routed to accepted or quarantined with a reason,
  cached and counted (every table at once, as the job reads them);
- "ours_lines": the first half of it, `ingestion.landing.read_lines` alone: every non-blank line with its
  file and line number, UTF-8 and header checks and CSV field counts, materialised (`noop` sink), before
  any parsing or routing;
- "spark": Spark's plain CSV and JSON readers over the same files with every field a string (no line
  numbers, no checks, no routing), every row materialised (`noop` sink), every table at once;
- "duckdb": DuckDB's `read_csv` / `read_json` over the same files, every field a string, every row
  materialised, on as many threads as Spark has cores.

The Spark contenders share one session. Every contender runs once untimed (its first run in the JVM
pays the compilation of its code paths; its time is reported as `cold_s`), then all alternate `--repeats`
times; each figure is the median of those. Prints one JSON document: landing bytes and rows, and per
contender seconds, MB/s and MB/s per core, plus ours' ratio to each baseline. These machines are noisy:
read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.pipeline import mutuals_command
from spark_jobs.ingest import READ_THREADS

CONTENDERS = ("ours", "ours_lines", "spark", "duckdb")
MB = 1_000_000


def landing_files(spark, lake: Path, ds: str) -> dict[str, list[str]]:
    """Table -> the data files of day `ds` that ingest reads, as its own listing spells them."""
    from ingestion.landing import landing_dir, list_files
    from mutuals.tables import LANDING_FORMATS

    return {table: list_files(spark, landing_dir(str(lake), table, ds), f".{fmt}")
            for table, fmt in LANDING_FORMATS.items()}


def local_path(listed: str) -> str:
    """A listed landing file as a local path (the listing gives `file:` URIs), for DuckDB and os."""
    return listed.removeprefix("file:")


def generate(members: int, lake: Path, ds: str) -> None:
    """One seeded landing day at `members` members, written by `mutuals generate` into `lake`."""
    command = [mutuals_command(), "generate", "--members", str(members), "--days", "1", "--start", ds,
               "--seed", "7", "--lake", str(lake)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def read_ours(spark, lake: Path, ds: str) -> int:
    from mutuals.lake import Lake
    from quality.landing_rules import DEFAULT_ALLOWED_LATENESS_DAYS
    from spark_jobs.ingest import read_tables_at_once

    args = argparse.Namespace(date=ds, lateness_days=DEFAULT_ALLOWED_LATENESS_DAYS)
    ingested = read_tables_at_once(spark, Lake(str(lake)), args)
    rows = sum(item.counts.rows_read for item in ingested)
    for item in ingested:
        item.cached.unpersist()
    return rows


def read_lines_only(spark, files: dict[str, list[str]]) -> int:
    from ingestion.landing import read_lines
    from mutuals.tables import LANDING_FORMATS
    from quality.landing_rules import RULES

    def one(table: str) -> int:
        header = RULES[table].header if LANDING_FORMATS[table] == "csv" else None
        lines = read_lines(spark, files[table], header).lines.persist()
        lines.write.format("noop").mode("overwrite").save()
        rows = lines.count()
        lines.unpersist()
        return rows

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        return sum(pool.map(one, files))


def read_spark(spark, files: dict[str, list[str]]) -> int:
    from pyspark.sql import functions as F

    from mutuals.tables import LANDING_FORMATS, LANDING_SCHEMAS

    def one(table: str) -> int:
        names = LANDING_SCHEMAS[table].fieldNames()
        ddl = ", ".join(f"`{n}` STRING" for n in names)
        if LANDING_FORMATS[table] == "csv":
            frame = spark.read.schema(ddl).option("header", True).option("mode", "PERMISSIVE").csv(files[table])
        else:
            frame = spark.read.schema(ddl).option("mode", "PERMISSIVE").json(files[table])
        frame.write.format("noop").mode("overwrite").save()
        return frame.select(F.count(F.lit(1))).first()[0]

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        return sum(pool.map(one, [t for t in files if files[t]]))


def read_duckdb(files: dict[str, list[str]], threads: int) -> int:
    import duckdb

    from mutuals.tables import LANDING_FORMATS, LANDING_SCHEMAS

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    rows = 0
    for table, paths in files.items():
        if not paths:
            continue
        paths = [local_path(p) for p in paths]
        names = LANDING_SCHEMAS[table].fieldNames()
        columns = "{" + ", ".join(f"'{n}': 'VARCHAR'" for n in names) + "}"
        source = (f"read_csv({paths!r}, header = true, columns = {columns}, ignore_errors = true)"
                  if LANDING_FORMATS[table] == "csv" else
                  f"read_json({paths!r}, format = 'newline_delimited', columns = {columns}, ignore_errors = true)")
        lengths = " + ".join(f"coalesce(length(\"{n}\"), 0)" for n in names)
        rows += con.execute(f"SELECT count(*), sum({lengths}) FROM {source}").fetchone()[0]
    return rows


def timed(read) -> tuple[float, int]:
    started = time.perf_counter()
    rows = read()
    return time.perf_counter() - started, rows


def figures(seconds: list[float], rows: int, total_bytes: int, cores: int) -> dict:
    median = statistics.median(seconds)
    rate = total_bytes / MB / median
    return {"seconds": round(median, 2), "runs_s": [round(s, 2) for s in seconds], "rows": rows,
            "mb_per_s": round(rate, 1), "mb_per_s_per_core": round(rate / cores, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", help="a lake with the day's landing files (default: generate one)")
    parser.add_argument("--members", type=int, default=100_000, help="members to generate without --lake")
    parser.add_argument("--date", default="2026-01-01")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds after the cold one")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    args = parser.parse_args(argv)
    contenders = [c for c in args.contenders.split(",") if c]
    unknown = set(contenders) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders: {sorted(unknown)}")

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as scratch:
        lake = Path(args.lake) if args.lake else Path(scratch) / "lake"
        if not args.lake:
            generate(args.members, lake, args.date)
        load_before = os.getloadavg()

        from mutuals.session import build_session

        spark = build_session("bench-ingest")
        cores = spark.sparkContext.defaultParallelism
        files = landing_files(spark, lake, args.date)
        total_bytes = sum(os.path.getsize(local_path(p)) for paths in files.values() for p in paths)
        report: dict = {"command": " ".join([Path(sys.executable).name, "-m", "bench.ingest", *(argv or sys.argv[1:])]),
                        "lake": str(lake), "date": args.date, "landing_mb": round(total_bytes / MB, 1),
                        "files": sum(len(p) for p in files.values()), "load_average_before": load_before,
                        "cores": cores}
        reads = {"ours": lambda: read_ours(spark, lake, args.date),
                 "ours_lines": lambda: read_lines_only(spark, files),
                 "spark": lambda: read_spark(spark, files),
                 "duckdb": lambda: read_duckdb(files, cores)}
        cold: dict[str, float] = {}
        runs: dict[str, list[float]] = {c: [] for c in contenders}
        rows: dict[str, int] = {}
        for round_number in range(args.repeats + 1):
            for contender in contenders:
                seconds, rows[contender] = timed(reads[contender])
                if round_number == 0:
                    cold[contender] = seconds
                else:
                    runs[contender].append(seconds)
                print(f"[bench.ingest] {contender}{' (cold)' if round_number == 0 else ''}: {seconds:.1f} s",
                      file=sys.stderr, flush=True)
        spark.stop()
        report["contenders"] = {c: {**figures(runs[c], rows[c], total_bytes, cores), "cold_s": round(cold[c], 2)}
                                for c in contenders}
        if "ours" in contenders:
            ours = report["contenders"]["ours"]["seconds"]
            report["ours_over"] = {c: round(ours / report["contenders"][c]["seconds"], 2)
                                   for c in contenders if c != "ours"}
        report["load_average_after"] = os.getloadavg()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
