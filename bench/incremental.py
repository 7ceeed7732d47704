"""Incremental against full triangle closing on seeded power-law graphs, in the same run.

Day two is the whole seeded power-law graph (bench.powerlaw, Chung-Lu with a planted hub); day one is
that graph with a seeded random share of its edges held back, so the held-back edges are the day's new
connections and they follow the same degree distribution as the rest. For each size and share:

- D-1's top K is made by the full kernel (not timed: it is yesterday's published output);
- full: build D's CSR and close every member's triangles (joins.incremental.full_top_k: the full run's
  kernel and wedge-balanced plan, on one core);
- incremental: build D's CSR, find the delta by looking D-1's edges up in it, recompute / merge
  (joins.incremental);
- the two outputs are compared array for array (sha256 of member, candidate and common columns).

The full side is timed again right before each incremental side, so both see about the same load
from whatever else shares the machine. Each side runs in its own spawned process, so its peak memory
(VmHWM, the process's peak resident set, inputs included) is its own and neither reuses the other's
warm caches; numba kernels are warmed on a tiny graph before the clock starts. One core per side: the
ratio, not Spark's parallelism, is measured.

    .venv/bin/python -m bench.incremental --edges 1600000,10000000 --shares 0.001,0.01,0.05
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from bench.powerlaw import PowerLawSpec, power_law_edges

HOLD_BACK_SEED = 15


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _digest(rows) -> str:
    sha = hashlib.sha256()
    for column in (rows.member, rows.candidate, rows.common):
        sha.update(np.ascontiguousarray(column).tobytes())
    return sha.hexdigest()


def _warm() -> None:
    from joins.csr import build_csr
    from joins.incremental import full_top_k, incremental_top_k

    small = build_csr(np.array([1, 2, 3, 1]), np.array([2, 3, 4, 5]))
    bigger = build_csr(np.array([1, 2, 3, 1, 4]), np.array([2, 3, 4, 5, 6]))
    incremental_top_k(np.array([1, 2, 3, 1]), np.array([2, 3, 4, 5]), bigger, full_top_k(small, 2), 2)


def _run_side(side: str, work: str, share: float, k: int) -> dict:
    """One timed side in a fresh process: 'prev' (D-1's rows, saved), 'full' or 'incremental'."""
    from joins.csr import build_csr
    from joins.incremental import TopKRows, full_top_k, incremental_top_k

    _warm()
    folder = Path(work)
    src, dst = np.load(folder / "src.npy"), np.load(folder / "dst.npy")
    if side == "full":
        started = time.perf_counter()
        rows = full_top_k(build_csr(src, dst), k)
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "rows": rows.size, "sha256": _digest(rows), "peak_rss_mb": _peak_rss_mb()}
    held = np.load(folder / f"held_{share}.npy")
    if side == "prev":
        rows = full_top_k(build_csr(src[~held], dst[~held]), k)
        for name in ("member", "candidate", "common"):
            np.save(folder / f"prev_{share}_{name}.npy", getattr(rows, name))
        return {"rows": rows.size}
    prev_rows = TopKRows(*(np.load(folder / f"prev_{share}_{name}.npy") for name in ("member", "candidate", "common")))
    started = time.perf_counter()
    rows, stats = incremental_top_k(src[~held], dst[~held], build_csr(src, dst), prev_rows, k)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": rows.size, "sha256": _digest(rows), "peak_rss_mb": _peak_rss_mb(), **stats}


def _in_child(side: str, work: str, share: float, k: int) -> dict:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_run_side, side, work, share, k).result()


def bench_size(edges: int, shares: list[float], k: int, seed: int) -> dict:
    src, dst = power_law_edges(PowerLawSpec(edges, seed))
    result: dict = {"edges": int(src.shape[0]), "members": PowerLawSpec(edges, seed).members, "k": k, "shares": []}
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as work:
        np.save(Path(work) / "src.npy", src)
        np.save(Path(work) / "dst.npy", dst)
        for share in shares:
            held = np.random.default_rng(HOLD_BACK_SEED).random(src.shape[0]) < share
            np.save(Path(work) / f"held_{share}.npy", held)
        for share in shares:
            _in_child("prev", work, share, k)
            full = _in_child("full", work, share, k)  # timed again next to each incremental: same load
            incremental = _in_child("incremental", work, share, k)
            result["shares"].append({
                "share_new": share, "new_edges": incremental["edges_added"], "full": full, "incremental": incremental,
                "identical": incremental["sha256"] == full["sha256"] and incremental["rows"] == full["rows"],
                "speedup": round(full["seconds"] / incremental["seconds"], 2),
                "peak_rss_ratio": round(incremental["peak_rss_mb"] / full["peak_rss_mb"], 2),
            })
            print(json.dumps({"progress": edges, "share": share, "speedup": result["shares"][-1]["speedup"],
                              "identical": result["shares"][-1]["identical"]}), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edges", default="1600000,10000000", help="comma-separated graph sizes (edges)")
    parser.add_argument("--shares", default="0.001,0.01,0.05", help="comma-separated shares of new edges")
    parser.add_argument("--k", type=int, default=100, help="top K per member (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="power-law graph seed (default %(default)s)")
    args = parser.parse_args()
    shares = [float(s) for s in args.shares.split(",")]
    started = time.perf_counter()
    graphs = [bench_size(int(e), shares, args.k, args.seed) for e in args.edges.split(",")]
    print(json.dumps({"bench": "incremental", "k": args.k, "seed": args.seed, "hold_back_seed": HOLD_BACK_SEED,
                      "graphs": graphs, "all_identical": all(s["identical"] for g in graphs for s in g["shares"]),
                      "wall_seconds": round(time.perf_counter() - started, 1)}, indent=2))


if __name__ == "__main__":
    main()
