"""Exit codes, as ``fld-engine --help`` documents them: 2 for usage, profile, input and output errors,
1 for a run that cannot go on (no cluster at ``--address``, an empty input on an existing dataset),
0 when done; an input without images creates nothing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from engine.cli import main as cli
from engine.store.manifest import list_versions
from engine.store.reader import read_version
from schemas.records import ImageRecord
from tests.support.refresh_stages import REPO
from tests.support.store_datasets import publish_next, same_size_records, write_shards
from tests.support.unprivileged import run


def free_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def images(tmp_path):
    from tests.support.refresh_stages import write_images

    write_images(tmp_path / "images", 2)
    return tmp_path / "images"


@pytest.fixture
def empty(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt.bak").write_text("not an image")
    return tmp_path / "empty"


def test_help_documents_the_exit_codes() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "engine.cli", "run", "--help"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    epilog = printed[printed.index("exit codes:") :]
    for line in ("0    done", "1    the run failed", "2    a usage, profile, input or output error", "130  ", "143"):
        assert line in epilog


def test_a_usage_error_exits_2(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli(["run", "--output", "x"])
    assert exit_.value.code == 2 and "the following arguments are required: --input" in capsys.readouterr().err


def test_a_profile_error_exits_2_in_one_line(images, tmp_path) -> None:
    profile = tmp_path / "bad.yaml"
    profile.write_text("writer: {rows_per_shard: 1, batchsize: 3}\n")
    code, err = run(["run", "--input", str(images), "--output", str(tmp_path / "out"), "--config", str(profile)])
    assert code == 2 and err.count("\n") == 1 and "batchsize" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("how", ["address", "auto"])
def test_no_cluster_at_the_address_exits_1_in_one_line_before_any_work(images, tmp_path, how) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    if how == "auto":  # "auto" takes RAY_ADDRESS first: here it names a port nothing listens on
        env["RAY_ADDRESS"] = f"127.0.0.1:{port}"
    address = f"127.0.0.1:{port}" if how == "address" else "auto"
    command = ["run", "--input", str(images), "--output", str(tmp_path / "out"), "--address", address]
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", *command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"fld-engine run: error: --address {address}: no Ray cluster answers at 127.0.0.1:{port} (Connection refused)\n"
    )
    assert not (tmp_path / "out").exists()


def test_an_input_without_images_warns_and_creates_nothing(empty, tmp_path) -> None:
    code, err = run(["run", "--input", str(empty), "--output", str(tmp_path / "out")])
    assert (code, err) == (0, f"fld-engine run: warning: no images found in {empty}; nothing was written\n")
    assert not (tmp_path / "out").exists()


def test_an_empty_input_on_an_existing_dataset_is_refused(empty, tmp_path) -> None:
    output = tmp_path / "out"
    publish_next(output, "run-1", write_shards(output, "part-run-1", same_size_records("ab")))
    code, err = run(["run", "--input", str(empty), "--output", str(output)])
    assert code == 1 and err.count("\n") == 1
    assert f"no images found in {empty}; refusing to publish an empty version of {output}" in err
    assert "--allow-empty" in err and list_versions(output) == [1]


def test_allow_empty_publishes_a_version_without_the_images_gone_from_the_input(empty, tmp_path) -> None:
    output = tmp_path / "out"
    gone = [ImageRecord(c * 64, str(empty / f"{c}.png"), 8, 8, "png", [str(empty / f"{c}.png")]) for c in "ab"]
    publish_next(output, "run-1", write_shards(output, "part-run-1", gone))
    code, _ = run(["run", "--input", str(empty), "--output", str(output), "--allow-empty"])
    assert code == 0 and list_versions(output) == [1, 2]
    assert read_version(output).num_rows == 0 and read_version(output, 1).num_rows == 2
