"""`mutuals`: the command line of the batch layer (see design.md, "The CLI").

The CLI only dispatches: `mutuals run JOB` calls the same `main()` that `spark-submit spark_jobs/JOB.py`
runs, so the two can never drift apart.

Expected failures (every `mutuals.errors.MutualsError`) print one line, `ClassName: message`, and exit
with their family's code (the table in `mutuals.errors`); `--traceback` or `MUTUALS_TRACEBACK=1` prints
the whole traceback instead. Anything else is a bug and keeps its traceback (exit 1).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence

from mutuals.errors import TRACEBACK_ENV, run_and_exit_code
from mutuals.pipeline import ALL_JOBS

# The jobs of every DAG, daily ones in pipeline order (`mutuals.pipeline`); each is spark_jobs/<name>.py
# with main(argv), and `available_jobs` lists only those whose module exists.
JOBS: tuple[str, ...] = ALL_JOBS

COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("synthetic.generate", "write seeded synthetic landing files for N days"),
    "fof": ("spark_jobs.fof", "ad hoc exact triangle closing over a CSV edge list"),
    "store": ("push.cli", "the versioned key-value store: push, get, versions, rollback, configure, write, delete"),
    "demo": ("demo.run", "what `make demo` runs: generate, then every job on local[*]"),
    "experiment-stats": ("reports.stats_cli", "the A/B stats engine on sufficient statistics, JSON in and out"),
    "package": ("mutuals.package", "build the archives spark-submit ships to a cluster (--py-files, --archives)"),
}

USAGE = """usage: mutuals [--traceback] COMMAND [ARGS...]

commands:
  run JOB --date YYYY-MM-DD [--lake ROOT]   run one job ({jobs})
{commands}
Every command has --help. Expected failures print one line and exit with their family's code
(2 usage, 3 bad input, 4 schema, 5 gate failed, 6 conflict, 7 nothing to roll back, 8 unavailable,
9 corrupt store, 10 missing input, 11 unsafe output); --traceback (or MUTUALS_TRACEBACK=1) shows the
traceback.
"""


def available_jobs() -> list[str]:
    return [job for job in JOBS if importlib.util.find_spec(f"spark_jobs.{job}") is not None]


def _usage() -> str:
    commands = "".join(f"  {name:<41}{text}\n" for name, (_, text) in COMMANDS.items())
    return USAGE.format(jobs=", ".join(available_jobs()), commands=commands)


def run_command(argv: Sequence[str]) -> int:
    jobs = available_jobs()
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: mutuals run JOB --date YYYY-MM-DD [--lake ROOT] [job options]\n\njobs: {', '.join(jobs)}")
        return 0 if argv else 2
    job, rest = argv[0], list(argv[1:])
    if job not in jobs:
        print(f"mutuals run: unknown job {job!r}; known jobs: {', '.join(jobs)}", file=sys.stderr)
        return 2
    result = importlib.import_module(f"spark_jobs.{job}").main(rest)
    return result if isinstance(result, int) else 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--traceback":
        os.environ[TRACEBACK_ENV] = "1"
        argv = argv[1:]
    return run_and_exit_code(lambda: _dispatch(argv))


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "run":
        return run_command(rest)
    if command not in COMMANDS:
        print(f"mutuals: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    result = importlib.import_module(COMMANDS[command][0]).main(rest)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
