"""Python records for one image's annotations, and their dict form (one Arrow row).

``ImageRecord.to_row()`` gives exactly the dict that ``schemas.arrow.ANNOTATION_SCHEMA``
describes, and ``ImageRecord.from_row()`` reads it back; ``to_row(from_row(r)) == r``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

GRANULARITIES = ("brief", "detailed", "more_detailed")
REGION_KINDS = ("object", "proposal", "ocr_line", "ocr_word", "region_caption", "dense_caption")
ANNOTATION_TYPES = ("text", "region", "phrase")
# A drop of this type removed only a region's mask (and the measures of that mask): the region stays.
MASK_DROP = "mask"
DROP_TYPES = (*ANNOTATION_TYPES, MASK_DROP)
# Metrics that measure a region's mask rather than its box; they leave with the mask when it is dropped.
# (The same names as ``schemas.metrics``, which imports nothing; kept here so records stay self-contained.)
MASK_METRICS = ("predicted_iou", "stability_score", "grabcut_fill", "grabcut_inside", "grabcut_iterations")

Granularity = Literal["brief", "detailed", "more_detailed"]
RegionKind = Literal["object", "proposal", "ocr_line", "ocr_word", "region_caption", "dense_caption"]
AnnotationType = Literal["text", "region", "phrase"]
DropType = Literal["text", "region", "phrase", "mask"]


def content_id(*parts: object) -> str:
    """A short, stable id for an annotation from the values that define it."""
    payload = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


def _floats(values: Any) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who made an annotation: the specialist, its model identity, and the refinement round."""

    source: str
    model: str
    round: int = 0


@dataclass(slots=True)
class TextAnalysis:
    """What the text filter measured in a text (kept so audits can re-threshold)."""

    num_tokens: int = 0
    objects: list[str] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    proper_nouns: list[str] = field(default_factory=list)
    noun_phrases: list[tuple[int, int]] = field(default_factory=list)
    object_complexity: float = 0.0
    action_complexity: float = 0.0
    # Determiners, prepositions, verbs, auxiliaries, pronouns, particles and subordinators: the words that
    # link the others into a description. None: measured before this field existed (re-analysed when needed).
    linking_words: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["noun_phrases"] = [list(span) for span in self.noun_phrases]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextAnalysis:
        return cls(
            num_tokens=int(data["num_tokens"]),
            objects=list(data["objects"]),
            attributes=list(data["attributes"]),
            actions=list(data["actions"]),
            proper_nouns=list(data["proper_nouns"]),
            noun_phrases=[(int(a), int(b)) for a, b in data["noun_phrases"]],
            object_complexity=float(data["object_complexity"]),
            action_complexity=float(data["action_complexity"]),
            linking_words=None if data.get("linking_words") is None else int(data["linking_words"]),
        )


@dataclass(frozen=True, slots=True)
class Mask:
    """A binary mask as COCO RLE (pycocotools): ``size`` is (height, width)."""

    size: tuple[int, int]
    counts: str

    def to_dict(self) -> dict[str, Any]:
        return {"size": list(self.size), "counts": self.counts}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Mask | None:
        if data is None:
            return None
        height, width = data["size"]
        return cls(size=(int(height), int(width)), counts=str(data["counts"]))


@dataclass(slots=True)
class Text:
    """An image-level description at one granularity."""

    granularity: Granularity
    text: str
    provenance: Provenance
    score: float | None = None
    analysis: TextAnalysis | None = None
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            self.id = content_id("text", self.granularity, self.text, self.provenance.source)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "granularity": self.granularity,
            "text": self.text,
            "score": self.score,
            "analysis": None if self.analysis is None else self.analysis.to_dict(),
            "provenance": asdict(self.provenance),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Text:
        analysis = data.get("analysis")
        return cls(
            id=data["id"],
            granularity=data["granularity"],
            text=data["text"],
            score=data.get("score"),
            analysis=None if analysis is None else TextAnalysis.from_dict(analysis),
            provenance=Provenance(**data["provenance"]),
        )


