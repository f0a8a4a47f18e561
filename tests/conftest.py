"""Shared test setup: keep every tool's state inside the project and never reach a model hub."""

from __future__ import annotations

import os
from pathlib import Path

_STATE = Path(__file__).resolve().parents[1] / ".state"
for _name, _value in {
    "RAY_AUTH_MODE": "disabled",
    "RAY_TMPDIR": f"/tmp/fld-ray-{os.getuid()}",
    "RAY_USAGE_STATS_ENABLED": "0",
    "HF_HOME": str(_STATE / "huggingface"),
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "YOLO_CONFIG_DIR": str(_STATE / "ultralytics"),
    "YOLO_OFFLINE": "1",
    "MPLCONFIGDIR": str(_STATE / "matplotlib"),
    # One intra-op thread: tests share two cores with Ray workers, and oversubscribed torch spins.
    "OMP_NUM_THREADS": "1",
}.items():
    os.environ.setdefault(_name, _value)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_florence2_dir(tmp_path_factory):
    """A tiny random-init Florence-2 checkpoint and processor on disk (built once per session)."""
    from tests.support.tiny_models.florence import build_tiny_florence2

    return build_tiny_florence2(tmp_path_factory.mktemp("tiny-florence2"))


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server for the whole session; AWS_ENDPOINT_URL points at it."""
    from tests.support.s3_server import s3_server

    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint) -> str:
    """A fresh, empty bucket on the test S3 server, as ``s3://name``."""
    from tests.support.s3_server import new_bucket

    return new_bucket()


@pytest.fixture
def read_only_folder():
    """A folder nobody may write, inside one everybody may enter."""
    from tests.support.unprivileged import read_only_folder as make

    with make() as folder:
        yield folder
