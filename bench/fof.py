"""Bench `mutuals fof` against DuckDB SQL and the naive Spark self-join, in the same run.

    python -m bench.fof --graphs ego,pl100k [--contenders ours,duckdb,naive] [--naive-timeout 900]

Prints one JSON document: per graph its size and sum(deg^2) (the real cost driver), and per contender
wall time, peak RSS of the whole process tree (JVM and Python workers included: each contender runs as a
subprocess whose tree is polled with psutil), and the exact answer: rows, sum(common) and
checksum = sum((a*1000003 + c) * common) mod 2^61-1 in exact integers. A naive run that hits its timeout
is reported as a lower bound. Ratios (duckdb/ours, naive/ours) are what matter on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.process_tree import tree_rss

REPO = Path(__file__).resolve().parents[1]
EGO_FACEBOOK = REPO / "data" / "ego_facebook_edges.csv"
# pl290k is shaped like the held-out graph of the issue (about 37k members, one ~9k hub, ~290k edges).
POWER_LAW_SIZES = {"pl100k": 100_000, "pl290k": 290_000, "pl400k": 400_000, "pl1600k": 1_600_000}
CHECKSUM_MOD = 2**61 - 1
POLL_SECONDS = 0.05

DUCKDB_SQL = """
CREATE TABLE raw AS SELECT * FROM read_csv('{csv}', header = true, columns = {{'src': 'BIGINT', 'dst': 'BIGINT'}});
CREATE TABLE e AS SELECT DISTINCT src, dst FROM (SELECT src, dst FROM raw UNION ALL SELECT dst, src FROM raw)
    WHERE src <> dst;
