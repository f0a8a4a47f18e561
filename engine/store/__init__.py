"""The output directory: manifests and versions, shard writing and reading, run journals, the lock, counts."""
