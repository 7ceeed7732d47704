"""Named fault points for the crash tests: a test-only environment hook, inert unless both variables are set.

`MUTUALS_FAULT_POINT=push:written MUTUALS_FAULT_DIR=/tmp/x mutuals store push ...` makes the pusher create
`/tmp/x/push:written.reached` when it gets there, then wait until `/tmp/x/push:written.go` exists. The test
either SIGKILLs the process while it waits (a crash at exactly that point) or creates the `.go` file after
breaking something (e.g. stopping Redis) to let it run into the failure.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

POINT_ENV, DIR_ENV = "MUTUALS_FAULT_POINT", "MUTUALS_FAULT_DIR"
WRITING, WRITTEN, SWAPPED = "push:writing", "push:written", "push:swapped"
MAX_WAIT_S = 120.0


def fault_point(name: str) -> None:
    if os.environ.get(POINT_ENV) != name or not os.environ.get(DIR_ENV):
        return
    folder = Path(os.environ[DIR_ENV])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.reached").write_text(str(os.getpid()))
    deadline = time.monotonic() + MAX_WAIT_S
    while not (folder / f"{name}.go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
