"""Each source's rank of a candidate pair among the member's proposals, in one pass over member-sorted rows.

`<source>_rank` is the pair's 1-based position among the member's pairs that `source` proposed, ordered by
the source's key descending and candidate_id ascending (null when the source did not propose the pair).

Why not one Spark window per source: each window sorts and buffers every member's rows again, so four
sources cost four sorts of the whole candidate set (the largest cost of the features job at 100k members:
about 150 s of task time for 25M pairs). Here the rows are shuffled by member and sorted once
(`by_member`); `whole_members` regroups the Arrow batches that reach Python so that no member's rows are
split between two chunks, and `source_rank_arrays` ranks a chunk with a numba kernel that sorts each
member's rows on their own (`joins.rank_kernel`). Ties and order are exactly the window's: key descending
(NaN first, as Spark sorts it above every number), then candidate_id ascending; the key columns are
non-null in candidates/pairs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame

from mutuals.session import shuffle_partitions
from mutuals.tables import FEATURE_SOURCES

MEMBER, CANDIDATE, SOURCES = "member_id", "candidate_id", "sources"

# The column each source is ranked by (descending; ties by candidate_id ascending).
RANK_KEYS: dict[str, str] = {
    "triangle": "common_connections",
    "coworker": "coworker_overlap_days",
    "schoolmate": "schoolmate_overlap_days",
    "ppr": "ppr_score",
}
RANK_COLUMNS = tuple(f"{source}_rank" for source in FEATURE_SOURCES)


def by_member(pairs: DataFrame) -> DataFrame:
    """The pairs hash-partitioned by member into the session's shuffle partitions and sorted by member
    within each partition: the layout `whole_members` needs (every row of a member in one partition,
    adjacent)."""
    return pairs.repartition(shuffle_partitions(pairs.sparkSession), MEMBER).sortWithinPartitions(MEMBER)


def whole_members(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
    """Member-sorted batches -> tables that each hold every row of their members.

    The rows of the last member of a batch may continue in the next batch, so they are held back and
    prepended to it; a member's rows are bounded (a few sources times their cap), so what is held stays
    small whatever the batch size."""
    held: list[pa.RecordBatch] = []
    for batch in batches:
        if batch.num_rows == 0:
            continue
        members = batch.column(MEMBER).to_numpy(zero_copy_only=False)
        cut = int(np.searchsorted(members, members[-1], side="left"))
        if cut > 0:
            yield pa.Table.from_batches([*held, batch.slice(0, cut)])
            held = []
        held.append(batch.slice(cut))
    if held:
        yield pa.Table.from_batches(held)


def proposed_by(sources: pa.ChunkedArray | pa.Array, source: str) -> np.ndarray:
    """Per row, whether `source` is in the row's list of sources."""
    lists = sources.combine_chunks() if isinstance(sources, pa.ChunkedArray) else sources
    flags = np.zeros(len(lists), dtype=bool)
    names = pc.list_flatten(lists)
    if len(names):
        parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
        hits = pc.equal(names, source).to_numpy(zero_copy_only=False)
        flags[parents[hits]] = True
    return flags


def source_rank_arrays(columns: Mapping[str, pa.Array | pa.ChunkedArray]) -> dict[str, pa.Array]:
    """RANK_COLUMNS (nullable int32) of the columns of a chunk that holds every row of its members, each
    member's rows next to each other (`joins.rank_kernel`)."""
    from joins.rank_kernel import member_source_ranks  # numba loads where the kernel runs

    # Copies: Arrow's zero-copy arrays are read-only, a type the kernel's setup-time cache does not hold.
    member = np.array(_numpy(columns[MEMBER]), dtype=np.int64)
    candidate = np.array(_numpy(columns[CANDIDATE]), dtype=np.int64)
    proposed = np.stack([proposed_by(columns[SOURCES], source) for source in FEATURE_SOURCES])
    keys = np.stack([_numpy(columns[RANK_KEYS[source]]).astype(np.float64) for source in FEATURE_SOURCES])
    ranks = member_source_ranks(member, candidate, proposed, keys)
    return {f"{source}_rank": pa.array(ranks[s], type=pa.int32(), mask=~proposed[s])
            for s, source in enumerate(FEATURE_SOURCES)}


def _numpy(values: pa.Array | pa.ChunkedArray | np.ndarray) -> np.ndarray:
    return values if isinstance(values, np.ndarray) else values.to_numpy(zero_copy_only=False)