@dataclass(slots=True)
class Region:
    """A region-text pair: a box (and optionally a quad, mask or polygon) with its text."""

    kind: RegionKind
    bbox: tuple[float, float, float, float]
    text: str
    provenance: Provenance
    score: float | None = None
    quad: tuple[float, ...] | None = None
    mask: Mask | None = None
    polygon: tuple[float, ...] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        self.bbox = tuple(float(v) for v in self.bbox)  # type: ignore[assignment]
        self.quad = _floats(self.quad)
        self.polygon = _floats(self.polygon)
        if not self.id:
            rounded = [round(v, 1) for v in self.bbox]
            self.id = content_id("region", self.kind, rounded, self.text, self.provenance.source)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "bbox": list(self.bbox),
            "quad": None if self.quad is None else list(self.quad),
            "text": self.text,
            "score": self.score,
            "mask": None if self.mask is None else self.mask.to_dict(),
            "polygon": None if self.polygon is None else list(self.polygon),
            "metrics": sorted(self.metrics.items()),
            "provenance": asdict(self.provenance),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Region:
        return cls(
            id=data["id"],
            kind=data["kind"],
            bbox=tuple(data["bbox"]),  # type: ignore[arg-type]
            quad=_floats(data.get("quad")),
            text=data["text"],
            score=data.get("score"),
            mask=Mask.from_dict(data.get("mask")),
            polygon=_floats(data.get("polygon")),
            metrics=_metrics(data.get("metrics")),
            provenance=Provenance(**data["provenance"]),
        )


@dataclass(slots=True)
class GroundedRegion:
    """One region a phrase is grounded to."""

    bbox: tuple[float, float, float, float]
    score: float | None = None
    mask: Mask | None = None
    polygon: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        self.bbox = tuple(float(v) for v in self.bbox)  # type: ignore[assignment]
        self.polygon = _floats(self.polygon)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bbox": list(self.bbox),
            "score": self.score,
            "mask": None if self.mask is None else self.mask.to_dict(),
            "polygon": None if self.polygon is None else list(self.polygon),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroundedRegion:
        return cls(
            bbox=tuple(data["bbox"]),  # type: ignore[arg-type]
            score=data.get("score"),
            mask=Mask.from_dict(data.get("mask")),
            polygon=_floats(data.get("polygon")),
        )


@dataclass(slots=True)
class Phrase:
    """A text-phrase-region triplet: ``text[start:end]`` of text ``text_id`` grounded to regions."""

    text_id: str
    start: int
    end: int
    phrase: str
    regions: list[GroundedRegion]
    provenance: Provenance
    score: float | None = None
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            self.id = content_id("phrase", self.text_id, self.start, self.end, self.provenance.source)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text_id": self.text_id,
            "start": self.start,
            "end": self.end,
            "phrase": self.phrase,
            "regions": [region.to_dict() for region in self.regions],
            "score": self.score,
            "provenance": asdict(self.provenance),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Phrase:
        return cls(
            id=data["id"],
            text_id=data["text_id"],
            start=int(data["start"]),
            end=int(data["end"]),
            phrase=data["phrase"],
            regions=[GroundedRegion.from_dict(r) for r in data["regions"]],
            score=data.get("score"),
            provenance=Provenance(**data["provenance"]),
        )


MASK_DROP_SUFFIX = " (mask)"


def drop_key(stage: str, rule: str, annotation_type: str) -> str:
    """How counts and audits name a drop: ``stage/rule``, with `` (mask)`` for a mask drop."""
    return f"{stage}/{rule}" + (MASK_DROP_SUFFIX if annotation_type == MASK_DROP else "")


