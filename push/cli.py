"""`mutuals store ...`: the operator's (and outside tests') handle on the versioned store.

STORE is a folder (RocksDB) or redis://HOST:PORT/DB[?ns=NAME]; default $MUTUALS_STORE. Every command
prints JSON on stdout. A failure prints one line on stderr, `ClassName: message`, and exits with its
family's code (mutuals.errors: 2 usage, 3 bad input, 4 schema, 5 gate failed, 6 push in progress,
7 nothing to roll back, 8 unavailable, 9 corrupt store, 10 no such store), so scripts need not parse text.

Only `push` creates a store; every other command on a store that does not exist fails with exit 10.
`get` and `versions` never write to the store. The store's settings (--retain, --grace-s, --rewind-s,
--ttl-s) are recorded when the first push creates it; `configure` is the only command that changes them.
On a later push those flags may repeat the recorded values, and a different value is refused (exit 2)
rather than silently applied or ignored. --max-drop is per push.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from mutuals.errors import run_and_exit_code
from push.errors import BadArgument
from push.store import StoreOptions, VersionedStore, member_key
from push.stores import open_store

# (flag, StoreOptions field, type, help): the settings a store records at creation.
SETTING_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("--retain", "retain", int, "online versions kept with data: current plus backups"),
    ("--grace-s", "grace_s", float, "a retired version's data is removed this long after it left service"),
    ("--rewind-s", "rewind_s", float, "real-time writes this old before a push started are replayed onto it"),
    ("--ttl-s", "rt_ttl_s", float, "real-time entry TTL in seconds"),
)
READ_ONLY = ("get", "versions")


class _Parser(argparse.ArgumentParser):
    """Argument errors raise BadArgument, so they print one line and exit 2 like every other usage error."""

    def error(self, message: str) -> NoReturn:
        raise BadArgument(f"{self.prog}: {message}")


def _add_setting_flags(parser: argparse.ArgumentParser, when: str) -> None:
    defaults = StoreOptions()
    for flag, field, kind, text in SETTING_FLAGS:
        parser.add_argument(flag, dest=field, type=kind, default=None, metavar="N" if kind is int else "SECONDS",
                            help=f"{text} ({when}; default for a new store: {getattr(defaults, field)})")


def _given_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {field: getattr(args, field) for _, field, _, _ in SETTING_FLAGS if getattr(args, field, None) is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mutuals store", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", default=os.environ.get("MUTUALS_STORE"),
                        help="RocksDB folder or redis://HOST:PORT/DB (default: $MUTUALS_STORE)")
    sub = parser.add_subparsers(dest="command", required=True)

    push = sub.add_parser("push", parents=[common], help="full (default) or incremental push of an Avro folder")
    push.add_argument("--avro", required=True, help="folder of push-input Avro container files (key, value)")
    push.add_argument("--incremental", action="store_true", help="upsert/delete into the current version")
    push.add_argument("--push-id", default=None, help="idempotency id: re-submitting it is a no-op")
    push.add_argument("--max-drop", type=float, default=StoreOptions().max_drop,
                      help="gate: largest allowed drop of key count or size vs current (default %(default)s)")
    push.add_argument("--allow-empty", action="store_true",
                      help="accept a full push of zero records (refused by default)")
    _add_setting_flags(push, "recorded when this push creates the store; must match on an existing store")

    get = sub.add_parser("get", parents=[common], help="read keys; one JSON object per line (never writes)")
    get.add_argument("keys", nargs="+", metavar="KEY", help="member ids (signed 64-bit integers)")

    sub.add_parser("versions", parents=[common], help="every version with status and counts (never writes)")
    sub.add_parser("rollback", parents=[common], help="make the previous online version current")

    configure = sub.add_parser("configure", parents=[common],
                               help="change the store's recorded settings; prints them all (none given: just print)")
    _add_setting_flags(configure, "new recorded value")

    write = sub.add_parser("write", parents=[common], help="real-time upsert of one whole value")
    write.add_argument("--key", required=True)
    write.add_argument("--value-json", required=True, help="the value record as JSON")
    write.add_argument("--ts", type=float, default=None, help="event time in epoch seconds (default: now)")

    delete = sub.add_parser("delete", parents=[common], help="real-time delete of one key")
    delete.add_argument("--key", required=True)
    delete.add_argument("--ts", type=float, default=None, help="event time in epoch seconds (default: now)")
    return parser


def open_for(args: argparse.Namespace) -> VersionedStore:
    """Open the store the way the command needs: only a full push creates it, reads open without recovery
    (nothing written), and a push's setting flags must agree with the store's recorded settings."""
    if not args.store:
        raise BadArgument("--store is required (or set $MUTUALS_STORE)")
    if args.command != "push":
        return open_store(args.store, recover=args.command not in READ_ONLY + ("configure",))
    given = _given_settings(args)
    store = open_store(args.store, StoreOptions(max_drop=args.max_drop, **given), create=not args.incremental)
    try:
        check_settings(store, given)
    except BaseException:
        store.close()
        raise
    return store


def check_settings(store: VersionedStore, given: dict[str, Any]) -> None:
    """Refuse a push whose setting flags differ from what the store recorded."""
    recorded = store.settings()
    differ = {name: value for name, value in given.items() if recorded[name] != value}
    if differ:
        flags = {field: flag for flag, field, _, _ in SETTING_FLAGS}
        found = ", ".join(f"{flags[name]} {value} (recorded: {recorded[name]})" for name, value in differ.items())
        raise BadArgument(f"{store.describe()}: {found}; a push does not change a store's settings, "
                          "use `mutuals store configure` for that")


def run(store: VersionedStore, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One command against an open store; the JSON documents to print, one per line."""
    if args.command == "push":
        return [store.push(args.avro, push_id=args.push_id, incremental=args.incremental,
                           allow_empty=args.allow_empty)]
    if args.command == "get":
        keys = [member_key(k) for k in args.keys]
        read = store.get(keys)
        return [{"key": k, "version": read.version, "value": v} for k, v in zip(keys, read.values, strict=True)]
    if args.command == "versions":
        return [store.versions()]
    if args.command == "rollback":
        return [store.rollback()]
    if args.command == "configure":
        given = _given_settings(args)
        return [store.configure(**given) if given else store.settings()]
    if args.command == "write":
        return [store.write(member_key(args.key), _value_json(args.value_json), ts=args.ts)]
    if args.command == "delete":
        return [store.delete(member_key(args.key), ts=args.ts)]
    raise BadArgument(f"unknown store command {args.command!r}")


def _value_json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadArgument(f"--value-json: not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise BadArgument(f"--value-json: expected a JSON object, found {type(value).__name__}")
    return value


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("get", "write", "delete"):   # a bad key fails before the store is touched
        for key in args.keys if args.command == "get" else [args.key]:
            member_key(key)
    store = open_for(args)
    try:
        for doc in run(store, args):
            print(json.dumps(doc, sort_keys=True, default=str))
    finally:
        store.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `mutuals store` and `python -m push.cli`: the exit code of the command."""
    return run_and_exit_code(lambda: _main(list(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    sys.exit(main())
