"""Planning in partitions: a run's per-image tables cut by key, each part handled by a task of its own,
so the driver holds handles and counts, never a row per image."""
