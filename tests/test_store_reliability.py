"""Store reliability on both backends, mostly through `mutuals store` (push.cli.main, in-process): reads never
write, settings belong to the store, only a push creates a store, empty pushes are refused, an unreachable
Redis and a key outside the 64-bit range fail in their own family with one line on stderr."""

from __future__ import annotations

import ast
import hashlib
import json
import os
from pathlib import Path

import pytest
import redis

from mutuals import errors as families
from push import errors
from push.cli import main
from push.push_input import write_push_input
from push.schemas import load_value_schema
from push.store import StoreOptions
from push.stores import open_store
from tests.conftest import free_port
from tests.store_helpers import make_input, open_test_store, store_url, tags, value, version_data_present

BACKENDS = ["rocks", "redis"]
INT64_MAX = 9223372036854775807


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path):
    redis_url = request.getfixturevalue("redis_server").url if request.param == "redis" else None
    return store_url(request.param, tmp_path, redis_url)


def cli(capsys, *argv: str) -> tuple[int, list[dict], list[str]]:
    """Run `mutuals store ARGV` in-process: exit code, stdout JSON documents, stderr lines."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err.strip().splitlines()


def push_three(capsys, url: str, tmp_path: Path, *flags: str) -> None:
    for n in (1, 2, 3):
        folder = make_input(tmp_path / f"in{n}", range(1, 51), f"b{n}")
        code, docs, err = cli(capsys, "push", "--store", url, "--avro", str(folder), *flags)
        assert (code, docs[0]["version"]) == (0, n), err


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url.split("?")[0])


def ns_keys(url: str) -> dict[bytes, bytes | None]:
    """Every key of the store's namespace with its serialized value (DUMP)."""
    client = redis_client(url)
    ns = url.split("?ns=")[1]
    return {k: client.dump(k) for k in client.scan_iter(match=f"{ns}:*", count=1000)}


def snapshot(url: str) -> object:
    """What a read must not change. RocksDB: every path, each file's bytes, each folder's and the manifest's
    mtime (rocksdict rewrites its own rocksdict-config.json with the same bytes on every open, so files are
    compared by content). Redis: the namespace's keys and values, and the server's count of writes."""
    if "://" not in url:
        root = Path(url)
        state: dict[str, object] = {"MANIFEST.json@mtime": (root / "MANIFEST.json").stat().st_mtime_ns}
        for folder, _dirs, files in os.walk(root):
            state[folder] = os.stat(folder).st_mtime_ns
            for name in files:
                state[os.path.join(folder, name)] = hashlib.sha256(Path(folder, name).read_bytes()).hexdigest()
        return state
    writes = redis_client(url).info("persistence")["rdb_changes_since_last_save"]
    return {"keys": ns_keys(url), "writes": writes}


# ------------------------------------------------------------------ reads never write; settings belong to the store
def test_get_and_versions_keep_the_backups_so_rollback_still_works(url, tmp_path, capsys):
    push_three(capsys, url, tmp_path, "--retain", "3")
    code, docs, _ = cli(capsys, "get", "--store", url, "7")
    assert (code, docs) == (0, [{"key": 7, "version": 3, "value": value(7, "b3")}])
    code, docs, _ = cli(capsys, "versions", "--store", url)
    assert code == 0
    assert [(v["version"], v["status"], v["data"]) for v in docs[0]["versions"]] == [
        (1, "online", "present"), (2, "online", "present"), (3, "online", "present")]
    assert cli(capsys, "rollback", "--store", url)[:2] == (0, [{"current": 2, "rolled_back": 3}])
    assert cli(capsys, "rollback", "--store", url)[:2] == (0, [{"current": 1, "rolled_back": 2}])
    assert cli(capsys, "get", "--store", url, "7")[1] == [{"key": 7, "version": 1, "value": value(7, "b1")}]


def test_get_and_versions_never_write(url, tmp_path, capsys):
    push_three(capsys, url, tmp_path, "--retain", "3")
    before = snapshot(url)
    assert cli(capsys, "get", "--store", url, "1", "50", "999")[0] == 0
    assert cli(capsys, "versions", "--store", url)[0] == 0
    assert snapshot(url) == before