@dataclass(slots=True)
class Drop:
    """An annotation a stage removed, with the rule, the measured value and the threshold.

    ``annotation`` is the removed annotation's own dict (JSON), so nothing is lost;
    ``by`` names the annotation that caused the drop where there is one (NMS, merges).
    A drop of type ``mask`` removed only the mask of region ``annotation_id``: ``annotation`` holds the
    mask, its polygon and the metrics that measured it (:data:`MASK_METRICS`); the region kept its box.
    """

    annotation_type: DropType
    annotation_id: str
    stage: str
    rule: str
    annotation: str
    value: float | None = None
    threshold: float | None = None
    by: str | None = None
    round: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def key(self) -> str:
        """``stage/rule`` as counts and audits name it; a mask drop says so (its region was kept)."""
        return drop_key(self.stage, self.rule, self.annotation_type)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Drop:
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})

    @classmethod
    def of(
        cls,
        annotation: Text | Region | Phrase,
        *,
        stage: str,
        rule: str,
        value: float | None = None,
        threshold: float | None = None,
        by: str | None = None,
    ) -> Drop:
        """Record the removal of ``annotation``."""
        kind: AnnotationType = {Text: "text", Region: "region", Phrase: "phrase"}[type(annotation)]  # type: ignore[assignment]
        return cls(
            annotation_type=kind,
            annotation_id=annotation.id,
            stage=stage,
            rule=rule,
            annotation=json.dumps(annotation.to_dict(), sort_keys=True),
            value=None if value is None else float(value),
            threshold=None if threshold is None else float(threshold),
            by=by,
            round=annotation.provenance.round,
        )

    @classmethod
    def of_mask(
        cls,
        region: Region,
        *,
        stage: str,
        rule: str,
        value: float | None = None,
        threshold: float | None = None,
        by: str | None = None,
    ) -> Drop:
        """Record the removal of ``region``'s mask (with its polygon and the metrics that measured it)."""
        measured = {name: region.metrics[name] for name in MASK_METRICS if name in region.metrics}
        payload = {
            "mask": None if region.mask is None else region.mask.to_dict(),
            "polygon": None if region.polygon is None else list(region.polygon),
            "metrics": sorted(measured.items()),
        }
        return cls(
            annotation_type=MASK_DROP,
            annotation_id=region.id,
            stage=stage,
            rule=rule,
            annotation=json.dumps(payload, sort_keys=True),
            value=None if value is None else float(value),
            threshold=None if threshold is None else float(threshold),
            by=by,
            round=region.provenance.round,
        )

    def restore(self) -> Text | Region | Phrase:
        """The dropped annotation, as it was before the drop (a mask drop: see :meth:`ImageRecord.restore`)."""
        if self.annotation_type == MASK_DROP:
            raise ValueError(f"a mask drop is restored onto its region {self.annotation_id}: use ImageRecord.restore")
        data = json.loads(self.annotation)
        return {"text": Text, "region": Region, "phrase": Phrase}[self.annotation_type].from_dict(data)

    def restore_mask(self, region: Region) -> None:
        """Put a dropped mask, its polygon and its metrics back on ``region`` (a ``mask`` drop of it)."""
        data = json.loads(self.annotation)
        region.mask = Mask.from_dict(data["mask"])
        region.polygon = _floats(data["polygon"])
        region.metrics.update(_metrics(data["metrics"]))


@dataclass(frozen=True, slots=True)
class Change:
    """An annotation changed in place (refinement fused its box, relabelled it, added it from two votes).

    ``field`` names what changed (``bbox``, ``text``, ``added``, ``phrase``); ``old`` and ``new`` are its values
    as JSON text (``old`` is null for an addition); ``by`` names the annotation or vote behind the change."""

    annotation_type: AnnotationType
    annotation_id: str
    field: str
    old: str | None
    new: str | None
    stage: str
    round: int
    by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})

    @classmethod
    def of(
        cls, annotation: Text | Region | Phrase, field_name: str, old: Any, new: Any, *, stage: str, round: int,
        by: str | None = None,
    ) -> Change:  # fmt: skip
        """Record that ``annotation``'s ``field_name`` went from ``old`` to ``new`` (any JSON-able values)."""
        kind: AnnotationType = {Text: "text", Region: "region", Phrase: "phrase"}[type(annotation)]  # type: ignore[assignment]
        return cls(kind, annotation.id, field_name, _json(old), _json(new), stage, int(round), by)

    @property
    def old_value(self) -> Any:
        return None if self.old is None else json.loads(self.old)

    @property
    def new_value(self) -> Any:
        return None if self.new is None else json.loads(self.new)


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(list(value) if isinstance(value, tuple) else value, sort_keys=True)


@dataclass(frozen=True, slots=True)
class StageError:
    """A stage that failed on this image; the image keeps what other stages produced."""

    stage: str
    message: str


@dataclass(frozen=True, slots=True)
class ImageMeasures:
    """What curation measured on one decoded image (``schemas.arrow.IMAGE_MEASURES``), kept so audits and
    later runs re-threshold without decoding again.

    ``phash`` and ``dhash`` are 64-bit perceptual hashes as unsigned integers (bit 63 = the first bit of
    imagehash's hex string). ``aspect_ratio`` is long side / short side (>= 1). ``sharpness`` (variance
    of the Laplacian), ``brightness`` (mean) and ``contrast`` (standard deviation) are in grey levels
    (0-255) of the image scaled to at most ``curation.measures.MEASURE_SIDE`` pixels.
    ``single_colour_fraction`` is the share of pixels in the most common quantised colour.
    """

    width: int
    height: int
    aspect_ratio: float
    phash: int
    dhash: int
    sharpness: float
    brightness: float
    contrast: float
    single_colour_fraction: float

    def to_dict(self) -> dict[str, Any]:
        # Every field is a number: a plain dict, not asdict's recursive copy (this runs once per probed image).
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageMeasures:
        return cls(**{name: data[name] for name in cls.__slots__})


