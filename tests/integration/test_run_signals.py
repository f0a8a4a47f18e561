"""Ctrl-C (SIGINT) and a scheduler's SIGTERM stop a run cleanly: one line, exit 130 / 143, the lock
released, every finished shard journaled; the same command then resumes with one row per image."""

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

import pytest
import yaml

from engine.config.profile import load_config
from engine.run import RunRequest, run_pipeline
from engine.store.manifest import list_versions
from engine.store.reader import read_version
from tests.support import refresh_stages
from tests.support.killed_runs import kill_ray_processes_under
from tests.support.refresh_stages import FILTER, REPO, SPECIALIST, write_images

IMAGES = 12
RESUME_LINE = "fld-engine run: interrupted; run the same command to resume"


@pytest.fixture(scope="module")
def ray_local():
    with refresh_stages.local_ray_with_stages():
        yield


def slow_profile(folder: Path) -> Path:
    profile = folder / "slow.yaml"
    profile.write_text(
        yaml.safe_dump(
            {
                "specialists": [
                    {
                        "name": "halves",
                        "backend": SPECIALIST,
                        "resources": {"batch_size": 2},
                        "options": {"seconds_per_image": 0.5},
                    }
                ],
                "filters": [{"name": "min_score", "backend": FILTER}],
                "writer": {"rows_per_shard": 2, "row_group_rows": 2},
                "ray": {"num_cpus": 2, "decode_batch_size": 2},
            }
        )
    )
    return profile


def interrupt_mid_run(args: list[str], output: Path, signum: int, shards_before: int) -> tuple[int, str, int]:
    """Run the CLI in a subprocess, send ``signum`` once it journaled more shards than ``shards_before``;
    return its exit code, its stderr and how many shards it had journaled."""
    ray_tmp = Path(tempfile.mkdtemp(prefix="fldsig", dir="/tmp"))
    code = "import sys; from tests.support.refresh_stages import run_cli; sys.exit(run_cli(sys.argv[1:]))"
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp)}
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        journaled = 0
        while time.monotonic() < deadline and process.poll() is None:
            journaled = len(list((output / "_runs").glob("*/shards/*.json")))
            if journaled > shards_before:
                break
            time.sleep(0.2)
        assert process.poll() is None and journaled > shards_before, "the run ended before it could be stopped"
        os.kill(process.pid, signum)
        _, err = process.communicate(timeout=120)
        return process.returncode, err, journaled
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        kill_ray_processes_under(ray_tmp)
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.slow
def test_sigint_then_sigterm_stop_cleanly_and_the_same_command_resumes(ray_local, tmp_path) -> None:
    inputs, output = tmp_path / "inputs", tmp_path / "out"
    write_images(inputs, IMAGES)
    profile = slow_profile(tmp_path)
    args = ["run", "--input", str(inputs), "--output", str(output), "--config", str(profile)]

    code, err, journaled = interrupt_mid_run(args, output, signal.SIGINT, 0)
    assert code == 130 and err.strip().splitlines()[-1] == RESUME_LINE and "Traceback" not in err
    assert not (output / ".lock").exists() and list_versions(output) == []
    kept = len(list((output / "_runs").glob("*/shards/*.json")))
    assert kept >= journaled >= 1

    code, err, _ = interrupt_mid_run(args, output, signal.SIGTERM, kept)
    assert code == 143 and err.strip().splitlines()[-1] == RESUME_LINE and "Traceback" not in err
    assert not (output / ".lock").exists() and list_versions(output) == []
    records = [json.loads(p.read_text()) for p in (output / "_runs").glob("*/shards/*.json")]
    journaled_ids = {i for record in records for i in record["image_ids"]}
    assert len(records) > kept and len(journaled_ids) < IMAGES

    request = RunRequest((str(inputs),), output, load_config(profile), progress_bars=False)
    result = run_pipeline(request, progress=lambda _: None)
    ids = read_version(output).column("image_id").to_pylist()
    assert len(ids) == len(set(ids)) == IMAGES
    assert (result.resumed, result.annotated) == (len(journaled_ids), IMAGES - len(journaled_ids))
    assert list_versions(output) == [1] and not list((output / "_runs").iterdir())