def test_read_commands_take_no_retention_flags(url, tmp_path, capsys):
    push_three(capsys, url, tmp_path, "--retain", "3")
    before = snapshot(url)
    for argv in (["get", "--store", url, "--retain", "1", "7"], ["versions", "--store", url, "--grace-s", "0"],
                 ["rollback", "--store", url, "--retain", "1"]):
        code, docs, err = cli(capsys, *argv)
        assert (code, docs, len(err)) == (2, [], 1)
        assert err[0].startswith("BadArgument: mutuals store: unrecognized arguments: --")
    assert snapshot(url) == before


def test_a_later_push_cannot_change_the_recorded_settings_configure_can(url, tmp_path, capsys):
    push_three(capsys, url, tmp_path, "--retain", "3")
    folder = make_input(tmp_path / "in4", range(1, 51), "b4")
    code, docs, err = cli(capsys, "push", "--store", url, "--avro", str(folder), "--retain", "1")
    assert (code, docs) == (2, [])
    assert err == [f"BadArgument: {url}: --retain 1 (recorded: 3); a push does not change a store's settings, "
                   "use `mutuals store configure` for that"]
    assert cli(capsys, "push", "--store", url, "--avro", str(folder), "--retain", "3")[0] == 0
    assert cli(capsys, "push", "--store", url, "--avro", str(folder), "--push-id", "x")[0] == 0
    assert cli(capsys, "configure", "--store", url)[1] == [
        {"retain": 3, "grace_s": 0.0, "rewind_s": 3600.0, "rt_ttl_s": 604800.0}]
    with open_store(url, StoreOptions(retain=1)) as store:   # an API opener's options do not apply either
        assert [version_data_present(store, v) for v in (2, 3, 4, 5)] == [False, True, True, True]
    code, docs, _ = cli(capsys, "configure", "--store", url, "--retain", "2", "--grace-s", "30")
    assert (code, docs) == (0, [{"retain": 2, "grace_s": 30.0, "rewind_s": 3600.0, "rt_ttl_s": 604800.0}])
    assert cli(capsys, "configure", "--store", url, "--retain", "0")[0] == 2


def test_the_first_push_records_its_settings(url, tmp_path, capsys):
    folder = make_input(tmp_path / "in1", range(1, 11), "b1")
    args = ["--retain", "4", "--grace-s", "5", "--rewind-s", "60", "--ttl-s", "120"]
    assert cli(capsys, "push", "--store", url, "--avro", str(folder), *args)[0] == 0
    assert cli(capsys, "configure", "--store", url)[1] == [
        {"retain": 4, "grace_s": 5.0, "rewind_s": 60.0, "rt_ttl_s": 120.0}]


# ------------------------------------------------------------------ empty full pushes
def test_an_empty_full_push_is_refused_unless_allowed(url, tmp_path, capsys):
    empty = tmp_path / "empty"
    write_push_input(empty, [], load_value_schema(), partitions=2)
    store = open_test_store(url)
    with pytest.raises(errors.EmptyPush, match=r"v1: .*empty holds no records"):
        store.push(str(empty), push_id="e1")
    assert store.versions()["current"] is None
    assert [(v["version"], v["status"]) for v in store.versions()["versions"]] == [(1, "error")]
    assert store.get([1]).version is None
    allowed = store.push(str(empty), push_id="e1", allow_empty=True)
    assert (allowed["version"], allowed["records"], allowed["keys"], allowed["status"]) == (2, 0, 0, "online")
    assert tags(store, [1]) == (2, [None])
    store.close()


def test_cli_refuses_an_empty_full_push_with_exit_5(url, tmp_path, capsys):
    empty = tmp_path / "empty"
    write_push_input(empty, [], load_value_schema(), partitions=2)
    code, docs, err = cli(capsys, "push", "--store", url, "--avro", str(empty))
    assert (code, docs, len(err)) == (5, [], 1)
    assert err[0].startswith("EmptyPush: v1: ") and "holds no records" in err[0]
    assert cli(capsys, "get", "--store", url, "1")[1] == [{"key": 1, "version": None, "value": None}]
    code, docs, _ = cli(capsys, "push", "--store", url, "--avro", str(empty), "--allow-empty")
    assert (code, docs[0]["version"], docs[0]["keys"]) == (0, 2, 0)


def test_allow_empty_does_not_lift_the_shrink_gate(url, tmp_path):
    empty = tmp_path / "empty"
    write_push_input(empty, [], load_value_schema(), partitions=1)
    store = open_test_store(url)
    store.push(str(make_input(tmp_path / "in1", range(1, 11), "b1")))
    with pytest.raises(errors.SizeDropRefused, match=r"key count dropped from 10 .* to 0"):
        store.push(str(empty), allow_empty=True)
    assert tags(store, [1]) == (1, ["b1"])


