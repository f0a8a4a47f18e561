"""Ingestion: find sources (files, WebDataset shards, Parquet tables; local or remote), probe them (hash,
decode check, locators), reuse earlier probes, keep their captions as alt text, read image bytes again."""
