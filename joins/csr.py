"""Compact CSR adjacency of an undirected graph, and work splitting by wedge count.

Why CSR with dense indices in sorted-id order: the kernel counts two-hop paths into a dense array
indexed by node, which is only possible with dense indices; and because index order == id order, the
"candidate id ascending" tie-break of the top-K contract is simply "index ascending" inside the kernel.

Why split by wedges: the cost of triangle closing for a source `a` is the number of two-hop paths
(wedges) starting at `a`, W(a) = sum over b in N(a) of deg(b), so the total is sum(deg^2), not the edge
count. Blocks with equal member counts put a hub and its neighbours' work on one overloaded task; blocks
with equal wedge counts do not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

SRC, DST = "src", "dst"


class EdgeArraysInvalid(ValueError):
    """The src/dst arrays handed to `build_csr` are not two equal-length integer arrays."""


@dataclass(frozen=True)
class Csr:
    """Symmetric adjacency: the neighbours of dense node i are indices[indptr[i]:indptr[i+1]], sorted.

    ids[i] is the member id of dense node i; ids is strictly increasing.
    """

    ids: np.ndarray  # int64, sorted, unique
    indptr: np.ndarray  # int64, len n+1
    indices: np.ndarray  # int32, len 2*edges

    @property
    def n_nodes(self) -> int:
        return int(self.ids.shape[0])

    @property
    def n_edges(self) -> int:
        """Undirected edges (each stored twice)."""
        return int(self.indices.shape[0]) // 2

    @property
    def nbytes(self) -> int:
        return int(self.ids.nbytes + self.indptr.nbytes + self.indices.nbytes)

    def degrees(self) -> np.ndarray:
        return np.diff(self.indptr)

    def wedges(self) -> np.ndarray:
        """W(a) = sum of deg(b) over b in N(a): the two-hop paths the kernel walks for source a."""
        deg = self.degrees()
        per_entry = deg[self.indices].astype(np.int64)
        cum = np.concatenate(([0], np.cumsum(per_entry)))
        return cum[self.indptr[1:]] - cum[self.indptr[:-1]]


def _check_edge_arrays(src: np.ndarray, dst: np.ndarray) -> None:
    if src.ndim != 1 or dst.ndim != 1 or src.shape != dst.shape:
        raise EdgeArraysInvalid(
            f"expected two 1-d arrays of equal length, found shapes {src.shape} and {dst.shape}")
    if not (np.issubdtype(src.dtype, np.integer) and np.issubdtype(dst.dtype, np.integer)):
        raise EdgeArraysInvalid(f"expected integer arrays, found {src.dtype} and {dst.dtype}")


def collect_edges(edges: DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A (src, dst) edge DataFrame -> its two columns as int64 arrays on the driver (a row with a null end
    is no edge)."""
    table = edges.select(F.col(SRC).cast("long").alias(SRC), F.col(DST).cast("long").alias(DST)).toArrow()
    table = table.filter(pc.and_(table[SRC].is_valid(), table[DST].is_valid()))
    return table[SRC].to_numpy(), table[DST].to_numpy()


def collect_csr(edges: DataFrame) -> Csr:
    """A (src, dst) edge DataFrame, any direction, -> its CSR on the driver: what every broadcast kernel
    (triangles, pair features, exact common counts) holds. A job that needs it twice collects it once."""
    return build_csr(*collect_edges(edges))


def csr_bytes(symmetric_rows: int, nodes: int) -> int:
    """Size of a CSR with this many symmetric edge rows and nodes (ids, offsets, indices)."""
    return symmetric_rows * 4 + (nodes + 1) * 8 + nodes * 8


def build_csr(src: np.ndarray, dst: np.ndarray) -> Csr:
    """Normalize an edge list (any direction, duplicates, self-loops) into a symmetric CSR.

    Self-loops are dropped and duplicate edges merged, as design.md's triangle-closing contract says.
    Members that only appear in self-loops have no edges and so are not nodes.
    """
    _check_edge_arrays(src, dst)
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    is_proper_edge = src != dst
    src, dst = src[is_proper_edge], dst[is_proper_edge]
    ids = np.unique(np.concatenate((src, dst)))
    n = ids.shape[0]
    u = np.searchsorted(ids, src)
    v = np.searchsorted(ids, dst)
    both_u = np.concatenate((u, v)).astype(np.int64)
    both_v = np.concatenate((v, u)).astype(np.int64)
    keys = np.unique(both_u * n + both_v)  # sorted by (row, column), duplicates merged
    rows = keys // n
    indices = (keys % n).astype(np.int32)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return Csr(ids=ids, indptr=indptr, indices=indices)


def split_by_weight(weights: np.ndarray, n_parts: int) -> np.ndarray:
    """Cut 0..len(weights) into at most n_parts contiguous ranges of about equal total weight.

    Returns the boundaries [0, b1, ..., len]. A single heavy item can fill a range alone; it is never
    split, but it never drags its neighbours' items along with it either.
    """
    n = int(weights.shape[0])
    if n == 0:
        return np.array([0, 0], dtype=np.int64)
    n_parts = max(1, min(int(n_parts), n))
    cum = np.cumsum(weights.astype(np.float64))
    total = cum[-1]
    if total <= 0:
        return np.linspace(0, n, n_parts + 1).astype(np.int64)
    targets = total * np.arange(1, n_parts) / n_parts
    cuts = np.searchsorted(cum, targets, side="left") + 1
    bounds = np.unique(np.concatenate(([0], np.clip(cuts, 1, n), [n]))).astype(np.int64)
    return bounds