COPY (
    WITH counted AS (
        SELECT e1.src AS member_id, e2.dst AS candidate_id, count(*)::INTEGER AS common_connections
        FROM e AS e1 JOIN e AS e2 ON e1.dst = e2.src
        WHERE e1.src <> e2.dst
        GROUP BY e1.src, e2.dst),
    open_pairs AS (
        SELECT c.* FROM counted AS c ANTI JOIN e ON e.src = c.member_id AND e.dst = c.candidate_id)
    SELECT member_id, candidate_id, common_connections FROM open_pairs
    QUALIFY row_number() OVER (PARTITION BY member_id ORDER BY common_connections DESC, candidate_id ASC) <= {k}
) TO '{out}/part-0.parquet' (FORMAT parquet);
"""


def run_duckdb(csv: str, top_k: int, out: str) -> None:
    import duckdb

    Path(out).mkdir(parents=True, exist_ok=True)
    duckdb.connect().execute(DUCKDB_SQL.format(csv=csv, k=top_k, out=out))


def run_naive(csv: str, top_k: int, out: str) -> None:
    from joins.naive import EDGE_SCHEMA, naive_close_triangles
    from mutuals.session import build_session

    spark = build_session("bench-naive-self-join")
    edges = spark.read.csv(csv, header=True, schema=EDGE_SCHEMA)
    edges.transform(naive_close_triangles(top_k)).write.mode("overwrite").parquet(out)


def contender_command(name: str, csv: Path, top_k: int, out: Path) -> list[str]:
    if name == "ours":
        return [sys.executable, "-m", "mutuals.cli", "fof", "--edges", str(csv), "--top-k", str(top_k),
                "--out", str(out)]
    return [sys.executable, "-m", "bench.fof", f"_{name}", str(csv), str(top_k), str(out)]


def measure(cmd: list[str], timeout: float) -> dict:
    """Wall time and peak tree RSS of one subprocess; its whole process group is killed on timeout."""
    started = time.monotonic()
    child = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    proc = psutil.Process(child.pid)
    peak, timed_out = 0, False
    while child.poll() is None:
        peak = max(peak, tree_rss(proc))
        if time.monotonic() - started > timeout:
            timed_out = True
            os.killpg(child.pid, signal.SIGKILL)
            break
        time.sleep(POLL_SECONDS)
    stdout, stderr = child.communicate()
    seconds = time.monotonic() - started
    result = {"seconds": round(seconds, 2), "peak_rss_mib": round(peak / 2**20, 1)}
    if timed_out:
        result.update(status="timeout", seconds_lower_bound=round(seconds, 2))
    elif child.returncode != 0:
        result.update(status="failed", stderr_tail=stderr[-1500:])
    else:
        result["status"] = "ok"
    return result


def answer_stats(out: Path) -> dict:
    """rows, sum(common) and the checksum, all exact (HUGEINT per row, reduced mod 2^61-1 per row)."""
    import duckdb

    row = duckdb.connect().execute(f"""
        SELECT count(*), sum(common_connections)::HUGEINT,
               sum((((member_id::HUGEINT * 1000003 + candidate_id) * common_connections) % {CHECKSUM_MOD}
                    + {CHECKSUM_MOD}) % {CHECKSUM_MOD})
        FROM read_parquet('{out}/*.parquet')""").fetchone()
    return {"rows": int(row[0]), "sum_common": int(row[1] or 0), "checksum": int(row[2] or 0) % CHECKSUM_MOD}


def graph_csv(name: str, workdir: Path) -> Path:
    if name == "ego":
        return EGO_FACEBOOK
    from bench.powerlaw import PowerLawSpec, power_law_edges, write_csv

    path = workdir / f"{name}.csv"
    if not path.exists():
        write_csv(path, *power_law_edges(PowerLawSpec(POWER_LAW_SIZES[name])))
    return path


def graph_stats(csv: Path) -> dict:
    import pyarrow.csv as pacsv

    from joins.csr import build_csr

    table = pacsv.read_csv(csv)
    csr = build_csr(table["src"].to_numpy(), table["dst"].to_numpy())
    deg = csr.degrees()
    return {"members": csr.n_nodes, "edges": csr.n_edges, "max_degree": int(deg.max()),
            "sum_deg_sq": int((deg.astype("int64") ** 2).sum())}


def bench_graph(name: str, contenders: list[str], top_k: int, naive_timeout: float, workdir: Path) -> dict:
    csv = graph_csv(name, workdir)
    report: dict = {"graph": name, "csv": str(csv), **graph_stats(csv), "contenders": {}}
    for contender in contenders:
        out = workdir / f"{name}-{contender}"
        timeout = naive_timeout if contender == "naive" else 3600
        result = measure(contender_command(contender, csv, top_k, out), timeout)
        if result["status"] == "ok":
            result.update(answer_stats(out))
        report["contenders"][contender] = result
        print(f"# {name} {contender}: {json.dumps(result)}", file=sys.stderr, flush=True)
    runs = report["contenders"]
    answers = {n: (r["rows"], r["sum_common"], r["checksum"]) for n, r in runs.items() if "checksum" in r}
    report["answers_agree"] = len(set(answers.values())) <= 1  # among the contenders that finished
    report["unfinished"] = sorted(n for n in runs if n not in answers)
    ours = runs.get("ours", {}).get("seconds")
    if ours:
        report["ratios"] = {f"{n}_time_over_ours": round(r["seconds"] / ours, 2)
                            for n, r in runs.items() if n != "ours"}
        report["ratios"].update({f"{n}_is_lower_bound": True for n, r in runs.items() if r["status"] == "timeout"})
    return report


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    internal = {"_duckdb": run_duckdb, "_naive": run_naive}
    if argv and argv[0] in internal:
        internal[argv[0]](argv[1], int(argv[2]), argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graphs", default="ego,pl100k", help=f"comma list of ego,{','.join(POWER_LAW_SIZES)}")
    parser.add_argument("--contenders", default="ours,duckdb,naive")
    parser.add_argument("--top-k", type=int, default=50)
    parser.add_argument("--naive-timeout", type=float, default=900.0)
    parser.add_argument("--workdir", type=Path, default=None, help="keeps generated graphs and outputs")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-fof-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report = {"top_k": args.top_k, "cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()[0],
              "graphs": [bench_graph(g, args.contenders.split(","), args.top_k, args.naive_timeout, workdir)
                         for g in args.graphs.split(",")]}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
