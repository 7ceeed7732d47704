"""One switch that picks a whole bundle of resources: where Spark runs, the lake root and the serving store.

* `local` (the default): master `$MUTUALS_SPARK_MASTER`, else `local[*]` (so `mutuals run` can target a
  standalone cluster, `spark://HOST:PORT`, with no other change); lake `$MUTUALS_LAKE`, else `./lake`;
  store `$MUTUALS_STORE`, else `<lake>/_store` (a RocksDB folder beside the tables).
* `cluster`: master not set here (spark-submit's, i.e. what Airflow's `spark_default` connection gives it);
  lake `$MUTUALS_LAKE`, required, an object-store URI (`s3a://bucket/lake`); store `$MUTUALS_STORE`,
  required, a `redis://HOST:PORT/DB` URL (`rediss://` for TLS).

Why one switch: a run on a laptop and a run on the cluster differ in all three at once, and picking them
one setting at a time lets a cluster job write a local lake or push into a laptop's RocksDB. The profile
is named by the `--profile` job argument, else `$MUTUALS_PROFILE`, else `local`. An explicit `--master`,
`--lake` or `--store` still wins over the profile's value. The lake and the store are read from the
environment only when asked for, so a job given `--lake` needs no `$MUTUALS_LAKE` and a job that never
pushes needs no `$MUTUALS_STORE`; a value the cluster profile needs and cannot find is a `UsageError`
naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from mutuals.errors import UsageError

PROFILE_ENV = "MUTUALS_PROFILE"
LAKE_ENV = "MUTUALS_LAKE"
STORE_ENV = "MUTUALS_STORE"
MASTER_ENV = "MUTUALS_SPARK_MASTER"
DEFAULT_PROFILE = "local"
LOCAL_MASTER = "local[*]"
LOCAL_LAKE = "./lake"
LOCAL_STORE_FOLDER = "_store"
REDIS_SCHEMES = ("redis", "rediss")


class UnknownProfile(UsageError):
    """A profile name that is not one of the bundles."""


class ProfileSettingMissing(UsageError):
    """An environment variable the active profile needs is unset, or does not hold the kind of value it needs."""


@dataclass(frozen=True)
class Profile:
    """A bundle of resources. `master` None leaves the master to spark-submit (or spark-defaults)."""

    name: str
    master: str | None
    env: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False, compare=False)

    def lake(self) -> str:
        """The lake root when no `--lake` is given."""
        raise NotImplementedError

    def store(self, lake_root: str) -> str:
        """The serving store when no `--store` is given, for a run on `lake_root`."""
        raise NotImplementedError


@dataclass(frozen=True)
class LocalProfile(Profile):
    """Everything on this machine: `local[*]`, a lake folder, a RocksDB store inside it (wiping the lake
    wipes its store too)."""

    name: str = "local"
    master: str | None = LOCAL_MASTER

    def lake(self) -> str:
        return self.env.get(LAKE_ENV) or LOCAL_LAKE

    def store(self, lake_root: str) -> str:
        return self.env.get(STORE_ENV) or str(Path(lake_root) / LOCAL_STORE_FOLDER)


@dataclass(frozen=True)
class ClusterProfile(Profile):
    """A cluster: the master comes from spark-submit, the lake is an object store, the store is Redis."""

    name: str = "cluster"
    master: str | None = None

    def lake(self) -> str:
        root = self._required(LAKE_ENV, "--lake", "an object-store URI such as s3a://bucket/lake")
        parts = urlsplit(root)
        if not parts.scheme or parts.scheme == "file" or not parts.netloc:
            raise ProfileSettingMissing(
                f"profile cluster: ${LAKE_ENV} must be an object-store URI such as s3a://bucket/lake, "
                f"found {root!r}")
        return root

    def store(self, lake_root: str) -> str:
        url = self._required(STORE_ENV, "--store", "a redis://HOST:PORT/DB URL")
        parts = urlsplit(url)
        if parts.scheme not in REDIS_SCHEMES or not parts.hostname:
            raise ProfileSettingMissing(
                f"profile cluster: ${STORE_ENV} must be a redis://HOST:PORT/DB URL, found {url!r}")
        return url

    def _required(self, variable: str, flag: str, what: str) -> str:
        value = self.env.get(variable, "").strip()
        if not value:
            raise ProfileSettingMissing(
                f"profile cluster: ${variable} is not set; set it to {what}, or pass {flag}")
        return value


PROFILES: dict[str, type[Profile]] = {"local": LocalProfile, "cluster": ClusterProfile}


def profile_named(name: str, env: Mapping[str, str] | None = None) -> Profile:
    """The bundle called `name`, reading `env` (default: the process environment) when asked for values."""
    if name not in PROFILES:
        raise UnknownProfile(f"unknown profile {name!r}; known profiles: {', '.join(PROFILES)}")
    env = os.environ if env is None else env
    if name == "local":
        return LocalProfile(master=env.get(MASTER_ENV, "").strip() or LOCAL_MASTER, env=env)
    return PROFILES[name](env=env)


def active_profile(name: str | None = None, env: Mapping[str, str] | None = None) -> Profile:
    """`name` (a `--profile` argument) if given, else `$MUTUALS_PROFILE`, else `local`."""
    env = os.environ if env is None else env
    return profile_named(name or env.get(PROFILE_ENV, "").strip() or DEFAULT_PROFILE, env)
