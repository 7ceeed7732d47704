"""Named graphs with answers a reader can check by hand, built by one helper.

Each graph is a list of (src, dst) rows as they might arrive: either direction, and some with
duplicates and self-loops, because normalization is part of the contract being tested.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

EDGE_DDL = "src long, dst long"
RESULT_DDL = "member_id long, candidate_id long, common_connections int"

STAR_LEAVES = 40

GRAPHS: dict[str, list[tuple[int, int]]] = {
    # everyone already knows everyone: no candidates at all
    "triangle": [(1, 2), (2, 3), (3, 1)],
    # hub 100 with leaves 1..40, given in both directions, with a duplicate and a self-loop
    "star": [(100, leaf) for leaf in range(1, STAR_LEAVES + 1)] + [(7, 100), (100, 7), (100, 100)],
    "path": [(1, 2), (3, 2), (3, 4)],
    # cliques {1,2,3,4} and {4,5,6,7} sharing member 4
    "two_cliques": [(a, b) for clique in ((1, 2, 3, 4), (4, 5, 6, 7))
                    for i, a in enumerate(clique) for b in clique[i + 1:]],
    # 1 and 5 share {2,3,4}; 6 hangs off 4: counts 3, 2 and 1 to test the order and the tie-break
    "shared_triple": [(1, 2), (1, 3), (1, 4), (5, 2), (5, 3), (5, 4), (6, 4), (2, 2)],
}


def edges_frame(spark: SparkSession, name: str) -> DataFrame:
    return spark.createDataFrame(GRAPHS[name], EDGE_DDL)


def result_frame(spark: SparkSession, rows: list[tuple[int, int, int]]) -> DataFrame:
    return spark.createDataFrame(rows, RESULT_DDL)


def write_edge_csv(path, rows: list[tuple[int, int]], line_end: str = "\n") -> None:
    lines = ["src,dst"] + [f"{a},{b}" for a, b in rows]
    path.write_bytes((line_end.join(lines) + line_end).encode())
