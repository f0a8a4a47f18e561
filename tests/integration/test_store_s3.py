"""A dataset on a real S3 server (moto): runs, reruns, a killed run resumed, the lease, every command."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import pytest
import yaml

from engine.cli import main as cli
from engine.config.profile import load_config, parse_config
from engine.errors import OutputError
from engine.ingest.probe_cache import ProbeCache, split_by_cache
from engine.ingest.sources import Source, SourceKind
from engine.run import RunRequest, RunResult, run_pipeline
from engine.store.location import location
from engine.store.manifest import list_versions, require_manifest
from engine.store.output_lock import LockHolder, OutputLock, read_holder
from engine.store.reader import read_version
from tests.support import refresh_stages
from tests.support.killed_runs import kill_ray_processes_under
from tests.support.refresh_stages import FILTER, REPO, SPECIALIST, processed, write_images
from tests.support.s3_server import new_bucket
from tests.support.store_datasets import publish_next, same_size_records, write_shards
from tests.support.unprivileged import run

IMAGES = 6


def profile(log_dir: Path, **writer) -> dict:
    return {
        "specialists": [{"name": "halves", "backend": SPECIALIST, "options": {"log_dir": str(log_dir)}}],
        "filters": [{"name": "min_score", "backend": FILTER, "options": {"log_dir": str(log_dir)}}],
        "writer": {"rows_per_shard": 4, "row_group_rows": 2, **writer},
        "ray": {"num_cpus": 2},
    }


def keys(uri: str) -> list[str]:
    """Every object key below an ``s3://bucket/prefix`` URI, relative to the prefix."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    pages = boto3.session.Session().client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"][len(prefix) + 1 :] for page in pages for item in page.get("Contents", []))


@pytest.fixture(scope="module")
def ray_local(s3_endpoint):
    with refresh_stages.local_ray_with_stages():
        yield


def annotate(inputs: Path, output: str, logs: Path, always_publish: bool = False) -> RunResult:
    request = RunRequest(
        (str(inputs),), output, parse_config(profile(logs)), progress_bars=False, always_publish=always_publish
    )
    return run_pipeline(request, progress=lambda _: None)


@pytest.fixture(scope="module")
def remote(ray_local, tmp_path_factory):
    """A dataset on S3 with two versions (a run, then a rerun of the same inputs); the run's working
    folder, which must stay empty."""
    base = tmp_path_factory.mktemp("remote")
    inputs, logs, cwd = base / "inputs", base / "logs", base / "cwd"
    write_images(inputs, IMAGES)
    logs.mkdir()
    cwd.mkdir()
    output = f"{new_bucket()}/corpus"
    here = os.getcwd()
    os.chdir(cwd)
    try:
        first = annotate(inputs, output, logs)
        seen = len(processed(logs, "halves"))
        second = annotate(inputs, output, logs, always_publish=True)
    finally:
        os.chdir(here)
    return {"output": output, "first": first, "second": second, "seen": seen, "logs": logs, "cwd": cwd}


def test_a_run_publishes_its_version_in_the_bucket_and_writes_nothing_locally(remote) -> None:
    output, first = remote["output"], remote["first"]
    assert (first.manifest.version, first.annotated) == (1, IMAGES)
    ids = read_version(output, 1).column("image_id").to_pylist()
    assert len(ids) == len(set(ids)) == IMAGES
    listed = set(first.manifest.files())
    stored = keys(output)
    assert {k for k in stored if k.startswith(("annotations/", "probes/"))} >= listed
    assert {"manifest.json", "versions/v000001.json"} <= set(stored)
    assert not any(k.startswith("_runs/") or k == ".lock" for k in stored)
    assert list(remote["cwd"].iterdir()) == []


def test_a_rerun_on_s3_carries_every_image_over(remote) -> None:
    second = remote["second"]
    assert (second.manifest.version, second.annotated, second.carried, second.probe_cached) == (2, 0, IMAGES, IMAGES)
    assert len(processed(remote["logs"], "halves")) == remote["seen"]
    assert (
        read_version(remote["output"], 2)
        .sort_by("image_id")
        .equals(read_version(remote["output"], 1).sort_by("image_id"))
    )


