"""Ingestion: find input files, probe (hash and decode-check) them, reuse earlier probes, attach image bytes."""
