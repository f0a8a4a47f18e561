"""Where the tools under the engine keep their state when the environment does not say.

The CLI applies these defaults before any model library is imported (they read them once, at import):
Hugging Face, Ultralytics and matplotlib keep their files in the state folder, ``$FLD_ENGINE_STATE`` or
else ``.state`` in the current directory, Ray its temporary files in ``/tmp/fld-ray-<uid>``, and no
model hub is contacted. A variable already set is left as it is.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

STATE_VARIABLE = "FLD_ENGINE_STATE"
STATE_FOLDERS = {"HF_HOME": "huggingface", "YOLO_CONFIG_DIR": "ultralytics", "MPLCONFIGDIR": "matplotlib"}
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "YOLO_OFFLINE": "1"}


def state_folder(environ: MutableMapping[str, str], cwd: Path) -> Path:
    """``$FLD_ENGINE_STATE`` (absolute), or ``.state`` under ``cwd``."""
    given = environ.get(STATE_VARIABLE)
    return Path(given).expanduser().absolute() if given else cwd / ".state"


def tool_defaults(environ: MutableMapping[str, str], cwd: Path, uid: int) -> dict[str, str]:
    """The variables to set: every default that ``environ`` does not already set."""
    state = state_folder(environ, cwd)
    defaults = {name: str(state / folder) for name, folder in STATE_FOLDERS.items()}
    defaults |= OFFLINE | {"RAY_TMPDIR": f"/tmp/fld-ray-{uid}"}
    return {name: value for name, value in defaults.items() if not environ.get(name)}


def apply_tool_defaults() -> None:
    """Set :func:`tool_defaults` in this process's environment (inherited by Ray workers and subprocesses)."""
    os.environ.update(tool_defaults(os.environ, Path.cwd(), os.getuid()))
