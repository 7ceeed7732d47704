"""Full pushes built in Spark executors: one task per key-hash partition of the push input.

As in Voldemort's build-and-push, the pusher does not stream every record through one process: the push
input is already one Avro file per key-hash partition, sorted by key (`push.push_input`), so each task
reads its file, runs the store's own record checks on it (`push.store.collect_records`: value contract,
duplicate keys) plus one the pusher cannot do per file (every key hashes to the file's partition, so no key
can sit in two files), and writes the partition straight into the new version through the backend's
`PartTask.target`: one SST file for RocksDB, pipelined MSET batches for Redis. The store then ingests,
validates and swaps (`VersionedStore.push_parts`).

Values are never re-encoded: the container's value bytes are the stored encoding (see `push.avro_io`).
"""

from __future__ import annotations

import random

from pyspark.sql import SparkSession

from mutuals.errors import DuplicateKey
from push.avro_io import PushInput
from push.errors import BadRecord, StoreError
from push.push_input import partition_of
from push.store import PartBuilt, PartRunner, PartTask, collect_records


def build_part(index: int, task: PartTask) -> PartBuilt:
    """One task: check and write one push-input file; failures the store reports on purpose come back
    as `PartBuilt.error`, anything else fails the task (and so the push)."""
    one_file = PushInput(task.folder, [task.path], task.value_schema, task.nullable_value)
    try:
        batch, records, total = collect_records(one_file, task.schema_id)
        if task.part is not None and len(batch):
            misplaced = partition_of(batch.keys, task.partitions) != task.part
            if misplaced.any():
                key = int(batch.keys[misplaced.argmax()])
                raise BadRecord(f"{task.path}: key {key}: expected keys of key-hash partition {task.part} of "
                                f"{task.partitions} (push.push_input.partition_of), found one of partition "
                                f"{int(partition_of([key], task.partitions)[0])}")
    except (StoreError, DuplicateKey) as exc:
        return PartBuilt(index, error=exc)
    files = task.target.write(task.part if task.part is not None else index, batch.keys, batch.values)
    rng = random.Random(task.version * 100_003 + index)
    picked = rng.sample(range(len(batch)), min(task.canary_keys, len(batch)))
    return PartBuilt(index, records=records, keys=len(batch), bytes=total, files=files,
                     sample=[(int(batch.keys[i]), batch.values[i]) for i in picked])


def spark_runner(spark: SparkSession) -> PartRunner:
    """Run the build tasks as one Spark stage, one partition per push-input file."""
    def run(tasks: list[PartTask]) -> list[PartBuilt]:
        if not tasks:
            return []
        indexed = list(enumerate(tasks))
        rdd = spark.sparkContext.parallelize(indexed, len(indexed))
        return rdd.map(lambda pair: build_part(*pair)).collect()
    return run


def local_runner() -> PartRunner:
    """The same tasks one after another in this process (tests of the build without Spark, tools)."""
    def run(tasks: list[PartTask]) -> list[PartBuilt]:
        return [build_part(i, task) for i, task in enumerate(tasks)]
    return run
