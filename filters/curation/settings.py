"""The profile's ``curation`` section: near-duplicate grouping and image gates, as typed settings.

```yaml
curation:
  dedup: {enabled: true, hashes: [phash, dhash], phash_max_distance: 8, dhash_max_distance: 10, max_aspect_change: 0.1}
  gates: {min_side: 16, max_aspect_ratio: 8.0, min_sharpness: 20.0, max_single_colour_fraction: 0.98}
  semantic: {enabled: false, model: openai/clip-vit-large-patch14, min_cosine: 0.95, recall: 0.999, batch_size: 32}
```

The defaults and why they are what they are: ``bench/README.md`` (near_dups) and the comments below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

HashKind = Literal["phash", "dhash"]
HASH_KINDS: tuple[str, ...] = ("phash", "dhash")
HASH_BITS = 64

# Chosen on the generated set of ``python -m bench near_dups`` (2,100 images: 300 groups of a base and its
# six copies; the table is in bench/README.md). pHash <= 8 and dHash <= 10, both required, group every
# resized, recompressed and one-pixel copy, 97 % of the watermarked ones and about three quarters of
# those cropped by 2-6 % (pairwise precision 0.97, recall 0.92; F0.5, which weighs precision double, is
# within 0.003 of the best). No two different photographs or procedural scenes are grouped at any
# swept threshold up to 12/12; what is grouped wrongly is different two-line text documents of one layout
# on a plain background (3 of 60 skipped as copies of another), which both hashes see alike. Wider
# thresholds gain a few crops and lose more documents; tighter ones (4/6) keep one more document group
# apart and annotate 40 % more images.
# A false merge costs an image its annotations, a missed copy only its annotation time: precision first.
DEFAULT_PHASH_MAX_DISTANCE = 8
DEFAULT_DHASH_MAX_DISTANCE = 10
# Copies keep their shape (a crop of a few percent changes it by a few percent); different documents of
# the same layout often do not. Checked on candidate pairs only, so it costs nothing.
DEFAULT_MAX_ASPECT_CHANGE = 0.1


@dataclass(frozen=True)
class DedupSettings:
    """Near-duplicate grouping. ``hashes``: the perceptual hashes that must all be within their
    ``<kind>_max_distance`` (Hamming distance over 64 bits) for two images to be copies;
    ``max_aspect_change``: the largest relative change of width/height between copies (null: not checked)."""

    enabled: bool = True
    hashes: tuple[HashKind, ...] = ("phash", "dhash")
    phash_max_distance: int = DEFAULT_PHASH_MAX_DISTANCE
    dhash_max_distance: int = DEFAULT_DHASH_MAX_DISTANCE
    max_aspect_change: float | None = DEFAULT_MAX_ASPECT_CHANGE

    def __post_init__(self) -> None:
        if not self.hashes:
            raise ValueError("hashes must list at least one of phash, dhash")
        if len(set(self.hashes)) != len(self.hashes):
            raise ValueError(f"hashes names a hash twice: {list(self.hashes)}")
        for kind in HASH_KINDS:
            distance = getattr(self, f"{kind}_max_distance")
            if not 0 <= distance < HASH_BITS // 2:
                # At half the bits two unrelated hashes match one time in two: nothing near about it.
                raise ValueError(f"{kind}_max_distance must be between 0 and {HASH_BITS // 2 - 1}, got {distance}")
        if self.max_aspect_change is not None and not 0.0 <= self.max_aspect_change < 1.0:
            raise ValueError(f"max_aspect_change must be a fraction in [0, 1), got {self.max_aspect_change}")

    def max_distances(self) -> dict[str, int]:
        """Each required hash kind -> its largest Hamming distance."""
        return {kind: getattr(self, f"{kind}_max_distance") for kind in self.hashes}


@dataclass(frozen=True)
class GateSettings:
    """Images not worth annotating, by what curation measured; null turns a gate off.

    Only ``min_side`` is on by default, at 16 pixels: a side that short is a tracking pixel, a spacer, a
    bullet or a favicon; Florence-2 would read it 48x upsampled and no specialist finds an object, a word
    or a region in it. Every other gate depends on the corpus, so none is clearly safe: long screenshots,
    receipts and panoramas run past any aspect ratio a photo corpus would pick; a page of text is mostly
    one colour; a smooth gradient or a defocused background has little Laplacian variance. A profile sets
    them for its corpus (``bench/README.md`` lists the measures of the generated set for reference).
    """

    min_side: int | None = 16
    max_aspect_ratio: float | None = None
    min_sharpness: float | None = None
    max_single_colour_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.min_side is not None and self.min_side < 1:
            raise ValueError(f"min_side must be at least 1 pixel, got {self.min_side}")
        if self.max_aspect_ratio is not None and self.max_aspect_ratio < 1.0:
            raise ValueError(f"max_aspect_ratio must be at least 1 (long / short side), got {self.max_aspect_ratio}")
        if self.min_sharpness is not None and self.min_sharpness < 0:
            raise ValueError(f"min_sharpness must be at least 0 (a variance), got {self.min_sharpness}")
        fraction = self.max_single_colour_fraction
        if fraction is not None and not 0.0 < fraction <= 1.0:
            raise ValueError(f"max_single_colour_fraction must be in (0, 1], got {fraction}")


# Semantic copies: CLIP image embeddings at cosine >= 0.95. SemDeDup (Abbas et al. 2023) removes LAION pairs
# above 0.90-0.95 as semantic duplicates; 0.95 keeps to its conservative end, since an image skipped wrongly
# loses its annotations (precision first, as for the hashes). Not measured here: no CLIP weights offline.
DEFAULT_MIN_COSINE = 0.95


@dataclass(frozen=True)
class SemanticSettings:
    """Semantic near-duplicates (``curation/semantic.py``): images whose embeddings by ``model`` (a CLIP or
    SigLIP checkpoint: a local directory or a hub id in the local cache) have cosine >= ``min_cosine``, each
    such pair found with probability ``recall``. Runs after the hash grouping, on the images it kept; when the
    model's weights are not present the run says so and goes on without it. A run planned on Ray embeds in an
    actor pool of ``pool_size`` workers, each holding ``num_gpus`` (a fraction packs several on one GPU)."""

    enabled: bool = False
    model: str = "openai/clip-vit-large-patch14"
    min_cosine: float = DEFAULT_MIN_COSINE
    recall: float = 0.999
    batch_size: int = 32
    seed: int = 0
    pool_size: int = 1
    num_gpus: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.min_cosine < 1.0:
            raise ValueError(f"min_cosine must be in (0, 1), got {self.min_cosine}")
        if not 0.5 <= self.recall < 1.0:
            raise ValueError(f"recall must be in [0.5, 1), got {self.recall}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {self.pool_size}")
        if not (self.num_gpus == 0 or 0 < self.num_gpus <= 1 or float(self.num_gpus).is_integer()):
            raise ValueError(f"num_gpus must be 0, a fraction of one GPU or whole GPUs, got {self.num_gpus}")
        if not self.model.strip():
            raise ValueError("model must name a checkpoint (a local directory or a hub id)")


@dataclass(frozen=True)
class CurationSettings:
    """Which images go to the specialists: near-duplicates (by hashes, and optionally by embeddings) and
    gated images are skipped."""

    dedup: DedupSettings = field(default_factory=DedupSettings)
    gates: GateSettings = field(default_factory=GateSettings)
    semantic: SemanticSettings = field(default_factory=SemanticSettings)
