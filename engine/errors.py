"""Errors the CLI prints as one line instead of a traceback.

Exit codes: 2 for what the user fixes in the command or the profile (:data:`USER_ERRORS`), 1 for a
run that failed for another reason (:class:`RunFailure`, and bugs, which keep their traceback),
130 and 143 when stopped by SIGINT or SIGTERM (``engine/interrupt.py``).
"""

from __future__ import annotations

from engine.config.typed_config import ConfigError
from engine.ingest.sources import InputError
from engine.store.location import StorageError
from schemas.stage import UntrustedWeights, WeightsNotFound
from schemas.validation import SchemaError

EXIT_CODES_HELP = """exit codes:
  0    done (also: nothing changed, no version published)
  1    the run failed (no Ray cluster at --address, an empty input on an existing dataset, a bug)
  2    a usage, profile, input or output error, named in one line
  130  stopped by Ctrl-C (SIGINT); 143: stopped by SIGTERM. Finished shards are kept: run the same
       command again to resume."""


class OutputError(RuntimeError):
    """An output directory cannot be used (locked by another run, unreadable manifest, missing shard)."""


class RunFailure(RuntimeError):
    """A run could not go on (no Ray cluster at the address, an empty input on an existing dataset): exit 1."""


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
