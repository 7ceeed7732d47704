"""The lake's folder operations on plain paths and on `file:` URIs (the code path of s3a:// and hdfs://)."""

from __future__ import annotations

from mutuals.lake import Lake, is_local, list_files, open_input, open_output


def write(uri: str, body: bytes) -> None:
    with open_output(uri) as sink:
        sink.write(body)


def test_a_staging_folder_is_a_fresh_hidden_name_beside_its_target(tmp_path):
    target = str(tmp_path / "push" / "ds=2026-01-03")
    first, second = Lake.staging_folder(target), Lake.staging_folder(target)
    assert first != second
    assert first.startswith(str(tmp_path / "push" / "_staging-ds=2026-01-03-"))
    assert not (tmp_path / "push").exists()


def test_replace_folder_puts_a_new_folder_in_place_and_removes_the_old(tmp_path):
    target = tmp_path / "out" / "day"
    staging = Lake.staging_folder(str(target))
    write(f"{staging}/part-00000.avro", b"first")
    Lake.replace_folder(None, staging, str(target))   # no target yet: its parent is created
    assert [p.name for p in target.iterdir()] == ["part-00000.avro"]
    staging = Lake.staging_folder(str(target))
    write(f"{staging}/part-00001.avro", b"second")
    Lake.replace_folder(None, staging, str(target))
    assert [(p.name, p.read_bytes()) for p in target.iterdir()] == [("part-00001.avro", b"second")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["day"]


def test_replace_folder_replaces_a_file_in_the_way(tmp_path):
    target = tmp_path / "out"
    target.write_text("old report")
    staging = Lake.staging_folder(str(target))
    write(f"{staging}/x", b"new")
    Lake.replace_folder(None, staging, str(target))
    assert target.is_dir() and (target / "x").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_uri_folders_go_through_hadoop_and_pyarrow(spark, tmp_path):
    target = f"file:{tmp_path}/lake/push/day"
    assert not is_local(target) and is_local(str(tmp_path))
    for body in (b"one", b"two"):
        staging = Lake.staging_folder(target)
        write(f"{staging}/part-00000.avro", body)
        write(f"{staging}/notes.txt", b"n")
        Lake.replace_folder(spark, staging, target)
    assert list_files(target, ".avro") == [f"{target}/part-00000.avro"]
    with open_input(f"{target}/part-00000.avro") as source:
        assert source.read() == b"two"
    assert sorted(p.name for p in (tmp_path / "lake" / "push").iterdir()) == ["day"]
    Lake.remove_folder(spark, target)
    assert not (tmp_path / "lake" / "push" / "day").exists()