@dataclass(slots=True)
class ImageRecord:
    """All annotations of one image: one row of an annotation shard. ``metadata`` is what the input said
    of the image (a WebDataset ``.json`` member, a Parquet table's other columns), as JSON text."""

    image_id: str
    source_uri: str
    width: int
    height: int
    format: str
    source_uris: list[str] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    phrases: list[Phrase] = field(default_factory=list)
    dropped: list[Drop] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    errors: list[StageError] = field(default_factory=list)
    stages: dict[str, str] = field(default_factory=dict)
    metadata: str | None = None
    measures: ImageMeasures | None = None

    def __post_init__(self) -> None:
        if not self.source_uris:
            self.source_uris = [self.source_uri]

    def to_row(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "source_uri": self.source_uri,
            "source_uris": list(self.source_uris),
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "metadata": self.metadata,
            "measures": None if self.measures is None else self.measures.to_dict(),
            "texts": [t.to_dict() for t in self.texts],
            "regions": [r.to_dict() for r in self.regions],
            "phrases": [p.to_dict() for p in self.phrases],
            "dropped": [d.to_dict() for d in self.dropped],
            "changes": [c.to_dict() for c in self.changes],
            "errors": [asdict(e) for e in self.errors],
            "stages": sorted(self.stages.items()),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ImageRecord:
        return cls(
            image_id=row["image_id"],
            source_uri=row["source_uri"],
            source_uris=list(row.get("source_uris") or [row["source_uri"]]),
            width=int(row["width"]),
            height=int(row["height"]),
            format=row["format"],
            texts=[Text.from_dict(t) for t in row.get("texts") or []],
            regions=[Region.from_dict(r) for r in row.get("regions") or []],
            phrases=[Phrase.from_dict(p) for p in row.get("phrases") or []],
            dropped=[Drop.from_dict(d) for d in row.get("dropped") or []],
            changes=[Change.from_dict(c) for c in row.get("changes") or []],
            errors=[StageError(**e) for e in row.get("errors") or []],
            stages=_str_map(row.get("stages")),
            metadata=row.get("metadata"),
            measures=ImageMeasures.from_dict(row["measures"]) if row.get("measures") else None,
        )

    def text_by_id(self, text_id: str) -> Text | None:
        return next((t for t in self.texts if t.id == text_id), None)

    def drop(self, annotation: Text | Region | Phrase, **reason: Any) -> None:
        """Remove ``annotation`` from this record and keep a :class:`Drop` with ``reason``.

        A text takes its phrases with it (a phrase cannot point at a text that is gone): each is dropped by
        the same stage with rule ``text_dropped:<the text's rule>``, ``by`` the text, so restoring the
        stage's drops restores them together."""
        collection: list[Any] = {Text: self.texts, Region: self.regions, Phrase: self.phrases}[type(annotation)]
        collection.remove(annotation)
        self.dropped.append(Drop.of(annotation, **reason))
        if isinstance(annotation, Text):
            for phrase in [p for p in self.phrases if p.text_id == annotation.id]:
                self.phrases.remove(phrase)
                cascade = {**reason, "rule": f"text_dropped:{reason['rule']}", "by": annotation.id}
                self.dropped.append(Drop.of(phrase, **cascade))

    def drop_mask(self, region: Region, **reason: Any) -> None:
        """Remove ``region``'s mask, polygon and mask metrics, keeping the region; record a ``mask`` drop."""
        self.dropped.append(Drop.of_mask(region, **reason))
        region.mask, region.polygon = None, None
        for name in MASK_METRICS:
            region.metrics.pop(name, None)

    def restore(self, drops: list[Drop]) -> None:
        """Put the annotations of ``drops`` back: annotations first (in order, skipping any already present),
        then masks onto their regions (a region restored here gets its mask back too)."""
        present = {a.id for a in (*self.texts, *self.regions, *self.phrases)}
        for drop in drops:
            if drop.annotation_type == MASK_DROP or drop.annotation_id in present:
                continue
            annotation = drop.restore()
            present.add(annotation.id)
            {Text: self.texts, Region: self.regions, Phrase: self.phrases}[type(annotation)].append(annotation)
        regions = {r.id: r for r in self.regions}
        for drop in drops:
            if drop.annotation_type == MASK_DROP and drop.annotation_id in regions:
                drop.restore_mask(regions[drop.annotation_id])


def _metrics(value: Any) -> dict[str, float]:
    """Arrow maps come back as lists of (key, value) pairs; dicts pass through."""
    if not value:
        return {}
    items = value.items() if isinstance(value, dict) else value
    return {str(k): float(v) for k, v in items}


def _str_map(value: Any) -> dict[str, str]:
    if not value:
        return {}
    items = value.items() if isinstance(value, dict) else value
    return {str(k): str(v) for k, v in items}
