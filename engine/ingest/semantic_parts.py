"""Semantic near-duplicates over the curated work in its image-id partitions (``filters/curation/semantic.py``'s
steps, each where its rows are).

1. Each partition's images are embedded where they are (:func:`embedded_in_tasks` here, or the Ray Data actor
   pool of ``engine/execute/semantic_stage.py``): :data:`~engine.ingest.embeddings.EMBEDDED` rows, in the
   same partitions.
2. One task searches every partition's SimHashes (8 bytes an image) for candidate pairs
   (:func:`semantic_candidates`; its pair search fans out as Ray tasks for a large run) and names each
   partition's candidate rows.
3. Each partition's task reads its candidates' embeddings and rows (:func:`candidate_rows`); one task verifies
   the pairs by cosine and picks each group's representative among the candidates only (:func:`copies_by_id`),
   cutting the copies' skipped rows by id partition.
4. Each partition drops its copies from its work, and the skipped rows join its skipped table.

The driver holds no embedding, hash or row: handles and counts only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.ingest.curation import CuratedWork, Ids, annotated_in_parts, is_among, without_ids
from engine.ingest.embeddings import EMBEDDED, embedded_table, embedding_matrix
from engine.ingest.skipped_parts import SEMANTIC_DUPLICATE
from engine.partitions.keys import split_by_id
from engine.partitions.parts import Parts, counted_parts, task_results
from filters.curation.hash_bands import IN_PROCESS, PairSearch
from filters.curation.selection import skipped_rows
from filters.curation.semantic import candidate_pairs, copies_of_pairs, cosines
from filters.curation.settings import SemanticSettings
from schemas.arrow import SKIPPED_SCHEMA

# (a partition's work rows) -> (positions of the rows embedded, their embeddings (N, D)); a row left out is annotated.
Embed = Callable[[pa.Table], tuple[np.ndarray, np.ndarray]]


def embedded_in_tasks(work: Parts, embed: Embed, seed: int) -> Parts:
    """Each partition of ``work`` embedded by ``embed`` (a task per partition, so ``embed`` must be cheap to send:
    in process, it is called here), as :data:`~engine.ingest.embeddings.EMBEDDED` parts."""
    tasks = work.tasks
    embedded = [tasks.submit(embedded_part, part, embed, seed, returns=2) for part in work.handles]
    return counted_parts(tasks, embedded, EMBEDDED)


def embedded_part(work: pa.Table, embed: Embed, seed: int) -> tuple[pa.Table, int]:
    """One partition's :data:`~engine.ingest.embeddings.EMBEDDED` rows, and how many."""
    positions, embeddings = embed(work)
    table = embedded_table(positions, embeddings, seed)
    return table, table.num_rows


def skip_semantic_copies(
    curated: CuratedWork,
    settings: SemanticSettings,
    embedded: Parts,
    annotated_ids: Ids | Parts = (),
    search: PairSearch = IN_PROCESS,
) -> CuratedWork:
    """``curated`` with the semantic near-duplicates among its work skipped too (rule ``semantic_duplicate``,
    value: the cosine to the representative, threshold: ``min_cosine``). ``embedded``: the work's embeddings in
    its partitions (a work row without one is annotated); ``annotated_ids``: images an earlier version annotated,
    their groups' representatives (ids, or their tables in the same partitions)."""
    work, tasks, count = curated.work, curated.work.tasks, len(curated.work.handles)
    hashes = embedded.column("simhash")
    found = tasks.submit(semantic_candidates, settings, search, *hashes, returns=1 + count)
    pairs, wanted = found[0], found[1:]
    earlier = annotated_in_parts(annotated_ids, tasks, count)
    inputs = zip(work.handles, embedded.handles, earlier, wanted, strict=True)
    candidates = [tasks.submit(candidate_rows, *part)[0] for part in inputs]
    copies = tasks.submit(copies_by_id, settings, count, pairs, *candidates, returns=count)
    left = zip(work.handles, copies, strict=True)
    kept = [tasks.submit(without_copies, part, piece, returns=2) for part, piece in left]
    return replace(curated, work=counted_parts(tasks, kept, work.schema)).with_skips(copies)


