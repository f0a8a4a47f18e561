"""Crash-resume and one writer at a time: a run killed with SIGKILL is finished by the next run,
without redoing its journaled shards and without duplicate rows."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from engine.cli import main as cli
from engine.config.profile import load_config
from engine.run import RunRequest, run_pipeline
from engine.store.manifest import require_manifest
from engine.store.reader import read_version
from tests.support import refresh_stages
from tests.support.killed_runs import kill_ray_processes_under
from tests.support.refresh_stages import FILTER, REPO, SPECIALIST, processed, write_images

IMAGES = 12


@pytest.fixture(scope="module")
def ray_local():
    with refresh_stages.local_ray_with_stages():
        yield


def test_a_killed_run_is_resumed_without_redoing_or_duplicating(ray_local, tmp_path, capsys) -> None:
    inputs, output, logs = tmp_path / "inputs", tmp_path / "out", tmp_path / "logs"
    logs.mkdir()
    write_images(inputs, IMAGES)
    profile = tmp_path / "slow.yaml"
    profile.write_text(
        yaml.safe_dump(
            {
                "specialists": [
                    {
                        "name": "halves",
                        "backend": SPECIALIST,
                        "resources": {"batch_size": 2},
                        "options": {"log_dir": str(logs), "seconds_per_image": 0.4},
                    }
                ],
                "filters": [{"name": "min_score", "backend": FILTER, "options": {"log_dir": str(logs)}}],
                "writer": {"rows_per_shard": 2, "row_group_rows": 2},
                "ray": {"num_cpus": 2, "decode_batch_size": 2},
            }
        )
    )
    args = ["run", "--input", str(inputs), "--output", str(output), "--config", str(profile), "--quiet"]
    ray_tmp = Path(tempfile.mkdtemp(prefix="fldk", dir="/tmp"))
    code = "import sys; from tests.support.refresh_stages import run_cli; sys.exit(run_cli(sys.argv[1:]))"
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp)}
    process = subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, env=env, start_new_session=True)
    journals = output / "_runs"
    try:
        deadline = time.monotonic() + 240
        records: list[Path] = []
        while time.monotonic() < deadline and process.poll() is None:
            records = list(journals.glob("*/shards/*.json"))
            if len(records) >= 2:
                break
            time.sleep(0.2)
        assert process.poll() is None and len(records) >= 2, "the run ended before it could be killed mid-way"

        # While it runs, a second run on the same output is refused and names the holder.
        assert cli(args) == 2
        error = capsys.readouterr().err.strip()
        assert "another fld-engine run holds the lock" in error and f"pid {process.pid}," in error
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        kill_ray_processes_under(ray_tmp)
        shutil.rmtree(ray_tmp, ignore_errors=True)

    assert not (output / "manifest.json").exists()
    journaled = [json.loads(record.read_text()) for record in journals.glob("*/shards/*.json")]
    journaled_ids = {i for entry in journaled for i in entry["image_ids"]}
    seen_before = len(processed(logs, "halves"))

    request = RunRequest((str(inputs),), output, load_config(profile), progress_bars=False)
    with pytest.warns(UserWarning, match="taking over a stale lock"):
        result = run_pipeline(request, progress=lambda _: None)

    assert result.resumed == len(journaled_ids) >= 4
    assert result.annotated == IMAGES - len(journaled_ids)
    assert journaled_ids.isdisjoint(processed(logs, "halves")[seen_before:])
    ids = read_version(output).column("image_id").to_pylist()
    manifest = require_manifest(output)
    assert len(ids) == len(set(ids)) == IMAGES == manifest.counts["images"] == sum(s.rows for s in manifest.shards)
    assert all(pq.ParquetFile(output / s.path).metadata.num_rows == s.rows for s in manifest.shards)
    listed = set(manifest.files())
    on_disk = {f"{p.parent.name}/{p.name}" for p in output.glob("*/*.parquet*") if p.parent.name != "versions"}
    assert on_disk == listed and not list(journals.iterdir())
    assert not (output / ".lock").exists()
