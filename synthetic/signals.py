"""What a pair of members has in common: exact common connections, same region, same industry, co-worker tenure.

Why exact values and the pipeline's definitions: the outcome model (`synthetic.outcomes`) decides clicks,
invites, accepts and new connections from these signals, and the `features` job recomputes them from the
landing files. When both use the same definitions (common connections in the graph the pages were served
from; co-worker overlap as in `joins.economic`: the longest single shared tenure, both ends inclusive, an
open or future end clamped to today), a trained model can recover the generator's rules instead of a noisy
proxy of them. Everything is vectorised over arrays of pairs, so serving a million impressions a day stays
a matter of seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthetic.graph import Adjacency
from synthetic.population import OPEN_ENDED, Careers

EXPANSION_CHUNK = 4_000_000  # neighbour checks (or stint pairs) held in memory at once


@dataclass(frozen=True)
class PairSignals:
    """Per pair (a, b): what the outcome model and the organic connections look at."""

    common: np.ndarray  # int64, exact common connections in the served graph
    same_region: np.ndarray  # bool
    same_industry: np.ndarray  # bool
    coworker_days: np.ndarray  # int64, longest overlapping tenure at one company (0 = never co-workers)


@dataclass(frozen=True)
class PairContext:
    """The world as it stood when the day's pages were served: graph, member attributes, careers, today."""

    graph: Adjacency
    region: np.ndarray
    industry: np.ndarray
    stints: Stints
    today: int  # days since the epoch

    def signals(self, a: np.ndarray, b: np.ndarray) -> PairSignals:
        a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
        return PairSignals(common_connections(self.graph, a, b), self.region[a] == self.region[b],
                           self.industry[a] == self.industry[b], self.stints.overlap_days(a, b, self.today))


def _chunks(sizes: np.ndarray, limit: int):
    """Consecutive [start, stop) ranges of items whose sizes sum to about `limit` (at least one item each)."""
    ends = np.cumsum(sizes)
    start = 0
    while start < len(sizes):
        before = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, before + limit, side="right")))
        yield start, stop
        start = stop


def _expand(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For items of the given sizes: (item index, offset within the item) of every slot."""
    item = np.repeat(np.arange(len(sizes)), sizes)
    offset = np.arange(len(item)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return item, offset


def common_connections(graph: Adjacency, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact |N(a) & N(b)| per pair: each neighbour x of the lower-degree side s is looked up as the key
    (other, x) in the graph's sorted keys. Pairs are taken in order of the other side, so consecutive
    look-ups land close together in the keys (about twice as fast as in arrival order)."""
    degree = graph.degree
    a_is_smaller = degree[a] <= degree[b]
    small, other = np.where(a_is_smaller, a, b), np.where(a_is_smaller, b, a)
    order = np.lexsort((small, other))
    small, other = small[order], other[order]
    sizes = degree[small]
    counts = np.zeros(len(a), np.int64)
    for start, stop in _chunks(sizes, EXPANSION_CHUNK):
        pair, offset = _expand(sizes[start:stop])
        neighbour = graph.indices[graph.indptr[small[start:stop][pair]] + offset]
        wanted = other[start:stop][pair] * graph.n + neighbour
        at = np.minimum(np.searchsorted(graph.keys, wanted), len(graph.keys) - 1)
        counts[start:stop] = np.bincount(pair, weights=graph.keys[at] == wanted, minlength=stop - start)
    out = np.empty(len(a), np.int64)
    out[order] = counts
    return out


@dataclass(frozen=True)
class Stints:
    """Every position ever held, grouped by member, for overlap look-ups between arbitrary pairs."""

    member: np.ndarray  # sorted
    org: np.ndarray
    start: np.ndarray
    end: np.ndarray  # OPEN_ENDED for a current position
    first: np.ndarray  # per member index: first row
    count: np.ndarray  # per member index: rows

    @staticmethod
    def of(careers: Careers, members: int) -> Stints:
        order = np.argsort(careers.member, kind="stable")
        member = careers.member[order]
        first = np.searchsorted(member, np.arange(members), side="left")
        count = np.searchsorted(member, np.arange(members), side="right") - first
        return Stints(member, careers.org[order], careers.start[order], careers.end[order], first, count)

    def overlap_days(self, a: np.ndarray, b: np.ndarray, today: int) -> np.ndarray:
        """Longest overlap of a stint of a with a stint of b at the same company, both ends inclusive, ends
        clamped to today; 0 when they never worked at one company at the same time."""
        count_a, count_b = self.count[a], self.count[b]
        sizes = count_a * count_b
        out = np.zeros(len(a), np.int64)
        end = np.where(self.end == OPEN_ENDED, today, np.minimum(self.end, today))
        for start, stop in _chunks(sizes, EXPANSION_CHUNK):
            pair, k = _expand(sizes[start:stop])
            if len(pair) == 0:
                continue
            per_b = count_b[start:stop][pair]
            row_a = self.first[a[start:stop]][pair] + k // per_b
            row_b = self.first[b[start:stop]][pair] + k % per_b
            days = np.minimum(end[row_a], end[row_b]) - np.maximum(self.start[row_a], self.start[row_b]) + 1
            days = np.where(self.org[row_a] == self.org[row_b], np.maximum(days, 0), 0)
            chunk_sizes = sizes[start:stop]
            has_stints = chunk_sizes > 0
            firsts = (np.cumsum(chunk_sizes) - chunk_sizes)[has_stints]
            out[start:stop][has_stints] = np.maximum.reduceat(days, firsts)
        return out
