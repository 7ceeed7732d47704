"""`mutuals fof`: exact answer on ego-Facebook, CSV contract (CRLF, malformed lines), output safety, checks
before Spark, K capping, spark-submit smoke."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.testing import assertDataFrameEqual

from ingestion import edge_list
from mutuals import outputs
from mutuals.errors import BadInput, MissingInput, UnsafeOutput, UsageError
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
    with pytest.raises(edge_list.EdgeRowMalformed, match=r"edges\.csv line 17, field dst: 'x7' is not a long"):
        fof.run(spark, fof_args(edges, tmp_path / "out"))


def test_wrong_field_count_and_header_are_named(spark, tmp_path):
    edges = tmp_path / "edges.csv"
    edges.write_text("src,dst\r\n1,2\r\n2,3,4\r\n")
    with pytest.raises(edge_list.EdgeRowMalformed, match=r"edges\.csv line 3: expected 2 fields \(src,dst\), found 3"):
        fof.run(spark, fof_args(edges, tmp_path / "out"))
    edges.write_text("from,to\n1,2\n")
    with pytest.raises(edge_list.EdgeHeaderInvalid, match=r"header must be 'src,dst', found 'from,to'"):
        fof.run(spark, fof_args(edges, tmp_path / "out"))


def test_skip_bad_rows_counts_and_skips(spark, tmp_path, capsys):
    edges = tmp_path / "edges.csv"
    edges.write_bytes(b"src,dst\r\n1,2\r\n3,2\r\nx,4\r\n3,4\r\n5,\r\n9223372036854775808,1\r\n")
    summary = fof.run(spark, fof_args(edges, tmp_path / "out", skip_bad_rows=True))
    assert summary["skipped_rows"] == 3
    assert "skipped 3 malformed line(s); first: " in capsys.readouterr().err
    assertDataFrameEqual(spark.read.parquet(str(tmp_path / "out")), result_frame(spark, PATH_ANSWER))


def test_spark_submit_smoke(tmp_path):
    """No hand-set PYSPARK_PYTHON or SPARK_LOCAL_IP: only the venv on PATH, as after `source .venv/bin/activate`."""
    write_edge_csv(tmp_path / "path.csv", GRAPHS["path"])
    venv_bin = Path(sys.executable).parent
    env = {"PATH": f"{venv_bin}:/usr/bin:/bin", "HOME": os.environ.get("HOME", str(tmp_path))}
    done = subprocess.run(
        [str(venv_bin / "spark-submit"), "--master", "local[1]", str(REPO / "spark_jobs" / "fof.py"),
         "--edges", str(tmp_path / "path.csv"), "--top-k", "5", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"rows": 4' in done.stdout
    table = pq.read_table(tmp_path / "out").sort_by([("member_id", "ascending")])
    assert table["candidate_id"].to_pylist() == [3, 4, 1, 2]


# ---------------------------------------------------------------- output safety


def _path_graph(tmp_path: Path) -> Path:
    write_edge_csv(tmp_path / "path.csv", GRAPHS["path"])
    return tmp_path / "path.csv"


def test_out_folder_with_an_unrelated_file_is_refused_and_the_file_survives(spark, tmp_path):
    edges = _path_graph(tmp_path)
    out = tmp_path / "reports"
    out.mkdir()
    (out / "q3.xlsx").write_bytes(b"precious")
    with pytest.raises(outputs.OutputNotOurs, match=r"reports: existing folder is not a previous `mutuals fof` output"):
        fof.run(spark, fof_args(edges, out))
    assert fof.main(["--edges", str(edges), "--top-k", "5", "--out", str(out)]) == 11
    assert sorted(p.name for p in out.iterdir()) == ["q3.xlsx"]
    assert (out / "q3.xlsx").read_bytes() == b"precious"


def test_out_equal_to_edges_is_refused_even_with_overwrite(spark, tmp_path):
    edges = _path_graph(tmp_path)
    before = edges.read_bytes()
    for extra in ({}, {"overwrite": True}):
        with pytest.raises(outputs.OutputHoldsInput, match=r"path\.csv: is or holds the edge file"):
            fof.run(spark, fof_args(edges, edges, **extra))
    assert edges.read_bytes() == before == b"src,dst\n1,2\n3,2\n3,4\n"


def test_out_folder_holding_the_edges_is_refused_even_with_overwrite(spark, tmp_path):
    edges = _path_graph(tmp_path)
    with pytest.raises(UnsafeOutput, match="is or holds the edge file"):
        fof.run(spark, fof_args(edges, tmp_path, overwrite=True))
    assert edges.read_bytes() == b"src,dst\n1,2\n3,2\n3,4\n"


def test_out_holding_the_working_folder_is_refused(spark, tmp_path, monkeypatch):
    edges = _path_graph(tmp_path)
    work = tmp_path / "project" / "work"
    work.mkdir(parents=True)
    (work / "notes.txt").write_text("keep")
    monkeypatch.chdir(work)
    for out in (Path("."), Path(".."), tmp_path / "project"):
        with pytest.raises(outputs.OutputHoldsWorkingDir, match="is or holds the working folder"):
            fof.run(spark, fof_args(edges, out, overwrite=True))
    assert (work / "notes.txt").read_text() == "keep"


def test_rerun_into_a_previous_output_replaces_it_atomically(spark, tmp_path):
    edges = _path_graph(tmp_path)
    write_edge_csv(tmp_path / "shared_triple.csv", GRAPHS["shared_triple"])
    out = tmp_path / "out"
    fof.run(spark, fof_args(edges, out))
    assert fof.is_previous_output(out)
    fof.run(spark, fof_args(tmp_path / "shared_triple.csv", out, top_k=2))
    expected = [(1, 5, 3), (5, 1, 3), (1, 6, 1), (5, 6, 1), (6, 1, 1), (6, 5, 1),
                (2, 3, 2), (3, 2, 2), (2, 4, 2), (4, 2, 2), (3, 4, 2), (4, 3, 2)]
    assertDataFrameEqual(spark.read.parquet(str(out)), result_frame(spark, expected))
    marker = (out / fof.MARKER).read_text()
    assert '"edges": "' + str(tmp_path / "shared_triple.csv") + '"' in marker
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "path.csv", "shared_triple.csv"]


def test_overwrite_replaces_an_unrelated_folder(spark, tmp_path):
    edges = _path_graph(tmp_path)
    out = tmp_path / "old"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "x.txt").write_text("old")
    (out / "y.csv").write_text("old")
    fof.run(spark, fof_args(edges, out, overwrite=True))
    assertDataFrameEqual(spark.read.parquet(str(out)), result_frame(spark, PATH_ANSWER))
    assert not (out / "sub").exists() and not (out / "y.csv").exists()
    assert fof.is_previous_output(out)


def test_a_marker_beside_foreign_files_is_not_ours(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / fof.MARKER).write_text('{"command": "mutuals fof"}')
    (out / "part-00000.parquet").write_bytes(b"")
    assert fof.is_previous_output(out)
    (out / "diary.txt").write_text("mine")
    assert not fof.is_previous_output(out)


# ---------------------------------------------------------------- K and checks before Spark


def test_top_k_above_the_member_count_is_capped(spark, tmp_path):
    write_edge_csv(tmp_path / "star.csv", GRAPHS["star"])
    huge = fof.run(spark, fof_args(tmp_path / "star.csv", tmp_path / "huge", top_k=20_000_000))
    exact = fof.run(spark, fof_args(tmp_path / "star.csv", tmp_path / "exact", top_k=41))
    # 41 members (leaves 1..40 and hub 100); each leaf's candidates are the 39 other leaves, common 1
    assert huge["top_k"] == 41 and huge["rows"] == exact["rows"] == 40 * 39
    assertDataFrameEqual(spark.read.parquet(str(tmp_path / "huge")), spark.read.parquet(str(tmp_path / "exact")))


def _mutuals(tmp_path: Path, *argv: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run([str(Path(sys.executable).parent / "mutuals"), "fof", *argv], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    return done, time.monotonic() - started


def test_missing_edges_file_fails_fast_naming_the_file(tmp_path):
    done, seconds = _mutuals(tmp_path, "--edges", "no_such_edges.csv", "--top-k", "5", "--out", "out")
    assert (done.returncode, done.stdout) == (MissingInput.exit_code, "")
    assert done.stderr.strip().splitlines() == ["EdgeFileMissing: no_such_edges.csv: edge file does not exist"]
    assert seconds < 5, f"took {seconds:.1f} s: a Spark session was started"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("case", "family", "needle"), [
    ("bad_header", BadInput, "EdgeHeaderInvalid: edges.csv: header must be 'src,dst', found 'a,b'"),
    ("bad_row", BadInput, "EdgeRowMalformed: edges.csv line 3, field src: 'x' is not a long"),
    ("top_k_zero", UsageError, "ArgumentInvalid: --top-k must be >= 1, found 0"),
    ("out_is_edges", UnsafeOutput,
     "OutputHoldsInput: edges.csv: is or holds the edge file edges.csv; choose another --out"),
])
def test_bad_arguments_and_input_fail_before_spark(tmp_path, case, family, needle):
    body = {"bad_header": "a,b\n1,2\n", "bad_row": "src,dst\n1,2\nx,3\n"}.get(case, "src,dst\n1,2\n")
    (tmp_path / "edges.csv").write_text(body)
    top_k = "0" if case == "top_k_zero" else "5"
    out = "edges.csv" if case == "out_is_edges" else "out"
    done, seconds = _mutuals(tmp_path, "--edges", "edges.csv", "--top-k", top_k, "--out", out)
    assert done.returncode == family.exit_code, done.stderr
    assert done.stderr.strip().splitlines() == [needle]
    assert seconds < 5, f"took {seconds:.1f} s: a Spark session was started"
    assert (tmp_path / "edges.csv").read_text() == body
