"""Bench the co-worker / schoolmate kernel against the plain Spark pair join, in the same run.

    python -m bench.economic [--members 60000] [--hub-company 15000] [--hub-school 12000]
                             [--contenders kernel,naive] [--naive-timeout 900] [--top-k 100]

Builds seeded careers (numpy, no Spark): one company with `--hub-company` positions, one school with
`--hub-school` educations, and a Zipf long tail of companies and schools (whose head is large too, as in
the generator's lakes), plus a random friendship graph with extra edges inside the big company. Each
contender runs `joins.economic.overlap_candidates` for companies and for schools as a subprocess and writes
Parquet: "kernel" is the job's default (organisations above the hub threshold through the kernel),
"naive" the plain equi-join on the organisation for every organisation (every overlapping pair a row).

Prints one JSON document: data sizes (stints, the largest organisations, sum over organisations of
stints^2, the comparison count a pair join faces), and per contender wall time, peak RSS of its process
tree, the longest task and the task that read the most records (polled from the Spark UI's REST API while
it runs, so a run killed at its timeout still reports its straggler), and the exact answer: rows,
sum(overlap_days) and checksum = sum((member*1000003 + candidate) * days) mod 2^61-1. A run that hits its
timeout is reported as a lower bound.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from bench.process_tree import tree_rss

REPO = Path(__file__).resolve().parents[1]
AS_OF = "2026-01-01"
CHECKSUM_MOD = 2**61 - 1
POLL_SECONDS = 0.1
UI_POLL_SECONDS = 3.0
KINDS = {"coworkers": ("positions", "company_id"), "schoolmates": ("educations", "school_id")}


# ---------------------------------------------------------------- data


def _zipf_choice(rng: np.random.Generator, n_orgs: int, size: int, first_id: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, n_orgs + 1) ** 0.9
    return first_id + rng.choice(n_orgs, size=size, p=weights / weights.sum())


def _records(member, org, start, end, org_column: str) -> pa.Table:
    """Careers as landing-like records: day numbers become dates, end -1 becomes a null (open-ended)."""
    def dates(days: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
        return pa.array(days.astype(np.int32), pa.int32(), mask=mask).cast(pa.date32())

    return pa.table({
        "member_id": pa.array(member, pa.int64()), org_column: pa.array(org, pa.int64()),
        "start_date": dates(start), "end_date": dates(np.maximum(end, 0), mask=end < 0),
    })


def build_careers(workdir: Path, members: int, hub_company: int, hub_school: int, seed: int) -> dict:
    """Positions, educations and edges as Parquet under workdir; returns their sizes."""
    rng = np.random.default_rng(seed)
    today = (dt.date.fromisoformat(AS_OF) - dt.date(1970, 1, 1)).days
    counts = 1 + rng.binomial(2, 0.4, members)
    member = np.repeat(np.arange(members, dtype=np.int64), counts)
    n = member.shape[0]
    start = today - rng.integers(0, 4000, n)
    end = start + (60 + rng.exponential(900.0, n)).astype(np.int64)
    end = np.where(rng.random(n) < 0.3, -1, np.minimum(end, today))  # -1: open-ended (null)
    company = _zipf_choice(rng, max(1, members // 20), n, first_id=1)
    company[rng.choice(n, size=min(hub_company, n), replace=False)] = 0
    positions = _records(member, company, start, end, "company_id")

    degrees = 1 + (rng.random(members) < 0.2)
    student = np.repeat(np.arange(members, dtype=np.int64), degrees)
    m = student.shape[0]
    edu_start = today - rng.integers(1000, 8000, m)
    edu_end = np.where(rng.random(m) < 0.05, -1, edu_start + rng.integers(365, 1500, m))
    school = _zipf_choice(rng, max(1, members // 100), m, first_id=1)
    school[rng.choice(m, size=min(hub_school, m), replace=False)] = 0
    educations = _records(student, school, edu_start, edu_end, "school_id")

    random_pairs = rng.integers(0, members, (4 * members, 2))
    hub_members = np.unique(member[company == 0])
    inside_hub = rng.choice(hub_members, (2 * hub_members.shape[0], 2))
    pairs = np.concatenate((random_pairs, inside_hub))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    pairs = np.unique(np.sort(pairs, axis=1), axis=0)
    src, dst = np.concatenate((pairs[:, 0], pairs[:, 1])), np.concatenate((pairs[:, 1], pairs[:, 0]))
    edges = pa.table({"src": pa.array(src, pa.int64()), "dst": pa.array(dst, pa.int64())})

    for name, table in (("positions", positions), ("educations", educations), ("edges", edges)):
        pq.write_table(table, workdir / f"{name}.parquet")
    sizes: dict = {"members": members, "edges": int(src.shape[0])}
    for name, org in (("positions", company), ("educations", school)):
        per_org = np.bincount(org)
        sizes[name] = {"stints": int(org.shape[0]), "organisations": int((per_org > 0).sum()),
                       "largest": np.sort(per_org)[::-1][:4].tolist(),
                       "sum_stints_squared": int((per_org.astype(np.int64) ** 2).sum())}
    return sizes


# ---------------------------------------------------------------- contenders


def run_contender(name: str, workdir: str, top_k: int, ui_port: int) -> None:
    """Subprocess body: read the careers, run one strategy for companies and schools, write Parquet."""
    from joins.economic import overlap_candidates
    from mutuals.session import build_session

    spark = build_session(f"bench-economic-{name}", conf={"spark.ui.enabled": "true",
                                                          "spark.ui.port": str(ui_port)})
    edges = spark.read.parquet(f"{workdir}/edges.parquet")
    strategy = {"strategy": "naive"} if name == "naive" else {}
    for kind, (table, org_column) in KINDS.items():
        records = spark.read.parquet(f"{workdir}/{table}.parquet")
        rows = records.transform(overlap_candidates(org_column, AS_OF, top_k, edges, **strategy))
        rows.write.mode("overwrite").parquet(f"{workdir}/out-{name}/{kind}")
    spark.stop()


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def poll_task_peaks(ui: str, peaks: dict) -> None:
    """Update peaks with the longest task and the task that read the most records, running ones included."""
    with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
        app = _get(f"{ui}/api/v1/applications")[0]["id"]
        now_ms = time.time() * 1000
        for stage in _get(f"{ui}/api/v1/applications/{app}/stages?status=active&status=complete"):
            base = f"{ui}/api/v1/applications/{app}/stages/{stage['stageId']}/{stage['attemptId']}"
            peaks["stages"] = max(peaks.get("stages", 0), stage["stageId"] + 1)
            for task in _get(f"{base}/taskList?length=200&sortBy=-runtime"):
                launched = dt.datetime.strptime(task["launchTime"][:23], "%Y-%m-%dT%H:%M:%S.%f")
                launched_ms = launched.replace(tzinfo=dt.UTC).timestamp() * 1000
                seconds = (task.get("duration") or (now_ms - launched_ms)) / 1000
                metrics = task.get("taskMetrics") or {}
                records = (metrics.get("shuffleReadMetrics", {}).get("recordsRead", 0)
                           + metrics.get("inputMetrics", {}).get("recordsRead", 0))
                where = {"stage": stage["stageId"], "stage_tasks": stage["numTasks"], "status": task["status"]}
                if seconds > peaks.get("longest_task", {}).get("seconds", -1):
                    peaks["longest_task"] = {"seconds": round(seconds, 1), "records_read": records, **where}
                if records > peaks.get("largest_task", {}).get("records_read", -1):
                    peaks["largest_task"] = {"records_read": records, "seconds": round(seconds, 1), **where}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(name: str, workdir: Path, top_k: int, timeout: float) -> dict:
    """Wall time, peak tree RSS and task peaks of one contender; its process group is killed on timeout."""
    port = free_port()
    cmd = [sys.executable, "-m", "bench.economic", "_run", name, str(workdir), str(top_k), str(port)]
    started = time.monotonic()
    child = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True, env={**os.environ, "MUTUALS_SPARK_UI": "true"})
    proc = psutil.Process(child.pid)
    peak, timed_out, peaks, last_ui_poll = 0, False, {}, 0.0
    while child.poll() is None:
        peak = max(peak, tree_rss(proc))
        if time.monotonic() - last_ui_poll > UI_POLL_SECONDS:
            poll_task_peaks(f"http://127.0.0.1:{port}", peaks)
            last_ui_poll = time.monotonic()
        if time.monotonic() - started > timeout:
            timed_out = True
            os.killpg(child.pid, signal.SIGKILL)
            break
        time.sleep(POLL_SECONDS)
    _, stderr = child.communicate()
    seconds = time.monotonic() - started
    result = {"seconds": round(seconds, 1), "peak_rss_mib": round(peak / 2**20, 1), **peaks}
    if timed_out:
        result.update(status="timeout", seconds_lower_bound=round(seconds, 1))
    elif child.returncode != 0:
        result.update(status="failed", stderr_tail=stderr[-1500:])
    else:
        result["status"] = "ok"
    return result


def answer_stats(out: Path) -> dict:
    """Per kind: rows, sum(overlap_days) and the checksum, in exact integers."""
    stats = {}
    for kind in KINDS:
        table = pq.read_table(out / kind)
        member = table["member_id"].to_numpy().astype(object)
        candidate = table["candidate_id"].to_numpy().astype(object)
        days = table["overlap_days"].to_numpy().astype(object)
        checksum = int(sum(((member * 1000003 + candidate) * days) % CHECKSUM_MOD)) % CHECKSUM_MOD \
            if table.num_rows else 0
        stats[kind] = {"rows": table.num_rows, "sum_days": int(days.sum()) if table.num_rows else 0,
                       "checksum": checksum}
    return stats


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_run":
        run_contender(argv[1], argv[2], int(argv[3]), int(argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=60_000)
    parser.add_argument("--hub-company", type=int, default=15_000)
    parser.add_argument("--hub-school", type=int, default=12_000)
    parser.add_argument("--contenders", default="kernel,naive")
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--naive-timeout", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-economic-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report: dict = {"top_k": args.top_k, "as_of": AS_OF, "cpus": os.cpu_count(),
                    "load_avg_at_start": round(os.getloadavg()[0], 1),
                    "data": build_careers(workdir, args.members, args.hub_company, args.hub_school, args.seed),
                    "contenders": {}}
    for name in args.contenders.split(","):
        timeout = args.naive_timeout if name == "naive" else 3600.0
        result = measure(name, workdir, args.top_k, timeout)
        if result["status"] == "ok":
            result["answer"] = answer_stats(workdir / f"out-{name}")
        report["contenders"][name] = result
        print(f"# {name}: {json.dumps(result)}", file=sys.stderr, flush=True)
    runs = report["contenders"]
    answers = {n: json.dumps(r["answer"], sort_keys=True) for n, r in runs.items() if "answer" in r}
    report["answers_agree"] = len(set(answers.values())) <= 1
    report["unfinished"] = sorted(n for n in runs if n not in answers)
    if runs.get("kernel", {}).get("status") == "ok":
        kernel = runs["kernel"]["seconds"]
        report["ratios"] = {f"{n}_time_over_kernel": round(r["seconds"] / kernel, 2)
                            for n, r in runs.items() if n != "kernel"}
        report["ratios"].update({f"{n}_is_lower_bound": True for n, r in runs.items() if r["status"] == "timeout"})
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
