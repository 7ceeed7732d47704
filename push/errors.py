"""One exception class per failure mode of the push side; each message says what was expected and found.

The CLI maps every `StoreError` to a non-zero exit with the message on stderr, so operators and the
tests outside this repo can tell a gate failure from a bad file without parsing text.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class: every failure the store reports on purpose."""

    exit_code = 1


class BadArgument(StoreError):
    """A command-line or API argument that cannot be used (unknown store URL, non-integer key...)."""

    exit_code = 2


class BadAvroFile(StoreError):
    """A push input file that cannot be read, or whose schema is not the push-input layout."""

    exit_code = 3


class BadRecord(StoreError):
    """A record that decodes but breaks the value contract (e.g. an unknown candidate source)."""

    exit_code = 3


class DuplicateKey(StoreError):
    """The same key appears twice in one push with different values."""

    exit_code = 3


class IncompatibleSchema(StoreError):
    """The push's value schema cannot evolve from the current one (checked before anything is built)."""

    exit_code = 4


class GateFailed(StoreError):
    """The new version shrank by more than the allowed share against the current one."""

    exit_code = 5


class ValidationFailed(StoreError):
    """The built version does not hold what the input held (count mismatch, failed canary read)."""

    exit_code = 5


class PushInProgress(StoreError):
    """Another full push holds the push lock; a second one is refused rather than queued."""

    exit_code = 6


class NothingToRollBack(StoreError):
    """Rollback needs a previous online version whose data is still present."""

    exit_code = 7


class StoreUnavailable(StoreError):
    """The backend went away (Redis stopped, connection refused); nothing was made current."""

    exit_code = 8


class CorruptStore(StoreError):
    """The manifest or a stored value cannot be understood."""

    exit_code = 9
