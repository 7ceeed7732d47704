"""One error root for mutuals, with one family per kind of failure and one exit code per family.

Why families: an operator, a cron wrapper or an Airflow task must tell "the input is not there yet"
(retry later) from "the input is bad" (fix the file) from "a gate refused the data" (look at the data)
without parsing messages. Every expected failure raises a subclass of one family below; the CLI prints
one line, `ClassName: message`, and exits with the family's code. Anything else is a bug: it keeps its
traceback and exits 1. Set `MUTUALS_TRACEBACK=1` (or pass `--traceback` to `mutuals`) to see the
traceback of an expected failure too.

| exit | family            | meaning                                                              |
|------|-------------------|----------------------------------------------------------------------|
| 1    | (not ours)        | an unexpected error: a bug; the traceback is printed                 |
| 2    | UsageError        | a command-line argument that cannot be used                          |
| 3    | BadInput          | an input file or row that cannot be read (names file, row, field)    |
| 4    | SchemaError       | a table or value schema that does not match its contract             |
| 5    | GateFailed        | a quality gate refused the data; nothing was published or served     |
| 6    | Conflict          | another writer or pusher got there first; re-run                     |
| 7    | NothingToRollBack | a rollback with no previous version to return to                     |
| 8    | Unavailable       | a service (Redis, the cluster) cannot be reached                     |
| 9    | Corrupt           | stored state that cannot be understood                               |
| 10   | MissingInput      | an input table, partition, day or store that does not exist          |
| 11   | UnsafeOutput      | an output target that would destroy data that is not ours            |
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable

TRACEBACK_ENV = "MUTUALS_TRACEBACK"


class MutualsError(Exception):
    """Root of every failure mutuals reports on purpose."""

    exit_code = 1


class UsageError(MutualsError):
    """A command-line or API argument that cannot be used."""

    exit_code = 2


class BadInput(MutualsError):
    """An input file or row that cannot be read; the message names the file, row and field."""

    exit_code = 3


class DuplicateKey(BadInput):
    """One key appears more than once where it must be unique (with different values, or in one day's rows)."""

    exit_code = 3


class SchemaError(MutualsError):
    """A DataFrame, table or value schema that does not match its contract."""

    exit_code = 4


class GateFailed(MutualsError):
    """A quality gate refused the data; nothing was published and the served version is unchanged."""

    exit_code = 5


class Conflict(MutualsError):
    """Another writer or pusher committed first; nothing of ours was committed. Re-run."""

    exit_code = 6


class NothingToRollBack(MutualsError):
    """Rollback needs a previous version that is still there."""

    exit_code = 7


class Unavailable(MutualsError):
    """A service the command needs cannot be reached."""

    exit_code = 8


class Corrupt(MutualsError):
    """Stored state (a manifest, a value) that cannot be understood."""

    exit_code = 9


class MissingInput(MutualsError):
    """An input that must exist does not: a table, a partition, a published day, a store, landing files."""

    exit_code = 10


class UnsafeOutput(MutualsError):
    """An output target that holds data we did not write; refused rather than overwritten."""

    exit_code = 11


FAMILIES: tuple[type[MutualsError], ...] = (
    UsageError, BadInput, SchemaError, GateFailed, Conflict, NothingToRollBack, Unavailable, Corrupt,
    MissingInput, UnsafeOutput,
)


def show_tracebacks() -> bool:
    return os.environ.get(TRACEBACK_ENV, "").strip().lower() not in ("", "0", "false", "no")


def one_line(exc: BaseException) -> str:
    """`ClassName: message` on one line (a multi-line message is joined with ' | ')."""
    message = " | ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def exit_code_of(exc: BaseException) -> int:
    return exc.exit_code if isinstance(exc, MutualsError) else 1


def run_and_exit_code(entry: Callable[[], object]) -> int:
    """Run a command entrypoint and turn an expected failure into one stderr line and its family's code.

    Unexpected exceptions propagate (traceback, exit 1): they are bugs and need the whole story.
    """
    try:
        result = entry()
    except MutualsError as exc:
        if show_tracebacks():
            traceback.print_exc()
        else:
            print(one_line(exc), file=sys.stderr, flush=True)
        return exc.exit_code
    return result if isinstance(result, int) else 0
