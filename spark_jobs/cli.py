"""`mutuals`: the command line of the batch layer (see design.md, "The CLI").

The CLI only dispatches: `mutuals run JOB` calls the same `main()` that `spark-submit spark_jobs/JOB.py`
runs, so the two can never drift apart.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence

# Jobs in pipeline order; each is spark_jobs/<name>.py with main(argv).
JOBS: tuple[str, ...] = ("ingest", "graph", "candidates", "recs", "labels", "samples", "push")

COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("spark_jobs.generate", "write seeded synthetic landing files for N days"),
    "fof": ("spark_jobs.fof", "ad hoc exact triangle closing over a CSV edge list"),
    "store": ("push.cli", "the versioned key-value store: push, get, versions, rollback, write, delete"),
    "demo": ("spark_jobs.demo", "what `make demo` runs: generate, then every job on local[*]"),
}

USAGE = """usage: mutuals COMMAND [ARGS...]

commands:
  run JOB --date YYYY-MM-DD [--lake ROOT]   run one job ({jobs})
{commands}
Every command has --help.
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
    importlib.import_module(f"spark_jobs.{job}").main(rest)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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
