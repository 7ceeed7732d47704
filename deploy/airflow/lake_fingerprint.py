"""Print one JSON document describing a lake's data: rows and a checksum per Delta table, per day.

`make airflow-test` takes it before and after re-running a backfill: equal fingerprints mean the re-run
changed no row of any table. It also records each table's Delta version, which a re-run does move (the
jobs rewrite their partitions and publish again), so the comparison shows the re-run really ran.

What is compared: every row of every Delta table under the lake, canonical JSON, sorted, hashed per
(table, ds); `meta/publications` without its per-run fields (run_id, published_at, the Delta versions),
because a publication is the record of one run; and the bytes of the push input's Avro files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

from deltalake import DeltaTable

PUBLICATIONS = "meta/publications"
PER_RUN_FIELDS = {"run_id", "published_at"}


def delta_tables(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/*/_delta_log") if p.is_dir())


def canonical_row(row: dict, key: str) -> str:
    if key == PUBLICATIONS:
        row = {k: v for k, v in row.items() if k not in PER_RUN_FIELDS}
        row["tables"] = sorted((t["table"], t["rows"]) for t in row["tables"])
    return json.dumps(row, sort_keys=True, default=str)


def fingerprint(root: Path) -> dict:
    tables: dict[str, dict] = {}
    versions: dict[str, int] = {}
    for path in delta_tables(root):
        key = path.relative_to(root).as_posix()
        table = DeltaTable(str(path))
        versions[key] = table.version()
        per_day: dict[str, list[str]] = defaultdict(list)
        for row in table.to_pyarrow_table().to_pylist():
            per_day[str(row.get("ds"))].append(canonical_row(row, key))
        tables[key] = {ds: {"rows": len(rows), "sha256": hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()}
                       for ds, rows in sorted(per_day.items())}
    push = {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "push").rglob("*.avro"))}
    return {"tables": tables, "push_files": push, "delta_versions": versions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("lake", type=Path)
    parser.add_argument("--compare", type=Path, default=None,
                        help="an earlier fingerprint: exit 1 naming each table whose data differs")
    args = parser.parse_args(argv)
    now = fingerprint(args.lake)
    if args.compare is None:
        print(json.dumps(now, indent=1, sort_keys=True))
        return 0
    before = json.loads(args.compare.read_text())
    changed = sorted(k for k in set(now["tables"]) | set(before["tables"])
                     if now["tables"].get(k) != before["tables"].get(k))
    push_changed = now["push_files"] != before["push_files"]
    rewritten = sorted(k for k, v in now["delta_versions"].items() if v != before["delta_versions"].get(k))
    rows = sum(d["rows"] for t in now["tables"].values() for d in t.values())
    print(json.dumps({"tables": len(now["tables"]), "rows": rows, "tables_with_changed_rows": changed,
                      "push_files": len(now["push_files"]), "push_files_changed": push_changed,
                      "tables_rewritten_by_the_rerun": len(rewritten)}))
    return 1 if changed or push_changed else 0


if __name__ == "__main__":
    sys.exit(main())
