"""The `sources` of a candidate pair as one int, a bit per source, and back.

candidates/pairs (and every table that carries its rows) holds `sources` as an array of names in the
canonical order of `SOURCES`. Inside a job an int is far cheaper than an array of strings: a hash
aggregation ORs it instead of keeping four flags, and a shuffle, a sort or a pass through Arrow and Python
moves four bytes instead of a list of strings per row. The array is rebuilt from the bits where a table
is written.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from mutuals.tables import SOURCES

SOURCE_BITS = "_sources"


def source_bit(source: str) -> int:
    """The bit of `source`: 1 << its position in SOURCES."""
    return 1 << SOURCES.index(source)


def bits_from_sources(sources: Column) -> Column:
    """An array of source names -> the int with the bit of each known name set (unknown names set none)."""
    return sum((F.when(F.array_contains(sources, s), F.lit(source_bit(s))).otherwise(F.lit(0))
                for s in SOURCES), F.lit(0)).cast("int")


def sources_from_bits(bits: Column) -> Column:
    """The int of `bits_from_sources` -> the array of the names whose bit is set, in canonical order."""
    return F.array_compact(F.array(*(F.when(bits.bitwiseAND(source_bit(s)) != 0, F.lit(s)) for s in SOURCES)))
