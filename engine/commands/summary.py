"""Human-readable summaries of annotation counts."""

from __future__ import annotations

from engine.store.counts import Counts


def _line(label: str, counts: dict) -> str:
    parts = [f"{key}={value}" for key, value in sorted(counts.items()) if key != "total"]
    return f"  {label:<12} {counts.get('total', 0):>8}" + (f"   ({', '.join(parts)})" if parts else "")


def format_counts(counts: Counts) -> str:
    """Counts per annotation type and kind, drops per rule, errors per stage, quarantine reasons, images
    curation skipped per rule."""
    lines = [f"  {'images':<12} {counts.get('images', 0):>8}"]
    for key in ("texts", "regions", "phrases", "dropped", "errors", "quarantined", "skipped"):
        lines.append(_line(key, counts.get(key, {})))
    sources = counts.get("sources", {})
    for kind in ("texts", "regions", "phrases"):
        if sources.get(kind):
            per = ", ".join(f"{name}={n}" for name, n in sorted(sources[kind].items()))
            lines.append(f"  {kind + ' by source':<20} {per}")
    return "\n".join(lines)
