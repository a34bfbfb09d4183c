"""The file layer on local paths: Hadoop's (classic sessions) and Arrow's (Spark Connect)."""

from __future__ import annotations

import os
import time

import pytest

from customer_analytics.core.paths import has_scheme, join
from customer_analytics.io import filesystem


@pytest.fixture(params=["hadoop", "arrow"])
def fs(request, spark):
    """Each test runs on both implementations."""
    if request.param == "hadoop":
        return filesystem.HadoopFileSystem(spark)
    return filesystem.ArrowFileSystem()


def test_join_works_for_paths_and_uris():
    assert join("s3a://bucket/wh/", "_report", "/charts/") == "s3a://bucket/wh/_report/charts"
    assert join("/tmp/wh", "t") == "/tmp/wh/t"
    assert (has_scheme("s3a://b/x"), has_scheme("/x"), has_scheme("c:/x")) == (True, False, False)


def test_written_bytes_read_back_with_no_checksum_file_beside_them(fs, tmp_path):
    path = str(tmp_path / "charts" / "a.png")

    fs.write_bytes(path, b"\x89PNG\x00\xff")

    assert fs.read_bytes(path) == b"\x89PNG\x00\xff"
    assert sorted(p.name for p in (tmp_path / "charts").iterdir()) == ["a.png"]  # no .a.png.crc


def test_list_files_and_dirs_tell_them_apart(fs, tmp_path):
    fs.write_text(str(tmp_path / "b.csv"), "x")
    fs.write_text(str(tmp_path / "a.csv"), "y")
    fs.write_text(str(tmp_path / "sub" / "c.csv"), "z")

    assert fs.list_files(str(tmp_path)) == ["a.csv", "b.csv"]
    assert fs.list_dirs(str(tmp_path)) == ["sub"]
    assert fs.list_files(str(tmp_path / "absent")) == []


def test_move_replaces_the_target(fs, tmp_path):
    fs.write_text(str(tmp_path / "staging" / "part-0"), "new")
    fs.write_text(str(tmp_path / "out" / "t.csv"), "old")

    fs.move(str(tmp_path / "staging" / "part-0"), str(tmp_path / "out" / "t.csv"))

    assert fs.read_text(str(tmp_path / "out" / "t.csv")) == "new"
    assert not (tmp_path / "staging" / "part-0").exists()


def test_a_folder_is_idle_when_nothing_below_it_changed_for_the_time_given(fs, tmp_path):
    hour_ago = time.time() - 3600
    for name in ("old", "busy", "_staging-old"):
        fs.write_text(str(tmp_path / name / "deep" / "part-0"), "x")
    for path in tmp_path.rglob("*"):
        os.utime(path, (hour_ago, hour_ago))
    os.utime(tmp_path / "busy" / "deep" / "part-0")  # a live writer's file, deep down: now
    os.utime(tmp_path / "busy", (hour_ago, hour_ago))

    assert fs.idle_folders(str(tmp_path), 1800) == ["_staging-old", "old"]
    assert fs.idle_folders(str(tmp_path), 1800, prefix="_staging-") == ["_staging-old"]
    assert fs.idle_folders(str(tmp_path), 7200) == []
    assert fs.idle_folders(str(tmp_path / "absent"), 0) == []


def test_file_count_counts_files_at_every_depth(fs, tmp_path):
    for path in ("a", "sub/b", "sub/deeper/c"):
        fs.write_text(str(tmp_path / "t" / path), "x")

    assert fs.file_count(str(tmp_path / "t")) == 3
    assert fs.file_count(str(tmp_path / "absent")) == 0


def test_delete_removes_a_folder_with_its_files_and_says_when_there_was_nothing(fs, tmp_path):
    fs.write_text(str(tmp_path / "run" / "deep" / "part-0"), "x")

    assert fs.delete(str(tmp_path / "run")) is True
    assert not (tmp_path / "run").exists()
    assert fs.delete(str(tmp_path / "run")) is False


def test_head_reads_the_first_bytes_and_is_file_tells_a_folder_from_a_file(fs, tmp_path):
    fs.write_bytes(str(tmp_path / "d" / "x.parquet"), b"PAR1....PAR1")

    assert fs.head(str(tmp_path / "d" / "x.parquet"), 4) == b"PAR1"
    assert fs.is_file(str(tmp_path / "d" / "x.parquet")) is True
    assert fs.is_file(str(tmp_path / "d")) is False
    assert fs.exists(str(tmp_path / "d")) is True


def test_a_missing_file_raises_file_not_found_naming_it(fs, tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.json"):
        fs.read_text(str(tmp_path / "absent.json"))


def test_file_uris_and_plain_paths_name_the_same_file(fs, tmp_path):
    fs.write_text(f"file://{tmp_path}/a.txt", "same")

    assert fs.read_text(str(tmp_path / "a.txt")) == "same"
    assert fs.qualified(str(tmp_path)).removeprefix("file:").rstrip("/") == str(tmp_path)


def test_a_classic_session_gets_the_hadoop_file_layer(spark):
    assert isinstance(filesystem.for_session(spark), filesystem.HadoopFileSystem)
