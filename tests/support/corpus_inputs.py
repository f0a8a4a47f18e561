"""Corpus inputs built in the tests: WebDataset shards (tarfile), img2dataset-style and Hugging Face
Parquet tables (pyarrow), and an HTTP server over a folder. Nothing is downloaded."""

from __future__ import annotations

import functools
import http.server
import io
import json
import tarfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from tests.support.image_files import jpeg_bytes


def png_bytes(width: int = 40, height: int = 30, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def write_tar(path: Path, members: Sequence[tuple[str, bytes]]) -> Path:
    """A tar with ``members`` (name, data) in this order, as WebDataset writers lay samples out."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def webdataset_members(count: int, seed: int = 0, prefix: str = "") -> list[tuple[str, bytes]]:
    """``count`` samples of ``<key>.jpg``, ``<key>.txt`` and ``<key>.json`` as img2dataset writes them."""
    members = []
    for i in range(count):
        key = f"{prefix}{i:05d}"
        members.append((f"{key}.jpg", jpeg_bytes(48, 32, seed=seed * 1000 + i)))
        members.append((f"{key}.txt", f"a photo number {i} of a red car on a street".encode()))
        members.append((f"{key}.json", json.dumps({"key": key, "url": f"https://example.com/{key}.jpg"}).encode()))
    return members


def img2dataset_table(count: int, seed: int = 0, captions: Sequence[str | None] | None = None) -> pa.Table:
    """A table with img2dataset's columns: url, caption, key, status, width, height and the ``jpg`` bytes."""
    keys = [f"{i:09d}" for i in range(count)]
    return pa.table(
        {
            "url": [f"https://example.com/{key}.jpg" for key in keys],
            "caption": list(captions) if captions is not None else [f"a dog in a park, picture {i}" for i in keys],
            "key": keys,
            "status": ["success"] * count,
            "width": pa.array([40] * count, pa.int32()),
            "height": pa.array([30] * count, pa.int32()),
            "jpg": pa.array([jpeg_bytes(40, 30, seed=seed * 1000 + i) for i in range(count)], pa.binary()),
        }
    )


def hf_image_table(count: int, seed: int = 0) -> pa.Table:
    """A table as Hugging Face ``datasets`` writes an ``Image`` feature: a struct ``{bytes, path}``, and a text."""
    images = [{"bytes": png_bytes(seed=seed * 1000 + i), "path": f"img_{i}.png"} for i in range(count)]
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return pa.table(
        {"image": pa.array(images, image_type), "text": [f"a cat on a sofa, number {i}" for i in range(count)]}
    )


def write_parquet(table: pa.Table, path: Path, row_group_size: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


@contextmanager
def http_server(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a free local port; yield its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
