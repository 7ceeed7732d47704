"""`mutuals package --out DIR`: the two archives spark-submit ships to a cluster, and nothing else.

- `mutuals-code.zip`, for `--py-files`: every top-level package of this project (the ones pyproject.toml's
  `[tool.setuptools.packages.find]` includes, so a new room is shipped as soon as it is packaged), with its
  package data (`push/schemas/*.avsc`) and without caches, tests, benchmarks or the venv. Spark puts the
  zip on the driver's and every executor's `sys.path`, so `import mutuals`, `import joins` work there as
  they do here, from the zip, whatever the nodes have installed.
- `mutuals-env.tar.gz`, for `--archives mutuals-env.tar.gz#environment`: this venv packed with venv-pack
  (the interpreter's third-party packages: numba, fastavro, pyarrow, great-expectations, ...). YARN and
  Kubernetes unpack it into each container's working directory as `./environment`, and
  `spark.pyspark.python=./environment/bin/python` makes the Python workers run it. venv-pack rewrites the
  scripts' shebangs to `/usr/bin/env python` and leaves `bin/python` a link to the base interpreter the
  venv was made from (`home` in `pyvenv.cfg`), so the nodes need that same Python 3.11 at that same path
  (an image built from the same base, or the venv created from a Python installed at a fixed path such as
  /opt/python3.11). This project's own code is left out of it (the editable install points at this
  checkout); it travels in the code zip.

Why two archives and not one: the code changes with every commit and is small; the environment changes
only with `requirements.lock` and is large, so a cluster can cache it (HDFS, an image layer) and only the
zip moves per deploy.

`spark_submit_args` gives the flags that use exactly these files; with `--podgroup-executors N` the
command also writes `podgroup.yaml` (`mutuals.deploy`, Volcano gang scheduling on Kubernetes) and prints
the flags that use it.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
import tomllib
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from mutuals import deploy
from mutuals.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parents[1]
CODE_ZIP = "mutuals-code.zip"
ENV_ARCHIVE = "mutuals-env.tar.gz"
# The name the archive is unpacked under in each container (`--archives FILE#environment`).
ENV_ALIAS = "environment"
WORKER_PYTHON = f"./{ENV_ALIAS}/bin/python"

# Never shipped, even inside a package folder.
SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
SKIPPED_SUFFIXES = (".pyc", ".pyo", "~")

# Files of the venv that are not part of the environment a cluster needs: this project's editable install
# (its finder points at this checkout; the code travels in the code zip).
ENV_EXCLUDES = (
    "lib/python*/site-packages/__editable__*mutuals*",
    "lib/python*/site-packages/__pycache__/__editable__*mutuals*",
    "lib/python*/site-packages/mutuals-*.dist-info/*",
)


def project_packages(repo_root: Path = REPO_ROOT) -> list[str]:
    """The top-level packages pyproject.toml packages: folders with an `__init__.py` matching its `include`."""
    config = tomllib.loads((repo_root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(
        folder.name for folder in repo_root.iterdir()
        if (folder / "__init__.py").is_file() and any(fnmatch.fnmatch(folder.name, p) for p in patterns)
    )


def _package_files(package_dir: Path) -> Iterable[Path]:
    for path in sorted(package_dir.rglob("*")):
        relative = path.relative_to(package_dir)
        if not path.is_file() or SKIPPED_DIRS.intersection(relative.parts[:-1]):
            continue
        if path.name.endswith(SKIPPED_SUFFIXES) or path.name.startswith("."):
            continue
        yield path


def build_code_zip(out_dir: Path, repo_root: Path = REPO_ROOT) -> tuple[Path, list[str]]:
    """Write `mutuals-code.zip` with every project package at the zip's root; return it and the packages.

    Written to a temporary name and renamed, so a reader never sees half a zip under the real name.
    """
    packages = project_packages(repo_root)
    if not packages:
        raise UsageError(f"no packages found under {repo_root} matching pyproject.toml's include list")
    target = out_dir / CODE_ZIP
    partial = out_dir / f".{CODE_ZIP}.partial"
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for package in packages:
            for path in _package_files(repo_root / package):
                archive.write(path, path.relative_to(repo_root).as_posix())
    partial.replace(target)
    return target, packages


def env_manifest(prefix: Path | None = None) -> list[str]:
    """The venv-relative paths the environment archive holds (what `build_env_archive` packs)."""
    return sorted(file.target for file in _packable_env(prefix).files)


def _packable_env(prefix: Path | None):
    import venv_pack  # only `mutuals package` needs it; keeps `mutuals --help` light

    env = venv_pack.Env(str(prefix or sys.prefix))
    for pattern in ENV_EXCLUDES:
        env = env.exclude(pattern)
    return env


def build_env_archive(out_dir: Path, prefix: Path | None = None, compress_level: int = 1) -> Path:
    """Pack the venv at `prefix` (default: this interpreter's) into `mutuals-env.tar.gz` with venv-pack.

    Compression level 1: the archive is packed once per lock change and unpacked on every container, and
    level 1 is several times faster than the default for a few percent more bytes.
    """
    target = out_dir / ENV_ARCHIVE
    partial = out_dir / f".{ENV_ARCHIVE}.partial.tar.gz"
    _packable_env(prefix).pack(output=str(partial), format="tar.gz", force=True,
                               compress_level=compress_level)
    partial.replace(target)
    return target


def spark_submit_args(out_dir: Path | str, with_env: bool = True) -> list[str]:
    """The spark-submit flags that ship exactly what `mutuals package` built in `out_dir`."""
    out = str(out_dir).rstrip("/")
    args = ["--py-files", f"{out}/{CODE_ZIP}"]
    if with_env:
        args += ["--archives", f"{out}/{ENV_ARCHIVE}#{ENV_ALIAS}",
                 "--conf", f"spark.pyspark.python={WORKER_PYTHON}"]
    return args


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mutuals package",
        description="Build the archives spark-submit ships to a cluster: the code (--py-files) and the "
                    "environment (--archives ...#environment).")
    parser.add_argument("--out", required=True, type=Path, help="folder to write the archives into")
    parser.add_argument("--no-env", action="store_true",
                        help="build only the code zip (the environment archive changes only with the lock)")
    parser.add_argument("--compress-level", type=int, default=1, choices=range(0, 10), metavar="0-9",
                        help="gzip level of the environment archive (default 1: fast)")
    parser.add_argument("--podgroup-executors", type=int, default=None, metavar="N",
                        help="also write podgroup.yaml, the Volcano PodGroup for a driver and N executors, and "
                             "print the Kubernetes flags that use it")
    parser.add_argument("--queue", default="default", help="the Volcano queue of the PodGroup (default %(default)s)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    out_dir: Path = args.out.resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    code_zip, packages = build_code_zip(out_dir)
    summary: dict = {"out": str(out_dir), "code_zip": str(code_zip), "code_zip_bytes": code_zip.stat().st_size,
                     "packages": packages}
    if not args.no_env:
        env_archive = build_env_archive(out_dir, compress_level=args.compress_level)
        summary.update({"env_archive": str(env_archive), "env_archive_bytes": env_archive.stat().st_size,
                        "env_python": WORKER_PYTHON})
    summary["spark_submit_args"] = spark_submit_args(out_dir, with_env=not args.no_env)
    if args.podgroup_executors is not None:
        gang = deploy.Gang(executors=args.podgroup_executors, queue=args.queue)
        podgroup = deploy.write_podgroup(gang, out_dir)
        summary.update({"podgroup": str(podgroup), "gang_pods": gang.pods,
                        "kubernetes_args": deploy.conf_flags(deploy.volcano_conf(gang, podgroup))})
    summary["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    from mutuals.errors import run_and_exit_code

    sys.exit(run_and_exit_code(main))
