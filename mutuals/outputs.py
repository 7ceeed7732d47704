"""Guarded output folders: a command replaces a folder only when it wrote that folder itself.

Why: an ad hoc command such as `mutuals fof --out DIR` replaces DIR as a whole. A typo in DIR must not
empty a home folder, the working folder or the input. A folder we wrote carries a marker file naming the
command and otherwise holds only what Spark's file committer leaves (`part-*`, `_SUCCESS`, their `.crc`),
so it is recognised without guessing. The swap itself goes through the lake's folder operations
(`Lake.replace_folder`); this module only decides whether a target may be replaced.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from mutuals.errors import UnsafeOutput, UsageError

# What Spark's file committer leaves in an output folder on a local or Hadoop filesystem.
WRITTEN_BY_SPARK = re.compile(r"part-[^/]*|_SUCCESS|\.(part-[^/]*|_SUCCESS)\.crc")


class OutputUnusable(UsageError, ValueError):
    """The output's parent cannot hold a folder (a file in the way, no write permission)."""


class OutputNotOurs(UnsafeOutput, ValueError):
    """The output exists and is not a previous output of the same command; --overwrite replaces it."""


class OutputHoldsInput(UnsafeOutput, ValueError):
    """The output is an input file or a folder holding it; refused even with --overwrite."""


class OutputHoldsWorkingDir(UnsafeOutput, ValueError):
    """The output is the working folder or one of its ancestors; refused even with --overwrite."""


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def _check_parent(target: Path) -> None:
    """The nearest existing ancestor must be a writable folder, or the staging folder cannot be made."""
    ancestor = target.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputUnusable(f"{target}: cannot create the output here ({ancestor} is not a writable folder)")


@dataclass(frozen=True)
class OutputGuard:
    """The output rules of one command: `command` is written into the marker file named `marker`."""

    command: str
    marker: str

    def is_previous_output(self, folder: Path) -> bool:
        """True only for a folder this command wrote: its marker, and otherwise only Spark's part files."""
        if folder.is_symlink() or not folder.is_dir():
            return False
        names = os.listdir(folder)
        if self.marker not in names:
            return False
        try:
            marker = json.loads((folder / self.marker).read_text())
        except (OSError, ValueError):
            return False
        if not isinstance(marker, dict) or marker.get("command") != self.command:
            return False
        return all(WRITTEN_BY_SPARK.fullmatch(name) and (folder / name).is_file()
                   and not (folder / name).is_symlink() for name in names if name != self.marker)

    def check(self, out: Path, source: Path, overwrite: bool) -> Path:
        """Return `out` as an absolute path if replacing it destroys nothing it must not; raise otherwise."""
        target = Path(os.path.abspath(out))
        real = target.resolve()
        if _within(source.resolve(), real) or _within(Path(os.path.abspath(source)), target):
            raise OutputHoldsInput(f"{out}: is or holds the edge file {source}; choose another --out")
        if _within(Path.cwd().resolve(), real):
            raise OutputHoldsWorkingDir(f"{out}: is or holds the working folder {Path.cwd()}; choose another --out")
        if not os.path.lexists(target):
            _check_parent(target)
            return target
        if overwrite or self.is_previous_output(target):
            return target
        kind = "folder" if target.is_dir() else "file"
        raise OutputNotOurs(f"{out}: existing {kind} is not a previous `{self.command}` output (no {self.marker} "
                            f"marker, or other files in it); pass --overwrite to replace it")
