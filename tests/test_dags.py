"""DAG tests: every DAG in dags/ imports cleanly, parses without connection or Variable look-ups, has tags
and retries, and wires exactly the task graph `mutuals.pipeline` declares (one spark-submit per job, the
landing sensor before ingest, every Spark task in its lake's pool) (style.md, "Orchestration"). The
pipeline's own graph is also checked against a hand-written one.

Why a subprocess: importing Airflow reads AIRFLOW_HOME once, writes an airflow.cfg there and installs its
own (structlog) logging for the whole interpreter. Doing that inside the shared pytest process would leak
into every other test, so one child process (this file run as a script, `--probe`) loads the DagBags
with a temporary AIRFLOW_HOME and reports plain JSON; the tests below assert on that report. Airflow's
own look-up functions are spied on in the child (they are Airflow's, not our stack).

Running `airflow dags test` is deliberately not a test here (about 35 s per Spark task); `make
airflow-test` does that.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mutuals import cli
from mutuals.pipeline import (
    ALL_JOBS,
    DAGS,
    EXPERIMENT_REPORT_UPSTREAMS,
    JOB_ORDER,
    LANDING_TABLES,
    downstreams,
    landing_markers,
    pool_name,
)
from mutuals.readiness import landing_ready, missing_markers

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGS_DIR = REPO_ROOT / "dags"
DAG_FILE = DAGS_DIR / "mutuals_dags.py"
# The top-level packages of this repository: an import of any of them is an import of ours.
OUR_PACKAGES = {"mutuals", "spark_jobs", "joins", "push", "quality", "ingestion", "labelling", "ranking",
                "synthetic", "demo", "dags", "tests", "bench"}
PROBE_DS = "2026-01-03"
PROBE_LAKE = "/probe/lake-from-env"

# Written out by hand from the design, not read from the DAG: {task_id: downstream task_ids}.
EXPECTED_MUTUALS_DAILY = {
    "ingest": {"graph", "labels"},
    "graph": {"candidates"},
    "candidates": {"features"},
    "features": {"recs", "samples"},
    "recs": {"push", "daily_report"},
    "push": set(),
    "labels": {"samples", "daily_report"},
    "samples": set(),
    "daily_report": set(),
}
EXPECTED_MUTUALS_TRAINING = {
    "train": set(),
}
EXPECTED_MUTUALS_EXPERIMENT_REPORT = {
    "experiment_report": set(),
}

# A DAG file that breaks the rule on purpose, to show the spy really catches a parse-time look-up.
CANARY_DAG = '''
import pendulum
from airflow.sdk import DAG, BaseHook

BaseHook.get_connection("spark_default")

with DAG("canary_reads_connection", schedule=None, start_date=pendulum.datetime(2026, 1, 1), tags=["t"]):
    pass
'''


# ---------------------------------------------------------------- the child process (no pytest here)


def _probe(folders: list[str]) -> dict:
    """Load each folder into a DagBag with connection/Variable look-ups spied on; describe what parsed."""
    from unittest import mock

    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.connection import Connection as CoreConnection
    from airflow.models.variable import Variable as CoreVariable
    from airflow.sdk.bases.hook import BaseHook
    from airflow.sdk.execution_time import context as sdk_context
    from airflow.serialization.serialized_objects import DagSerialization

    lookups: list[str] = []

    def refuse(kind: str):
        def spy(*args, **kwargs):
            name = next((a for a in args if isinstance(a, str)), kwargs.get("conn_id") or kwargs.get("key"))
            lookups.append(f"{kind}:{name}")
            raise RuntimeError(f"{kind} look-up of {name!r} while parsing DAG files")

        return spy

    class NoVariables:
        """Stands in for Airflow's `var.value` accessor when no Variable is set: `get` returns the default."""

        def get(self, key, default=None):
            return default

    report: dict = {}
    for folder in folders:
        lookups.clear()
        with (
            mock.patch.object(BaseHook, "get_connection", refuse("connection")),
            mock.patch.object(sdk_context, "_get_connection", refuse("connection")),
            mock.patch.object(sdk_context, "_get_variable", refuse("variable")),
            mock.patch.object(CoreConnection, "get_connection_from_secrets", refuse("connection")),
            mock.patch.object(CoreVariable, "get", refuse("variable")),
        ):
            bag = DagBag(dag_folder=folder)
        dags = {}
        for dag_id, dag in bag.dags.items():
            DagSerialization.serialize_dag(dag)  # what the DAG processor stores; raises if it cannot
            context = {"ds": PROBE_DS, "var": {"value": NoVariables()}}
            tasks = {}
            for task in dag.tasks:
                spark = {}
                if type(task).__name__ == "SparkSubmitOperator":
                    spark = {
                        "application": task.application,
                        "application_args": task.application_args,
                        "rendered_args": task.render_template(
                            task.application_args, context, dag.get_template_env()
                        ),
                        "conn_id": task._conn_id,
                        "env_vars": task.env_vars,
                    }
                sensor = {}
                if type(task).__name__ == "PythonSensor":
                    sensor = {
                        "mode": task.mode,
                        "timeout_s": task.timeout,
                        "poke_interval_s": task.poke_interval,
                        "callable": f"{task.python_callable.__module__}.{task.python_callable.__name__}",
                        "rendered_kwargs": task.render_template(task.op_kwargs, context, dag.get_template_env()),
                    }
                tasks[task.task_id] = {
                    "operator": type(task).__name__,
                    "retries": task.retries,
                    "retry_delay_s": task.retry_delay.total_seconds(),
                    "downstream": sorted(task.downstream_task_ids),
                    "pool": task.pool,
                    **spark,
                    **sensor,
                }
            dags[dag_id] = {
                "fileloc": dag.fileloc,
                "tags": sorted(dag.tags),
                "default_retries": dag.default_args.get("retries"),
                "max_active_runs": dag.max_active_runs,
                "catchup": dag.catchup,
                "timetable": type(dag.timetable).__name__,
                "schedule": dag.timetable.expression,
                "tasks": tasks,
            }
        report[folder] = {
            "import_errors": dict(bag.import_errors),
            "lookups": list(lookups),
            "dags": dags,
        }
    return report


