"""A real S3 server for the tests: moto's standalone server on a free local port (no mock of boto).

The fixture points ``AWS_ENDPOINT_URL`` and test credentials at it for this process and every
process started after it (Ray workers, ``fld-engine`` subprocesses inherit the environment).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

S3_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "fld-test",
    "AWS_SECRET_ACCESS_KEY": "fld-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with code {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto server did not listen on port {port} within {seconds:.0f}s")


@contextmanager
def s3_server() -> Iterator[str]:
    """Start ``moto.server`` on 127.0.0.1, export its endpoint and credentials; yield the endpoint URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    saved = {name: os.environ.get(name) for name in [*S3_ENVIRONMENT, "AWS_ENDPOINT_URL"]}
    try:
        _wait_for(port, process)
        os.environ.update(S3_ENVIRONMENT, AWS_ENDPOINT_URL=endpoint)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def new_bucket() -> str:
    """Create a bucket with a unique name on the running server; return its ``s3://`` URI."""
    import boto3

    name = f"fld-{uuid.uuid4().hex[:12]}"
    boto3.session.Session().client("s3").create_bucket(Bucket=name)
    return f"s3://{name}"
