"""DAG tests: every DAG in dags/ imports cleanly, parses without connection or Variable look-ups, has tags
and retries, and wires exactly the expected task graph of spark-submits (style.md, "Orchestration").

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
from mutuals.pipeline import ALL_JOBS, DAGS, EXPERIMENT_REPORT_UPSTREAMS, JOB_ORDER, downstreams

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGS_DIR = REPO_ROOT / "dags"
DAILY_DAG = DAGS_DIR / "mutuals_daily.py"
EXPERIMENT_REPORT_DAG = DAGS_DIR / "mutuals_experiment_report.py"
# The top-level packages of this repository: an import of any of them is an import of ours.
OUR_PACKAGES = {"mutuals", "spark_jobs", "joins", "push", "quality", "ingestion", "labelling", "ranking",
                "synthetic", "demo", "dags", "tests", "bench"}
PROBE_DS = "2026-01-03"
PROBE_LAKE = "/probe/lake-from-env"

# Written out by hand from the design, not read from the DAG: {task_id: downstream task_ids}.
EXPECTED_MUTUALS_DAILY = {
    "ingest": {"graph", "labels"},
    "graph": {"candidates"},
    "candidates": {"features", "recs"},
    "features": {"samples"},
    "recs": {"push", "daily_report"},
    "push": set(),
    "labels": {"samples", "daily_report"},
    "samples": set(),
    "daily_report": set(),
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
                tasks[task.task_id] = {
                    "operator": type(task).__name__,
                    "retries": task.retries,
                    "retry_delay_s": task.retry_delay.total_seconds(),
                    "downstream": sorted(task.downstream_task_ids),
                    **spark,
                }
            dags[dag_id] = {
                "fileloc": dag.fileloc,
                "tags": sorted(dag.tags),
                "default_retries": dag.default_args.get("retries"),
                "max_active_runs": dag.max_active_runs,
                "catchup": dag.catchup,
                "timetable": type(dag.timetable).__name__,
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


def test_the_dags_are_exactly_the_two_expected(parsed):
    assert sorted(parsed["dags"]["dags"]) == ["mutuals_daily", "mutuals_experiment_report"]


def test_mutuals_daily_task_graph_is_the_expected_one(parsed):
    tasks = parsed["dags"]["dags"]["mutuals_daily"]["tasks"]
    assert {task_id: set(t["downstream"]) for task_id, t in tasks.items()} == EXPECTED_MUTUALS_DAILY


def test_mutuals_experiment_report_task_graph_is_the_expected_one(parsed):
    tasks = parsed["dags"]["dags"]["mutuals_experiment_report"]["tasks"]
    assert {task_id: set(t["downstream"]) for task_id, t in tasks.items()} == EXPECTED_MUTUALS_EXPERIMENT_REPORT


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
    tasks = parsed["dags"]["dags"]["mutuals_daily"]["tasks"]
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


@pytest.mark.parametrize("dag_file", [DAILY_DAG, EXPERIMENT_REPORT_DAG], ids=lambda p: p.name)
def test_the_dag_imports_only_the_job_order_of_ours(dag_file):
    """Parsing a DAG must not pull in Spark, the lake or a job: of ours it reads only the pure job order."""
    ours = {m for m in imported_modules(dag_file.read_text())
            if m.startswith(".") or m.split(".")[0] in OUR_PACKAGES}
    assert ours == {"mutuals.pipeline"}


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
    assert ALL_JOBS == JOB_ORDER + ("experiment_report",)
    assert set(DAGS) == {"mutuals_daily", "mutuals_experiment_report"}


def test_the_cli_runs_the_jobs_of_both_dags():
    assert cli.available_jobs() == ["ingest", "graph", "candidates", "features", "recs", "labels", "daily_report",
                                    "samples", "push", "experiment_report"]


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