# ------------------------------------------------------------------ only a push creates a store
MISSING_COMMANDS = (
    ["get", "42"], ["versions"], ["rollback"], ["configure", "--retain", "3"],
    ["write", "--key", "1", "--value-json", json.dumps(value(1, "rt"))], ["delete", "--key", "1"],
)


@pytest.mark.parametrize("command", MISSING_COMMANDS, ids=lambda c: c[0])
def test_commands_on_a_missing_rocksdb_store_exit_10_and_create_nothing(tmp_path, capsys, command):
    missing = tmp_path / "typo"
    code, docs, err = cli(capsys, command[0], "--store", str(missing), *command[1:])
    assert (code, docs) == (10, [])
    assert err == [f"StoreNotFound: {missing}: no store there (expected {missing}/MANIFEST.json); "
                   "only a push creates a store, check the path or URL"]
    assert not missing.exists()


@pytest.mark.parametrize("command", MISSING_COMMANDS, ids=lambda c: c[0])
def test_commands_on_an_empty_redis_namespace_exit_10_and_create_nothing(redis_server, capsys, command):
    url = f"{redis_server.url}?ns=nothing_here"
    writes = redis_client(url).info("persistence")["rdb_changes_since_last_save"]
    code, docs, err = cli(capsys, command[0], "--store", url, *command[1:])
    assert (code, docs) == (10, [])
    assert err == [f"StoreNotFound: {url}: no store there (expected key nothing_here:manifest); "
                   "only a push creates a store, check the path or URL"]
    assert ns_keys(url) == {}
    assert redis_client(url).info("persistence")["rdb_changes_since_last_save"] == writes


def test_an_incremental_push_does_not_create_a_store(tmp_path, capsys):
    folder = tmp_path / "inc"
    write_push_input(folder, [(5, value(5, "inc"))], load_value_schema(), nullable_value=True)
    code, _, err = cli(capsys, "push", "--store", str(tmp_path / "typo"), "--avro", str(folder), "--incremental")
    assert code == 10 and err[0].startswith("StoreNotFound: ")
    assert not (tmp_path / "typo").exists()


def test_open_store_raises_store_not_found_and_creates_only_when_asked(tmp_path):
    missing = tmp_path / "new"
    with pytest.raises(errors.StoreNotFound, match="new: no store there"):
        open_store(str(missing))
    assert not missing.exists()
    with open_store(str(missing), create=True) as store:
        assert store.versions() == {"store": str(missing), "current": None, "versions": []}
    with open_store(str(missing)) as store:
        assert store.versions()["current"] is None


# ------------------------------------------------------------------ Redis not reachable
UNREACHABLE_COMMANDS = MISSING_COMMANDS + (["push", "--avro", "AVRO"],)


@pytest.mark.parametrize("command", UNREACHABLE_COMMANDS, ids=lambda c: c[0])
def test_unreachable_redis_exits_8_with_one_line_naming_the_url(tmp_path, capsys, command):
    url = f"redis://127.0.0.1:{free_port()}/0"
    avro = make_input(tmp_path / "in", range(1, 11), "b1")
    argv = [str(avro) if arg == "AVRO" else arg for arg in command]
    code, docs, err = cli(capsys, argv[0], "--store", url, *argv[1:])
    assert (code, docs, len(err)) == (8, [], 1)
    assert err[0].startswith(f"StoreUnavailable: {url}: backend unreachable during ")
    assert "Connection refused" in err[0]


def test_every_api_call_maps_a_lost_redis_to_store_unavailable(redis_factory, tmp_path):
    server = redis_factory()
    url = f"{server.url}?ns=lost"
    store = open_test_store(url)
    store.push(str(make_input(tmp_path / "in1", range(1, 11), "b1")))
    server.stop()
    calls = {
        "get": lambda: store.get([1]), "versions": store.versions, "rollback": store.rollback,
        "write": lambda: store.write(1, value(1, "rt")), "delete": lambda: store.delete(1),
        "push": lambda: store.push(str(tmp_path / "in1"), push_id="again"), "settings": store.settings,
        "configure": lambda: store.configure(retain=3), "recover": store.recover, "cleanup": store.cleanup,
        "open": lambda: open_store(url),
    }
    for name, call in calls.items():
        with pytest.raises(errors.StoreUnavailable, match=r"redis://127\.0\.0\.1:\d+/0.*unreachable") as caught:
            call()
        assert isinstance(caught.value, families.Unavailable), name
    store.close()


