"""A test-only specialist whose worker process dies on chosen images, as an out-of-memory kill or a segfault would.

``die_on`` maps a file name to how the process dies: ``sigkill`` (what the kernel's and Ray's OOM killers
send), ``segv``, ``exit`` (``os._exit``), or ``hog:<GB>`` (holds that much memory for 20 s, for Ray's memory
monitor). Every other image gets one ``object`` box labelled ``seen``.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import ClassVar

import numpy as np

from schemas.records import ImageRecord, Region
from specialists.base import Specialist


@dataclass(frozen=True)
class DyingOptions:
    die_on: dict[str, str] = field(default_factory=dict)


def die(how: str) -> None:
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif how == "exit":
        os._exit(3)
    elif how.startswith("hog:"):
        held = np.ones(int(float(how[4:]) * 1e9) // 8)
        time.sleep(20)
        del held
    raise ValueError(f"unknown way to die: {how!r}")


class DiesOnImage(Specialist):
    backend: ClassVar[str] = "dies_on_image"
    produces: ClassVar[frozenset[str]] = frozenset({"regions"})
    Options: ClassVar[type] = DyingOptions

    @property
    def model_id(self) -> str:
        return "dies-on-image/1"

    def load(self) -> None:
        pass

    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        for record in records:
            how = self.options.die_on.get(PurePosixPath(record.source_uri).name)
            if how is not None:
                die(how)
        for record in records:
            record.regions.append(Region("object", (0, 0, 1, 1), "seen", self.provenance(), score=1.0))
