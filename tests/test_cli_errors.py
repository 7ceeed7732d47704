"""Expected failures print one line and exit with their family's code; bugs keep their traceback.

The exit codes are part of the CLI contract (`mutuals.errors`): cron wrappers and Airflow callbacks tell
"input not there yet" (10) from "bad input" (3) or "gate refused" (5) by the code alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mutuals import cli, errors

REPO = Path(__file__).resolve().parents[1]
MUTUALS = Path(sys.executable).parent / "mutuals"

EXPECTED_CODES = {
    "UsageError": 2, "BadInput": 3, "SchemaError": 4, "GateFailed": 5, "Conflict": 6,
    "NothingToRollBack": 7, "Unavailable": 8, "Corrupt": 9, "MissingInput": 10, "UnsafeOutput": 11,
}


def test_every_family_has_its_documented_exit_code():
    assert {family.__name__: family.exit_code for family in errors.FAMILIES} == EXPECTED_CODES


def test_an_expected_failure_prints_one_line_and_exits_with_its_family_code(capsys, monkeypatch):
    monkeypatch.delenv(errors.TRACEBACK_ENV, raising=False)

    def fail() -> int:
        raise errors.MissingInput("candidates/pairs ds=2026-01-02 is not published\nrun the candidates job")

    assert errors.run_and_exit_code(fail) == 10
    err = capsys.readouterr().err
    assert err == "MissingInput: candidates/pairs ds=2026-01-02 is not published | run the candidates job\n"


def test_the_traceback_variable_shows_the_traceback(capsys, monkeypatch):
    monkeypatch.setenv(errors.TRACEBACK_ENV, "1")

    def fail() -> int:
        raise errors.GateFailed("size drop 80% > 20%")

    assert errors.run_and_exit_code(fail) == 5
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "GateFailed: size drop 80% > 20%" in err


def test_an_unexpected_error_is_not_swallowed():
    def bug() -> int:
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        errors.run_and_exit_code(bug)


@pytest.mark.parametrize(("value", "message"), [
    ("2026-13-01", "'2026-13-01' is not a calendar date (month must be in 1..12)"),
    ("2026-02-30", "'2026-02-30' is not a calendar date (day is out of range for month)"),
    ("2026/01/02", "must be YYYY-MM-DD, got '2026/01/02'"),
])
def test_a_bad_date_says_what_is_wrong_with_it(capsys, value, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "graph", "--date", value, "--lake", "/nonexistent"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --date: {message}" in err
    if "calendar" in message:
        assert "must be YYYY-MM-DD" not in err


def test_a_missing_input_through_the_installed_command_is_one_line_and_exit_10(tmp_path):
    """A real process, as cron or an Airflow worker runs it: one stderr line, no traceback, exit 10."""
    lake = tmp_path / "lake"
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", str(tmp_path))}
    done = subprocess.run([str(MUTUALS), "run", "recs", "--date", "2026-01-02", "--lake", str(lake)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 10, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr
    assert lines[-1].startswith(("UnpublishedPartition: ", "MissingTable: ")), lines
    assert "features/pairs" in lines[-1]
    assert "ds=2026-01-02" in lines[-1]
    traced = subprocess.run([str(MUTUALS), "--traceback", "run", "recs", "--date", "2026-01-02", "--lake",
                             str(lake)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert traced.returncode == 10
    assert "Traceback (most recent call last)" in traced.stderr


def test_a_spark_submitted_job_reports_a_missing_input_in_one_line(tmp_path):
    """`spark-submit spark_jobs/JOB.py` is the other way jobs run: same one line, same exit code."""
    venv_bin = Path(sys.executable).parent
    env = {"PATH": f"{venv_bin}:/usr/bin:/bin", "HOME": os.environ.get("HOME", str(tmp_path))}
    job = str(REPO / "spark_jobs" / "graph.py")
    done = subprocess.run([str(venv_bin / "spark-submit"), "--master", "local[1]", job,
                           "--date", "2026-01-02", "--lake", str(tmp_path / "lake")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 10, done.stderr[-2000:]
    # spark-submit's PythonRunner merges the driver's stderr into its stdout.
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    ours = [line for line in output.splitlines() if line.startswith(("UnpublishedPartition: ", "MissingTable: "))]
    assert len(ours) == 1, output[-2000:]
    assert "raw/connections" in ours[0] and "ingest" in ours[0]
