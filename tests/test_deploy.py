"""The Volcano PodGroup template and the gang-scheduling flags (mutuals/deploy.py, deploy/k8s/).

Expected sizes are worked out by hand below, not by the code under test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mutuals import deploy
from mutuals.errors import UsageError


def test_the_rendered_podgroup_is_valid_yaml_sized_for_the_driver_and_every_executor():
    gang = deploy.Gang(executors=4, executor_cores=2, executor_memory_mib=3072, executor_overhead_mib=512,
                       driver_cores=1, driver_memory_mib=2048, driver_overhead_mib=384, queue="batch",
                       priority_class="high")
    document = yaml.safe_load(deploy.render_podgroup(gang))
    assert document["apiVersion"] == "scheduling.volcano.sh/v1beta1"
    assert document["kind"] == "PodGroup"
    spec = document["spec"]
    # 1 driver + 4 executors: cpu 1 + 4*2 = 9; memory (2048+384) + 4*(3072+512) = 2432 + 14336 = 16768 Mi
    assert spec["minResources"] == {"cpu": "9", "memory": "16768Mi"}
    assert document["metadata"]["annotations"]["mutuals/gang-pods"] == "5"
    # only the driver exists when the group is first scheduled; a larger minMember would never be met
    assert spec["minMember"] == 1
    assert (spec["queue"], spec["priorityClassName"]) == ("batch", "high")


def test_without_a_priority_class_the_template_has_none():
    spec = yaml.safe_load(deploy.render_podgroup(deploy.Gang(executors=2)))["spec"]
    assert "priorityClassName" not in spec
    # defaults: 1 core and 4096+1024 MiB for the driver and each of 2 executors -> 3 cpu, 15360 Mi
    assert spec["minResources"] == {"cpu": "3", "memory": "15360Mi"}


def test_the_flags_size_the_pods_as_the_podgroup_assumes():
    gang = deploy.Gang(executors=3, executor_cores=2, executor_memory_mib=1000, executor_overhead_mib=200)
    conf = deploy.volcano_conf(gang, "/deploy/podgroup.yaml")
    assert conf["spark.kubernetes.scheduler.name"] == "volcano"
    assert conf["spark.kubernetes.scheduler.volcano.podGroupTemplateFile"] == "/deploy/podgroup.yaml"
    step = "org.apache.spark.deploy.k8s.features.VolcanoFeatureStep"
    assert conf["spark.kubernetes.driver.pod.featureSteps"] == step
    assert conf["spark.kubernetes.executor.pod.featureSteps"] == step
    assert (conf["spark.executor.instances"], conf["spark.executor.cores"]) == ("3", "2")
    assert (conf["spark.executor.memory"], conf["spark.executor.memoryOverhead"]) == ("1000m", "200m")
    assert conf["spark.dynamicAllocation.enabled"] == "false"
    flags = deploy.conf_flags(conf)
    assert flags[:2] == ["--conf", "spark.kubernetes.scheduler.name=volcano"]
    assert len(flags) == 2 * len(conf)


@pytest.mark.parametrize("bad", [{"executors": 0}, {"executors": 2, "executor_cores": 0},
                                 {"executors": 2, "driver_overhead_mib": -1}])
def test_a_gang_without_executors_or_with_a_non_positive_size_is_refused(bad):
    with pytest.raises(UsageError):
        deploy.Gang(**bad)


def test_mutuals_package_writes_the_podgroup_beside_the_archives(tmp_path):
    out = tmp_path / "dist"
    done = subprocess.run([str(Path(sys.executable).parent / "mutuals"), "package", "--out", str(out), "--no-env",
                           "--podgroup-executors", "2", "--queue", "spark"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["podgroup"] == str(out / "podgroup.yaml")
    assert summary["gang_pods"] == 3
    spec = yaml.safe_load((out / "podgroup.yaml").read_text())["spec"]
    assert spec["queue"] == "spark"
    assert f"spark.kubernetes.scheduler.volcano.podGroupTemplateFile={out / 'podgroup.yaml'}" in \
        summary["kubernetes_args"]
