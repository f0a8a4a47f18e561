"""What an annotation is: records, the Arrow schema, geometry and validation.

Nothing here depends on other fld-engine packages, Ray or a model.
"""

from schemas.arrow import ANNOTATION_SCHEMA, QUARANTINE_SCHEMA, SCHEMA_VERSION
from schemas.records import (
    Change,
    Drop,
    GroundedRegion,
    ImageRecord,
    Mask,
    Phrase,
    Provenance,
    Region,
    StageError,
    Text,
    TextAnalysis,
)

__all__ = [
    "ANNOTATION_SCHEMA",
    "QUARANTINE_SCHEMA",
    "SCHEMA_VERSION",
    "Change",
    "Drop",
    "GroundedRegion",
    "ImageRecord",
    "Mask",
    "Phrase",
    "Provenance",
    "Region",
    "StageError",
    "Text",
    "TextAnalysis",
]
