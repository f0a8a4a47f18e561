"""The CLI's own defaults: ``--version``, and tool state in ``.state`` (or ``$FLD_ENGINE_STATE``) as the README
says, whether or not ``make`` set the variables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main as cli
from engine.tool_state import tool_defaults

FLD_ENGINE = Path(sys.executable).parent / "fld-engine"


def clean_run(args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess:
    """``fld-engine ARGS`` in ``cwd`` with none of the variables make or the tests set."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), **extra}
    return subprocess.run([str(FLD_ENGINE), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_code:
        cli(["--version"])
    assert exit_code.value.code == 0
    assert capsys.readouterr().out == "fld-engine 0.1.0\n"


def test_defaults_fill_only_what_is_unset(tmp_path) -> None:
    given = {"HF_HOME": "/models/hf", "MPLCONFIGDIR": ""}
    defaults = tool_defaults(given, tmp_path, 1000)
    assert "HF_HOME" not in defaults
    assert defaults["MPLCONFIGDIR"] == str(tmp_path / ".state" / "matplotlib")
    assert defaults["YOLO_CONFIG_DIR"] == str(tmp_path / ".state" / "ultralytics")
    assert defaults["RAY_TMPDIR"] == "/tmp/fld-ray-1000"
    assert defaults["HF_HUB_OFFLINE"] == "1"
    state = tool_defaults({"FLD_ENGINE_STATE": "/srv/state"}, tmp_path, 1000)
    assert state["HF_HOME"] == "/srv/state/huggingface"


def test_models_run_directly_looks_in_the_state_folder_of_the_current_directory(tmp_path) -> None:
    result = clean_run(["models", "--config", "fld5b"], tmp_path)
    assert result.returncode == 1, result.stderr  # the fld5b weights are not here
    hub = tmp_path / ".state" / "huggingface" / "hub"
    assert f"looked in {hub}/models--florence-community--Florence-2-large" in result.stdout
    assert ".cache/huggingface" not in result.stdout


def test_models_looks_in_fld_engine_state_when_it_is_set(tmp_path) -> None:
    state = tmp_path / "state"
    result = clean_run(["models", "--config", "fld5b"], tmp_path, FLD_ENGINE_STATE=str(state))
    assert f"looked in {state}/huggingface/hub/models--florence-community--Florence-2-large" in result.stdout


def test_an_hf_home_that_is_set_is_kept(tmp_path) -> None:
    result = clean_run(["models", "--config", "fld5b"], tmp_path, HF_HOME=str(tmp_path / "hf"))
    assert f"looked in {tmp_path}/hf/hub/models--florence-community--Florence-2-large" in result.stdout
