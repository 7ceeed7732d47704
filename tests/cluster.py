"""A real Spark standalone cluster on loopback: one master and N workers, each its own JVM.

Why: local mode runs the driver and every task in one JVM and one Python, so a job that leans on that
(a driver-side path, a module only the driver imported, state in a global) passes locally and fails on
YARN or Kubernetes. A standalone cluster on one machine has separate executor JVMs with their own Python
workers and working folders; it is the cheapest real test that a job ships its own code.

The daemons start through the venv's `spark-class` (pip's pyspark has no `start-master.sh`), each in its
own process group (a new session), on free loopback ports. `stop()` kills the groups, so the executors a
worker launched go with it; the fixture calls it whatever happened in the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent
SPARK_CLASS = SPARK_HOME / "bin" / "spark-class"
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def daemon_env() -> dict[str, str]:
    """The daemons' and spark-submit's environment: this venv's Spark and Python, loopback only."""
    venv_bin = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_HOSTNAME": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


@dataclass
class StandaloneCluster:
    """`start()` launches the master and workers and waits until every worker has registered."""

    workdir: Path
    workers: int = 2
    worker_cores: int = 1
    worker_memory: str = "1g"
    start_timeout_s: float = 180.0
    port: int = field(default_factory=free_port)
    webui_port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    @property
    def json_url(self) -> str:
        return f"http://127.0.0.1:{self.webui_port}/json/"

    def _launch(self, name: str, args: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self.processes.append(subprocess.Popen(
            [str(SPARK_CLASS), *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=daemon_env(), cwd=self.workdir, start_new_session=True,
        ))

    def start(self) -> StandaloneCluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._launch("master", [MASTER_CLASS, "--host", "127.0.0.1", "--port", str(self.port),
                                    "--webui-port", str(self.webui_port)])
            for i in range(self.workers):
                work = self.workdir / f"worker{i}"
                work.mkdir(exist_ok=True)
                self._launch(f"worker{i}", [
                    WORKER_CLASS, "--host", "127.0.0.1", "--port", str(free_port()),
                    "--webui-port", str(free_port()), "--cores", str(self.worker_cores),
                    "--memory", self.worker_memory, "--work-dir", str(work), self.master_url,
                ])
            self._wait_for_workers()
        except BaseException:
            self.stop()
            raise
        return self

    def state(self) -> dict:
        with urllib.request.urlopen(self.json_url, timeout=2) as response:
            return json.load(response)

    def alive_workers(self) -> list[dict]:
        return [w for w in self.state().get("workers", []) if w.get("state") == "ALIVE"]

    def _wait_for_workers(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            dead = [p.args[1] for p in self.processes if p.poll() is not None]
            if dead:
                raise RuntimeError(f"standalone daemon exited: {dead}\n{self.logs()}")
            try:
                if len(self.alive_workers()) >= self.workers:
                    return
            except OSError:
                pass  # the master's UI is not up yet
            time.sleep(0.5)
        raise RuntimeError(f"{self.workers} workers did not register within {self.start_timeout_s} s\n{self.logs()}")

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-tail:]}"
                         for log in sorted(self.workdir.glob("*.log")))

    def stop(self) -> None:
        """Kill every daemon's process group (the executors a worker started are in its group)."""
        for process in self.processes:
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(process.pid, signal.SIGKILL)  # also an executor left behind by its worker
            process.wait(timeout=10)
        # spark-class's helper shells are reaped by init a moment after their group dies
        deadline = time.monotonic() + 10
        while any(group_alive(p.pid) for p in self.processes) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.processes.clear()


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)
