"""Compile the numba kernels once, at setup time, into their on-disk cache.

Why: `@njit(cache=True)` compiles on first call and stores the machine code in `__pycache__` next to
the kernel modules of joins. Spark's Python workers import the same files, so they load that cache
instead of compiling (about 2 s) inside a timed job. The dtypes used here are exactly the production ones
(int64 offsets, int32 indices), or the cache would hold the wrong specialization.
"""

from __future__ import annotations

import numpy as np

from joins.csr import build_csr
from joins.economic_kernel import top_overlaps_in_org
from joins.pair_kernel import dense_index, has_edges, pair_sums
from joins.rank_kernel import member_source_ranks
from joins.triangle_kernel import top_k_for_source_range, top_k_for_work_unit


def warm() -> None:
    """Run every kernel entry point on a 4-member path, which compiles and caches them (the pair kernel
    through both of its paths, merge and gallop)."""
    src = np.array([1, 2, 3], dtype=np.int64)
    dst = np.array([2, 3, 4], dtype=np.int64)
    csr = build_csr(src, dst)
    top_k_for_source_range(csr.indptr, csr.indices, 0, csr.n_nodes, 2)
    both_src, both_dst = np.concatenate((src, dst)), np.concatenate((dst, src))
    top_k_for_work_unit(both_src, both_dst, both_src, both_dst, 2)
    member, candidate = dense_index(csr.ids, src), dense_index(csr.ids, dst + 1)
    for gallop_factor in (1, 1 << 30):
        pair_sums(csr.indptr, csr.indices, member, candidate, gallop_factor)
    has_edges(csr.indptr, csr.indices, member, candidate)
    # the economic kernel, with the dtypes its Spark runner hands it (int64 ids, int32 days)
    days = np.array([0, 5, 3], dtype=np.int32)
    top_overlaps_in_org(src, days, days + 10, np.array([True, False, True]), src[:1], dst[:1], 2)
    # the source-rank kernel, with the dtypes of ranking.source_ranks (int64 ids, bool flags, float64 keys)
    member_source_ranks(src, dst, np.ones((4, 3), dtype=np.bool_), np.zeros((4, 3), dtype=np.float64))


if __name__ == "__main__":
    warm()