def semantic_candidates(settings: SemanticSettings, search: PairSearch, *hashes: pa.Array) -> tuple[np.ndarray, ...]:
    """The candidate pairs among every partition's SimHashes (``hashes``, one array per partition: the
    ``simhash`` column of its embedded rows), as an (N, 2) array of positions among the candidates, then each
    partition's candidate rows (ascending positions among its embedded rows): the candidates are those rows,
    partition after partition (a task's body)."""
    sizes = [len(part) for part in hashes]
    values = [part.to_numpy(zero_copy_only=False).astype(np.uint64) for part in hashes]
    everything = np.concatenate([np.zeros(0, np.uint64), *values])
    matches = candidate_pairs(everything, settings.min_cosine, settings.recall, search)
    ends = np.unique(np.concatenate([matches.left, matches.right]))
    pairs = np.stack([np.searchsorted(ends, matches.left), np.searchsorted(ends, matches.right)], axis=1)
    starts = np.r_[0, np.cumsum(sizes)]
    rows = [ends[(ends >= start) & (ends < end)] - start for start, end in pairwise(starts)]
    return (pairs.astype(np.int64), *rows)


def candidate_rows(work: pa.Table, embedded: pa.Table, annotated_ids: pa.Array, rows: np.ndarray) -> pa.Table:
    """One partition's candidates (its ``embedded`` rows at ``rows``): their work rows (the columns of a skipped
    row, and ``pixels``), whether an earlier version annotated them, and their embeddings."""
    chosen = embedded.take(pa.array(rows, pa.int64()))
    found = work.take(chosen.column("position"))
    pixels = pc.multiply(pc.cast(found.column("width"), pa.int64()), pc.cast(found.column("height"), pa.int64()))
    return pa.table(
        {
            "source_uri": found.column("source_uri"),
            "image_id": found.column("image_id"),
            "source_uris": found.column("source_uris"),
            "measures": found.column("measures"),
            "pixels": pc.fill_null(pixels, 0),
            "preferred": is_among(found, annotated_ids),
            "embedding": chosen.column("embedding"),
        }
    )


def copies_by_id(
    settings: SemanticSettings, count: int, pairs: np.ndarray, *candidates: pa.Table
) -> pa.Table | tuple[pa.Table, ...]:
    """The semantic copies among the ``candidates`` (each partition's :func:`candidate_rows`; ``pairs``: their
    candidate pairs, by position among them all), verified by cosine, as :data:`schemas.arrow.SKIPPED_SCHEMA` rows
    cut into ``count`` id partitions (a task's body)."""
    rows = pa.concat_tables(candidates)
    if not rows.num_rows:
        return task_results(split_by_id(SKIPPED_SCHEMA.empty_table(), count))
    embeddings = embedding_matrix(rows)
    left, right = pairs[:, 0], pairs[:, 1]
    close = cosines(embeddings, left, right) >= settings.min_cosine
    uris = np.array(rows.column("source_uri").to_pylist())
    ids = np.array(rows.column("image_id").to_pylist())
    preferred = rows.column("preferred").to_numpy().astype(bool)
    pixels = rows.column("pixels").to_numpy()
    copies = copies_of_pairs(embeddings, left[close], right[close], pixels, uris, ids, preferred)
    at = np.array([c.copy for c in copies], np.int64)
    threshold = settings.min_cosine
    details = [f"cosine {c.cosine:.4f} (min {threshold}) to {uris[c.representative]}" for c in copies]
    skipped = skipped_rows(
        rows,
        at,
        pa.array([SEMANTIC_DUPLICATE] * at.size, pa.string()),
        np.array([c.cosine for c in copies], np.float64),
        np.full(at.size, threshold),
        pa.array(details, pa.string()),
        pa.array([ids[c.representative] for c in copies], pa.string()),
    )
    return task_results(split_by_id(skipped, count))


def without_copies(work: pa.Table, copies: pa.Table) -> tuple[pa.Table, int]:
    """One partition's work without its ``copies`` (skipped rows), and the rows left."""
    kept = without_ids(work, copies.column("image_id"))
    return kept, kept.num_rows
