"""The README's custom stage, run as a user runs it: its class in a package of their own (``tests/support/mypkg``
on ``PYTHONPATH``), its profile copied from the README, ``fld-engine run`` in a subprocess, its boxes in the shards."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from engine.store.reader import read_version

REPO = Path(__file__).resolve().parents[2]
SUPPORT = REPO / "tests" / "support"
FLD_ENGINE = Path(sys.executable).parent / "fld-engine"


def readme_block(language: str, first_line: str) -> str:
    """The README's fenced ``language`` block that starts with ``first_line``."""
    blocks = re.findall(rf"```{language}\n(.*?)```", (REPO / "README.md").read_text(), flags=re.DOTALL)
    (block,) = [b for b in blocks if b.startswith(first_line)]
    return block


def test_the_readme_example_is_the_tested_class() -> None:
    assert readme_block("python", "# mypkg/detectors.py") == (SUPPORT / "mypkg" / "detectors.py").read_text()


@pytest.mark.slow
def test_a_run_with_the_readme_profile_writes_the_custom_stage_boxes(tmp_path) -> None:
    profile = tmp_path / "bright.yaml"
    profile.write_text(readme_block("yaml", "# bright.yaml"))
    assert yaml.safe_load(profile.read_text())["specialists"][0]["backend"] == "mypkg.detectors:BrightestBox"
    photos = tmp_path / "photos"
    photos.mkdir()
    half = np.zeros((60, 80, 3), np.uint8)
    half[:, 40:] = 255  # the right half is bright: one box (40, 0, 80, 60), half of the image
    Image.fromarray(half).save(photos / "half.png")
    Image.fromarray(np.full((60, 80, 3), 30, np.uint8)).save(photos / "dark.png")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SUPPORT), os.environ.get("PYTHONPATH")]))}
    argv = [str(FLD_ENGINE), "run", "--input", str(photos), "--output", str(tmp_path / "corpus"), "--config"]
    result = subprocess.run(
        [*argv, str(profile)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {Path(r["source_uri"]).name: r for r in read_version(str(tmp_path / "corpus")).to_pylist()}
    assert set(rows) == {"half.png", "dark.png"}
    (box,) = [r for r in rows["half.png"]["regions"] if r["provenance"]["source"] == "bright"]
    assert (box["kind"], box["text"], box["score"]) == ("object", "bright", 0.5)
    assert list(box["bbox"]) == [40.0, 0.0, 80.0, 60.0]
    assert box["provenance"]["model"] == "brightest-box/1"
    assert not [r for r in rows["dark.png"]["regions"] if r["provenance"]["source"] == "bright"]
    assert rows["half.png"]["errors"] == [] and rows["dark.png"]["errors"] == []
