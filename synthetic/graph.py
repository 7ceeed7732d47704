"""The member graph: Chung-Lu power-law edges, colleague edges, triadic closure, and a CSR view of it.

Why this mix: Chung-Lu alone gives the heavy-tailed degrees (and the hubs the pipeline must survive) but
almost no triangles, so friends-of-friends would be rare and uninformative. Colleague edges (members who
share a company) and closure edges (a friend of a friend) add the clustering that makes triangle closing
the strongest candidate source, as in a real professional network. Members are 0-based indices here; the
writer maps them to member ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Expected degree of the planted hubs as a share of members: the first must end >= 5% after duplicates.
HUB_DEGREE_SHARES = (0.075, 0.035, 0.02)
PARETO_SHAPE = 1.6  # degree tail exponent ~ 2.6, within the range measured on real social graphs


def member_weights(rng: np.random.Generator, n: int, edges: int) -> np.ndarray:
    """Chung-Lu weights: Pareto for everyone, then a few planted hubs with a fixed expected degree.

    With `edges` endpoints-pairs drawn proportionally to weight, member i's expected degree is about
    2 * edges * w_i / sum(w). The hubs' weights are solved so that their expected degrees equal
    HUB_DEGREE_SHARES * n whatever the Pareto draw was.
    """
    weights = 1.0 + rng.pareto(PARETO_SHAPE, n)
    weights = np.minimum(weights, max(2.0, np.sqrt(n)))
    hubs = rng.choice(n, size=min(len(HUB_DEGREE_SHARES), n), replace=False)
    shares = np.array(HUB_DEGREE_SHARES[: len(hubs)]) * n / (2.0 * edges)
    weights[hubs] = 0.0
    total = weights.sum() / (1.0 - shares.sum())
    weights[hubs] = shares * total
    return weights


def weighted_draw(rng: np.random.Generator, cumulative: np.ndarray, size: int) -> np.ndarray:
    """`size` indices drawn with probability proportional to the weights whose cumsum is `cumulative`."""
    picks = np.searchsorted(cumulative, rng.random(size) * cumulative[-1], side="right")
    return np.minimum(picks, len(cumulative) - 1)


def chung_lu_edges(rng: np.random.Generator, weights: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` edges with both endpoints drawn by weight; self-loops are dropped, duplicates kept."""
    cumulative = np.cumsum(weights)
    src = weighted_draw(rng, cumulative, count)
    dst = weighted_draw(rng, cumulative, count)
    keep = src != dst
    return src[keep], dst[keep]


@dataclass(frozen=True)
class Groups:
    """Members grouped by a key (a company or a school): rows sorted by key, with each group's span."""

    members: np.ndarray  # member index per row, rows sorted by key
    keys: np.ndarray  # key per row
    row_start: np.ndarray  # per row: first row of its group
    row_count: np.ndarray  # per row: size of its group

    @staticmethod
    def of(members: np.ndarray, keys: np.ndarray) -> Groups:
        order = np.lexsort((members, keys))
        members, keys = members[order], keys[order]
        boundaries = np.flatnonzero(np.diff(keys)) + 1
        starts = np.concatenate(([0], boundaries))
        sizes = np.diff(np.concatenate((starts, [len(keys)])))
        return Groups(members, keys, np.repeat(starts, sizes), np.repeat(sizes, sizes))

    def peer_of_rows(self, rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
        """For each row, the member of a uniformly drawn row of the same group (may be the member itself)."""
        offsets = np.floor(rng.random(len(rows)) * self.row_count[rows]).astype(np.int64)
        return self.members[self.row_start[rows] + offsets]


def colleague_edges(rng: np.random.Generator, groups: Groups, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Edges between two members holding positions at the same company (big companies get more)."""
    if len(groups.members) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    rows = rng.integers(0, len(groups.members), count)
    src, dst = groups.members[rows], groups.peer_of_rows(rng, rows)
    keep = src != dst
    return src[keep], dst[keep]


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique may hash instead of sort in numpy >= 2.3; CSR needs the order)."""
    ordered = np.sort(values)
    if len(ordered) == 0:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


@dataclass(frozen=True)
class Adjacency:
    """An undirected simple graph in CSR form: self-loops dropped, duplicates merged, neighbours sorted."""

    n: int
    indptr: np.ndarray
    indices: np.ndarray
    keys: np.ndarray  # sorted a * n + b for every directed pair, for membership tests

    @staticmethod
    def build(n: int, src: np.ndarray, dst: np.ndarray) -> Adjacency:
        keep = src != dst
        a = np.concatenate((src[keep], dst[keep])).astype(np.int64)
        b = np.concatenate((dst[keep], src[keep])).astype(np.int64)
        keys = sorted_distinct(a * n + b)
        heads = keys // n
        indptr = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(heads, minlength=n), out=indptr[1:])
        return Adjacency(n, indptr, keys - heads * n, keys)

    @property
    def degree(self) -> np.ndarray:
        return np.diff(self.indptr)

    def random_neighbour(self, rng: np.random.Generator, members: np.ndarray) -> np.ndarray:
        """A uniformly drawn neighbour of each member, or -1 for a member without neighbours."""
        members = np.asarray(members, np.int64)
        if len(self.indices) == 0:
            return np.full(len(members), -1, np.int64)
        valid = members >= 0
        safe = np.where(valid, members, 0)
        degree = self.indptr[safe + 1] - self.indptr[safe]
        offsets = np.floor(rng.random(len(members)) * degree).astype(np.int64)
        picked = self.indices[np.minimum(self.indptr[safe] + offsets, len(self.indices) - 1)]
        return np.where(valid & (degree > 0), picked, -1)

    def connected(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """True where a and b are neighbours."""
        if len(self.keys) == 0:
            return np.zeros(len(a), bool)
        wanted = np.asarray(a, np.int64) * self.n + np.asarray(b, np.int64)
        at = np.minimum(np.searchsorted(self.keys, wanted), len(self.keys) - 1)
        return self.keys[at] == wanted


def closure_edges(rng: np.random.Generator, adjacency: Adjacency, cumulative: np.ndarray,
                  count: int) -> tuple[np.ndarray, np.ndarray]:
    """Edges that close a triangle: a member (drawn by weight) meets a friend of a friend."""
    src = weighted_draw(rng, cumulative, count)
    dst = adjacency.random_neighbour(rng, adjacency.random_neighbour(rng, src))
    keep = (dst >= 0) & (dst != src)
    return src[keep], dst[keep]


def orient_randomly(rng: np.random.Generator, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Either direction for each undirected edge, as landing producers do."""
    flip = rng.random(len(src)) < 0.5
    return np.where(flip, dst, src), np.where(flip, src, dst)
