"""What a user sees in the terminal: the engine's own lines only (Ray's and Ray Data's go to the Ray log
folder, named once), a loading line per model, progress with its rate, a per-stage table; ``--quiet``
prints nothing when all goes well. The CLI runs in a subprocess that starts its own Ray."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.support.killed_runs import kill_ray_processes_under
from tests.support.refresh_stages import REPO, write_images

IMAGES = 6
RAY_NOISE = ("core_worker", "execution finished", "A new progress UI", "Started a local Ray", "[dataset]")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("terminal")
    write_images(base / "images", IMAGES)
    profile = base / "haar.yaml"
    profile.write_text(
        yaml.safe_dump(
            {
                "specialists": [
                    {"name": "haar", "backend": "haar", "resources": {"num_cpus": 0.5, "batch_size": 2}},
                ],
                "filters": [{"name": "geometry", "backend": "geometry", "resources": {"num_cpus": 0.25}}],
                "ray": {"num_cpus": 2},
            }
        )
    )
    return base / "images", profile


@pytest.fixture
def ray_tmp():
    """A private Ray temp folder for the subprocess's Ray (its logs are read after the run), removed after."""
    folder = Path(tempfile.mkdtemp(prefix="fldterm", dir="/tmp"))
    yield folder
    kill_ray_processes_under(folder)
    shutil.rmtree(folder, ignore_errors=True)


def fld_engine(args: list[str], ray_tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_TMPDIR": str(ray_tmp)}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=400
    )


@pytest.mark.slow
def test_the_terminal_shows_only_the_engines_lines_and_ray_logs_go_to_its_folder(inputs, tmp_path, ray_tmp) -> None:
    images, profile = inputs
    output = tmp_path / "out"
    done = fld_engine(["run", "--input", str(images), "--output", str(output), "--config", str(profile)], ray_tmp)
    assert done.returncode == 0, done.stderr
    err = done.stderr.splitlines()
    assert not [line for line in err if any(noise in line for noise in RAY_NOISE)]
    assert not [line for line in err if re.match(r"\[\d{4}-\d\d-\d\d .* [EWI] \d+ \d+\]", line)]
    folders = [line.removeprefix("Ray logs: ") for line in err if line.startswith("Ray logs: ")]
    assert len(folders) == 1
    driver_log = Path(folders[0]) / "fld-engine-driver.log"
    assert driver_log.exists() and "core_worker" in driver_log.read_text()  # Ray's "E" line, kept there
    assert any(line.startswith("loading haar (opencv-") for line in err)
    assert re.fullmatch(rf"annotated {IMAGES}/{IMAGES} images, [\d.]+ images/s, in \d+:\d\d", err[-1])

    out = done.stdout.splitlines()
    assert out[0].startswith(f"version 1 of {output} published in ")
    header = out.index(next(line for line in out if line.startswith("stage ")))
    assert out[header].split() == ["stage", "images", "seconds", "images/s", "errors", "load", "s"]
    rows = {line.split()[0]: line.split() for line in out[header + 1 :]}
    assert set(rows) == {"haar", "geometry"} and rows["haar"][1] == rows["geometry"][1] == str(IMAGES)
    timings = {t["stage"]: t for t in json.loads((output / "manifest.json").read_text())["stage_timings"]}
    assert timings["haar"]["images"] == IMAGES and timings["haar"]["errors"] == 0
    assert timings["haar"]["seconds"] > 0 and timings["haar"]["load_seconds"] > 0


@pytest.mark.slow
def test_quiet_prints_nothing_when_all_goes_well(inputs, tmp_path, ray_tmp) -> None:
    images, profile = inputs
    output = tmp_path / "out"
    args = ["run", "--input", str(images), "--output", str(output), "--config", str(profile), "--quiet"]
    done = fld_engine(args, ray_tmp)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert json.loads((output / "manifest.json").read_text())["counts"]["images"] == IMAGES


def dashboard_installed() -> bool:
    try:
        import ray.dashboard.optional_deps  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not dashboard_installed(), reason="needs fld-engine[dashboard] (ray[default])")
def test_dashboard_prints_the_address_of_a_dashboard_that_answers(inputs, tmp_path, ray_tmp) -> None:
    images, profile = inputs
    args = ["run", "--input", str(images), "--output", str(tmp_path / "out"), "--config", str(profile)]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_TMPDIR": str(ray_tmp)}
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *args, "--dashboard"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = ""
        for line in process.stderr:  # type: ignore[union-attr]
            if line.startswith("Ray dashboard: "):
                break
        found = re.fullmatch(
            r"Ray dashboard: (http://127\.0\.0\.1:\d+) \(Prometheus metrics: (http://\S+/metrics)\)\n", line
        )
        assert found, line
        with urllib.request.urlopen(f"{found.group(1)}/api/version", timeout=30) as answer:
            assert answer.status == 200 and "ray_version" in json.loads(answer.read())
        process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0


@pytest.mark.skipif(dashboard_installed(), reason="the dashboard's packages are installed here")
def test_dashboard_without_its_packages_is_one_line_before_anything_is_created(inputs, tmp_path, capsys) -> None:
    from engine.cli import main as cli

    images, profile = inputs
    args = ["run", "--input", str(images), "--output", str(tmp_path / "out"), "--config", str(profile), "--dashboard"]
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--dashboard needs Ray's dashboard packages" in err
    assert "pip install 'fld-engine[dashboard]'" in err
    assert not (tmp_path / "out").exists()
