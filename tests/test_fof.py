"""`mutuals fof`: exact answer on ego-Facebook, CSV contract (CRLF, malformed lines), spark-submit smoke."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.testing import assertDataFrameEqual

from spark_jobs import fof
from tests.conftest import EGO_FACEBOOK
from tests.graphs import GRAPHS, result_frame, write_edge_csv

REPO = Path(__file__).resolve().parents[1]
CHECKSUM_MOD = 2**61 - 1
PATH_ANSWER = [(1, 3, 1), (3, 1, 1), (2, 4, 1), (4, 2, 1)]


def fof_args(edges: Path, out: Path, top_k: int = 5, **extra) -> argparse.Namespace:
    argv = ["--edges", str(edges), "--top-k", str(top_k), "--out", str(out)]
    for key, value in extra.items():
        argv += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return fof.build_parser().parse_args(argv)


def test_ego_facebook_exact_answer(spark, tmp_path):
    summary = fof.run(spark, fof_args(EGO_FACEBOOK, tmp_path / "out", top_k=50))
    table = pq.read_table(tmp_path / "out")
    rows = zip(*(table[name].to_pylist() for name in ("member_id", "candidate_id", "common_connections")),
               strict=True)
    checksum = sum((a * 1000003 + c) * n for a, c, n in rows) % CHECKSUM_MOD
    assert (table.num_rows, sum(table["common_connections"].to_pylist()), checksum) == (
        201_854, 3_588_819, 5_584_582_348_461_794)
    assert summary["rows"] == 201_854 and summary["members"] == 4039


def test_crlf_file_gives_the_same_answer(spark, tmp_path):
    write_edge_csv(tmp_path / "path.csv", GRAPHS["path"], line_end="\r\n")
    fof.run(spark, fof_args(tmp_path / "path.csv", tmp_path / "out"))
    assertDataFrameEqual(spark.read.parquet(str(tmp_path / "out")), result_frame(spark, PATH_ANSWER))


def test_malformed_line_names_file_line_and_field(spark, tmp_path):
    edges = tmp_path / "edges.csv"
    rows = [f"{i},{i + 1}" for i in range(1, 16)]  # lines 2..16
    edges.write_text("src,dst\n" + "\n".join(rows) + "\n3,x7\n")  # line 17
    with pytest.raises(fof.EdgeRowMalformed, match=r"edges\.csv line 17, field dst: 'x7' is not a long"):
        fof.run(spark, fof_args(edges, tmp_path / "out"))


def test_wrong_field_count_and_header_are_named(spark, tmp_path):
    edges = tmp_path / "edges.csv"
    edges.write_text("src,dst\r\n1,2\r\n2,3,4\r\n")
    with pytest.raises(fof.EdgeRowMalformed, match=r"edges\.csv line 3: expected 2 fields \(src,dst\), found 3"):
        fof.run(spark, fof_args(edges, tmp_path / "out"))
    edges.write_text("from,to\n1,2\n")
    with pytest.raises(fof.EdgeHeaderInvalid, match=r"header must be 'src,dst', found 'from,to'"):
        fof.run(spark, fof_args(edges, tmp_path / "out"))


def test_skip_bad_rows_counts_and_skips(spark, tmp_path, capsys):
    edges = tmp_path / "edges.csv"
    edges.write_bytes(b"src,dst\r\n1,2\r\n3,2\r\nx,4\r\n3,4\r\n5,\r\n9223372036854775808,1\r\n")
    summary = fof.run(spark, fof_args(edges, tmp_path / "out", skip_bad_rows=True))
    assert summary["skipped_rows"] == 3
    assert "skipped 3 malformed line(s); first: " in capsys.readouterr().err
    assertDataFrameEqual(spark.read.parquet(str(tmp_path / "out")), result_frame(spark, PATH_ANSWER))


def test_spark_submit_smoke(tmp_path):
    write_edge_csv(tmp_path / "path.csv", GRAPHS["path"])
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}", "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run(
        [str(venv_bin / "spark-submit"), "--master", "local[1]", str(REPO / "spark_jobs" / "fof.py"),
         "--edges", str(tmp_path / "path.csv"), "--top-k", "5", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"rows": 4' in done.stdout
    table = pq.read_table(tmp_path / "out").sort_by([("member_id", "ascending")])
    assert table["candidate_id"].to_pylist() == [3, 4, 1, 2]
