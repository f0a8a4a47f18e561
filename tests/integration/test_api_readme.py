"""The README's Python API example, run exactly as written (in a folder with the sample images)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def readme_notebook() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.DOTALL)
    (block,) = [b for b in blocks if b.startswith("# notebook")]
    return block


@pytest.mark.slow
def test_the_readme_api_example_runs_as_written(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "samples").symlink_to(REPO / "samples")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_notebook(), "README.md#python-api", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "version 1: 3 images annotated" in printed
    assert "regions per kind: {" in printed
    assert namespace["table"].num_rows == 3
    assert len(namespace["frame"]) == 3 and namespace["train"].num_rows == 3
    assert sorted(namespace["train"]["image_id"]) == sorted(namespace["table"].column("image_id").to_pylist())
    assert (tmp_path / "out" / "report.html").stat().st_size > 10_000
    coco = json.loads((tmp_path / "out" / "coco" / "instances_train.json").read_text())
    val = json.loads((tmp_path / "out" / "coco" / "instances_val.json").read_text())
    assert len(coco["images"]) + len(val["images"]) == namespace["exported"].images == 3
