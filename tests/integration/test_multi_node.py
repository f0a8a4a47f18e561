"""The engine on a real multi-node Ray cluster with inputs and output on object storage (no shared disk).

``ray.cluster_utils.Cluster`` starts a head and two worker nodes on this machine: each its own raylet
and object store, as on separate hosts. The run is the CLI in a subprocess joining with ``--address``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
import yaml

from engine.store.location import location
from engine.store.manifest import require_manifest
from engine.store.reader import read_shard
from tests.support.refresh_stages import write_images

IMAGES = 24
OBJECT_STORE = 100 * 1024**2
# One CPU per node and a pool of two one-CPU actors: the pool cannot fit on a single node.
PROFILE = {
    "specialists": [{"name": "haar", "backend": "haar", "resources": {"num_cpus": 1, "batch_size": 4, "pool_size": 2}}],
    "filters": [
        {"name": "confidence", "backend": "confidence", "resources": {"num_cpus": 0.25, "batch_size": 8}},
        {"name": "geometry", "backend": "geometry", "resources": {"num_cpus": 0.25, "batch_size": 8}},
    ],
    "writer": {"rows_per_shard": 8, "row_group_rows": 4},
}
RUN_TIMEOUT_S = 420

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(s3_endpoint):
    """A head (1 CPU) and two worker nodes (1 CPU each), small object stores; shut down whatever happens.

    Started after the S3 server, so every raylet and worker has its endpoint and credentials."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": OBJECT_STORE, "include_dashboard": False},
    )
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
        cluster.wait_for_nodes(timeout=120)
        yield cluster
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def cluster_run(cluster, tmp_path_factory):
    """24 images uploaded to S3, annotated by ``fld-engine run --address`` into an S3 prefix."""
    from tests.support.s3_server import new_bucket

    base = tmp_path_factory.mktemp("multi-node")
    bucket = new_bucket()
    for path in write_images(base / "images", IMAGES):
        location(f"{bucket}/inputs/{path.name}").write_bytes(path.read_bytes())
    profile = base / "cluster.yaml"
    profile.write_text(yaml.safe_dump(PROFILE))
    output = f"{bucket}/corpus"
    return {"output": output, "stdout": cli_run(cluster, f"{bucket}/inputs/", output, profile)}


def cli_run(cluster, inputs: str, output: str, profile) -> str:
    """``fld-engine run`` joining the cluster, in a subprocess; its standard output."""
    command = [sys.executable, "-m", "engine.cli", "run", "--input", inputs, "--output", output]
    command += ["--config", str(profile), "--address", cluster.address, "--quiet"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=profile.parent, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def engine_actor_nodes(cluster) -> Counter:
    """Node ids of the run's model actors (Ray Data's map workers of the haar stage), from the cluster's GCS."""
    actors = cluster.global_state.actor_table(None).values()
    return Counter(a["Address"]["NodeID"] for a in actors if "haar" in a.get("ActorClassName", "") + a.get("Name", ""))


def test_every_image_is_annotated_exactly_once_on_the_cluster(cluster_run) -> None:
    root = location(cluster_run["output"])
    manifest = require_manifest(root)
    ids = [i for shard in manifest.shards for i in read_shard(root, shard, ["image_id"]).column("image_id").to_pylist()]
    assert len(ids) == len(set(ids)) == IMAGES
    assert manifest.extra["annotated"] == IMAGES
    stages = [
        json.dumps(sorted(dict(row).items()))
        for shard in manifest.shards
        for row in read_shard(root, shard, ["stages"]).column("stages").to_pylist()
    ]
    assert all("haar" in s and "geometry" in s for s in stages)


def test_manifest_counts_equal_the_rows_of_its_shards_on_s3(cluster_run) -> None:
    root = location(cluster_run["output"])
    manifest = require_manifest(root)
    rows = [read_shard(root, shard).num_rows for shard in manifest.shards]
    assert rows == [shard.rows for shard in manifest.shards]
    assert manifest.counts["images"] == sum(rows) == IMAGES
    assert len(manifest.shards) == IMAGES // PROFILE["writer"]["rows_per_shard"]


def test_the_work_ran_on_more_than_one_node(cluster, cluster_run) -> None:
    nodes = engine_actor_nodes(cluster)
    assert sum(nodes.values()) >= 2, f"no haar actors found in the cluster's actor table: {nodes}"
    assert len(nodes) >= 2, f"every haar actor ran on one node: {nodes}"
    alive = {node["NodeID"] for node in cluster.global_state.node_table() if node["Alive"]}
    assert set(nodes) <= alive and len(alive) == 3


def test_a_refresh_in_parts_plans_on_the_cluster_and_carries_what_did_not_change(cluster, tmp_path) -> None:
    """With fewer files per part (``ray.plan_part_rows``) than the run lists, probing, curation and carry-over run
    as tasks on the cluster's nodes, and the workers write the carried shards they rewrite to S3."""
    from tests.support.s3_server import new_bucket

    bucket = new_bucket()
    for path in write_images(tmp_path / "images", IMAGES):
        location(f"{bucket}/inputs/{path.name}").write_bytes(path.read_bytes())
    profile = tmp_path / "parts.yaml"
    profile.write_text(yaml.safe_dump({**PROFILE, "ray": {"plan_part_rows": 8, "plan_min_piece_rows": 0}}))
    root, inputs = location(f"{bucket}/corpus"), f"{bucket}/inputs/"
    cli_run(cluster, inputs, root.uri, profile)
    first = require_manifest(root)
    for number, path in enumerate(write_images(tmp_path / "changed", 2, start=100)):  # new content under old names
        location(f"{bucket}/inputs/img_{number:03d}.png").write_bytes(path.read_bytes())
    location(f"{bucket}/inputs/img_002.png").delete()
    location(f"{bucket}/inputs/img_003.png").write_bytes(b"not an image")  # quarantined by its partition's task
    cli_run(cluster, inputs, root.uri, profile)
    second = require_manifest(root)
    extra = second.extra
    assert (extra["annotated"], extra["carried"], extra["tombstoned"], extra["probe_cached"]) == (2, 20, 4, 20)
    ids = [i for shard in second.shards for i in read_shard(root, shard, ["image_id"]).column("image_id").to_pylist()]
    assert len(ids) == len(set(ids)) == IMAGES - 2
    kept = {s.path for s in first.shards} & {s.path for s in second.shards}
    rewritten = [s for s in second.shards if "-carried-" in s.path]
    assert sum(s.rows for s in second.shards if s.path in kept) + sum(s.rows for s in rewritten) == 20
    (bad,) = second.quarantine
    assert bad.counts == {"total": 1, "not_an_image": 1} and bad.path.startswith(f"quarantine/part-{second.run_id}-")
    assert len(second.probe_index) > 1  # written in parts by the workers
    cli_run(cluster, inputs, root.uri, profile)
    assert require_manifest(root).version == second.version  # nothing changed: nothing published