# ------------------------------------------------------------------ keys outside the signed 64-bit range
@pytest.mark.parametrize("key", ["9223372036854775808", "-9223372036854775809", "12abc"])
def test_get_with_a_key_outside_int64_exits_2_naming_it(url, tmp_path, capsys, key):
    push_three(capsys, url, tmp_path)
    code, docs, err = cli(capsys, "get", "--store", url, "7", key)
    assert (code, docs, len(err)) == (2, [], 1)
    assert err[0].startswith("BadArgument: key ")
    assert key in err[0] and "[-9223372036854775808, 9223372036854775807]" in err[0]
    code, docs, err = cli(capsys, "delete", "--store", url, "--key", key)
    assert code == 2 and err[0].startswith("BadArgument: key ")


def test_the_int64_bounds_themselves_are_valid_keys(url, tmp_path, capsys):
    push_three(capsys, url, tmp_path)
    code, docs, _ = cli(capsys, "get", "--store", url, str(INT64_MAX), str(-INT64_MAX - 1))
    assert (code, [d["value"] for d in docs]) == (0, [None, None])


def test_api_refuses_keys_outside_int64(url, tmp_path):
    store = open_test_store(url)
    store.push(str(make_input(tmp_path / "in1", range(1, 11), "b1")))
    for bad in (INT64_MAX + 1, -INT64_MAX - 2, "x", 1.5, True):
        with pytest.raises(errors.BadArgument, match=r"key .*9223372036854775807\]"):
            store.get([1, bad])
    with pytest.raises(errors.BadArgument):
        store.write(INT64_MAX + 1, value(1, "rt"))
    store.close()


# ------------------------------------------------------------------ error families
def test_push_errors_join_the_mutuals_families_with_their_exit_codes():
    expected = {
        errors.BadArgument: (families.UsageError, 2), errors.BadAvroFile: (families.BadInput, 3),
        errors.BadRecord: (families.BadInput, 3),
        errors.IncompatibleSchema: (families.SchemaError, 4), errors.SizeDropRefused: (families.GateFailed, 5),
        errors.EmptyPush: (families.GateFailed, 5), errors.ValidationFailed: (families.GateFailed, 5),
        errors.PushInProgress: (families.Conflict, 6), errors.NothingToRollBack: (families.NothingToRollBack, 7),
        errors.StoreUnavailable: (families.Unavailable, 8), errors.CorruptStore: (families.Corrupt, 9),
        errors.StoreNotFound: (families.MissingInput, 10),
    }
    for cls, (family, code) in expected.items():
        assert issubclass(cls, errors.StoreError) and issubclass(cls, family), cls
        assert (cls.exit_code, families.exit_code_of(cls("x"))) == (code, code), cls
    assert issubclass(families.DuplicateKey, families.BadInput)
    assert (families.DuplicateKey.exit_code, families.exit_code_of(families.DuplicateKey("x"))) == (3, 3)


def test_cli_prints_one_line_and_the_family_code(url, tmp_path, capsys):
    push_three(capsys, url, tmp_path)
    small = make_input(tmp_path / "small", range(1, 11), "s")
    code, docs, err = cli(capsys, "push", "--store", url, "--avro", str(small))
    assert (code, docs) == (5, [])
    assert err == ["SizeDropRefused: v4: key count dropped from 50 (v3) to 10 (-80.0%); expected a drop of at most 20%"]


def test_push_job_parser_takes_allow_empty():
    from spark_jobs import push as push_job

    parsed = push_job.build_parser().parse_args(["--date", "2026-01-03", "--allow-empty"])
    assert parsed.allow_empty is True
    assert push_job.build_parser().parse_args(["--date", "2026-01-03"]).allow_empty is False


def test_push_names_each_failure_once():
    """The size-drop gate says what it refuses; a duplicate key is the core's one DuplicateKey."""
    assert not hasattr(errors, "GateFailed") and not hasattr(errors, "DuplicateKey")
    assert issubclass(errors.SizeDropRefused, families.GateFailed)


def test_the_store_contract_imports_no_backend():
    """Backends import the contract; only push.stores, above all of them, picks one from a URL."""
    tree = ast.parse((Path(__file__).resolve().parents[1] / "push" / "store.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not imported & {"push.redis_store", "push.rocks_store", "push.stores"}
