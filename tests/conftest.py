"""Shared fixtures: one Spark session for the whole run, and real redis-server processes on loopback.

Why session-scoped Spark: a local session costs 7-14 s to start on these machines; every test shares it
and writes under its own `tmp_path`. `make test` runs two pytest-xdist workers with whole files each
(`--dist loadfile`), so each worker process holds its one session and a module's fixtures are built once.
The files with the longest Spark pipelines are collected first (`SLOWEST_FIRST`), so the two workers
start on them and the short files fill in at the end, instead of one long file running alone last; the
Makefile passes `--no-loadscope-reorder`, without which xdist hands out the files with the most tests
first and the standalone-cluster file (two tests, about 8 minutes) started last and ran alone.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MUTUALS_SPARK_UI", "false")
os.environ.setdefault("MUTUALS_PROGRESS_S", "0")

DATA = Path(__file__).resolve().parents[1] / "data"
EGO_FACEBOOK = DATA / "ego_facebook_edges.csv"

# Test files by how long they took in a full run (pytest --durations), longest first. A file not named
# here keeps its place after them; the order inside a file is never changed.
SLOWEST_FIRST = (
    "test_cluster.py", "test_train_real_temporal.py", "test_experiment_report.py", "test_labels.py", "test_features.py",
    "test_incremental.py", "test_ingest.py", "test_daily_report.py", "test_push_scale.py",
    "test_candidates_recs.py", "test_publish.py", "test_train.py", "test_fof.py", "test_samples.py",
    "test_economic.py", "test_recs_scoring.py", "test_push_job.py",
)


def pytest_collection_modifyitems(config, items) -> None:
    """Put the slowest files first (stable sort: same-rank items keep their collected order)."""
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def spark():
    from mutuals.session import build_session

    session = build_session("mutuals-tests", conf={"spark.sql.shuffle.partitions": "4",
                                                    "spark.default.parallelism": "4", "spark.driver.memory": "4g"})
    yield session
    session.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RedisServer:
    """A real redis-server child process on a loopback port."""

    port: int
    workdir: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; `make test` installs it with apt")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not listen on port {self.port} within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    """One redis-server for the session; tests use distinct key namespaces or flush between."""
    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_factory(tmp_path) -> Iterator[Callable[[], RedisServer]]:
    """Start private redis-servers a test may stop and restart (fault tests)."""
    servers: list[RedisServer] = []

    def make() -> RedisServer:
        server = RedisServer(free_port(), tmp_path / f"redis{len(servers)}").start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
