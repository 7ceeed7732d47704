"""One synthetic day of every daily job at a given size, with `mutuals fof` on the same graph as baseline.

    python -m bench.pipeline [--members 100000] [--lake DIR] [--jobs ingest,graph,...] [--timeout 3600]

Generates `--members` members for two days (`mutuals generate`, seeded), then runs each job of the daily
DAG (`mutuals.pipeline.JOB_ORDER`) for the first day, one `mutuals run JOB` process after another, exactly
as cron or an Airflow worker would. For each job it reports:

- `wall_s`: the process's wall time, start-up included;
- `peak_rss_mb`: the peak resident memory of the whole process tree (the Python driver, the JVM it starts,
  the Python workers), sampled every half second with psutil; the JVM is most of it and `time -v` on the
  Python process alone does not see it;
- `rows_in`, `rows_out`, `seconds`, `spark_start_s` from the job's own one-line JSON summary, and
  `spark_start_share` = spark_start_s / wall_s, the part of the job that is starting Spark, not work.

Baseline, in the same run: `mutuals fof` over the day's `graph/edges` exported as a CSV (the same
undirected graph the candidates job closes triangles on), so the candidates job's cost reads as a ratio to
bare triangle closing on this machine at this moment: `candidates_over_fof`.

Goals (printed beside the figures, judged on this machine): the whole day under 10 minutes, and each job
under 3 minutes. Memory and time depend on the machine and what else runs on it: the JSON records the
load average before and after and the number of cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from bench.process_tree import tree_rss
from mutuals.pipeline import JOB_ORDER

DAY_GOAL_S = 600.0
JOB_GOAL_S = 180.0
SAMPLE_S = 0.5


def mutuals_command() -> str:
    """The installed `mutuals` beside this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "mutuals"
    return str(beside) if beside.exists() else (shutil.which("mutuals") or "mutuals")


def run_measured(command: list[str], timeout_s: float, log: Path) -> dict:
    """Run `command`, its output to `log`; return exit code, wall time, peak tree RSS and its last JSON line."""
    started = time.monotonic()
    with log.open("w") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        watched = psutil.Process(child.pid)
        peak = 0
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, tree_rss(watched))
                stop.wait(SAMPLE_S)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            code = child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            for member in [*watched.children(recursive=True), watched]:
                member.kill()
            code = -9
        stop.set()
        sampler.join()
    return {"exit_code": code, "wall_s": round(time.monotonic() - started, 1),
            "peak_rss_mb": round(peak / 2**20), "summary": last_json_line(log)}


