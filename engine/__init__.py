"""How it all runs: config, ingestion, pipeline, writers, CLI."""
