"""Whole runs over corpus inputs through local Ray: folders with WebDataset shards, img2dataset and Hugging
Face Parquet, the same on a real S3 server (moto) and over HTTP; captions kept as alt text, metadata kept,
reruns carry everything over; hostile files end quarantined with a reason, never a hang or a crash."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine.cli import main as cli
from engine.config.profile import parse_config
from engine.ingest.captions import ALT_TEXT_SOURCE
from engine.run import RunRequest, RunResult, run_pipeline
from engine.store.location import location
from engine.store.reader import read_version
from schemas.records import ImageRecord
from tests.support.corpus_inputs import (
    hf_image_table,
    http_server,
    img2dataset_table,
    webdataset_members,
    write_parquet,
    write_tar,
)
from tests.support.image_files import jpeg_bytes
from tests.support.local_ray import local_ray

pytestmark = pytest.mark.slow

# Filters only: the text filter judges the alt texts; images are still read (and checked) by the first step.
PROFILE = {
    "filters": [{"name": "text", "backend": "spacy_text", "resources": {"batch_size": 8}}],
    "writer": {"rows_per_shard": 4, "row_group_rows": 2},
    "ray": {"num_cpus": 2},
}
# Where the text filter's judgement is not the point: one filter without a model (no actor to start).
CHEAP = {**PROFILE, "filters": [{"name": "confidence", "backend": "confidence"}]}


@pytest.fixture(scope="module")
def ray_local(s3_endpoint):
    """Ray started after the S3 server, so its workers inherit AWS_ENDPOINT_URL."""
    with local_ray():
        yield


def run(inputs: list[str], output: Path, profile: dict = PROFILE) -> RunResult:
    request = RunRequest(tuple(inputs), output, parse_config(profile), progress_bars=False)
    return run_pipeline(request, progress=lambda _: None)


def records(output: Path) -> dict[str, ImageRecord]:
    rows = read_version(output).to_pylist()
    return {uri: ImageRecord.from_row(row) for row in rows for uri in row["source_uris"]}


def quarantine(output: Path, result: RunResult) -> dict[str, tuple[str, str]]:
    rows = [row for s in result.manifest.quarantine for row in pq.read_table(output / s.path).to_pylist()]
    return {row["source_uri"]: (row["reason"], row["detail"]) for row in rows}


def write_corpus(folder: Path) -> dict[str, Path]:
    """Two photos and a shard in a folder (one corrupt member, one empty caption), an img2dataset table
    and a Hugging Face table."""
    (folder / "photos").mkdir(parents=True)
    for i in range(2):
        (folder / "photos" / f"p{i}.jpg").write_bytes(jpeg_bytes(50, 40, seed=100 + i))
    members = webdataset_members(3, seed=1)
    members[3] = ("00001.jpg", jpeg_bytes(200, 150, seed=2)[:700])  # a truncated JPEG
    members[7] = ("00002.txt", b"   ")  # an empty caption
    write_tar(folder / "photos" / "shards" / "00000.tar", members)
    inputs = {
        "photos": folder / "photos",
        "img2dataset": write_parquet(img2dataset_table(3, seed=2), folder / "laion" / "00000.parquet"),
        "hf": write_parquet(hf_image_table(2, seed=3), folder / "hf" / "train.parquet", row_group_size=1),
    }
    an_hour_ago = time.time_ns() - 3600 * 10**9  # the probe cache trusts no mtime of the last seconds
    for path in folder.rglob("*"):
        os.utime(path, ns=(an_hour_ago, an_hour_ago))
    return inputs


@pytest.fixture(scope="module")
def local_run(ray_local, tmp_path_factory):
    base = tmp_path_factory.mktemp("corpus")
    inputs = write_corpus(base / "in")
    output = base / "out"
    return inputs, output, run([str(p) for p in inputs.values()], output)


def test_a_mixed_local_corpus_is_annotated_with_member_uris(local_run) -> None:
    inputs, output, result = local_run
    tar, table, hf = inputs["photos"] / "shards" / "00000.tar", inputs["img2dataset"], inputs["hf"]
    assert (result.files, result.annotated, result.quarantined) == (5, 9, 1)
    assert sorted(records(output)) == sorted(
        [str(inputs["photos"] / f"p{i}.jpg") for i in range(2)]
        + [f"{tar}#00000.jpg", f"{tar}#00002.jpg"]
        + [f"{table}#{i:09d}" for i in range(3)]
        + [f"{hf}#0", f"{hf}#1"]
    )
    reason, detail = quarantine(output, result)[f"{tar}#00001.jpg"]
    assert reason == "truncated" and detail


def test_captions_become_alt_texts_that_the_text_filter_judges(local_run) -> None:
    inputs, output, _ = local_run
    by_uri = records(output)
    tar, table = inputs["photos"] / "shards" / "00000.tar", inputs["img2dataset"]
    judged = {}
    for uri in (f"{tar}#00000.jpg", f"{table}#000000001"):
        record = by_uri[uri]
        kept = [t for t in record.texts if t.provenance.source == ALT_TEXT_SOURCE]
        dropped = [d.restore() for d in record.dropped if d.stage == "text"]
        (text,) = kept + dropped
        assert text.granularity == "brief" and text.provenance.model == "input"
        assert text.analysis is not None and text.analysis.num_tokens > 3  # measured by the text filter
        judged[uri] = text.text
    assert judged == {
        f"{tar}#00000.jpg": "a photo number 0 of a red car on a street",
        f"{table}#000000001": "a dog in a park, picture 000000001",
    }
    assert by_uri[f"{tar}#00002.jpg"].texts == [] and by_uri[f"{tar}#00002.jpg"].dropped == []  # empty caption
    assert all(r.texts == [] for uri, r in by_uri.items() if uri.endswith(".jpg") and "#" not in uri)


def test_input_metadata_is_kept_per_image(local_run) -> None:
    inputs, output, _ = local_run
    by_uri = records(output)
    tar, table = inputs["photos"] / "shards" / "00000.tar", inputs["img2dataset"]
    assert json.loads(by_uri[f"{tar}#00002.jpg"].metadata) == {"key": "00002", "url": "https://example.com/00002.jpg"}
    assert json.loads(by_uri[f"{table}#000000000"].metadata)["url"] == "https://example.com/000000000.jpg"
    assert by_uri[str(inputs["photos"] / "p0.jpg")].metadata is None


def test_a_rerun_of_the_same_inputs_carries_everything_over(local_run) -> None:
    inputs, output, first = local_run
    before = {uri: record.image_id for uri, record in records(output).items()}
    second = run([str(p) for p in inputs.values()], output)
    assert (second.annotated, second.carried, second.quarantined, second.tombstoned) == (0, 9, 1, 0)
    assert second.probe_cached == 10  # every image of every source, the corrupt member too
    assert {uri: record.image_id for uri, record in records(output).items()} == before
    assert [s.path for s in second.manifest.shards] == [s.path for s in first.manifest.shards]


def test_probing_containers_on_ray_finds_what_probing_in_process_finds(local_run) -> None:
    from engine.ingest.discover import discover
    from engine.ingest.probe import probe_batch, probe_on_ray, probe_settings
    from engine.ingest.sources import sources_table

    inputs, _, _ = local_run
    config = parse_config(PROFILE).ingest
    sources = discover([str(p) for p in inputs.values()], config.extensions)
    limits = probe_settings(config)

    def comparable(rows):
        return sorted(({k: v for k, v in row.items() if k != "checked_ns"} for row in rows), key=str)

    on_ray = probe_on_ray(sources, limits).to_pylist()  # Arrow: no Python rows in the driver
    assert len(on_ray) == 10 and comparable(on_ray) == comparable(
        probe_batch(sources_table(sources), **limits).to_pylist()
    )


def test_an_export_reads_images_out_of_shards_and_tables(local_run, tmp_path) -> None:
    _, output, _ = local_run
    assert cli(["export", str(output), "--format", "coco", "--to", str(tmp_path / "coco"), "--val-fraction", "0"]) == 0
    instances = json.loads((tmp_path / "coco" / "instances_train.json").read_text())
    assert len(instances["images"]) == 9
    assert len(list((tmp_path / "coco" / "images").rglob("*.*"))) == 9


def test_inputs_on_s3_are_annotated_and_carried_over(ray_local, s3_bucket, tmp_path) -> None:
    inputs = write_corpus(tmp_path / "in")
    for path in sorted(inputs["photos"].rglob("*")):
        if path.is_file():
            location(f"{s3_bucket}/raw/{path.relative_to(inputs['photos'])}").write_bytes(path.read_bytes())
    location(f"{s3_bucket}/laion/00000.parquet").write_bytes(inputs["img2dataset"].read_bytes())
    remote = [f"{s3_bucket}/raw/", f"{s3_bucket}/laion/00000.parquet"]
    first = run(remote, tmp_path / "out", CHEAP)
    assert (first.annotated, first.quarantined) == (7, 1)
    uris = sorted(records(tmp_path / "out"))
    assert uris[:3] == [f"{s3_bucket}/laion/00000.parquet#{i:09d}" for i in range(3)]
    assert uris[3:] == [
        f"{s3_bucket}/raw/p0.jpg",
        f"{s3_bucket}/raw/p1.jpg",
        f"{s3_bucket}/raw/shards/00000.tar#00000.jpg",
        f"{s3_bucket}/raw/shards/00000.tar#00002.jpg",
    ]
    second = run(remote, tmp_path / "out", CHEAP)
    assert (second.annotated, second.carried, second.probe_cached) == (0, 7, 8)
    assert sorted(records(tmp_path / "out")) == uris


def test_a_list_of_s3_uris_is_probed_once_and_then_known_by_etag(ray_local, s3_bucket, tmp_path) -> None:
    uris = [f"{s3_bucket}/listed/{i}.jpg" for i in range(3)]
    for i, uri in enumerate(uris):
        location(uri).write_bytes(jpeg_bytes(30, 20, seed=400 + i))
    (tmp_path / "uris.txt").write_text("\n".join(uris) + "\n")
    first = run([str(tmp_path / "uris.txt")], tmp_path / "out", CHEAP)
    location(uris[0]).write_bytes(jpeg_bytes(30, 20, seed=499))  # rewritten: a new ETag
    second = run([str(tmp_path / "uris.txt")], tmp_path / "out", CHEAP)
    assert (first.annotated, second.annotated, second.carried, second.probe_cached) == (3, 1, 2, 2)
    assert sorted(records(tmp_path / "out")) == uris


def test_a_list_of_http_urls_is_annotated(ray_local, tmp_path) -> None:
    (tmp_path / "site").mkdir()
    for i in range(2):
        (tmp_path / "site" / f"{i}.jpg").write_bytes(jpeg_bytes(30, 20, seed=300 + i))
    with http_server(tmp_path / "site") as base:
        (tmp_path / "urls.txt").write_text(f"{base}/0.jpg\n{base}/1.jpg\n{base}/missing.jpg\n")
        result = run([str(tmp_path / "urls.txt")], tmp_path / "out", CHEAP)
        assert sorted(records(tmp_path / "out")) == [f"{base}/0.jpg", f"{base}/1.jpg"]
        assert quarantine(tmp_path / "out", result)[f"{base}/missing.jpg"][0] == "unreadable"


def test_hostile_files_end_annotated_or_quarantined_with_a_reason(ray_local, tmp_path) -> None:
    import numpy as np
    from PIL import Image

    folder = tmp_path / "in"
    (folder / "a" / "b").mkdir(parents=True)
    (folder / "good.jpg").write_bytes(jpeg_bytes(seed=1))
    os.mkfifo(folder / "fifo.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    (folder / "gone.jpg").symlink_to(folder / "nowhere.jpg")
    (folder / "a" / "b" / "up").symlink_to(folder / "a")  # a folder loop
    (folder / "a" / "self").symlink_to(folder / "a")
    with open(os.fsencode(str(folder)) + b"/caf\xe9.jpg", "wb") as handle:
        handle.write(jpeg_bytes(seed=2))
    Image.fromarray(np.linspace(0, 1, 600, dtype=np.float32).reshape(20, 30)).save(folder / "float.tif")
    Image.fromarray(np.full((8, 8), 9000.0, dtype=np.float32)).save(folder / "depth.tif")
    result = run([str(folder)], tmp_path / "out", CHEAP)
    assert sorted(records(tmp_path / "out")) == sorted(
        [str(folder / "float.tif"), f"file://{folder}/caf%E9.jpg", str(folder / "good.jpg")]
    )
    assert {uri.rsplit("/", 1)[1]: reason for uri, (reason, _) in quarantine(tmp_path / "out", result).items()} == {
        "depth.tif": "unsupported_mode",
        "fifo.png": "unreadable",
        "gone.jpg": "unreadable",
        "zero.png": "unreadable",
    }


def test_cli_flags_name_the_image_and_caption_columns(ray_local, tmp_path, capsys) -> None:
    table = hf_image_table(2, seed=5).rename_columns(["picture", "alt"])
    path = write_parquet(table, tmp_path / "t.parquet")
    profile = tmp_path / "profile.yaml"
    profile.write_text(json.dumps(CHEAP))
    arguments = ["run", "--input", str(path), "--output", str(tmp_path / "out"), "--config", str(profile), "--quiet"]
    assert cli([*arguments, "--image-column", "picture", "--caption-column", "alt"]) == 0
    texts = {
        uri: [t.text for t in r.texts] + [d.restore().text for d in r.dropped]
        for uri, r in records(tmp_path / "out").items()
    }
    assert texts == {f"{path}#0": ["a cat on a sofa, number 0"], f"{path}#1": ["a cat on a sofa, number 1"]}
    shutil.rmtree(tmp_path / "out")
