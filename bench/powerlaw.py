"""Seeded power-law graphs for the triangle-closing bench (Chung-Lu, with one real hub).

Why Chung-Lu with a planted hub: triangle-closing cost follows sum(deg^2), and real social graphs have a
heavy tail plus a few members with thousands of connections (the 37.7k-member graph in the issue has
one with ~9.5k). Edge i joins endpoints drawn with probability proportional to expected degree, so the
realized degrees follow the weights; member 0's weight is set to the hub degree.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

GAMMA = 2.3
MEAN_DEGREE = 16
MAX_HUB_DEGREE = 9_500


@dataclass(frozen=True)
class PowerLawSpec:
    edges: int
    seed: int = 7
    gamma: float = GAMMA

    @property
    def members(self) -> int:
        return max(16, 2 * self.edges // MEAN_DEGREE)

    @property
    def hub_degree(self) -> int:
        return min(self.members // 4, MAX_HUB_DEGREE)


def power_law_edges(spec: PowerLawSpec) -> tuple[np.ndarray, np.ndarray]:
    """About spec.edges distinct undirected edges (no self-loops), ids scrambled over [0, 10*members)."""
    rng = np.random.default_rng(spec.seed)
    n = spec.members
    weights = (np.arange(1, n + 1, dtype=np.float64)) ** (-1.0 / (spec.gamma - 1.0))
    weights *= 2.0 * spec.edges / weights.sum()
    weights = np.minimum(weights, spec.hub_degree / 2)  # member 0 stays the one real hub
    weights[0] = spec.hub_degree
    cum = np.cumsum(weights)
    draws = int(spec.edges * 1.3) + 16
    u = np.searchsorted(cum, rng.random(draws) * cum[-1])
    v = np.searchsorted(cum, rng.random(draws) * cum[-1])
    is_proper = u != v
    lo, hi = np.minimum(u, v)[is_proper], np.maximum(u, v)[is_proper]
    _, first = np.unique(lo.astype(np.int64) * n + hi, return_index=True)
    keep = np.sort(first)[: spec.edges]  # first occurrences in draw order: deterministic for the seed
    ids = rng.choice(10 * n, size=n, replace=False).astype(np.int64)
    src, dst = ids[lo[keep]], ids[hi[keep]]
    flip = rng.random(src.shape[0]) < 0.5  # either direction, as landing files give them
    return np.where(flip, dst, src), np.where(flip, src, dst)


def write_csv(path: Path, src: np.ndarray, dst: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(b"src,dst\n")
        pacsv.write_csv(pa.table({"src": src, "dst": dst}), handle,
                        write_options=pacsv.WriteOptions(include_header=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edges", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    src, dst = power_law_edges(PowerLawSpec(args.edges, args.seed))
    print(write_csv(args.out, src, dst))


if __name__ == "__main__":
    main()
