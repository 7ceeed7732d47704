"""`mutuals` outside `make`: the session factory picks the Python workers' interpreter itself.

Why a bare environment: the Makefile exports PYSPARK_PYTHON and SPARK_LOCAL_IP, which hid that a plain
`.venv/bin/mutuals fof` started workers with the system `python3` (no pyarrow). `env -i` keeps only PATH
and HOME, as a cron job or a fresh shell would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pyspark

from mutuals import session
from mutuals.profiles import profile_named
from tests.conftest import EGO_FACEBOOK

VENV_BIN = Path(sys.executable).parent
CHECKSUM_MOD = 2**61 - 1


def test_mutuals_fof_in_a_bare_environment_gives_the_exact_ego_facebook_answer(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={os.environ.get('HOME', tmp_path)}", str(VENV_BIN / "mutuals"),
         "fof", "--edges", str(EGO_FACEBOOK), "--top-k", "50", "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    table = pq.read_table(out)
    rows = zip(*(table[name].to_pylist() for name in ("member_id", "candidate_id", "common_connections")),
               strict=True)
    checksum = sum((a * 1000003 + c) * n for a, c, n in rows) % CHECKSUM_MOD
    assert (table.num_rows, sum(table["common_connections"].to_pylist()), checksum) == (
        201_854, 3_588_819, 5_584_582_348_461_794)


def test_worker_python_defaults_to_the_driver_interpreter(monkeypatch):
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    assert session.worker_python({}) == sys.executable


def test_worker_python_keeps_the_users_choice(monkeypatch):
    monkeypatch.setenv("PYSPARK_PYTHON", "/opt/env/bin/python")
    assert session.worker_python({}) == "/opt/env/bin/python"
    assert session.worker_python({"spark.pyspark.python": "/shipped/venv/bin/python"}) == "/shipped/venv/bin/python"


def test_the_master_is_the_explicit_one_else_spark_submits_else_the_profiles(monkeypatch):
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    local, cluster = profile_named("local", {}), profile_named("cluster", {})
    assert session.master_for(None, local) == "local[*]"
    assert session.master_for(None, cluster) is None  # left to spark-submit / the spark_default connection
    assert session.master_for("local[2]", cluster) == "local[2]"
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "40000")  # what spark-submit sets for its Python driver
    assert session.master_for(None, local) is None
    assert session.master_for("yarn", local) == "yarn"


SHOW_SHUFFLE_PARTITIONS = (
    "from mutuals.session import build_session, fit_shuffle_partitions\n"
    "spark = build_session('probe')\n"
    "print('partitions', spark.conf.get('spark.sql.shuffle.partitions'))\n"
    "print('fitted', fit_shuffle_partitions(spark, 1_000), fit_shuffle_partitions(spark, 100_000_001),\n"
    "      spark.conf.get('spark.sql.shuffle.partitions'))\n"
)


def _shown_partitions(done: subprocess.CompletedProcess) -> int:
    assert done.returncode == 0, done.stderr[-3000:]
    return int(next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("partitions ")))


def _fitted_partitions(done: subprocess.CompletedProcess) -> list[int]:
    """(count after fitting 1,000 rows, after fitting 100,000,001 rows, the session's count after both)."""
    return [int(x) for x in next(line.split()[1:] for line in done.stdout.splitlines() if line.startswith("fitted "))]


def test_shuffle_partitions_default_to_eight_per_core_grow_with_the_rows_and_a_submitted_conf_wins(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(SHOW_SHUFFLE_PARTITIONS)
    env = {k: v for k, v in os.environ.items() if k != "MUTUALS_SPARK_CONF"}
    env["PYTHONPATH"] = str(Path(session.__file__).resolve().parents[1])
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    env["SPARK_HOME"] = str(Path(pyspark.__file__).parent)
    default = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert _shown_partitions(default) == max(16, 8 * (os.cpu_count() or 1))
    # 100,000,001 rows at 2M a partition: 51 partitions, raised for the rest of the session
    assert _fitted_partitions(default) == [max(16, 8 * (os.cpu_count() or 1)), 51, 51]
    submitted = subprocess.run(
        [str(VENV_BIN / "spark-submit"), "--master", "local[2]", "--conf", "spark.sql.shuffle.partitions=3",
         "--conf", "spark.ui.enabled=false", str(script)],
        env=env, capture_output=True, text=True, timeout=300)
    assert _shown_partitions(submitted) == 3
    assert _fitted_partitions(submitted) == [3, 3, 3]


def test_a_local_driver_gets_a_third_of_the_machine_within_4_and_16_gib():
    gib = 2**30
    assert session.driver_memory("local[*]", 24 * gib) == "8g"
    assert session.driver_memory("local[2]", 6 * gib) == "4g"
    assert session.driver_memory("local[*]", 256 * gib) == "16g"
    assert session.driver_memory("spark://10.0.0.1:7077", 24 * gib) == "4g"
    assert session.driver_memory(None, 24 * gib) == "4g"
