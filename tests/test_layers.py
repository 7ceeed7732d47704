"""The house's import contracts (pyproject.toml, `[tool.importlinter]`) hold, and they catch an upward import.

Why both halves: a contract that passes on today's tree proves nothing unless the same check fails when
someone adds an import that runs the wrong way. The second test copies the packages into a temporary
folder, adds one upward import, and runs the same `lint-imports` on the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def root_packages() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["root_packages"]


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
                          capture_output=True, text=True, cwd=tree, env=env, timeout=300)


def copy_tree(target: Path) -> Path:
    for package in root_packages():
        shutil.copytree(REPO / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", target / "pyproject.toml")
    return target


def test_the_contracts_cover_every_room():
    rooms = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file() and p.name != "tests"}
    assert rooms == set(root_packages())


def test_the_tree_keeps_its_import_contracts(tmp_path):
    done = lint_imports(copy_tree(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path):
    tree = copy_tree(tmp_path)
    kernel = tree / "joins" / "csr.py"
    kernel.write_text(kernel.read_text() + "\nimport spark_jobs.graph  # noqa: E402,F401\n")
    done = lint_imports(tree)
    assert done.returncode != 0
    assert "Imports run one way" in done.stdout
    assert "BROKEN" in done.stdout
    assert "joins.csr -> spark_jobs.graph" in done.stdout


def test_the_core_importing_a_room_breaks_the_layers_contract(tmp_path):
    tree = copy_tree(tmp_path)
    core = tree / "mutuals" / "errors.py"
    core.write_text(core.read_text() + "\nimport push.store  # noqa: E402,F401\n")
    done = lint_imports(tree)
    assert done.returncode != 0
    assert "mutuals.errors -> push.store" in done.stdout


def test_a_circle_inside_a_room_breaks_the_acyclic_contract(tmp_path):
    tree = copy_tree(tmp_path)
    low = tree / "push" / "errors.py"
    low.write_text(low.read_text() + "\nimport push.store  # noqa: E402,F401\n")
    done = lint_imports(tree)
    assert done.returncode != 0
    assert "No circular imports" in done.stdout
