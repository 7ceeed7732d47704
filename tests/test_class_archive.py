"""The JVM class archive `make setup` dumps: a local driver maps it, nothing else changes; and the local
driver's garbage collector.

The first test starts a driver with `-Xshare:on`, under which the JVM refuses to start unless it maps the
archive it is given: so the session starts only if the archive matches the class path jobs run with.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mutuals import session

VENV_BIN = Path(sys.executable).parent
SHOW_SHARING = (
    "import os\n"
    "from mutuals.session import build_session\n"
    "spark = build_session('probe')\n"
    "jvm = spark._jvm\n"
    "bean = jvm.java.lang.management.ManagementFactory.getPlatformMXBean(\n"
    "    jvm.java.lang.Class.forName('com.sun.management.HotSpotDiagnosticMXBean'))\n"
    "print('archive', bean.getVMOption('SharedArchiveFile').getValue())\n"
    "print('conf_dir', os.environ.get('SPARK_CONF_DIR', ''))\n"
    "beans = jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()\n"
    "print('gc', ','.join(sorted(beans[i].getName() for i in range(beans.size()))))\n"
    "print('delta', spark.range(3).write.format('delta').save(os.environ['PROBE_TABLE']) or "
    "spark.read.format('delta').load(os.environ['PROBE_TABLE']).count())\n"
)


def _probe(tmp_path: Path, java_options: str) -> dict[str, str]:
    script = tmp_path / "probe.py"
    script.write_text(SHOW_SHARING)
    env = {k: v for k, v in os.environ.items() if k not in {"MUTUALS_SPARK_CONF", "SPARK_CONF_DIR"}}
    env["PYTHONPATH"] = str(Path(session.__file__).resolve().parents[1])
    env["MUTUALS_SPARK_CONF"] = f"spark.driver.extraJavaOptions=-Duser.timezone=UTC {java_options}"
    env["PROBE_TABLE"] = str(tmp_path / "table")
    done = subprocess.run([str(VENV_BIN / "python"), str(script)], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


def test_a_local_driver_maps_the_class_archive_and_reads_and_writes_delta(tmp_path):
    assert session.class_archive().is_file(), "make setup dumps the archive (python -m mutuals.class_archive)"
    shown = _probe(tmp_path, "-Xshare:on")
    assert shown["archive"] == str(session.class_archive())
    assert shown["delta"] == "3"
    assert shown.get("conf_dir", "") == ""  # the launch-time SPARK_CONF_DIR does not outlive the launch
    assert shown["gc"] == "PS MarkSweep,PS Scavenge"  # the throughput collector, with the archive mapped


def test_a_local_driver_gets_the_throughput_collector_unless_its_options_choose_one():
    assert session.local_gc_options("local[*]", "-Duser.timezone=UTC") == "-XX:+UseParallelGC"
    assert session.local_gc_options("local[2]", "-Duser.timezone=UTC -XX:+UseG1GC") is None
    assert session.local_gc_options("local[*]", "-XX:+UseZGC -Xmx4g") is None
    assert session.local_gc_options("spark://10.0.0.1:7077", "") is None  # a cluster driver only plans
    assert session.local_gc_options("yarn", "") is None
    assert session.local_gc_options(None, "") is None


def test_class_sharing_is_only_for_a_local_or_standalone_master_named_here(monkeypatch):
    monkeypatch.delenv("SPARK_CONF_DIR", raising=False)
    option = "-XX:SharedArchiveFile=/x.jsa"
    assert option in session.class_sharing_options("local[*]", option)
    assert option in session.class_sharing_options("spark://10.0.0.1:7077", option)
    assert session.class_sharing_options("yarn", option) is None
    assert session.class_sharing_options("k8s://https://10.0.0.1:6443", option) is None
    assert session.class_sharing_options(None, option) is None  # the master comes from spark-submit's conf
    monkeypatch.setenv("SPARK_CONF_DIR", "/etc/spark/conf")  # the user's own Spark conf folder is kept
    assert session.class_sharing_options("local[*]", option) is None


def test_the_missing_conf_dir_is_set_only_while_the_jvm_launches(monkeypatch):
    monkeypatch.delenv("SPARK_CONF_DIR", raising=False)
    with session.without_spark_conf_dir():
        launched_with = Path(os.environ["SPARK_CONF_DIR"])
        assert not launched_with.exists()
    assert "SPARK_CONF_DIR" not in os.environ
