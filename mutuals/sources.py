"""The `sources` of a candidate pair as one int, a bit per source, and back.

candidates/pairs (and every table that carries its rows) holds `sources` as an array of names in the
canonical order of `SOURCES`. Inside the candidates job an int is far cheaper: the hash aggregation that
merges the sources ORs it instead of keeping four flags, and the array is built from the bits where the
table is written.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from mutuals.tables import SOURCES

SOURCE_BITS = "_sources"


def source_bit(source: str) -> int:
    """The bit of `source`: 1 << its position in SOURCES."""
    return 1 << SOURCES.index(source)


def sources_from_bits(bits: Column) -> Column:
    """The int of SOURCE_BITS -> the array of the names whose bit is set, in canonical order."""
    return F.array_compact(F.array(*(F.when(bits.bitwiseAND(source_bit(s)) != 0, F.lit(s)) for s in SOURCES)))
