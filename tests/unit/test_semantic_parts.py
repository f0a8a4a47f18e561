"""Semantic near-duplicates over the work in its image-id partitions: embeddings made per partition, the SimHash
search over all of them, only the candidates read back, the copies skipped in their own partitions; the same
copies, representatives and cosines as the whole step over one table (``filters.curation.semantic``)."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pytest

from engine.ingest.curation import curate, curate_parts
from engine.ingest.embeddings import embedding_matrix
from engine.ingest.semantic_parts import (
    embedded_in_tasks,
    semantic_candidates,
    skip_semantic_copies,
)
from engine.partitions.keys import id_partitions, split_by_id
from engine.partitions.parts import Parts
from engine.partitions.tasks import IN_PROCESS
from filters.curation.hash_bands import IN_PROCESS as IN_PROCESS_SEARCH
from filters.curation.semantic import candidate_pairs, cosines, semantic_copies
from filters.curation.settings import CurationSettings, DedupSettings, SemanticSettings
from tests.support.curation_corpus import work_item, work_table

DIMENSIONS = 32
MIN_COSINE = 0.98
UNREADABLE = 5  # every fifth image cannot be read again: no embedding, so annotated


def _corpus(count: int, seed: int = 3) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """A work table of ``count`` images, a third of them near copies (cosine > 0.99) of another, and their
    embeddings by id."""
    rng = np.random.default_rng(seed)
    originals = rng.standard_normal((count // 3, DIMENSIONS))
    items, vectors = [], {}
    for index in range(count):
        image_id = hashlib.sha256(f"image {index}".encode()).hexdigest()
        base = originals[index % len(originals)] if index % 3 else rng.standard_normal(DIMENSIONS)
        vectors[image_id] = (base + 0.01 * rng.standard_normal(DIMENSIONS)).astype(np.float32)
        side = int(rng.choice([300, 600, 900]))
        items.append(work_item(image_id, f"/in/{index:04d}.jpg", side, side, index, measured=False))
    return work_table(*items), vectors


def _embedder(vectors: dict[str, np.ndarray]):
    def embed(work: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        ids = work.column("image_id").to_pylist()
        readable = [i for i, image_id in enumerate(ids) if int(image_id, 16) % UNREADABLE]
        rows = [vectors[ids[i]] for i in readable] or [np.zeros(DIMENSIONS, np.float32)][:0]
        return np.array(readable, np.int64), np.array(rows, np.float32).reshape(len(readable), DIMENSIONS)

    return embed


def _parts(work: pa.Table, count: int) -> Parts:
    tables = split_by_id(work, count)
    return Parts(tables, IN_PROCESS, [t.num_rows for t in tables], work.schema)


SETTINGS = SemanticSettings(enabled=True, min_cosine=MIN_COSINE)


def _semantic(curated, vectors, annotated=(), settings=SETTINGS):
    embedded = embedded_in_tasks(curated.work, _embedder(vectors), settings.seed)
    return skip_semantic_copies(curated, settings, embedded, annotated, IN_PROCESS_SEARCH)


@pytest.mark.parametrize("count", [1, 4])
def test_the_partitions_skip_the_copies_the_whole_step_names(count: int) -> None:
    work, vectors = _corpus(300)
    annotated = work.column("image_id").to_pylist()[::7]
    settings = CurationSettings(dedup=DedupSettings(enabled=False))
    curated = _semantic(curate_parts(_parts(work, count), settings), vectors, annotated)

    readable = [i for i, image_id in enumerate(work.column("image_id").to_pylist()) if int(image_id, 16) % UNREADABLE]
    rows = work.take(pa.array(readable, pa.int64()))
    ids = np.array(rows.column("image_id").to_pylist())
    pixels = np.array(rows.column("width").to_pylist()) * np.array(rows.column("height").to_pylist())
    expected = semantic_copies(
        np.array([vectors[i] for i in ids]),
        pixels,
        np.array(rows.column("source_uri").to_pylist()),
        ids,
        MIN_COSINE,
        preferred=np.isin(ids, annotated),
    )
    skipped = curated.skipped.gather().sort_by("image_id")
    wanted = sorted((ids[c.copy], ids[c.representative], round(c.cosine, 5)) for c in expected)
    found = skipped.select(["image_id", "duplicate_of", "value"]).to_pylist()
    assert [(row["image_id"], row["duplicate_of"], round(row["value"], 5)) for row in found] == wanted
    assert len(wanted) >= 60 and set(skipped["rule"].to_pylist()) == {"semantic_duplicate"}
    assert set(skipped["threshold"].to_pylist()) == {MIN_COSINE}
    assert not set(skipped["image_id"].to_pylist()) & set(annotated)  # an annotated image stays the representative
    kept = curated.work.gather().column("image_id").to_pylist()
    assert sorted(kept + skipped["image_id"].to_pylist()) == sorted(work.column("image_id").to_pylist())
    for k, part in enumerate(curated.skipped.each()):  # each copy's skipped row in its own partition
        assert set(id_partitions(part.column("image_id"), count).tolist()) <= {k}
    for k, part in enumerate(curated.work.each()):
        assert set(id_partitions(part.column("image_id"), count).tolist()) <= {k}
    assert curated.tally.rules == {"semantic_duplicate": len(wanted)}


def test_only_the_candidates_are_read_back_and_they_are_one_search_s_pairs() -> None:
    work, vectors = _corpus(90)
    parts = _parts(work, 3)
    embedded = embedded_in_tasks(parts, _embedder(vectors), seed=0)
    pairs, *rows = semantic_candidates(SETTINGS, IN_PROCESS_SEARCH, *embedded.column("simhash"))
    assert len(rows) == 3 and all(np.all(np.diff(at) > 0) for at in rows)
    assert sum(at.size for at in rows) == np.unique(pairs).size < embedded.rows  # images in a candidate pair only
    ids = []
    for part, embeddings, at in zip(parts.each(), embedded.each(), rows, strict=True):
        positions = embeddings.column("position").take(pa.array(at, pa.int64()))
        ids += part.column("image_id").take(positions).to_pylist()
    named = {tuple(sorted((ids[left], ids[right]))) for left, right in pairs}

    whole = embedded_in_tasks(_parts(work, 1), _embedder(vectors), seed=0).gather()
    everyone = np.array(work.column("image_id").to_pylist())[whole.column("position").to_numpy()]
    matches = candidate_pairs(whole.column("simhash").to_numpy(), MIN_COSINE, SETTINGS.recall)
    assert named == {tuple(sorted(pair)) for pair in zip(everyone[matches.left], everyone[matches.right], strict=True)}
    assert np.sum(cosines(embedding_matrix(whole), matches.left, matches.right) >= MIN_COSINE) >= 20


def test_no_embeddings_or_no_close_pair_skips_nothing() -> None:
    work, vectors = _corpus(12)
    curated = curate(work, CurationSettings(dedup=DedupSettings(enabled=False)))
    far = {image_id: np.eye(DIMENSIONS, dtype=np.float32)[k] for k, image_id in enumerate(vectors)}
    assert _semantic(curated, far).skipped.rows == 0
    nothing = {"embed": lambda rows: (np.zeros(0, np.int64), np.zeros((0, DIMENSIONS), np.float32))}
    embedded = embedded_in_tasks(curated.work, nothing["embed"], seed=0)
    settings = SemanticSettings(enabled=True, min_cosine=MIN_COSINE)
    unchanged = skip_semantic_copies(curated, settings, embedded)
    assert unchanged.work.rows == 12 and unchanged.skipped.rows == 0
