"""`mutuals store ...`: the operator's (and outside tests') handle on the versioned store.

STORE is a folder (RocksDB) or redis://HOST:PORT/DB[?ns=NAME]; default $MUTUALS_STORE. Every command
prints JSON on stdout; a failure prints {"error": ..., "message": ...} on stderr and exits non-zero with
the failure mode's own code (see push.errors), so scripts need not parse the text.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from push.errors import BadArgument, StoreError
from push.store import StoreOptions, VersionedStore, open_store


def _store_options(args: argparse.Namespace) -> StoreOptions:
    return StoreOptions(retain=args.retain, max_drop=args.max_drop, rewind_s=args.rewind_s,
                        rt_ttl_s=args.ttl_s, grace_s=args.grace_s)


def _int_key(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"KEY must be an integer member id, found {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mutuals store", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", default=os.environ.get("MUTUALS_STORE"),
                        help="RocksDB folder or redis://HOST:PORT/DB (default: $MUTUALS_STORE)")
    defaults = StoreOptions()
    common.add_argument("--retain", type=int, default=defaults.retain,
                        help="online versions kept with data: current plus backups (default %(default)s)")
    common.add_argument("--max-drop", type=float, default=defaults.max_drop,
                        help="gate: largest allowed drop of key count or size vs current (default %(default)s)")
    common.add_argument("--rewind-s", type=float, default=defaults.rewind_s,
                        help="real-time writes this old before a push started are replayed onto it")
    common.add_argument("--ttl-s", type=float, default=defaults.rt_ttl_s, help="real-time entry TTL in seconds")
    common.add_argument("--grace-s", type=float, default=defaults.grace_s,
                        help="a retired version's data is removed this long after it left service")
    sub = parser.add_subparsers(dest="command", required=True)

    push = sub.add_parser("push", parents=[common], help="full (default) or incremental push of an Avro folder")
    push.add_argument("--avro", required=True, help="folder of push-input Avro container files (key, value)")
    push.add_argument("--incremental", action="store_true", help="upsert/delete into the current version")
    push.add_argument("--push-id", default=None, help="idempotency id: re-submitting it is a no-op")

    get = sub.add_parser("get", parents=[common], help="read keys; one JSON object per line")
    get.add_argument("keys", nargs="+", type=_int_key, metavar="KEY")

    sub.add_parser("versions", parents=[common], help="every version with status and counts")
    sub.add_parser("rollback", parents=[common], help="make the previous online version current")

    write = sub.add_parser("write", parents=[common], help="real-time upsert of one whole value")
    write.add_argument("--key", required=True, type=_int_key)
    write.add_argument("--value-json", required=True, help="the value record as JSON")
    write.add_argument("--ts", type=float, default=None, help="event time in epoch seconds (default: now)")

    delete = sub.add_parser("delete", parents=[common], help="real-time delete of one key")
    delete.add_argument("--key", required=True, type=_int_key)
    delete.add_argument("--ts", type=float, default=None, help="event time in epoch seconds (default: now)")
    return parser


def run(store: VersionedStore, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One command against an open store; the JSON documents to print, one per line."""
    if args.command == "push":
        return [store.push(args.avro, push_id=args.push_id, incremental=args.incremental)]
    if args.command == "get":
        read = store.get(args.keys)
        return [{"key": k, "version": read.version, "value": v} for k, v in zip(args.keys, read.values, strict=True)]
    if args.command == "versions":
        return [store.versions()]
    if args.command == "rollback":
        return [store.rollback()]
    if args.command == "write":
        try:
            value = json.loads(args.value_json)
        except json.JSONDecodeError as exc:
            raise BadArgument(f"--value-json: not valid JSON ({exc})") from exc
        if not isinstance(value, dict):
            raise BadArgument(f"--value-json: expected a JSON object, found {type(value).__name__}")
        return [store.write(args.key, value, ts=args.ts)]
    if args.command == "delete":
        return [store.delete(args.key, ts=args.ts)]
    raise BadArgument(f"unknown store command {args.command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if not args.store:
            raise BadArgument("--store is required (or set $MUTUALS_STORE)")
        store = open_store(args.store, _store_options(args))
        try:
            for doc in run(store, args):
                print(json.dumps(doc, sort_keys=True, default=str))
        finally:
            store.close()
    except StoreError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}), file=sys.stderr)
        return exc.exit_code
    return 0


def demo_readback(store_url: str, keys: Sequence[int]) -> list[dict[str, Any]]:
    """For `mutuals demo`: read `keys` back through the store, as `mutuals store get` prints them."""
    store = open_store(store_url)
    try:
        read = store.get(list(keys))
        return [{"key": k, "version": read.version, "value": v} for k, v in zip(keys, read.values, strict=True)]
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
