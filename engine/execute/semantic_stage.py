"""Curation's image embeddings as a Ray Data stage: the work's partitions stream through an actor pool of
:class:`EmbeddingWorker` (the model loaded once per worker, ``curation.semantic.pool_size`` workers holding
``num_gpus`` each), and the embedded rows come back to the work's id partitions by an exchange: each block cut by
the partition it came from, each partition joining its pieces (``engine.partitions.parts.joined_parts``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from engine.config.typed_config import ConfigError
from engine.ingest.embeddings import EMBEDDED, ImageEmbedder, embed_work, embedded_table
from engine.partitions.keys import split_rows
from engine.partitions.parts import Parts, joined_parts, task_results
from filters.curation.settings import SemanticSettings
from schemas.stage import WeightsCheck

INPUT_COLUMNS = ("source_uri", "locator")
WORKER_CPUS = 1.0  # each embedding worker's CPU (its reads and decodes; the model's on the GPU when it asks one)


def embedding_input(work: pa.Table, partition: int) -> pa.Table:
    """What the stage reads of one partition's work rows: where each image is, its ``position`` and ``partition``."""
    positions = pa.array(np.arange(work.num_rows, dtype=np.int64))
    partitions = pa.array(np.full(work.num_rows, partition, np.int64))
    return work.select(list(INPUT_COLUMNS)).append_column("position", positions).append_column("partition", partitions)


class EmbeddingWorker:
    """A ``map_batches`` actor: a batch of :func:`embedding_input` rows -> their :data:`EMBEDDED` rows, with the
    ``partition`` each came from (rows whose image cannot be read or decoded are left out, so annotated)."""

    def __init__(self, check: WeightsCheck, max_pixels: int, seed: int) -> None:
        self.embedder = ImageEmbedder(check)
        self.max_pixels, self.seed = max_pixels, seed

    def __call__(self, batch: pa.Table) -> pa.Table:
        found, embeddings = embed_work(batch, self.embedder, self.max_pixels, batch.num_rows)
        at = pa.array(found, pa.int64())
        rows = embedded_table(batch.column("position").take(at).to_numpy(), embeddings, self.seed)
        return rows.append_column("partition", batch.column("partition").take(at))


def embedded_on_ray(
    work: Parts, check: WeightsCheck, settings: SemanticSettings, max_pixels: int, block_rows: int
) -> Parts:
    """The :data:`EMBEDDED` rows of ``work`` (parts on Ray) in its partitions, embedded by the Ray Data stage; the
    stage's output is combined into blocks of about ``block_rows`` rows before the exchange."""
    import ray
    from ray.data import ActorPoolStrategy

    check_pool_fits(settings, ray.cluster_resources())
    tasks, count = work.tasks, len(work.handles)
    inputs = [tasks.submit(embedding_input, part, k)[0] for k, part in enumerate(work.handles)]
    options: dict[str, Any] = {"num_gpus": settings.num_gpus} if settings.num_gpus else {}
    embedded = (
        ray.data.from_arrow_refs(inputs)
        .map_batches(
            EmbeddingWorker,
            fn_constructor_args=(check, max_pixels, settings.seed),
            batch_size=settings.batch_size,
            batch_format="pyarrow",
            compute=ActorPoolStrategy(size=settings.pool_size),
            num_cpus=WORKER_CPUS,
            **options,
        )
        .repartition(target_num_rows_per_block=block_rows)
    )
    pieces = [tasks.submit(by_partition, block, count, returns=count) for block in embedded.to_arrow_refs()]
    return joined_parts(tasks, pieces, EMBEDDED, count)


def check_pool_fits(settings: SemanticSettings, resources: dict[str, float]) -> None:
    """Fail clearly when the embedding pool cannot start on a cluster of ``resources`` (Ray Data would wait for it
    forever)."""
    needs = {"CPU": WORKER_CPUS * settings.pool_size, "GPU": settings.num_gpus * settings.pool_size}
    for name, needed in needs.items():
        available = resources.get(name, 0.0)
        if needed > available + 1e-9:
            raise ConfigError(
                f"curation.semantic: its pool of {settings.pool_size} needs {needed:g} {name}s but Ray has "
                f"{available:g}; lower curation.semantic.pool_size or num_gpus, or give Ray more"
            )


def by_partition(block: pa.Table, count: int) -> pa.Table | tuple[pa.Table, ...]:
    """A block of the stage's rows cut by the ``partition`` each came from (``count`` tables of :data:`EMBEDDED`)."""
    partitions = block.column("partition").to_numpy()
    return task_results(split_rows(block.select(EMBEDDED.names), partitions, count))
