"""One exception class per failure mode of the push side; each message says what was expected and found.

Every class is also a member of its `mutuals.errors` family, so `mutuals store ...`, `mutuals run push` and
any caller that only knows the families print one line (`ClassName: message`) and exit with the family's
code; operators and the tests outside this repo can tell a gate failure from a bad file without parsing text.
`StoreError` stays the root of the push side, so `except StoreError` still catches all of them, except
`DuplicateKey`: a key repeated with different values is the same failure wherever it is found, so the push
raises the one class of `mutuals.errors`.
"""

from __future__ import annotations

from mutuals import errors


class StoreError(errors.MutualsError):
    """Base class: every failure the store reports on purpose."""

    exit_code = 1


class BadArgument(StoreError, errors.UsageError):
    """A command-line or API argument that cannot be used (unknown store URL, non-integer key...)."""

    exit_code = 2


class BadAvroFile(StoreError, errors.BadInput):
    """A push input file that cannot be read, or whose schema is not the push-input layout."""

    exit_code = 3


class BadRecord(StoreError, errors.BadInput):
    """A record that decodes but breaks the value contract (e.g. an unknown candidate source)."""

    exit_code = 3


class IncompatibleSchema(StoreError, errors.SchemaError):
    """The push's value schema cannot evolve from the current one (checked before anything is built)."""

    exit_code = 4


class SizeDropRefused(StoreError, errors.GateFailed):
    """The new version shrank by more than the allowed share against the current one."""

    exit_code = 5


class EmptyPush(StoreError, errors.GateFailed):
    """A full push with no records, refused unless the caller asked for an empty version explicitly."""

    exit_code = 5


class ValidationFailed(StoreError, errors.GateFailed):
    """The built version does not hold what the input held (count mismatch, failed canary read)."""

    exit_code = 5


class PushInProgress(StoreError, errors.Conflict):
    """Another full push holds the push lock; a second one is refused rather than queued."""

    exit_code = 6


class NothingToRollBack(StoreError, errors.NothingToRollBack):
    """Rollback needs a previous online version whose data is still present."""

    exit_code = 7


class StoreUnavailable(StoreError, errors.Unavailable):
    """The backend went away (Redis stopped, connection refused); nothing was made current."""

    exit_code = 8


class CorruptStore(StoreError, errors.Corrupt):
    """The manifest or a stored value cannot be understood."""

    exit_code = 9


class StoreNotFound(StoreError, errors.MissingInput):
    """The store named by the caller does not exist; only a push creates one."""

    exit_code = 10