# ---------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def parsed(tmp_path_factory) -> dict:
    """Run the probe once for the module: dags/ and a canary folder, in a child with its own AIRFLOW_HOME."""
    home = tmp_path_factory.mktemp("airflow_home")
    canary = tmp_path_factory.mktemp("canary_dags")
    (canary / "canary_dag.py").write_text(CANARY_DAG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "MUTUALS_LAKE": PROBE_LAKE,
    })
    done = subprocess.run(
        [sys.executable, __file__, "--probe", str(DAGS_DIR), str(canary)],
        env=env, cwd=home, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, f"DAG probe failed:\n{done.stderr[-4000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {"dags": report[str(DAGS_DIR)], "canary": report[str(canary)]}


def test_every_dag_file_imports_without_errors(parsed):
    assert parsed["dags"]["import_errors"] == {}
    dag_files = sorted(p.name for p in DAGS_DIR.glob("*.py") if "dag" in p.read_text().lower())
    parsed_files = sorted({Path(d["fileloc"]).name for d in parsed["dags"]["dags"].values()})
    assert parsed_files == dag_files, "every DAG file in dags/ should define at least one DAG"


def test_parsing_looks_up_no_connection_or_variable(parsed):
    assert parsed["dags"]["lookups"] == []


def test_the_lookup_spy_catches_a_dag_that_reads_a_connection_while_parsing(parsed):
    canary = parsed["canary"]
    assert canary["lookups"] == ["connection:spark_default"]
    assert [Path(f).name for f in canary["import_errors"]] == ["canary_dag.py"]


def test_every_dag_has_tags_and_every_task_retries(parsed):
    dags = parsed["dags"]["dags"]
    assert dags, "no DAG parsed"
    for dag_id, dag in dags.items():
        assert dag["tags"], f"{dag_id} has no tags"
        assert dag["default_retries"] and dag["default_retries"] >= 1, f"{dag_id} default_args has no retries"
        for task_id, task in dag["tasks"].items():
            assert task["retries"] >= 1, f"{dag_id}.{task_id} retries={task['retries']}"
            assert task["retry_delay_s"] > 0, f"{dag_id}.{task_id} retries without a delay"


def test_mutuals_daily_schedule_settings(parsed):
    dag = parsed["dags"]["dags"]["mutuals_daily"]
    assert (dag["catchup"], dag["max_active_runs"], dag["default_retries"]) == (False, 1, 2)
    # the run for day D starts after D ends and has ds == D
    assert dag["timetable"] == "CronDataIntervalTimetable"
    assert {"mutuals", "spark"} <= set(dag["tags"])


def test_mutuals_experiment_report_schedule_settings(parsed):
    """Its own DAG, on the daily DAG's days; more retries, further apart, to wait for a day to be published."""
    dag = parsed["dags"]["dags"]["mutuals_experiment_report"]
    assert (dag["catchup"], dag["max_active_runs"], dag["default_retries"]) == (False, 1, 6)
    assert dag["timetable"] == "CronDataIntervalTimetable"
    assert {"mutuals", "spark", "experiments"} <= set(dag["tags"])
    assert dag["tasks"]["experiment_report"]["retry_delay_s"] == 20 * 60


def test_dags_holds_one_dag_per_entry_of_the_pipeline(parsed):
    assert set(parsed["dags"]["dags"]) == set(DAGS)
    assert {"mutuals_daily", "mutuals_experiment_report"} <= set(DAGS)


def task_graph(parsed, dag_id: str) -> dict[str, set[str]]:
    return {task_id: set(t["downstream"]) for task_id, t in parsed["dags"]["dags"][dag_id]["tasks"].items()}


@pytest.mark.parametrize("dag_id", sorted(DAGS))
def test_every_dag_wires_exactly_its_jobs_from_the_pipeline_and_the_sensor_before_ingest(parsed, dag_id):
    """A job added to `mutuals.pipeline` runs in its DAG with no edit to dags/."""
    expected = downstreams(DAGS[dag_id])
    if "ingest" in expected:
        expected["landing_ready"] = {"ingest"}
    assert task_graph(parsed, dag_id) == expected


def test_mutuals_daily_task_graph_is_the_hand_written_one(parsed):
    assert task_graph(parsed, "mutuals_daily") == {**EXPECTED_MUTUALS_DAILY, "landing_ready": {"ingest"}}
    assert task_graph(parsed, "mutuals_experiment_report") == EXPECTED_MUTUALS_EXPERIMENT_REPORT
    assert task_graph(parsed, "mutuals_training") == EXPECTED_MUTUALS_TRAINING


def test_the_training_dag_runs_weekly_with_its_own_retries(parsed):
    dag = parsed["dags"]["dags"]["mutuals_training"]
    assert (dag["catchup"], dag["max_active_runs"], dag["default_retries"]) == (False, 1, 3)
    assert dag["timetable"] == "CronDataIntervalTimetable"
    assert dag["tasks"]["train"]["retry_delay_s"] == 30 * 60
    assert dag["schedule"] == "0 0 * * 0"  # @weekly: Sundays at midnight
    assert parsed["dags"]["dags"]["mutuals_daily"]["schedule"] == "0 0 * * *"


def test_the_landing_sensor_reschedules_with_a_timeout_and_checks_the_run_time_lake_and_day(parsed):
    sensor = parsed["dags"]["dags"]["mutuals_daily"]["tasks"]["landing_ready"]
    assert sensor["operator"] == "PythonSensor"
    assert sensor["mode"] == "reschedule"
    assert 0 < sensor["poke_interval_s"] < sensor["timeout_s"] <= 24 * 3600
    assert sensor["callable"] == "mutuals.readiness.landing_ready"
    assert sensor["rendered_kwargs"] == {"lake_root": PROBE_LAKE, "ds": PROBE_DS}


def test_every_spark_task_of_every_dag_runs_in_the_pool_of_its_lake(parsed):
    """One pool per lake, shared by the DAGs; the sensor, which runs no Spark, stays out of it."""
    pools = {(dag_id, task_id): task["pool"] for dag_id, dag in parsed["dags"]["dags"].items()
             for task_id, task in dag["tasks"].items()}
    spark_pools = {pool for (dag_id, task_id), pool in pools.items() if task_id != "landing_ready"}
    assert spark_pools == {pool_name(PROBE_LAKE)}
    assert pools[("mutuals_daily", "landing_ready")] == "default_pool"


def test_pool_names_tell_lakes_apart():
    names = {pool_name(lake) for lake in ("/data/a/lake", "/data/b/lake", "s3a://bucket/lake", "/data/a/lake2")}
    assert len(names) == 4
    assert pool_name("/data/a/lake/") == pool_name("/data/a/lake")
    assert pool_name("/data/a/lake").startswith("mutuals_lake_lake_")
    assert all(len(n) <= 80 and n.replace("_", "").isalnum() for n in names)


def land(root: Path, ds: str, tables) -> None:
    for table in tables:
        folder = root / "landing" / table / f"ds={ds}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "part-00000.csv").write_text("x\n")
        (folder / "_SUCCESS").write_bytes(b"")


def test_a_day_is_ready_only_when_every_landing_table_has_its_marker(tmp_path):
    everything = ("members", "connections", "positions", "educations", "events", "experiment_assignments")
    assert everything == LANDING_TABLES
    assert not landing_ready(str(tmp_path), "2026-01-03")  # nothing landed
    land(tmp_path, "2026-01-03", everything[:-1])
    assert missing_markers(str(tmp_path), "2026-01-03") == [
        f"{tmp_path}/landing/experiment_assignments/ds=2026-01-03/_SUCCESS"]
    assert not landing_ready(str(tmp_path), "2026-01-03")
    # a folder with files but no marker is still being written
    folder = tmp_path / "landing" / "experiment_assignments" / "ds=2026-01-03"
    folder.mkdir(parents=True)
    (folder / "part-00000.jsonl").write_text("{}\n")
    assert not landing_ready(str(tmp_path), "2026-01-03")
    (folder / "_SUCCESS").write_bytes(b"")
    assert landing_ready(str(tmp_path), "2026-01-03")
    assert landing_ready(f"file://{tmp_path}", "2026-01-03")
    assert not landing_ready(str(tmp_path), "2026-01-04")  # another day


def test_the_sensor_waits_for_what_the_generator_and_ingest_know(tmp_path):
    """The landing tables are the registry's, and a generated day is ready with all its markers."""
    from mutuals.tables import LANDING_SCHEMAS
    from synthetic.generate import generate

    assert set(LANDING_TABLES) == set(LANDING_SCHEMAS)
    generate(tmp_path, "2026-01-01", 1, 30, seed=3)
    assert missing_markers(str(tmp_path), "2026-01-01") == []
    assert all(Path(m).is_file() for m in landing_markers(str(tmp_path), "2026-01-01"))


def test_every_spark_task_submits_an_existing_job_file_for_ds(parsed):
    for dag_id, dag in parsed["dags"]["dags"].items():
        for task_id, task in dag["tasks"].items():
            if task["operator"] != "SparkSubmitOperator":
                continue
            application = Path(task["application"])
            assert application.parent == REPO_ROOT / "spark_jobs", f"{dag_id}.{task_id}: {application}"
            assert application.is_file(), f"{dag_id}.{task_id}: {application} does not exist"
            assert "{{ ds }}" in task["application_args"], f"{dag_id}.{task_id}: {task['application_args']}"
            assert task["conn_id"] == "spark_default"


def test_mutuals_daily_tasks_submit_their_own_job(parsed):
    tasks = {task_id: t for task_id, t in parsed["dags"]["dags"]["mutuals_daily"]["tasks"].items()
             if t["operator"] == "SparkSubmitOperator"}
    assert {task_id: Path(t["application"]).name for task_id, t in tasks.items()} == {
        "ingest": "ingest.py", "graph": "graph.py", "candidates": "candidates.py", "features": "features.py",
        "recs": "recs.py",
        "push": "push.py", "labels": "labels.py", "samples": "samples.py", "daily_report": "daily_report.py",
    }
    experiment = parsed["dags"]["dags"]["mutuals_experiment_report"]["tasks"]
    assert {task_id: Path(t["application"]).name for task_id, t in experiment.items()} == {
        "experiment_report": "experiment_report.py",
    }


@pytest.mark.parametrize("dag_id, task_id", [("mutuals_daily", "ingest"),
                                              ("mutuals_experiment_report", "experiment_report")])
def test_args_render_the_day_and_the_run_time_lake(parsed, dag_id, task_id):
    """With no Variable set the lake comes from the worker's $MUTUALS_LAKE, read when the task renders."""
    task = parsed["dags"]["dags"][dag_id]["tasks"][task_id]
    assert task["rendered_args"] == ["--date", "2026-01-03", "--lake", PROBE_LAKE]
    assert PROBE_LAKE not in json.dumps(task["application_args"]), "lake was baked in at parse time"
    assert task["env_vars"] == {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}


def imported_modules(source: str) -> set[str]:
    """Every module a Python file imports, at any depth (also inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


def test_the_dag_imports_only_the_job_order_and_the_landing_check_of_ours():
    """Parsing a DAG must not pull in Spark, the lake or a job: of ours it reads only the pure job order
    and the standard-library landing check."""
    assert sorted(p.name for p in DAGS_DIR.glob("*.py")) == [DAG_FILE.name]
    ours = {m for m in imported_modules(DAG_FILE.read_text())
            if m.startswith(".") or m.split(".")[0] in OUR_PACKAGES}
    assert ours == {"mutuals.pipeline", "mutuals.readiness"}


def test_the_landing_check_imports_only_the_standard_library_and_the_job_order_at_import_time():
    """pyarrow is imported inside the check, for object-store lakes only, when a worker pokes."""
    tree = ast.parse((REPO_ROOT / "mutuals" / "readiness.py").read_text())
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            top.add(node.module or "")
    assert {m.split(".")[0] for m in top} - {"mutuals"} <= set(sys.stdlib_module_names) | {"__future__"}
    assert {m for m in top if m.startswith("mutuals")} == {"mutuals.pipeline"}


def test_the_job_order_module_imports_only_the_standard_library():
    pipeline_file = REPO_ROOT / "mutuals" / "pipeline.py"
    top_levels = {m.split(".")[0] for m in imported_modules(pipeline_file.read_text())}
    assert top_levels <= set(sys.stdlib_module_names) | {"__future__"}, top_levels
    assert imported_modules((REPO_ROOT / "mutuals" / "__init__.py").read_text()) == set()


def test_the_job_order_declares_the_expected_graph_in_a_runnable_order():
    assert downstreams() == EXPECTED_MUTUALS_DAILY
    assert downstreams(EXPERIMENT_REPORT_UPSTREAMS) == EXPECTED_MUTUALS_EXPERIMENT_REPORT
    assert JOB_ORDER == ("ingest", "graph", "candidates", "features", "recs", "labels", "daily_report", "samples",
                         "push")
    assert ALL_JOBS == JOB_ORDER + ("experiment_report", "train")
    assert set(DAGS) == {"mutuals_daily", "mutuals_experiment_report", "mutuals_training"}


def test_the_cli_runs_the_jobs_of_both_dags():
    assert cli.available_jobs() == ["ingest", "graph", "candidates", "features", "recs", "labels", "daily_report",
                                    "samples", "push", "experiment_report", "train"]


def test_the_cli_lists_only_jobs_whose_module_exists(monkeypatch):
    """A job declared before its spark_jobs/ file lands is not offered (and `mutuals run` refuses it, exit 2)."""
    monkeypatch.setattr(cli, "JOBS", ("ingest", "not_written_yet", "push"))
    assert cli.available_jobs() == ["ingest", "push"]
    assert cli.run_command(["not_written_yet", "--date", "2026-01-03"]) == 2


def test_spark_submit_of_the_push_job_with_the_dag_env_imports_the_push_package(parsed, tmp_path):
    """spark_jobs/push.py run as a script has spark_jobs/ first on sys.path, where it would shadow the
    top-level `push` package; its own guard handles that, so the DAG's environment needs no workaround."""
    env_vars = parsed["dags"]["dags"]["mutuals_daily"]["tasks"]["push"]["env_vars"]
    assert set(env_vars) == {"PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"}
    venv_bin = Path(sys.executable).parent
    env = {"PATH": f"{venv_bin}:/usr/bin:/bin", "HOME": os.environ.get("HOME", str(tmp_path)), **env_vars}
    done = subprocess.run([str(venv_bin / "spark-submit"), "--master", "local[1]",
                           str(REPO_ROOT / "spark_jobs" / "push.py"), "--help"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "usage: push" in output and "--store" in output


if __name__ == "__main__" and sys.argv[1:2] == ["--probe"]:
    print(json.dumps(_probe(sys.argv[2:])))