def test_inspect_versions_and_diff_read_the_remote_dataset(remote, capsys) -> None:
    output = remote["output"]
    assert cli(["inspect", output, "--verify", "--no-stats"]) == 0
    out = capsys.readouterr().out
    assert f"{output}: version 2 " in out and "verified: 3 files match the manifest's sizes, rows and SHA-256" in out
    assert cli(["versions", output]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["1", "2"]
    assert cli(["diff", output, "--from", "1"]) == 0
    assert "added               0" in capsys.readouterr().out


def test_audit_writes_its_html_report_into_the_bucket(remote, capsys) -> None:
    report = f"{remote['output']}-reports/audit.html"
    assert cli(["audit", remote["output"], "--html", report, "--sample", "2"]) == 0
    assert f"{remote['output']}: version 2, {IMAGES} images" in capsys.readouterr().out
    assert location(report).read_text().startswith("<!DOCTYPE html>")


def test_export_writes_a_coco_dataset_into_the_bucket(remote, capsys) -> None:
    destination = f"{remote['output']}-exports/coco"
    assert cli(["export", remote["output"], "--format", "coco", "--to", destination, "--val-fraction", "0"]) == 0
    instances = json.loads(location(f"{destination}/instances_train.json").read_bytes())
    assert len(instances["images"]) == IMAGES
    assert sum(k.startswith("images/") for k in keys(destination)) == IMAGES
    assert cli(["export", remote["output"], "--format", "coco", "--to", destination]) == 2
    assert "must be a new or empty folder" in capsys.readouterr().err


# -- bad output URIs: one line, exit 2, before any work ------------------------------------------------


def test_a_missing_bucket_is_refused_before_any_work(s3_endpoint, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_images(tmp_path / "inputs", 1)
    started = time.perf_counter()
    code, err = run(["run", "--input", str(tmp_path / "inputs"), "--output", "s3://fld-no-such-bucket/out"])
    assert (code, err) == (
        2,
        "fld-engine run: error: output s3://fld-no-such-bucket/out: bucket 'fld-no-such-bucket' does not exist\n",
    )
    assert time.perf_counter() - started < 10 and sorted(p.name for p in tmp_path.iterdir()) == ["inputs"]


def test_a_bad_input_leaves_nothing_in_the_bucket(s3_bucket, tmp_path) -> None:
    code, err = run(["run", "--input", str(tmp_path / "missing"), "--output", f"{s3_bucket}/out"])
    assert code == 2 and "no such file or folder" in err and keys(s3_bucket) == []


# -- checksums and version numbers on S3 (written without Ray) ------------------------------------------


def test_a_swapped_shard_on_s3_is_caught_by_inspect_verify_and_export(s3_bucket) -> None:
    root = f"{s3_bucket}/ds"
    publish_next(root, "run-1", write_shards(root, "part-run-1", same_size_records("ab")))
    first, second = require_manifest(root).shards
    location(f"{root}/{second.path}").write_bytes(location(f"{root}/{first.path}").read_bytes())
    assert run(["inspect", root, "--no-stats"])[0] == 0
    code, err = run(["inspect", root, "--no-stats", "--verify"])
    assert code == 2 and f"shard {second.path} does not match the manifest's checksum" in err
    code, err = run(["export", root, "--format", "coco", "--to", f"{s3_bucket}/export"])
    assert code == 2 and f"shard {second.path} does not match the manifest's checksum" in err
    assert not any(k.startswith("export/") for k in keys(s3_bucket))


def test_version_numbers_never_repeat_on_s3_after_a_deleted_version_file(s3_bucket) -> None:
    root = f"{s3_bucket}/ds"
    for run_id in ("run-1", "run-2"):
        publish_next(root, run_id, write_shards(root, f"part-{run_id}", same_size_records("a")))
    location(f"{root}/versions/v000002.json").delete()
    with pytest.warns(UserWarning, match="v000002.json is missing"):
        third = publish_next(root, "run-3", [])
    assert third.version == 3 and list_versions(root) == [1, 3]


# -- the lease ------------------------------------------------------------------------------------------


def _stale_lease(root: str, renewed_ago: float, host: str = "elsewhere") -> None:
    holder = LockHolder(host, 4242, "2026-01-01T00:00:00+00:00", "old-run", None, 120.0, time.time() - renewed_ago)
    location(f"{root}/.lock").write_bytes(holder.to_bytes())


def test_a_second_writer_is_refused_naming_the_lease_holder(s3_bucket) -> None:
    root = f"{s3_bucket}/ds"
    with OutputLock(root, "first"), pytest.raises(OutputError) as refused:
        OutputLock(root, "second").acquire()
    message = str(refused.value)
    assert f"another fld-engine run holds the lock (host {socket.gethostname()}, pid {os.getpid()}," in message
    assert "run first, lease until " in message
    assert keys(root) == []  # released


def test_a_live_lease_of_another_host_is_refused(s3_bucket) -> None:
    root = f"{s3_bucket}/ds"
    _stale_lease(root, renewed_ago=10)
    with pytest.raises(OutputError, match=r"holds the lock \(host elsewhere, pid 4242, .*run old-run, lease until"):
        OutputLock(root, "mine").acquire()


def test_an_expired_lease_is_taken_over_and_only_once(s3_bucket) -> None:
    root = f"{s3_bucket}/ds"
    _stale_lease(root, renewed_ago=600)
    expired = location(f"{root}/.lock").read_with_token()
    lock = OutputLock(root, "mine")
    with pytest.warns(UserWarning, match=r"taking over a stale lock, an expired lease \(host elsewhere, pid 4242"):
        lock.acquire()
    assert read_holder(f"{root}/.lock").run_id == "mine"
    # A second run that read the same expired lease loses: its takeover is conditional on that lease.
    assert location(f"{root}/.lock").replace_with_token(b"theirs", expired[1]) is None
    assert read_holder(f"{root}/.lock").run_id == "mine"
    lock.release()
    assert keys(root) == []


def test_the_heartbeat_renews_the_lease_past_its_length(s3_bucket) -> None:
    root = f"{s3_bucket}/ds"
    with OutputLock(root, "mine", lease_seconds=1.2) as lock:
        taken = read_holder(f"{root}/.lock").renewed_at
        time.sleep(2.0)
        lock.check()  # the lease is 1.2 s long: it holds only because it was renewed
        assert read_holder(f"{root}/.lock").renewed_at > taken


def test_a_run_whose_lease_was_taken_over_may_not_publish(s3_bucket) -> None:
    root = f"{s3_bucket}/ds"
    with OutputLock(root, "mine", lease_seconds=1.2) as lock:
        _stale_lease(root, renewed_ago=0, host="thief")
        time.sleep(1.0)
        with pytest.raises(OutputError, match="this run lost the lock: another run took the lease over"):
            lock.check()
    assert read_holder(f"{root}/.lock").host == "thief"  # the lock of the run that took it stays


# -- a run killed with SIGKILL, resumed ------------------------------------------------------------------


@pytest.mark.slow
def test_a_killed_run_on_s3_is_resumed_with_each_image_once(ray_local, s3_bucket, tmp_path, capsys) -> None:
    inputs, logs = tmp_path / "inputs", tmp_path / "logs"
    output = f"{s3_bucket}/corpus"
    logs.mkdir()
    write_images(inputs, 12)
    config = profile(logs, rows_per_shard=2, row_group_rows=2)
    config["specialists"][0]["resources"] = {"batch_size": 2}
    config["specialists"][0]["options"]["seconds_per_image"] = 0.4
    config["ray"]["decode_batch_size"] = 2
    profile_file = tmp_path / "slow.yaml"
    profile_file.write_text(yaml.safe_dump(config))
    args = ["run", "--input", str(inputs), "--output", output, "--config", str(profile_file), "--quiet"]
    ray_tmp = Path(tempfile.mkdtemp(prefix="flds3k", dir="/tmp"))
    code = "import sys; from tests.support.refresh_stages import run_cli; sys.exit(run_cli(sys.argv[1:]))"
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp)}
    process = subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        records: list[str] = []
        while time.monotonic() < deadline and process.poll() is None:
            records = [k for k in keys(output) if k.startswith("_runs/") and "/shards/" in k]
            if len(records) >= 2:
                break
            time.sleep(0.3)
        assert process.poll() is None and len(records) >= 2, "the run ended before it could be killed mid-way"

        assert cli(args) == 2  # while it runs, a second run is refused and names the holder
        error = capsys.readouterr().err.strip()
        assert "another fld-engine run holds the lock" in error and f"pid {process.pid}," in error
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        kill_ray_processes_under(ray_tmp)
        shutil.rmtree(ray_tmp, ignore_errors=True)

    stored = keys(output)
    assert "manifest.json" not in stored and ".lock" in stored
    journaled = [json.loads(location(f"{output}/{k}").read_bytes()) for k in stored if "/shards/" in k]
    journaled_ids = {i for entry in journaled for i in entry["image_ids"]}
    seen_before = len(processed(logs, "halves"))

    request = RunRequest((str(inputs),), output, load_config(profile_file), progress_bars=False)
    with pytest.warns(UserWarning, match="taking over a stale lock, the lease of a dead process"):
        result = run_pipeline(request, progress=lambda _: None)

    assert result.resumed == len(journaled_ids) >= 4
    assert result.annotated == 12 - len(journaled_ids)
    assert journaled_ids.isdisjoint(processed(logs, "halves")[seen_before:])
    ids = read_version(output).column("image_id").to_pylist()
    manifest = require_manifest(output)
    assert len(ids) == len(set(ids)) == 12 == manifest.counts["images"] == sum(s.rows for s in manifest.shards)
    data_files = {k for k in keys(output) if not k.startswith("versions/") and k != "manifest.json"}
    assert data_files == set(manifest.files())  # the killed run's unlisted files, its journal and the lock are gone


