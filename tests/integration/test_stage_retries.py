"""Stage errors are retried on later runs, up to ``refresh.max_stage_retries``; ``--full`` recomputes all (issue 18)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.config.profile import parse_config
from tests.support.flaky_stage import attempts
from tests.support.local_ray import local_ray

FLAKY = "tests.support.flaky_stage:FailsWhileMarked"


@pytest.mark.slow
def test_a_failed_stage_is_retried_until_it_succeeds_or_reaches_the_cap(tmp_path) -> None:

    from engine.run import RunRequest, run_pipeline
    from engine.store.reader import read_version

    inputs, state, output = tmp_path / "in", tmp_path / "state", tmp_path / "out"
    inputs.mkdir()
    state.mkdir()
    for i in range(2):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(inputs / f"{i}.png")
    stage = {"backend": FLAKY, "options": {"state_dir": str(state)}}
    profile = parse_config(
        {
            "specialists": [{"name": "flaky", **stage}, {"name": "broken", **stage}],
            "refresh": {"max_stage_retries": 2},
            # Curation off: these images are tiny or flat (a gate or the near-duplicate grouping would skip them).
            "curation": {"dedup": {"enabled": False}, "gates": {"min_side": None}},
            "ray": {"num_cpus": 2},
        }
    )
    (state / "flaky.fail").touch()
    (state / "broken.fail").touch()

    def run(full: bool = False) -> list[dict]:
        request = RunRequest((str(inputs),), output, profile, progress_bars=False, full=full)
        run_pipeline(request, progress=lambda _: None)
        return sorted(read_version(output).to_pylist(), key=lambda row: row["image_id"])

    def errors(rows: list[dict]) -> list[list[str]]:
        return [[e["stage"] for e in row["errors"]] for row in rows]

    with local_ray():
        first = run()
        assert errors(first) == [["flaky", "broken"]] * 2
        assert first[0]["errors"][0]["message"] == "RuntimeError: flaky is down"
        (state / "flaky.fail").unlink()  # the failure was transient
        second = run()  # both retried: flaky succeeds, broken fails again (its failures are counted on the row)
        assert errors(second) == [["broken", "broken"]] * 2
        assert [[r["text"] for r in row["regions"]] for row in second] == [["ok"]] * 2
        flaky_tries = len(attempts(state, "flaky"))
        third = run()  # broken failed twice: retried once more (max_stage_retries 2); flaky is not run again
        assert errors(third) == [["broken"] * 3] * 2 and len(attempts(state, "flaky")) == flaky_tries
        broken_tries = len(attempts(state, "broken"))
        fourth = run()  # three failures: the error stands, no stage runs
        assert fourth == third and len(attempts(state, "broken")) == broken_tries
        full = run(full=True)  # --full recomputes everything: the count starts again
        assert errors(full) == [["broken"]] * 2 and len(attempts(state, "broken")) > broken_tries
