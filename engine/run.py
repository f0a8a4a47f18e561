"""A run: images in, a new published version of the output directory out, on Ray Data.

The output (a local folder or an object-store prefix) is checked and the sources (files, WebDataset
shards, Parquet tables) are found before anything is created. Then, holding the output's lock, a run
goes through seven phases:

1. **plan the run**: plan the stages (order and weights checked before any work), read the
   published versions and the journals of killed runs, start this run's journal;
2. **probe**: hash, decode-check and measure every image the previous version's probe index does not
   vouch for;
3. **curate**: image gates and near-duplicate groups (``filters/curation``) on the measures: skipped
   images go to the ``skipped/`` table, the others on (an image the previous version annotated is its
   group's representative, so a refresh never annotates a group twice);
4. **plan carry-over**: rows of the previous version and of killed runs are reused exactly, or queued
   to rerun only the stages that changed (``engine/refresh/``); the other images are new;
5. **annotate**: new and stale images through their stages (one streaming ``map_batches`` per stage
   group), changed filters over carried rows; every shard is journaled once written;
6. **write the side tables**: quarantine, skipped, tombstones and the probe index;
7. **publish**: the manifest (``Manifest.next``) last, under a version number never used before and
   only while the lock is still this run's; then delete what killed runs left behind.

Ray starts only when there is something to probe or annotate.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from engine.config.registry import FILTERS
from engine.config.settings import EngineConfig
from engine.errors import RunFailure
from engine.execute.annotate_input import RowsToAnnotate, ids_in_partitions, rows_to_annotate
from engine.execute.dataset import (
    PIXEL_FREE_BLOCK_ROWS,
    build_dataset,
    check_capacity,
    refilter_on_ray,
    run_in_process,
)
from engine.execute.near_dup_search import pair_search
from engine.execute.plan_stages import PlannedStage, plan_stages
from engine.execute.probe_phase import ProbeOutcome, ProbePlan, probe_in_parts
from engine.execute.ray_session import LazyRay, RayOutput, check_ray_early
from engine.execute.semantic_stage import embedded_on_ray
from engine.execute.sink import Annotated, AnnotationSink
from engine.execute.stage_groups import group_stages
from engine.execute.stage_timing import StageTiming
from engine.execute.started_ahead import StartedAhead
from engine.ingest.curation import CuratedWork, curate_parts
from engine.ingest.discover import discover_ranges
from engine.ingest.embeddings import ImageEmbedder, embed_work, find_embedding_model
from engine.ingest.imports.matching import MatchReport
from engine.ingest.imports.plan import describe, import_reports
from engine.ingest.listing_ranges import RangedListing
from engine.ingest.probe import probe_settings
from engine.ingest.probe_cache import cache_parts, probe_key
from engine.ingest.semantic_parts import embedded_in_tasks, skip_semantic_copies
from engine.ingest.sources import InputOptions
from engine.partitions.keys import part_rows_for
from engine.partitions.parts import IDS, Parts, empty_parts
from engine.progress import loading_line
from engine.refresh.carryover import Candidate, CarryOver, missing_ids, older_candidates, plan_carry_over, resumable
from engine.refresh.incremental import StagePlan
from engine.refresh.previous_parts import (
    PreviousImages,
    carried_skips_in_parts,
    kept_references_in_parts,
    kept_unlisted_ids,
    previous_images_in_parts,
    tombstones_in_parts,
)
from engine.refresh.scope import InputScope, input_scope
from engine.refresh.tombstones import tombstoned_ids
from engine.store.journal import RunJournal, UnfinishedRun, clean_up_runs, unfinished_runs
from engine.store.location import Location, Where, location
from engine.store.manifest import (
    Manifest,
    all_manifests,
    next_version_number,
    publish,
    read_manifest,
    restore_missing_version,
)
from engine.store.output_lock import OutputLock
from engine.store.side_tables import write_quarantine, write_skipped, write_tombstones
from engine.store.writer import ShardInfo
from schemas.arrow import QUARANTINE_SCHEMA, TOMBSTONE_SCHEMA
from schemas.stage import WeightsCheck

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RunRequest:
    """``output`` is a local folder or an object-store prefix (``s3://bucket/corpus``), parsed here."""

    inputs: tuple[str, ...]
    output: Where
    config: EngineConfig
    address: str | None = None
    limit: int | None = None
    full: bool = False
    prune: bool = False
    progress_bars: bool = True
    input_options: InputOptions = field(default_factory=InputOptions)
    allow_empty: bool = False
    always_publish: bool = False
    route_ray_logs: bool = False
    dashboard: bool = False

    def probe_key(self) -> dict[str, Any]:
        return probe_key(self.config.ingest, self.input_options)

    def __post_init__(self) -> None:
        object.__setattr__(self, "output", location(self.output))


@dataclass(frozen=True)
class RunResult:
    """``annotated``: images that went through specialists (new ones and ``reannotated`` ones).

    ``manifest`` is the version published, or the latest one when nothing changed (``published`` is
    False); None when an empty input met a new output and nothing was written."""

    manifest: Manifest | None
    files: int
    annotated: int
    carried: int
    quarantined: int
    seconds: float
    reannotated: int = 0
    refiltered: int = 0
    resumed: int = 0
    tombstoned: int = 0
    probe_cached: int = 0
    skipped: int = 0
    near_duplicate_groups: int = 0
    kept_unlisted: int = 0
    imports: dict[str, MatchReport] = field(default_factory=dict)
    published: bool = True
    stage_timings: list[StageTiming] = field(default_factory=list)


@dataclass(frozen=True)
class RunPlan:
    """What a run starts from: its sources (``listing``: ``SOURCE_SCHEMA`` rows sorted by URI, in Arrow, in URI
    ranges) and stages, the versions and killed runs before it."""

    request: RunRequest
    run_id: str
    listing: RangedListing
    stages: list[PlannedStage]
    history: list[Manifest]
    unfinished: list[UnfinishedRun]
    stage_plan: StagePlan
    journal: RunJournal

    @property
    def root(self) -> Location:
        return location(self.request.output)

    @property
    def config(self) -> EngineConfig:
        return self.request.config

    @property
    def previous(self) -> Manifest | None:
        return self.history[-1] if self.history else None

    @property
    def part_rows(self) -> int:
        """The rows of a part of the planning steps for this listing (``engine.partitions.keys.part_rows_for``)."""
        ray = self.config.ray
        return part_rows_for(self.listing.rows, ray.plan_part_rows, ray.plan_min_piece_rows)


@dataclass(frozen=True)
class SideTables:
    quarantine: list[ShardInfo]
    quarantined: int
    skipped: list[ShardInfo]
    tombstones: list[ShardInfo]
    tombstoned: int
    probe_index: list[ShardInfo]


def run_pipeline(request: RunRequest, progress: Progress = print) -> RunResult:
    """Annotate ``request.inputs`` into a new version of ``request.output``, holding its lock.

    The output is checked and the inputs are found before anything is created: a bad output or a bad
    input stops the run in one line, leaving no trace. An input without images writes nothing (see
    :func:`check_not_empty`). A run that would publish a version identical to the latest one publishes
    nothing, unless ``request.always_publish``.
    """
    location(request.output).check_writable_folder("output")
    listing = find_sources(request)
    if not listing.rows and not request.allow_empty:
        plan_stages(request.config)  # a profile that cannot run says so before "no images"
        check_not_empty(request)
        return RunResult(None, 0, 0, 0, 0, 0.0, published=False)
    check_ray_early(request.config.ray, request.address, request.dashboard)
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    with OutputLock(request.output, run_id) as lock:
        started = time.perf_counter()
        run = plan_run(request, run_id, listing)
        progress(f"fld-engine: {run.listing.rows} inputs, {len(run.stages)} stages, output {run.root}")
        with ExitStack() as stack:
            ahead = StartedAhead(_sink(run, progress), run.stages, run.config)
            stack.callback(ahead.close)
            ray = _lazy_ray(stack, run, progress, ahead.start)
            probed = probe(run, ray)
            imports = import_reports(run.config, _places(probed.work))
            for name, report in imports.items():
                progress(f"fld-engine: {describe(name, report)}")
            earlier = previous_images(run, probed)
            kept = kept_unlisted(run, probed, earlier)
            curated = select_work(run, probed, earlier, kept, ray, progress)
            carry = carry_over(run, curated.work, earlier, kept)
            progress(_plan_summary(run, probed, curated, carry))  # counts curated.tally while Ray is up
            annotated = annotate(run, carry, ray, ahead)
            tombstones = _tombstone_rows(curated, carry, annotated, earlier)  # in the partitions, while Ray is up
            same = not request.always_publish and unchanged(run, probed, carry, annotated, tombstones)
            side_tables = None if same else write_side_tables(run, probed, curated, annotated, tombstones)  # the same
        if side_tables is None:
            return _unchanged_result(run, probed, carry, time.perf_counter() - started)
        lock.check()  # a run that lost its lease to another writer publishes nothing
        manifest = publish_version(run, probed, curated, carry, annotated, side_tables, imports)
        return _result(manifest, run, side_tables, time.perf_counter() - started, imports)


# -- 1. plan the run -------------------------------------------------------------------------


def find_sources(request: RunRequest) -> RangedListing:
    """The sources of the request's inputs as an Arrow listing sorted by URI (all of them: ``--limit``
    bounds what is probed), in ranges of a planning part's rows: a long listing is sorted on local disk, so the
    driver holds about one part of it at a time (``engine/ingest/listing_ranges.py``)."""
    ingest, chunk_rows = request.config.ingest, request.config.ray.plan_part_rows
    return discover_ranges(request.inputs, ingest.extensions, request.input_options, chunk_rows)


def check_not_empty(request: RunRequest) -> None:
    """For inputs without images: refuse them on an existing dataset (its next version would tombstone
    every image), else warn that nothing is written."""
    inputs = " ".join(request.inputs)
    if read_manifest(request.output) is not None:
        raise RunFailure(
            f"no images found in {inputs}; refusing to publish an empty version of {location(request.output)} "
            "(every image would be removed); pass --allow-empty to do so"
        )
    warnings.warn(f"no images found in {inputs}; nothing was written", stacklevel=2)


def plan_run(request: RunRequest, run_id: str, listing: RangedListing) -> RunPlan:
    """Planned stages, earlier versions and killed runs for ``listing``; this run's journal started."""
    config, root = request.config, location(request.output)
    stages = plan_stages(config)
    restore_missing_version(root)
    history = all_manifests(root)
    unfinished = unfinished_runs(root, {m.run_id for m in history})
    # A stage that earlier versions ran as a filter and that is gone now did not add annotations.
    known_filters = {name for m in history for name, kind in m.stage_kinds.items() if kind == FILTERS}
    stage_plan = StagePlan([s.spec() for s in stages], known_filters, config.refresh.max_stage_retries)
    journal = RunJournal(root, run_id)
    journal.start({"config_fingerprint": config.fingerprint(), "inputs": list(request.inputs), "full": request.full})
    return RunPlan(request, run_id, listing, stages, history, unfinished, stage_plan, journal)


def _lazy_ray(stack: ExitStack, run: RunPlan, progress: Progress, started: Callable[[], None]) -> LazyRay:
    """Ray for this run, started on first need; once up, it must fit every stage at once, and ``started``
    runs (the annotate phase's actors start ahead). The run shows its own progress, so Ray Data's bars stay off."""
    groups = group_stages(run.stages, run.config.ray.fuse_cpu_stages)
    request = run.request
    output = RayOutput(request.route_ray_logs, request.dashboard, progress)

    def on_start() -> None:
        check_capacity(groups)
        started()

    return LazyRay(stack, run.config.ray, request.address, False, on_start, output)


def _sink(run: RunPlan, progress: Progress) -> AnnotationSink:
    """Where the annotate phase's rows go: shards written by writer actors (or here, for in-process reruns)."""
    names = [s.name for s in run.stages]
    return AnnotationSink(run.root, run.run_id, run.config.writer, progress, run.request.progress_bars, names)


# -- 2. probe --------------------------------------------------------------------------------


def probe(run: RunPlan, ray: LazyRay) -> ProbeOutcome:
    """Hash and decode-check every image that the previous version's probe index does not vouch for, write the
    new probe index and group the images by content (``engine/execute/probe_phase.py``). ``--limit``: at most N
    files the previous version does not vouch for (the first by URI); the rest wait for a later run."""
    previous = None if run.request.full else cache_parts(run.previous, run.request.probe_key())
    plan = ProbePlan(
        run.listing,
        previous,
        run.root,
        run.run_id,
        probe_settings(run.config.ingest),
        run.config.writer,
        run.request.limit,
        run.part_rows,
    )
    return probe_in_parts(plan, ray.start)


def _places(work: Parts) -> Iterator[list[str]]:
    """Every work row's places, lazily (read a partition at a time, only when an import stage asks)."""
    for table in work.each():
        for chunk in table.column("source_uris").chunks:
            yield from chunk.to_pylist()


# -- 3. curate -------------------------------------------------------------------------------


def previous_images(run: RunPlan, probed: ProbeOutcome) -> PreviousImages:
    """The previous version's images in the work table's id partitions, with the paths of them this run saw
    (``engine/refresh/previous_parts.py``); none on a first run."""
    shards = run.previous.shards if run.previous else []
    return previous_images_in_parts(run.root, shards, probed.seen_parts, run.part_rows)


def kept_unlisted(run: RunPlan, probed: ProbeOutcome, earlier: PreviousImages) -> Parts:
    """The ids of the images of the previous version (``earlier``) that this run did not look at, kept as they were
    (``engine/refresh/scope.py``), in the work table's id partitions; none on a first run."""
    if not earlier.rows:
        return empty_parts(IDS, len(probed.work.handles))
    return kept_unlisted_ids(earlier, probed.seen_parts, _scope(run, probed))


def _scope(run: RunPlan, probed: ProbeOutcome) -> InputScope:
    """What this run listed whole, and the files ``--limit`` left for later (``engine/refresh/scope.py``)."""
    return input_scope(run.request.inputs, probed.deferred, everything=run.request.prune)


def select_work(
    run: RunPlan, probed: ProbeOutcome, earlier: PreviousImages, kept: Parts, cluster: LazyRay, progress: Progress
) -> CuratedWork:
    """The unique images worth annotating: gates and near-duplicate groups over their measures, then (when
    the profile asks and the model is present) semantic near-duplicates. Images the previous version
    annotated are their groups' representatives; those this run did not look at (``kept``) take part
    through the measures in their annotation rows, so a copy of one is not annotated either. Skipped rows
    of the previous version whose images this run did not look at are carried as they are."""
    settings = run.config.curation
    references = None
    if run.previous is not None and kept.rows:  # read and kept in their id partitions
        references = kept_references_in_parts(run.root, run.previous.shards, kept, run.part_rows)
    annotated_ids = earlier.images if earlier.rows else pa.array([], pa.string())
    search = pair_search(probed.work.rows, cluster.start)  # a large run's near-duplicate search runs on Ray
    curated = curate_parts(probed.work, settings, annotated_ids, references, search)
    if run.previous is not None and run.previous.skipped:  # judged in their id partitions, like the images
        scope, shards = _scope(run, probed), run.previous.skipped
        carried = carried_skips_in_parts(run.root, shards, probed.seen_parts, scope, run.part_rows)
        curated = curated.with_skips(carried.handles)
    if not settings.semantic.enabled or curated.work.rows < 2:
        return curated
    check = find_embedding_model(settings.semantic.model)
    if not check.found:
        progress(
            f"curation.semantic: weights for {settings.semantic.model!r} not found (looked in "
            f"{', '.join(check.looked_in)}); semantic near-duplicates are not looked for in this run"
        )
        return curated
    embedded = embedded_work(run, curated.work, check)  # where the work's partitions are
    return skip_semantic_copies(curated, settings.semantic, embedded, annotated_ids, search)


def embedded_work(run: RunPlan, work: Parts, check: WeightsCheck) -> Parts:
    """The embeddings of ``work``'s images in its partitions: by the Ray Data stage's actor pool when the parts are
    on Ray (``engine/execute/semantic_stage.py``), else here, a partition at a time."""
    semantic, max_pixels = run.config.curation.semantic, run.config.ingest.max_pixels
    if work.tasks.on_ray:
        return embedded_on_ray(work, check, semantic, max_pixels, run.part_rows)
    embedder = ImageEmbedder(check)

    def embed(rows: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        return embed_work(rows, embedder, max_pixels, semantic.batch_size)

    return embedded_in_tasks(work, embed, semantic.seed)


# -- 4. plan carry-over ----------------------------------------------------------------------


def carry_over(run: RunPlan, work: Parts, earlier: PreviousImages, kept: Parts) -> CarryOver:
    """Which images' earlier rows (previous version, killed runs, and for images the previous version
    lacks, older versions) carry over as they are, which rerun some stages, and which rows of ``work`` (the
    work table rows curation selected) are new. Images of the previous version that this run did not look at
    (``kept``) are kept as they were. ``--full`` reuses only shards of a killed ``--full`` run."""
    previous = run.previous
    candidates = [] if run.request.full or previous is None else [Candidate(s) for s in previous.shards]
    candidates += resumable(run.unfinished, run.request.full, run.config.fingerprint())
    if not run.request.full and len(run.history) > 1:  # older versions can hold images the previous one lacks
        missing = missing_ids(work, earlier.images)
        candidates += older_candidates(run.root, run.history, missing, lambda m: tombstoned_ids(run.root, m))
    return plan_carry_over(
        run.root,
        candidates,
        work,
        run.stage_plan,
        run.config.writer,
        run.run_id,
        on_shard=run.journal.record,
        keep=(kept, previous.shards if previous else ()),
        rows_per_batch=run.part_rows,
    )


def _plan_summary(run: RunPlan, probed: ProbeOutcome, curated: CuratedWork, carry: CarryOver) -> str:
    return (
        f"probed {run.listing.rows} inputs, {probed.seen_parts.rows} images ({probed.cached} from the probe cache) "
        f"in {probed.seconds:.1f}s: "
        f"{probed.work.rows} unique images, {probed.quarantined.rows} quarantined, "
        f"{curated.tally.rows} skipped ({curated.tally.near_duplicates} near-duplicates in {curated.tally.groups} "
        f"groups, {curated.tally.gated} by image gates), {carry.carried_count} carried "
        f"over ({carry.resumed} from killed runs), {carry.rerun_pixels.rows} to re-annotate, "
        f"{carry.rerun_filters.rows} to re-filter, {carry.new.rows} new"
    )


# -- 5. annotate -----------------------------------------------------------------------------


def annotate(run: RunPlan, carry: CarryOver, ray: LazyRay, ahead: StartedAhead) -> Annotated:
    """New and stale images through the stages they need (with pixels, read in container order by their
    locators), then the filters over rows whose filters changed (without pixels); each shard is journaled once
    written. New images' rows are made where the work table's partitions are, and stale ones stay where
    carry-over's batches left them (``engine/execute/annotate_input.py``). Pixel-free filter stages run on the
    actors started ahead (``ahead``)."""
    config, sink, progress = run.config, ahead.sink, ahead.sink.progress
    pixel_rows = rows_to_annotate(carry.new, carry.rerun_pixels, config.ingest.caption_granularity)
    annotated = 0
    if pixel_rows.rows:
        ray.start()
        # Only new images need every specialist; carried rows rerun their stale ones (and all filters).
        needed = [s for s in run.stages if s.kind == FILTERS or carry.new.rows or s.name in carry.stale_specialists]
        for stage in needed:
            if stage.holds_model:
                progress(loading_line(stage.name, stage.model))
        annotated = _drain_on_ray(pixel_rows, needed, ahead, "annotated")
    refilter_rows = RowsToAnnotate.of(carry.rerun_filters)
    if refilter_rows.rows:
        filters = [s for s in run.stages if s.kind == FILTERS]
        if refilter_rows.parts.rows or refilter_on_ray(refilter_rows.rows, ray):  # rows in parts are on Ray
            ray.start()
            _drain_on_ray(refilter_rows, filters, ahead, "re-filtered", read_pixels=False)
        else:
            sink.drain_local(run_in_process(refilter_rows.here, filters, config), "re-filtered", refilter_rows.rows)
    ahead.close()
    # Tombstones compare the ids sent with the previous version's images, in their id partitions: a first run has
    # none, and does not read back the ids of rows its partitions made.
    sent = None
    if run.previous is not None:
        sent = ids_in_partitions([pixel_rows, refilter_rows], len(carry.new.handles))
    return sink.close(annotated, sent)


def _drain_on_ray(
    rows: RowsToAnnotate, stages: list[PlannedStage], ahead: StartedAhead, label: str, read_pixels: bool = True
) -> int:
    """``rows`` through ``stages`` on Ray into the sink: on the filter actors started ahead when the stages are
    theirs (every stage of the run, all pixel-free filters), else as a Ray Data pipeline; the rows written."""
    filters = ahead.filter_actors() if [s.name for s in stages] == [s.name for s in ahead.stages] else None
    if filters is not None:
        blocks = filters.run_blocks(rows.blocks(PIXEL_FREE_BLOCK_ROWS))
        return ahead.sink.drain_refs(blocks, label, rows.rows)
    dataset = build_dataset(rows, stages, ahead.config, read_pixels=read_pixels)
    return ahead.sink.drain_dataset(dataset, label, rows.rows)


def unchanged(run: RunPlan, probed: ProbeOutcome, carry: CarryOver, annotated: Annotated, tombstones: Parts) -> bool:
    """Whether the new version would hold exactly what the latest one holds: the same files probed the
    same way, every row carried over in its shards, nothing annotated, re-filtered or removed (no
    ``tombstones``), under the same configuration and stages."""
    previous = run.previous
    return (
        previous is not None
        and probed.unchanged
        and bool(previous.probe_index)
        and not annotated.shards
        and not annotated.late_quarantine
        and not carry.rerun_pixels.rows
        and not carry.rerun_filters.rows
        and [s.path for s in carry.shards] == [s.path for s in previous.shards]
        and previous.config_fingerprint == run.config.fingerprint()
        and previous.stages == run.stage_plan.fingerprints
        and not tombstones.rows
    )


def _unchanged_result(run: RunPlan, probed: ProbeOutcome, carry: CarryOver, seconds: float) -> RunResult:
    """Nothing to publish: this run's journal (and what killed runs left) is cleaned up as after a publish;
    the numbers are the latest version's."""
    history, latest = run.history, run.previous
    assert latest is not None
    referenced = {path for m in history for path in m.files()}
    clean_up_runs(run.root, {m.run_id for m in history} | {run.run_id}, referenced)
    quarantined = sum(s.rows for s in latest.quarantine)
    return RunResult(
        latest,
        run.listing.rows,
        0,
        carry.carried_count,
        quarantined,
        seconds,
        probe_cached=probed.cached,
        skipped=latest.extra.get("skipped", 0),
        near_duplicate_groups=latest.extra.get("near_duplicate_groups", 0),
        published=False,
    )


# -- 6. write the side tables ----------------------------------------------------------------


def write_side_tables(
    run: RunPlan, probed: ProbeOutcome, curated: CuratedWork, annotated: Annotated, tombstones: Parts
) -> SideTables:
    """The new version's quarantine, skipped table and ``tombstones`` (images of the previous version it no longer
    holds, and why): each id partition's rows written where the partition is (a Ray task for a large run, so while
    Ray is up), then the files that failed to load while annotated; and its probe index."""
    late = pa.Table.from_pylist(annotated.late_quarantine, schema=QUARANTINE_SCHEMA)
    late_shards = write_quarantine(run.root, f"part-{run.run_id}-late", run.config.writer, late)
    quarantine = _write_in_parts(run, probed.quarantined, write_quarantine) + late_shards
    return SideTables(
        quarantine=quarantine,
        quarantined=sum(shard.rows for shard in quarantine),
        skipped=_write_in_parts(run, curated.skipped, write_skipped),
        tombstones=_write_in_parts(run, tombstones, write_tombstones),
        tombstoned=tombstones.rows,
        probe_index=probed.index,  # written by the probe phase's parts (the previous one's when unchanged)
    )


def _write_in_parts(run: RunPlan, rows: Parts, write: Callable[..., list[ShardInfo]]) -> list[ShardInfo]:
    """Each partition of ``rows`` written by ``write`` (``engine/store/side_tables.py``) where it is, its shards
    named after the run and the partition."""
    tasks, root, config = rows.tasks, run.root, run.config.writer
    written = [
        tasks.submit(write, root, f"part-{run.run_id}-{k:05d}", config, part)[0]
        for k, (part, count) in enumerate(zip(rows.handles, rows.counts, strict=True))
        if count
    ]
    return [shard for found in tasks.get(written) for shard in found]


def _tombstone_rows(curated: CuratedWork, carry: CarryOver, annotated: Annotated, earlier: PreviousImages) -> Parts:
    """Tombstones against the previous version's images (``earlier``; none on a first run), found and kept in their
    id partitions; a file that failed to load while annotated counts as quarantined."""
    if not earlier.rows:
        return empty_parts(TOMBSTONE_SCHEMA, 1)
    assert annotated.sent is not None  # collected on every run after the first
    return tombstones_in_parts(earlier, carry.carried, annotated.sent, annotated.late_table(), curated.skipped)


# -- 7. publish ------------------------------------------------------------------------------


def publish_version(
    run: RunPlan,
    probed: ProbeOutcome,
    curated: CuratedWork,
    carry: CarryOver,
    annotated: Annotated,
    side_tables: SideTables,
    imports: dict[str, MatchReport] | None = None,
) -> Manifest:
    """Publish the new version's manifest (the commit point), then delete what killed runs left behind."""
    config, request = run.config, run.request
    stats = {
        "annotated": annotated.annotated,
        "reannotated": carry.rerun_pixels.rows,
        "refiltered": carry.rerun_filters.rows,
        "carried": carry.carried_count,
        "kept_unlisted": carry.kept,
        "resumed": carry.resumed,
        "tombstoned": side_tables.tombstoned,
        "skipped": curated.tally.rows,
        "near_duplicate_groups": curated.tally.groups,
        "probe_cached": probed.cached,
        "probe_hashed": probed.hashed,
        "probe_seconds": round(probed.seconds, 3),
    }
    if imports:  # what each --annotations file matched (entries, images, the first unmatched names)
        stats["imports"] = {name: report.to_dict() for name, report in imports.items()}
    manifest = Manifest.next(
        run.previous,
        number=next_version_number(run.root, run.history),
        run_id=run.run_id,
        config_fingerprint=config.fingerprint(),
        profile=config.profile,
        stages=run.stage_plan.fingerprints,
        stage_kinds={s.name: s.kind for s in run.stages},
        models={s.name: s.model for s in run.stages if s.model},
        shards=carry.shards + annotated.shards,
        quarantine=side_tables.quarantine,
        skipped=side_tables.skipped,
        tombstones=side_tables.tombstones,
        probe_index=side_tables.probe_index,
        extra={"inputs": list(request.inputs), "full": request.full, "ingest": request.probe_key(), **stats},
        stage_timings=annotated.timings,
    )
    publish(run.root, manifest)
    referenced = {path for m in [*run.history, manifest] for path in m.files()}
    clean_up_runs(run.root, {m.run_id for m in run.history} | {run.run_id}, referenced)
    return manifest


def _result(
    manifest: Manifest,
    run: RunPlan,
    side_tables: SideTables,
    seconds: float,
    imports: dict[str, MatchReport] | None = None,
) -> RunResult:
    """The run's numbers, as its manifest published them."""
    extra = manifest.extra
    return RunResult(
        manifest,
        run.listing.rows,
        extra["annotated"],
        extra["carried"],
        side_tables.quarantined,
        seconds,
        reannotated=extra["reannotated"],
        refiltered=extra["refiltered"],
        resumed=extra["resumed"],
        tombstoned=extra["tombstoned"],
        probe_cached=extra["probe_cached"],
        skipped=extra["skipped"],
        near_duplicate_groups=extra["near_duplicate_groups"],
        kept_unlisted=extra["kept_unlisted"],
        imports=dict(imports or {}),
        stage_timings=manifest.stage_timings,
    )
