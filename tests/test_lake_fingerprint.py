"""deploy/airflow/lake_fingerprint.py, the check `make airflow-test` uses to show a re-run changed no row.

Tables are written with delta-rs (no Spark): a rewrite of the same rows is "rewritten, unchanged", one
changed value is a change, and a publication differing only in its per-run fields is not.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "airflow" / "lake_fingerprint.py"
_spec = importlib.util.spec_from_file_location("lake_fingerprint", SCRIPT)
lake_fingerprint = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lake_fingerprint)


def edges(rows: list[tuple[int, int]]) -> pa.Table:
    return pa.table({"src": [r[0] for r in rows], "dst": [r[1] for r in rows], "ds": ["2026-01-01"] * len(rows)})


def publication(run_id: str, version: int) -> pa.Table:
    tables = pa.array([[{"table": "graph/edges", "version": version, "rows": 2}]],
                      pa.list_(pa.struct([("table", pa.string()), ("version", pa.int64()), ("rows", pa.int64())])))
    return pa.table({"run_id": [run_id], "tables": tables,
                     "published_at": pa.array([dt.datetime(2026, 1, 2, version)], pa.timestamp("us")),
                     "job": ["graph"], "ds": ["2026-01-01"]})


def compare(lake: Path, before: dict, tmp_path: Path, capsys) -> tuple[int, dict]:
    saved = tmp_path / "before.json"
    saved.write_text(json.dumps(before))
    code = lake_fingerprint.main([str(lake), "--compare", str(saved)])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_a_rewrite_with_the_same_rows_is_unchanged_and_a_changed_row_is_not(tmp_path, capsys):
    lake = tmp_path / "lake"
    write_deltalake(str(lake / "graph" / "edges"), edges([(1, 2), (2, 1)]), partition_by=["ds"])
    write_deltalake(str(lake / "meta" / "publications"), publication("run-a", 0), partition_by=["job", "ds"])
    before = lake_fingerprint.fingerprint(lake)
    assert before["tables"]["graph/edges"] == {
        "2026-01-01": {"rows": 2, "sha256": before["tables"]["graph/edges"]["2026-01-01"]["sha256"]}}

    # the re-run: same rows in another order, a new publication of the same day (new run id and version)
    write_deltalake(str(lake / "graph" / "edges"), edges([(2, 1), (1, 2)]), mode="overwrite", partition_by=["ds"])
    write_deltalake(str(lake / "meta" / "publications"), publication("run-b", 1), mode="overwrite",
                    partition_by=["job", "ds"])
    code, summary = compare(lake, before, tmp_path, capsys)
    assert code == 0
    assert summary["tables_with_changed_rows"] == []
    assert summary["tables_rewritten_by_the_rerun"] == 2
    assert (summary["tables"], summary["rows"]) == (2, 3)

    write_deltalake(str(lake / "graph" / "edges"), edges([(1, 2), (2, 3)]), mode="overwrite", partition_by=["ds"])
    code, summary = compare(lake, before, tmp_path, capsys)
    assert code == 1
    assert summary["tables_with_changed_rows"] == ["graph/edges"]