def last_json_line(log: Path) -> dict:
    for line in reversed(log.read_text(errors="replace").splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return {}


def export_edges(lake: Path, ds: str, out: Path) -> int:
    """graph/edges of `ds` as an `src,dst` CSV, each undirected edge once (src < dst); returns the count."""
    from deltalake import DeltaTable

    table = DeltaTable(str(lake / "graph" / "edges")).to_pyarrow_table(
        filters=[("ds", "=", ds)], columns=["src", "dst"])
    frame = table.to_pandas()
    frame = frame[frame["src"] < frame["dst"]].sort_values(["src", "dst"])
    frame.to_csv(out, index=False)
    return len(frame)


def job_row(job: str, measured: dict) -> dict:
    summary = measured["summary"]
    start = summary.get("spark_start_s")
    return {
        "job": job, "exit_code": measured["exit_code"], "wall_s": measured["wall_s"],
        "peak_rss_mb": measured["peak_rss_mb"], "seconds": summary.get("seconds"),
        "rows_in": summary.get("rows_in"), "rows_out": summary.get("rows_out"), "spark_start_s": start,
        "spark_start_share": round(start / measured["wall_s"], 3) if start and measured["wall_s"] else None,
        "under_goal": measured["exit_code"] == 0 and measured["wall_s"] < JOB_GOAL_S,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--start", default="2026-01-01", help="the day that is run (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--lake", default=None, help="lake folder (default: a new temporary folder, removed)")
    parser.add_argument("--jobs", default=",".join(JOB_ORDER), help="comma-separated, in run order")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per job, seconds")
    parser.add_argument("--no-fof", action="store_true", help="skip the mutuals fof baseline")
    parser.add_argument("--no-generate", action="store_true",
                        help="run the jobs on --lake as an earlier run left it (its landing files and the tables "
                             "of the jobs before --jobs), without generating it again")
    args = parser.parse_args(argv)

    owned = args.lake is None
    lake = Path(args.lake or tempfile.mkdtemp(prefix="bench-pipeline-")).resolve()
    logs = lake.parent / f"{lake.name}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    mutuals = mutuals_command()
    load_before = os.getloadavg()
    report: dict = {"bench": "pipeline", "members": args.members, "ds": args.start, "seed": args.seed,
                    "cores": os.cpu_count(), "command": " ".join([sys.executable, "-m", "bench.pipeline",
                                                                  *(argv if argv is not None else sys.argv[1:])]),
                    "goals": {"day_s": DAY_GOAL_S, "job_s": JOB_GOAL_S}, "logs": str(logs)}
    try:
        if args.no_generate:
            if args.lake is None or not (lake / "landing").is_dir():
                raise SystemExit(f"--no-generate needs a --lake with landing files, found none under {lake}")
            generated = {"exit_code": 0, "wall_s": 0.0, "peak_rss_mb": 0, "skipped": True}
        else:
            generated = run_measured([mutuals, "generate", "--lake", str(lake), "--start", args.start,
                                      "--days", "2", "--members", str(args.members), "--seed", str(args.seed)],
                                     args.timeout, logs / "generate.log")
        report["generate"] = {"exit_code": generated["exit_code"], "wall_s": generated["wall_s"],
                              "peak_rss_mb": generated["peak_rss_mb"]}
        if generated["exit_code"] != 0:
            raise SystemExit(f"generate failed, see {logs / 'generate.log'}")
        rows = []
        for job in [j for j in args.jobs.split(",") if j]:
            measured = run_measured([mutuals, "run", job, "--date", args.start, "--lake", str(lake)],
                                    args.timeout, logs / f"{job}.log")
            rows.append(job_row(job, measured))
            print(json.dumps({"progress": rows[-1]}), file=sys.stderr, flush=True)
            if measured["exit_code"] != 0:
                break
        report["jobs"] = rows
        report["day_wall_s"] = round(sum(r["wall_s"] for r in rows), 1)
        report["day_under_goal"] = report["day_wall_s"] < DAY_GOAL_S and all(r["exit_code"] == 0 for r in rows)
        report["every_job_under_goal"] = all(r["under_goal"] for r in rows)
        if not args.no_fof and (lake / "graph" / "edges").exists():
            csv = logs / "edges.csv"
            edges = export_edges(lake, args.start, csv)
            out = logs / "fof-out"
            fof = run_measured([mutuals, "fof", "--edges", str(csv), "--top-k", "100", "--out", str(out),
                                "--overwrite"], args.timeout, logs / "fof.log")
            report["baseline_fof"] = {"edges": edges, "exit_code": fof["exit_code"], "wall_s": fof["wall_s"],
                                      "peak_rss_mb": fof["peak_rss_mb"]}
            candidates = next((r for r in rows if r["job"] == "candidates"), None)
            if candidates and fof["exit_code"] == 0:
                report["candidates_over_fof"] = round(candidates["wall_s"] / fof["wall_s"], 2)
    finally:
        report["load_average"] = {"before": [round(x, 2) for x in load_before],
                                  "after": [round(x, 2) for x in os.getloadavg()]}
        print(json.dumps(report, indent=1))
        if owned:
            shutil.rmtree(lake, ignore_errors=True)
    return 0 if all(r["exit_code"] == 0 for r in report.get("jobs", [])) else 1


if __name__ == "__main__":
    sys.exit(main())
