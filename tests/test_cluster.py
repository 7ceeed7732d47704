"""Every daily job on a real Spark standalone cluster gives exactly the tables a local[*] run gives.

One small synthetic day (`mutuals generate`, one day) lands in two lakes. Every job of the daily DAG
(`mutuals.pipeline.JOB_ORDER`, so a job added there is covered here too) runs once in-process on the
shared local session (`spark` fixture, the job's own `main`), and once against a standalone master with
two one-core workers (`tests/cluster.py`), alternating the two ways a cluster is used:
- `MUTUALS_SPARK_MASTER=spark://... mutuals run JOB` (the local profile's master switch), and
- `spark-submit --master spark://... --py-files mutuals-code.zip JOB.py`, where the zip is what
  `mutuals package` builds and JOB.py is the entrypoint taken out of that zip into an empty folder, run
  from that folder: the code travels the way a cluster gets it, not from this checkout's spark_jobs/.
Then every table each job writes (the registry's `writer`), its publication and the push job's Avro
files are compared with the local lake's, job by job in DAG order, so a failure names the first job whose
output differs.

Why so small: the point is the executors (separate JVMs with their own Python workers and folders), not
the volume; each cluster run still pays a driver and two executors starting. The cluster's chain of jobs
runs in a thread of its own while the local chain runs in-process: the two lakes are independent, and a
cluster job spends much of its wall time waiting on JVM start-up and task round trips.
`make cluster-test` runs this file alone.
"""

from __future__ import annotations

import importlib
import json
import math
import shutil
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from deltalake import DeltaTable

from mutuals.cli import available_jobs
from mutuals.package import build_code_zip
from mutuals.pipeline import JOB_ORDER
from mutuals.profiles import MASTER_ENV
from mutuals.tables import tables_written_by
from synthetic.generate import generate
from tests.cluster import SPARK_SUBMIT, StandaloneCluster, daemon_env, group_alive

DAY = "2026-01-01"
MEMBERS = 60
SEED = 7
# The jobs whose cluster run goes through `mutuals run`; the others go through spark-submit.
JOBS = [job for job in JOB_ORDER if job in set(available_jobs())]
VIA_MUTUALS_RUN = set(JOBS[0::2])
PUSH_FOLDER = ("push", "recommendations", f"ds={DAY}")
# Launch a task on any free executor at once: the default 3 s wait for a "local" slot (an executor holding
# the cached block or shuffle output) is paid by every stage of every small job, and on one machine every
# executor is equally near the data.
CLUSTER_CONF = {"spark.locality.wait": "0s"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    standalone = StandaloneCluster(tmp_path_factory.mktemp("standalone")).start()
    try:
        yield standalone
    finally:
        standalone.stop()


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> tuple[Path, Path]:
    """(the code zip, a folder with each job's entrypoint taken out of it, alone in a folder of its own: a
    script's folder comes first on sys.path, and another job's file there could shadow a package)."""
    out = tmp_path_factory.mktemp("dist")
    code_zip, _ = build_code_zip(out)
    entrypoints = out / "submit"
    with zipfile.ZipFile(code_zip) as archive:
        for job in JOBS:
            (entrypoints / job).mkdir(parents=True)
            (entrypoints / job / f"{job}.py").write_bytes(archive.read(f"spark_jobs/{job}.py"))
    return code_zip, entrypoints


def run_on_cluster(job: str, lake: Path, cluster: StandaloneCluster, shipped: tuple[Path, Path]) -> dict:
    """Run one job for DAY against the cluster; return its command and wall time (for the report)."""
    args = ["--date", DAY, "--lake", str(lake)]
    env = {**daemon_env(), "MUTUALS_SPARK_UI": "false"}
    code_zip, entrypoints = shipped
    shown_env = ""
    if job in VIA_MUTUALS_RUN:
        command = [str(Path(sys.executable).parent / "mutuals"), "run", job, *args]
        env[MASTER_ENV] = cluster.master_url
        env["MUTUALS_SPARK_CONF"] = ",".join(f"{k}={v}" for k, v in CLUSTER_CONF.items())
        shown_env = f"{MASTER_ENV}={env[MASTER_ENV]} MUTUALS_SPARK_CONF={env['MUTUALS_SPARK_CONF']} "
        cwd = lake.parent
    else:
        conf = [arg for k, v in CLUSTER_CONF.items() for arg in ("--conf", f"{k}={v}")]
        command = [str(SPARK_SUBMIT), "--master", cluster.master_url, *conf, "--py-files", str(code_zip),
                   str(entrypoints / job / f"{job}.py"), *args]
        cwd = entrypoints / job
    started = time.monotonic()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stderr[-4000:]}\n{cluster.logs(1500)}"
    return {"job": job, "cluster_seconds": round(time.monotonic() - started, 1),
            "command": shown_env + " ".join(command)}


