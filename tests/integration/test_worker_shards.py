"""Workers write the annotation shards: the driver gets shard descriptions only, on a local folder and on
S3 alike, and a run killed after its first time-closed shard resumes with exactly one row per image."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from engine.config.profile import load_config, parse_config
from engine.execute.dataset import build_dataset
from engine.execute.plan_stages import plan_stages
from engine.execute.shard_workers import WriteReport
from engine.execute.sink import Annotated, AnnotationSink
from engine.ingest.image_bytes import in_read_order
from engine.partitions.parts import IDS, in_process
from engine.run import RunRequest, run_pipeline
from engine.store.location import location
from engine.store.manifest import require_manifest
from engine.store.reader import read_shard, read_version
from engine.store.writer import ShardInfo
from schemas.arrow import ANNOTATION_SCHEMA
from schemas.records import ImageRecord
from tests.support import refresh_stages
from tests.support.killed_runs import kill_ray_processes_under
from tests.support.located_rows import with_locators
from tests.support.refresh_stages import FILTER, REPO, SPECIALIST, write_images


def written_ids(annotated: Annotated) -> list[str]:
    """The ids sent to be written, less those of the files that failed to load while annotated."""
    late = set(annotated.late_table().column("image_id").to_pylist())
    return [i for i in annotated.sent.gather().column("image_id").to_pylist() if i not in late]


def profile(log_dir: Path, **writer) -> dict:
    return {
        "specialists": [{"name": "halves", "backend": SPECIALIST, "options": {"log_dir": str(log_dir)}}],
        "filters": [{"name": "min_score", "backend": FILTER, "options": {"log_dir": str(log_dir)}}],
        "writer": {"rows_per_shard": 3, "row_group_rows": 2, **writer},
        "ray": {"num_cpus": 2, "decode_batch_size": 2},
    }


@pytest.fixture(scope="module")
def ray_local(s3_endpoint):
    with refresh_stages.local_ray_with_stages():
        yield


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def image_rows(paths: list[Path], ids: list[str]) -> pa.Table:
    records = [ImageRecord(i, str(p), 32, 24, "PNG", [str(p)]).to_row() for i, p in zip(ids, paths, strict=True)]
    return in_read_order(with_locators(pa.Table.from_pylist(records, schema=ANNOTATION_SCHEMA), {}))


def journal_entries(root: str, run_id: str) -> list[dict]:
    folder = location(root) / "_runs" / run_id / "shards"
    return [json.loads(location(entry.uri).read_bytes()) for entry in folder.iter_files()]


@pytest.mark.parametrize("store", ["local", "s3"])
def test_the_driver_collects_only_shard_descriptions(ray_local, tmp_path, s3_bucket, store) -> None:
    paths = write_images(tmp_path / "images", 7)
    ids = [sha(p) for p in paths]
    paths[4].unlink()  # gone after probing: quarantined late, by the writer
    root = str(tmp_path / "out") if store == "local" else f"{s3_bucket}/corpus"
    config = parse_config(profile(tmp_path))
    sink = AnnotationSink(root, "run1", config.writer, progress=lambda _: None)
    dataset = build_dataset(image_rows(paths, ids), plan_stages(config), config)

    written = sink.drain_dataset(dataset, "annotated", 7)
    annotated = sink.close(written, in_process(pa.Table.from_arrays([pa.array(ids)], schema=IDS)))

    # What reached the driver: reports of shard descriptions, row counts and the late quarantine rows.
    assert sink.reports and all(type(r) is WriteReport for r in sink.reports)
    assert all(type(s) is ShardInfo for r in sink.reports for s in r.shards)
    late = [row for r in sink.reports for row in r.late_quarantine]
    assert [(row["image_id"], row["reason"]) for row in late] == [(ids[4], "unreadable")]
    assert written == sum(r.rows for r in sink.reports) == sum(s.rows for s in annotated.shards) == 6
    assert set(written_ids(annotated)) == set(ids) - {ids[4]}
    assert all(s.path.startswith("annotations/part-run1-w0-") and len(s.sha256) == 64 for s in annotated.shards)
    rows_on_store = [i for s in annotated.shards for i in read_version_shard(root, s)]
    assert sorted(rows_on_store) == sorted(written_ids(annotated))
    # Each shard was journaled by the writer actor, a process other than this driver, on a Ray node.
    entries = journal_entries(root, "run1")
    assert sorted(e["shard"]["path"] for e in entries) == sorted(s.path for s in annotated.shards)
    assert {e["writer"]["pid"] for e in entries} != {os.getpid()} and all(e["writer"]["node"] for e in entries)


def test_stages_that_need_no_pixels_read_no_image_file(ray_local, tmp_path) -> None:
    paths = write_images(tmp_path / "images", 5)
    ids = [sha(p) for p in paths]
    paths[2].unlink()  # a step that read the files would quarantine this one late, as unreadable
    settings = profile(tmp_path)
    del settings["specialists"]
    config = parse_config(settings)
    stages = plan_stages(config)
    assert [s.needs_pixels for s in stages] == [False]
    root = str(tmp_path / "out")
    sink = AnnotationSink(root, "run1", config.writer, progress=lambda _: None)

    written = sink.drain_dataset(build_dataset(image_rows(paths, ids), stages, config), "annotated", 5)
    annotated = sink.close(written, in_process(pa.Table.from_arrays([pa.array(ids)], schema=IDS)))

    assert written == 5 and annotated.late_quarantine == [] and set(written_ids(annotated)) == set(ids)
    table = pa.concat_tables([read_shard(root, s, ["image_id", "stages", "errors"]) for s in annotated.shards])
    assert sorted(table.column("image_id").to_pylist()) == sorted(ids)
    assert {tuple(map(tuple, cell)) for cell in table.column("stages").to_pylist()} == {
        (("min_score", stages[0].fingerprint),)
    }
    assert table.column("errors").to_pylist() == [[]] * 5


def read_version_shard(root: str, shard: ShardInfo) -> list[str]:
    return read_shard(root, shard, ["image_id"]).column("image_id").to_pylist()


def test_a_run_with_inputs_and_output_on_s3_writes_shards_from_worker_processes(ray_local, tmp_path, s3_bucket) -> None:
    for path in write_images(tmp_path / "images", 8):
        location(f"{s3_bucket}/raw/{path.name}").write_bytes(path.read_bytes())
    output = f"{s3_bucket}/corpus"
    writers: list[dict] = []

    def progress(line: str) -> None:  # while the run is on: its journal names who wrote each shard so far
        if line.startswith("annotated"):
            writers.extend(e["writer"] for e in journal_entries(output, require_run_id(output)))

    request = RunRequest((f"{s3_bucket}/raw/",), output, parse_config(profile(tmp_path)), progress_bars=False)
    result = run_pipeline(request, progress=progress)

    assert result.annotated == 8 and len(read_version(output)) == 8
    assert writers and all(w["pid"] != os.getpid() and w["node"] for w in writers)
    assert sum(s.rows for s in require_manifest(output).shards) == 8


def require_run_id(root: str) -> str:
    [run_id] = [
        location(e.uri).parent.name for e in (location(root) / "_runs").iter_files() if e.uri.endswith("run.json")
    ]
    return run_id


@pytest.mark.slow
def test_a_run_of_a_few_images_killed_after_its_first_timed_shard_resumes(ray_local, tmp_path) -> None:
    inputs, output, logs = tmp_path / "inputs", tmp_path / "out", tmp_path / "logs"
    logs.mkdir()
    write_images(inputs, 6)
    slow = profile(logs, rows_per_shard=1000, max_shard_seconds=1.0)
    slow["specialists"][0]["options"]["seconds_per_image"] = 1.0
    slow["specialists"][0]["resources"] = {"batch_size": 1}
    slow["ray"]["decode_batch_size"] = 1
    profile_file = tmp_path / "slow.yaml"
    profile_file.write_text(yaml.safe_dump(slow))
    args = ["run", "--input", str(inputs), "--output", str(output), "--config", str(profile_file), "--quiet"]
    ray_tmp = Path(tempfile.mkdtemp(prefix="fldw", dir="/tmp"))
    code = "import sys; from tests.support.refresh_stages import run_cli; sys.exit(run_cli(sys.argv[1:]))"
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp)}
    process = subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        records: list[Path] = []
        while time.monotonic() < deadline and process.poll() is None and not records:
            records = list((output / "_runs").glob("*/shards/*.json"))
            time.sleep(0.1)
        assert process.poll() is None and records, "the run ended before it could be killed mid-way"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        kill_ray_processes_under(ray_tmp)
        shutil.rmtree(ray_tmp, ignore_errors=True)

    journaled = {i for r in (output / "_runs").glob("*/shards/*.json") for i in json.loads(r.read_text())["image_ids"]}
    assert 1 <= len(journaled) < 6  # a shard of 1000 rows closed by time, long before it filled

    fast = load_config(profile_file)
    request = RunRequest((str(inputs),), output, fast, progress_bars=False)
    with pytest.warns(UserWarning, match="taking over a stale lock"):
        result = run_pipeline(request, progress=lambda _: None)

    assert result.resumed == len(journaled) and result.annotated == 6 - len(journaled)
    ids = read_version(output).column("image_id").to_pylist()
    assert len(ids) == len(set(ids)) == 6
