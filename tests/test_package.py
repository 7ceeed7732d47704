"""`mutuals package`: the code zip a cluster gets through --py-files, and the environment archive.

The code zip is built for real from this checkout and imported by a fresh interpreter from the zip alone.
Packing the project's real venv (1.8 GB, minutes) is not a unit test: the suite packs a tiny venv made
on the spot with the same function, unpacks it elsewhere and runs its interpreter (the relocation a
container does), and checks the real venv's manifest (what would be packed) without packing it.
`tests/test_cluster.py` ships the real code zip to a standalone cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from mutuals import package
from mutuals.cli import COMMANDS

REPO_ROOT = Path(__file__).resolve().parents[1]
# Written by hand from pyproject.toml's include list: the rooms of the house, spark_jobs and demo.
EXPECTED_PACKAGES = {"mutuals", "spark_jobs", "joins", "push", "quality", "ingestion", "labelling", "ranking",
                     "synthetic", "demo", "reports"}


@pytest.fixture(scope="module")
def code_zip(tmp_path_factory) -> tuple[Path, list[str]]:
    return package.build_code_zip(tmp_path_factory.mktemp("package"))


def test_the_code_zip_holds_every_project_package(code_zip):
    path, packages = code_zip
    assert path.name == "mutuals-code.zip"
    assert set(packages) >= EXPECTED_PACKAGES
    names = zipfile.ZipFile(path).namelist()
    roots = {name.split("/")[0] for name in names}
    assert roots == set(packages)
    for pkg in packages:
        assert f"{pkg}/__init__.py" in names, pkg
    # package data travels too: the served value's Avro schema
    assert any(n.startswith("push/schemas/") and n.endswith(".avsc") for n in names)
    # every module of a package, e.g. the triangle kernel and every job entrypoint
    assert "joins/triangle_kernel.py" in names
    for job in ("ingest", "graph", "candidates", "recs", "push"):
        assert f"spark_jobs/{job}.py" in names


def test_the_code_zip_leaves_out_tests_venv_and_caches(code_zip):
    names = zipfile.ZipFile(code_zip[0]).namelist()
    assert not [n for n in names if n.startswith(("tests/", ".venv/", "bench/", "dags/", ".jars/", "lake/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_the_code_zip_imports_on_a_clean_interpreter(code_zip, tmp_path):
    """PYTHONPATH=zip, run from an empty folder: every package comes from the zip, not the checkout."""
    path, packages = code_zip
    probe = (
        "import importlib, json, sys\n"
        f"mods = {sorted(packages)!r} + ['mutuals.pipeline', 'mutuals.lake', 'joins.triangles', 'push.stores']\n"
        "print(json.dumps({m: importlib.import_module(m).__file__ for m in mods}))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(path), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    files = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(f.startswith(str(path) + os.sep) for f in files.values()), files


def test_the_push_schema_reads_from_the_zip(code_zip, tmp_path):
    """Package data is read through the package, so the served value's schema loads from the zip too."""
    path, _ = code_zip
    avsc = next(n for n in zipfile.ZipFile(path).namelist() if n.startswith("push/schemas/"))
    probe = ("import importlib.resources, json\n"
             f"text = importlib.resources.files('push').joinpath({avsc.removeprefix('push/')!r}).read_text()\n"
             "print(json.loads(text)['type'])\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(path)}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "record"


def test_a_packed_venv_relocates(tmp_path):
    """Pack a tiny venv with the command's own function, unpack it elsewhere, run its interpreter there."""
    venv = tmp_path / "src-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3.*")) / "site-packages"
    (site / "marker_pkg").mkdir()
    (site / "marker_pkg" / "__init__.py").write_text("VALUE = 42\n")
    archive = package.build_env_archive(tmp_path, prefix=venv)
    assert archive.name == "mutuals-env.tar.gz"

    unpacked = tmp_path / "container" / package.ENV_ALIAS
    unpacked.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="tar")
    venv_renamed = tmp_path / "gone"
    venv.rename(venv_renamed)  # the source venv is not there on a node
    python = unpacked / "bin" / "python"
    done = subprocess.run([str(python), "-c", "import sys, marker_pkg; print(sys.prefix, marker_pkg.VALUE)"],
                          capture_output=True, text=True, cwd=unpacked.parent, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(unpacked), "42"]


def test_the_real_venv_manifest_has_the_runtime_and_not_our_editable_install():
    manifest = set(package.env_manifest())
    site = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
    for module in ("pyspark/__init__.py", "delta/__init__.py", "numba/__init__.py", "fastavro/__init__.py",
                   "pyarrow/__init__.py", "deltalake/__init__.py", "rocksdict/__init__.py"):
        assert f"{site}/{module}" in manifest, module
    assert "bin/python" in manifest
    assert not [f for f in manifest if "__editable__" in f and "mutuals" in f]
    assert not [f for f in manifest if f.startswith(f"{site}/mutuals-")]


def test_spark_submit_args_name_exactly_the_built_files():
    assert package.spark_submit_args("/out") == [
        "--py-files", "/out/mutuals-code.zip",
        "--archives", "/out/mutuals-env.tar.gz#environment",
        "--conf", "spark.pyspark.python=./environment/bin/python",
    ]
    assert package.spark_submit_args("/out/", with_env=False) == ["--py-files", "/out/mutuals-code.zip"]


def test_mutuals_package_command_prints_sizes(tmp_path):
    """The command as a user runs it (code only: the env archive is covered above)."""
    assert "package" in COMMANDS
    mutuals = Path(sys.executable).parent / "mutuals"
    done = subprocess.run([str(mutuals), "package", "--out", str(tmp_path / "dist"), "--no-env"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    zip_path = tmp_path / "dist" / "mutuals-code.zip"
    assert summary["code_zip"] == str(zip_path)
    assert summary["code_zip_bytes"] == zip_path.stat().st_size > 0
    assert "env_archive" not in summary
    assert summary["spark_submit_args"] == ["--py-files", str(zip_path)]


def test_mutuals_package_refuses_a_file_as_out(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("x")
    mutuals = Path(sys.executable).parent / "mutuals"
    done = subprocess.run([str(mutuals), "package", "--out", str(target), "--no-env"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("UsageError:")
