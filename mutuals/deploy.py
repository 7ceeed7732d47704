"""Kubernetes with Volcano: the PodGroup template and the spark-submit flags for gang scheduling.

A Spark application on Kubernetes is one driver pod that creates N executor pods once it runs. Without
gang scheduling, a busy cluster can start the driver and then leave its executors Pending, holding the
driver's resources while doing nothing (and, with several applications, deadlock each other). Volcano
admits a whole group or none: `spark.kubernetes.scheduler.name=volcano` plus the `VolcanoFeatureStep` on
the driver and the executors put every pod of the application in one PodGroup, created from the template
`spark.kubernetes.scheduler.volcano.podGroupTemplateFile` names (`deploy/k8s/podgroup.yaml.tmpl`).

The group's size is stated in resources, not in pods: `minMember` stays 1 because only the driver exists
when the group is first scheduled (Spark's own documentation uses the same template shape), and
`minResources` is the driver's pod plus all N executor pods, so Volcano starts the driver only when the
queue can hold the whole application. Pod sizes are made exact by setting the memory overheads
explicitly: a pod requests `memory + memoryOverhead` MiB and `cores` CPUs, and this module sets both in
the flags it returns, so the template and the pods Spark creates cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template

from mutuals.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parents[1]
PODGROUP_TEMPLATE = REPO_ROOT / "deploy" / "k8s" / "podgroup.yaml.tmpl"
PODGROUP_FILE = "podgroup.yaml"
VOLCANO_FEATURE_STEP = "org.apache.spark.deploy.k8s.features.VolcanoFeatureStep"


@dataclass(frozen=True)
class Gang:
    """One application's pods: a driver and `executors` executors, each `cores` CPUs and memory in MiB."""

    executors: int
    executor_cores: int = 1
    executor_memory_mib: int = 4096
    executor_overhead_mib: int = 1024
    driver_cores: int = 1
    driver_memory_mib: int = 4096
    driver_overhead_mib: int = 1024
    queue: str = "default"
    priority_class: str | None = None

    def __post_init__(self) -> None:
        numbers = {k: getattr(self, k) for k in ("executors", "executor_cores", "executor_memory_mib",
                                                 "driver_cores", "driver_memory_mib")}
        bad = {k: v for k, v in numbers.items() if v < 1}
        if bad or self.executor_overhead_mib < 0 or self.driver_overhead_mib < 0:
            raise UsageError(f"a gang needs at least one executor and positive sizes, found {bad or numbers}")

    @property
    def pods(self) -> int:
        return 1 + self.executors

    @property
    def cpu(self) -> int:
        return self.driver_cores + self.executors * self.executor_cores

    @property
    def memory_mib(self) -> int:
        return (self.driver_memory_mib + self.driver_overhead_mib
                + self.executors * (self.executor_memory_mib + self.executor_overhead_mib))


def render_podgroup(gang: Gang, template: Path = PODGROUP_TEMPLATE) -> str:
    """The PodGroup YAML for `gang` (minMember 1, minResources = the driver's pod + every executor pod)."""
    priority = f"  priorityClassName: {gang.priority_class}" if gang.priority_class else ""
    return Template(template.read_text()).substitute(
        pods=gang.pods, min_member=1, cpu=gang.cpu, memory=f"{gang.memory_mib}Mi", queue=gang.queue,
        priority_line=priority,
    )


def write_podgroup(gang: Gang, out_dir: Path) -> Path:
    target = out_dir / PODGROUP_FILE
    target.write_text(render_podgroup(gang))
    return target


def volcano_conf(gang: Gang, podgroup_file: Path | str) -> dict[str, str]:
    """The Spark settings that size the pods exactly as the PodGroup assumes and hand them to Volcano."""
    return {
        "spark.kubernetes.scheduler.name": "volcano",
        "spark.kubernetes.scheduler.volcano.podGroupTemplateFile": str(podgroup_file),
        "spark.kubernetes.driver.pod.featureSteps": VOLCANO_FEATURE_STEP,
        "spark.kubernetes.executor.pod.featureSteps": VOLCANO_FEATURE_STEP,
        "spark.executor.instances": str(gang.executors),
        "spark.dynamicAllocation.enabled": "false",  # a fixed gang: executors come and go with the group
        "spark.executor.cores": str(gang.executor_cores),
        "spark.executor.memory": f"{gang.executor_memory_mib}m",
        "spark.executor.memoryOverhead": f"{gang.executor_overhead_mib}m",
        "spark.driver.cores": str(gang.driver_cores),
        "spark.driver.memory": f"{gang.driver_memory_mib}m",
        "spark.driver.memoryOverhead": f"{gang.driver_overhead_mib}m",
    }


def conf_flags(conf: dict[str, str]) -> list[str]:
    return [flag for key, value in conf.items() for flag in ("--conf", f"{key}={value}")]
