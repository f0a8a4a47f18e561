"""Incremental refresh: which earlier rows carry over, which stages rerun, which images are gone."""
