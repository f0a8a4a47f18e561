"""Errors a user can fix: the CLI prints them as one line instead of a traceback."""

from __future__ import annotations

from engine.config.typed_config import ConfigError
from engine.ingest.sources import InputError
from engine.store.location import StorageError
from schemas.stage import UntrustedWeights, WeightsNotFound
from schemas.validation import SchemaError


class OutputError(RuntimeError):
    """An output directory cannot be used (locked by another run, unreadable manifest, missing shard)."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    InputError,
    OutputError,
    StorageError,
    SchemaError,
    WeightsNotFound,
    UntrustedWeights,
    FileNotFoundError,
    PermissionError,
)
