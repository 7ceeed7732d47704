"""Memory of a measured command: the resident bytes of a process and everything it started.

Why the whole tree: a Spark job's memory is mostly the JVM and the Python workers its driver starts, which
`time -v` on the driver alone does not see.
"""

from __future__ import annotations

import contextlib

import psutil


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of `proc` and all its descendants (processes that vanish mid-sample count 0)."""
    total = 0
    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        for member in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += member.memory_info().rss
    return total
