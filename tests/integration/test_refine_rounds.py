"""Two refinement rounds through local Ray (Ray Train + Ray Data actor pool) on a tiny Florence-2."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from engine.config.profile import parse_config
from engine.config.typed_config import ConfigError
from engine.refine_loop import DONE, base_checkpoint, refine_dataset
from engine.store.manifest import Manifest, publish, read_manifest
from engine.store.reader import iter_records
from engine.store.writer import ShardWriter
from refine.merge import AGREEMENTS, DISAGREEMENTS
from schemas.arrow import ANNOTATION_SCHEMA, SCHEMA_VERSION
from schemas.records import ImageRecord, Provenance, Region, Text
from schemas.stage import WeightsNotFound
from schemas.validation import validate_record
from tests.support import local_ray as ray_support

HAAR = Provenance("haar", "opencv", 0)


def seed_version(root: Path, images: Path, count: int = 2) -> None:
    """Version 1 of a dataset: ``count`` random 64x48 images, each with a caption and one box."""
    images.mkdir()
    rows = []
    for i in range(count):
        path = images / f"im{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
        record = ImageRecord(f"{i:064x}", str(path), 64, 48, "png")
        record.texts.append(Text("brief", "a red car", HAAR))
        record.regions.append(Region("object", (4, 4, 40, 30), "car", HAAR, score=0.6))
        rows.append(record.to_row())
    config = parse_config({})
    writer = ShardWriter(root, "annotations", "part-seed", ANNOTATION_SCHEMA, config.writer)
    writer.write(pa.Table.from_pylist(rows, schema=ANNOTATION_SCHEMA))
    publish(root, Manifest(1, "seed", "now", SCHEMA_VERSION, "f", "test", {}, {}, writer.close(), [], {}))


def tiny_config(checkpoint: Path | str | None, **refine):
    """One fold unless asked (these tests are about rounds; ``test_refine_folds.py`` is about folds)."""
    return parse_config(
        {
            "refine": {
                "checkpoint": None if checkpoint is None else str(checkpoint),
                "folds": 1,
                "task_weights": {"<CAPTION>": 1.0, "<OD>": 1.0},
                "train": {"learning_rate": 0.01, "epochs": 2, "batch_size": 2, "warmup_fraction": 0.0},
                "merge": {"drop_after_disagreements": 2, "min_agreement_to_drop": 0.0},
                "max_new_tokens": 12,
                "num_beams": 1,
                "annotate_batch_size": 2,
                **refine,
            },
            "filters": [{"name": "geometry", "backend": "geometry"}],
            "ray": {"num_cpus": 2},
        }
    )


def test_no_checkpoint_configured_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"refine\.checkpoint is not set"):
        base_checkpoint(tiny_config(None))


def test_missing_checkpoint_names_where_it_looked(tmp_path) -> None:
    with pytest.raises(WeightsNotFound, match=str(tmp_path / "nowhere")):
        base_checkpoint(tiny_config(tmp_path / "nowhere"))


def test_refining_an_empty_directory_is_a_clear_error(tiny_florence2_dir, tmp_path) -> None:
    with pytest.raises(ConfigError, match="no published version to refine"):
        refine_dataset(tmp_path, tiny_config(tiny_florence2_dir), rounds=1, progress=lambda _: None)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (refine_dataset reuses an initialised Ray instead of starting its own)."""
    with ray_support.local_ray():
        yield


@pytest.fixture(scope="module")
def refined(local_ray, tiny_florence2_dir, tmp_path_factory):
    """A two-image dataset after two refinement rounds (each trains with Ray Train)."""
    tmp = tmp_path_factory.mktemp("refined")
    root = tmp / "ds"
    seed_version(root, tmp / "images")
    results = refine_dataset(root, tiny_config(tiny_florence2_dir), rounds=2, progress=lambda _: None)
    return root, results


def test_two_rounds_publish_a_version_each(refined) -> None:
    root, results = refined
    # 2 images x 2 tasks = 4 samples, batch 2 -> 2 steps per epoch, 2 epochs.
    assert [(r.round, r.version, len(r.losses), r.resumed) for r in results] == [(1, 2, 4, False), (2, 3, 4, False)]
    assert all(math.isfinite(loss) for r in results for loss in r.losses)
    for round_ in (1, 2):
        folder = root / "refine" / f"round-{round_:02d}"
        assert (folder / "model.safetensors").is_file() and (folder / DONE).is_file()
    assert not list((root / "refine" / "ray").glob("round-*"))  # Ray Train's copies are cleaned up
    manifest = read_manifest(root)
    assert manifest.version == 3 and manifest.parent == 2 and manifest.extra["refine_round"] == 2
    metrics = manifest.extra["refine_metrics"]
    assert metrics["steps"] == 4 and len(metrics["loss_curve"]) == 4
    assert metrics["compared"] + sum(metrics["unverified"].values()) >= 2  # each image's box was looked at
    assert "refine_round_2" in manifest.models and metrics["may_drop"] is True
    assert len(list(iter_records(root, version=2))) == 2  # earlier versions stay readable


def test_every_original_annotation_is_kept_or_dropped_with_its_reason(refined) -> None:
    root, _ = refined
    records = list(iter_records(root, version=3))
    assert len(records) == 2
    for record in records:
        validate_record(record)
        kept = [r for r in record.regions if r.provenance.source == "haar"]
        dropped = [d.restore() for d in record.dropped if d.rule == "refine_disagreement"]
        (original,) = kept + dropped
        agreed, contradicted = original.metrics.get(AGREEMENTS, 0), original.metrics.get(DISAGREEMENTS, 0)
        # At most one verdict per round (none where the model said nothing about objects); only a box
        # contradicted in both rounds is dropped.
        assert agreed + contradicted <= 2
        assert bool(dropped) == (contradicted == 2)
        assert all(r.provenance.round in (0, 1, 2) for r in record.regions)


def test_a_third_round_continues_the_numbering_and_reuses_a_trained_checkpoint(refined, tiny_florence2_dir) -> None:
    root, _ = refined
    # As if a third round had been killed after training: its checkpoint is reused, not retrained.
    shutil.copytree(root / "refine" / "round-02", root / "refine" / "round-03")
    messages: list[str] = []
    (result,) = refine_dataset(root, tiny_config(tiny_florence2_dir), rounds=1, progress=messages.append)
    assert (result.round, result.version, result.resumed) == (3, 4, True)
    assert any("reusing the trained checkpoint" in m for m in messages)
    assert read_manifest(root).extra["refine_round"] == 3


def test_cli_without_a_checkpoint_stops_with_one_line(tmp_path, capsys) -> None:
    from engine.cli import main

    assert main(["refine", str(tmp_path), "--rounds", "1"]) == 2
    assert capsys.readouterr().err.strip().startswith("fld-engine refine: error: refine.checkpoint is not set")


def test_cli_needs_a_number_of_rounds(tmp_path, capsys) -> None:
    from engine.cli import main

    assert main(["refine", str(tmp_path)]) == 2
    assert "give --rounds N" in capsys.readouterr().err


def test_a_round_may_drop_only_after_a_round_that_agreed_enough() -> None:
    from engine.refine_loop import trusted

    first = Manifest(1, "r", "", SCHEMA_VERSION, "f", "t", {}, {}, [], [], {})
    assert not trusted(first, 0.5) and trusted(first, 0.0)
    agreed = Manifest(
        2, "r", "", SCHEMA_VERSION, "f", "t", {}, {}, [], [], {}, extra={"refine_metrics": {"agreement_rate": 0.6}}
    )
    assert trusted(agreed, 0.5) and not trusted(agreed, 0.7)
