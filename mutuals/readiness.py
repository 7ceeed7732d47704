"""Has day D fully landed? The check the landing sensor of the daily DAG pokes before ingest runs.

The producer of the landing files (here `mutuals generate`) writes each table's day folder and then, last,
an empty `_SUCCESS` marker in it, so a folder with its marker is complete, and ingest never reads a day
that is still being copied. The day is ready when every landing table's marker is there
(`mutuals.pipeline.landing_markers`).

Standard library at import time: the DAG file imports this module while Airflow parses it. Local lakes
(a path or a `file:` URI) are checked with `os`; an object-store lake (`s3a://`, `hdfs://`, `gs://`) goes
through pyarrow's filesystems, imported only when such a lake is poked, on the worker.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from mutuals.pipeline import landing_markers

LOCAL_SCHEMES = ("", "file")
# Hadoop's scheme names for the filesystems pyarrow knows under another name.
PYARROW_SCHEMES = {"s3a": "s3", "s3n": "s3"}


def marker_exists(uri: str) -> bool:
    parts = urlsplit(uri)
    if parts.scheme in LOCAL_SCHEMES:
        return os.path.isfile(parts.path if parts.scheme else uri)
    from pyarrow import fs  # an object-store lake only; never while a DAG is parsed

    scheme = PYARROW_SCHEMES.get(parts.scheme, parts.scheme)
    filesystem, path = fs.FileSystem.from_uri(f"{scheme}://{uri.split('://', 1)[1]}")
    return filesystem.get_file_info(path).type == fs.FileType.File


def missing_markers(lake_root: str, ds: str) -> list[str]:
    return [marker for marker in landing_markers(lake_root, ds) if not marker_exists(marker)]


def landing_ready(lake_root: str, ds: str) -> bool:
    """True once every landing table of `ds` has its `_SUCCESS` marker; else says which are missing."""
    missing = missing_markers(lake_root, ds)
    if missing:
        print(f"day {ds} has not fully landed in {lake_root}: {len(missing)} marker(s) missing: {', '.join(missing)}")
    return not missing