def run_chain_on_cluster(lake: Path, cluster: StandaloneCluster, shipped: tuple[Path, Path]) -> list[dict]:
    """Every job in DAG order against the cluster, each printed as it ends; stops at the first failure."""
    reports = []
    for job in JOBS:
        reports.append(run_on_cluster(job, lake, cluster, shipped))
        print(json.dumps(reports[-1]), flush=True)
    return reports


def canonical(value, lake: Path):
    """A value both lakes must agree on: the lake's own path named generically, doubles to 12 digits
    (sums of doubles may add up in another order across executors)."""
    if isinstance(value, float):
        return value if math.isnan(value) or math.isinf(value) else float(f"{value:.12g}")
    if isinstance(value, str):
        return value.replace(str(lake), "<lake>")
    if isinstance(value, list):
        return [canonical(v, lake) for v in value]
    if isinstance(value, dict):
        return {k: canonical(v, lake) for k, v in value.items()}
    return value


def day_rows(lake: Path, key: str) -> list[str]:
    table = DeltaTable(str(lake / key)).to_pyarrow_table(partitions=[("ds", "=", DAY)])
    return sorted(json.dumps(canonical(row, lake), sort_keys=True, default=str) for row in table.to_pylist())


def publication(lake: Path, job: str) -> list[tuple[str, int]]:
    table = DeltaTable(str(lake / "meta" / "publications")).to_pyarrow_table(
        partitions=[("job", "=", job), ("ds", "=", DAY)])
    records = table.to_pylist()
    assert len(records) == 1, (job, records)
    return sorted((t["table"], t["rows"]) for t in records[0]["tables"])


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


@pytest.mark.timeout(3600)
def test_every_daily_job_on_a_standalone_cluster_equals_local(spark, cluster, shipped, tmp_path):
    assert {"ingest", "graph", "candidates", "recs", "push"} <= set(JOBS), JOBS
    local, remote = tmp_path / "local", tmp_path / "cluster"
    generate(local, DAY, 1, MEMBERS, seed=SEED)
    shutil.copytree(local / "landing", remote / "landing")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        on_cluster = pool.submit(run_chain_on_cluster, remote, cluster, shipped)
        for job in JOBS:
            result = importlib.import_module(f"spark_jobs.{job}").main(["--date", DAY, "--lake", str(local)])
            assert not isinstance(result, int) or result == 0, (job, result)  # main returns its summary or 0
        reports = on_cluster.result()
    print(json.dumps({"cluster_chain_seconds": sum(r["cluster_seconds"] for r in reports),
                      "wall_seconds": round(time.monotonic() - started, 1)}), flush=True)

    for job in JOBS:
        if tables_written_by(job):  # push writes Avro files (compared below), not tables
            assert publication(remote, job) == publication(local, job), job
        for key in tables_written_by(job):
            assert day_rows(remote, key) == day_rows(local, key), f"{job}: {key} differs"
    assert folder_bytes(remote.joinpath(*PUSH_FOLDER)) == folder_bytes(local.joinpath(*PUSH_FOLDER))

    # every job really ran as an application of this master, on its workers' executors
    state = cluster.state()
    assert len(state["completedapps"]) == len(JOBS), [a["name"] for a in state["completedapps"]]
    assert len(cluster.alive_workers()) == 2


def test_the_cluster_stops_with_nothing_left_behind(tmp_path):
    """A cluster of its own, stopped: its daemons' process groups are gone and its ports are closed."""
    standalone = StandaloneCluster(tmp_path, workers=1).start()
    groups = [p.pid for p in standalone.processes]
    assert len(standalone.alive_workers()) == 1
    standalone.stop()
    assert [pgid for pgid in groups if group_alive(pgid)] == []
    with pytest.raises(OSError):
        standalone.state()
