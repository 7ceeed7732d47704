"""The two resource bundles, how one is picked, and how job defaults follow it (no Spark needed)."""

from __future__ import annotations

import pytest

from mutuals import cli
from mutuals.errors import UsageError
from mutuals.jobargs import job_parser, parse_job_args
from mutuals.profiles import ProfileSettingMissing, UnknownProfile, active_profile, profile_named
from spark_jobs import push as push_job

S3_LAKE = "s3a://pymk-lake/prod"
REDIS = "redis://cache.internal:6379/2"


@pytest.fixture(autouse=True)
def no_profile_env(monkeypatch):
    """Every test starts from an environment that names no profile, lake or store."""
    for variable in ("MUTUALS_PROFILE", "MUTUALS_LAKE", "MUTUALS_STORE", "MUTUALS_TRACEBACK"):
        monkeypatch.delenv(variable, raising=False)


def test_local_bundle_runs_here_with_a_lake_folder_and_a_rocksdb_store_inside_it():
    local = profile_named("local", {})
    assert (local.name, local.master, local.lake()) == ("local", "local[*]", "./lake")
    assert local.store("/data/lake") == "/data/lake/_store"


def test_local_bundle_takes_its_master_from_mutuals_spark_master():
    assert profile_named("local", env={"MUTUALS_SPARK_MASTER": "spark://127.0.0.1:7077"}).master == \
        "spark://127.0.0.1:7077"
    assert profile_named("cluster", env={"MUTUALS_SPARK_MASTER": "spark://127.0.0.1:7077"}).master is None


def test_local_bundle_takes_the_lake_and_store_variables():
    local = profile_named("local", {"MUTUALS_LAKE": "/srv/lake", "MUTUALS_STORE": "/srv/store"})
    assert (local.lake(), local.store("/srv/lake")) == ("/srv/lake", "/srv/store")


def test_cluster_bundle_leaves_the_master_to_spark_submit_and_reads_lake_and_store():
    cluster = profile_named("cluster", {"MUTUALS_LAKE": S3_LAKE, "MUTUALS_STORE": REDIS})
    assert (cluster.name, cluster.master, cluster.lake(), cluster.store(S3_LAKE)) == (
        "cluster", None, S3_LAKE, REDIS)
    tls = profile_named("cluster", {"MUTUALS_STORE": "rediss://cache.internal:6380/0"})
    assert tls.store(S3_LAKE) == "rediss://cache.internal:6380/0"


@pytest.mark.parametrize(("env", "resource", "message"), [
    ({"MUTUALS_STORE": REDIS}, "lake",
     r"profile cluster: \$MUTUALS_LAKE is not set; set it to an object-store URI such as s3a://bucket/lake, "
     r"or pass --lake"),
    ({"MUTUALS_LAKE": S3_LAKE}, "store",
     r"profile cluster: \$MUTUALS_STORE is not set; set it to a redis://HOST:PORT/DB URL, or pass --store"),
    ({"MUTUALS_LAKE": "/mnt/lake"}, "lake",
     r"\$MUTUALS_LAKE must be an object-store URI such as s3a://bucket/lake, found '/mnt/lake'"),
    ({"MUTUALS_LAKE": "file:///mnt/lake"}, "lake", r"\$MUTUALS_LAKE must be an object-store URI"),
    ({"MUTUALS_STORE": "/mnt/store"}, "store",
     r"\$MUTUALS_STORE must be a redis://HOST:PORT/DB URL, found '/mnt/store'"),
])
def test_cluster_bundle_names_the_variable_it_misses(env, resource, message):
    cluster = profile_named("cluster", env)
    with pytest.raises(ProfileSettingMissing, match=message) as failure:
        cluster.lake() if resource == "lake" else cluster.store(S3_LAKE)
    assert isinstance(failure.value, UsageError) and failure.value.exit_code == 2


def test_the_profile_is_the_argument_else_the_variable_else_local():
    assert active_profile(env={}).name == "local"
    assert active_profile(env={"MUTUALS_PROFILE": "cluster"}).name == "cluster"
    assert active_profile("local", env={"MUTUALS_PROFILE": "cluster"}).name == "local"
    with pytest.raises(UnknownProfile, match=r"unknown profile 'yarn'; known profiles: local, cluster"):
        active_profile(env={"MUTUALS_PROFILE": "yarn"})


def test_job_defaults_follow_the_profile(monkeypatch):
    args = parse_job_args(job_parser("graph", None), ["--date", "2026-01-02"])
    assert (args.profile, args.lake, args.master) == ("local", "./lake", None)
    monkeypatch.setenv("MUTUALS_LAKE", S3_LAKE)
    monkeypatch.setenv("MUTUALS_STORE", REDIS)
    args = parse_job_args(push_job.build_parser(), ["--date", "2026-01-02", "--profile", "cluster"])
    assert (args.profile, args.lake, args.store) == ("cluster", S3_LAKE, REDIS)
    monkeypatch.setenv("MUTUALS_PROFILE", "cluster")
    assert push_job.default_store("/ignored") == REDIS


def test_explicit_values_win_and_need_no_variable():
    args = parse_job_args(push_job.build_parser(), ["--date", "2026-01-02", "--profile", "cluster",
                                                    "--lake", S3_LAKE, "--store", REDIS, "--master", "yarn"])
    assert (args.lake, args.store, args.master) == (S3_LAKE, REDIS, "yarn")
    local = parse_job_args(push_job.build_parser(), ["--date", "2026-01-02", "--lake", "/tmp/l"])
    assert local.store == "/tmp/l/_store"


def test_a_cluster_job_without_its_lake_exits_2_naming_the_variable(capsys):
    assert cli.main(["run", "graph", "--date", "2026-01-02", "--profile", "cluster"]) == 2
    assert capsys.readouterr().err == (
        "ProfileSettingMissing: profile cluster: $MUTUALS_LAKE is not set; set it to an object-store URI such "
        "as s3a://bucket/lake, or pass --lake\n")
