"""The one column check every transform and kernel runs on entry.

Why one: a transform that is handed the wrong DataFrame should fail before Spark plans anything, with a
message that names the transform, the columns it needs, the ones that are missing and the ones it found.
One function and one exception class keep that message and its exit code (the schema family, 4) the same
in every room.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame

from mutuals.errors import SchemaError


class MissingColumns(SchemaError, ValueError):
    """A transform's or kernel's input lacks columns it needs."""


def require_columns(df: DataFrame, needed: Sequence[str], what: str) -> None:
    """Raise MissingColumns naming `what`, the needed columns, the missing ones and the ones present."""
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise MissingColumns(f"{what}: expected columns {list(needed)}, missing {missing}; found {df.columns}")