def test_the_probe_cache_keys_objects_by_size_and_etag_not_mtime(s3_bucket) -> None:
    same, rewritten, resized = (f"{s3_bucket}/raw/{name}.png" for name in ("same", "rewritten", "resized"))
    for uri in (same, rewritten, resized):
        location(uri).write_bytes(b"x" * 10)

    def row(uri: str) -> dict:
        entry = location(uri).stat()
        return {"source_uri": uri, "size_bytes": entry.size, "object_size": entry.size, "mtime_ns": None,
                "etag": entry.etag, "checked_ns": 0, "image_id": "id-" + uri.rsplit("/", 1)[1], "width": 1,
                "height": 1, "format": "png", "reason": None, "detail": None, "locator": None}  # fmt: skip

    cache = ProbeCache.from_rows([row(uri) for uri in (same, rewritten, resized)])
    location(rewritten).write_bytes(b"y" * 10)  # same size, other bytes: only the ETag tells
    location(resized).write_bytes(b"x" * 11)
    split = split_by_cache([Source(SourceKind.FILE, uri) for uri in (same, rewritten, resized)], cache)
    assert split.hits.column("image_id").to_pylist() == ["id-same.png"]
    assert split.misses.column("uri").to_pylist() == [rewritten, resized]


def test_refine_refuses_a_remote_dataset_in_one_line(s3_bucket) -> None:
    code, err = run(["refine", f"{s3_bucket}/ds", "--rounds", "1"])
    assert code == 2 and err.count("\n") == 1
    assert f"{s3_bucket}/ds: refinement needs a local dataset (its checkpoints are local folders)" in err
