"""Stages from outside fld-engine: a profile's ``backend: mypkg.detectors:MyDetector`` (``module:Class``).

The class is imported when the profile is loaded and checked against the stage contract
(``schemas/stage.py`` ``BaseStage``), so a run never starts with a stage it cannot use: it must derive
from :class:`specialists.base.Specialist` or :class:`filters.base.Filter`, name its ``backend``, give an
``Options`` dataclass, and implement what its base leaves open (a specialist's ``model_id``, ``load`` and
``annotate``; a filter's ``check`` with ``targets``, or ``decide``). The module is imported as Python
imports it (installed, or on ``PYTHONPATH``), or from the current directory, which Ray also puts on its
local workers' path.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import sys
from typing import Any

from engine.config.typed_config import ConfigError
from schemas.stage import BaseStage

CONTRACT = "derive it from specialists.base.Specialist or filters.base.Filter (the stage contract, schemas/stage.py)"


def is_custom(backend: Any) -> bool:
    """Whether ``backend`` names a class by import path (``module:Class``) rather than a registered name."""
    return isinstance(backend, str) and ":" in backend


def custom_stage_class(backend: str) -> type[BaseStage]:
    """The stage class ``module:Class`` names, checked against the stage contract (:class:`ConfigError` if not)."""
    module_name, _, class_name = backend.partition(":")
    if not module_name or not class_name.isidentifier():
        raise ConfigError(f"{backend!r} is not a registered backend nor a 'module:Class' import path")
    module = _import(module_name, backend)
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ConfigError(f"{backend!r}: module {module_name!r} has no {class_name!r}")
    if not (inspect.isclass(cls) and issubclass(cls, BaseStage)):
        raise ConfigError(f"{backend!r}: {class_name} is not a stage class: {CONTRACT}")
    missing = contract_gaps(cls)
    if missing:
        raise ConfigError(f"{backend!r}: {class_name} does not implement the stage contract: {'; '.join(missing)}")
    return cls


def _import(module_name: str, backend: str) -> Any:
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.append(here)  # as Ray does for its local workers
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(
            f"{backend!r}: cannot import {module_name!r} ({type(error).__name__}: {error}); install it, or run from "
            "the folder that holds it, or add that folder to PYTHONPATH"
        ) from None


def contract_gaps(cls: type[BaseStage]) -> list[str]:
    """What ``cls`` leaves out of the stage contract, one phrase each (empty: it is a usable stage)."""
    from filters.base import Filter
    from specialists.base import Specialist

    if not issubclass(cls, (Specialist, Filter)):
        return [CONTRACT]
    gaps = []
    if not isinstance(getattr(cls, "backend", None), str):
        gaps.append("no 'backend' name (a class attribute, used in provenance and fingerprints)")
    options = getattr(cls, "Options", None)
    if not (inspect.isclass(options) and dataclasses.is_dataclass(options)):
        gaps.append("no 'Options' dataclass (an empty @dataclass(frozen=True) when it takes none)")
    abstract = sorted(getattr(cls, "__abstractmethods__", ()))
    if abstract:
        gaps.append(f"missing {', '.join(abstract)}")
    if issubclass(cls, Filter):
        checks = cls.check is not Filter.check
        if cls.decide is Filter.decide and not checks:
            gaps.append("implements neither check() nor decide()")
        elif cls.decide is Filter.decide and not cls.targets:
            gaps.append("check() without 'targets' (the annotation lists it checks: texts, regions, phrases)")
    return gaps
