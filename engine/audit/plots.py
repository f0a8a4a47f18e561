"""Matplotlib figures of an audit (Agg backend, rendered offline) as PNG bytes."""

from __future__ import annotations

import io
from collections import Counter

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from engine.audit.reservoir import Reservoir

MAX_PANELS = 12


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def _grid(count: int, width: float = 3.2, height: float = 2.4) -> tuple[Figure, list]:
    columns = min(4, count)
    rows = (count + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    flat = list(axes.reshape(-1))
    for axis in flat[count:]:
        axis.set_visible(False)
    return figure, flat[:count]


def histograms(
    series: dict[str, Reservoir[float]],
    xlabel: str,
    bins: int = 20,
    unit_range: bool = False,
    marks: dict[str, float] | None = None,
) -> bytes | None:
    """One histogram panel per series (e.g. scores per source).

    ``unit_range`` fixes the x axis to 0..1 when every value lies there (scores, relative sizes), so
    panels compare at a glance; ``marks`` draws a vertical line per series (a filter's threshold).
    """
    names = [name for name in sorted(series) if series[name].items][:MAX_PANELS]
    if not names:
        return None
    figure, axes = _grid(len(names))
    for axis, name in zip(axes, names, strict=True):
        values = np.asarray(series[name].items, dtype=np.float64)
        in_unit = unit_range and values.min() >= 0.0 and values.max() <= 1.0
        axis.hist(values, bins=bins, range=(0.0, 1.0) if in_unit else None, color="#3b7dd8")
        if marks and name in marks:
            axis.axvline(marks[name], color="#c0392b", linestyle="--", label=f"threshold {marks[name]:g}")
            axis.legend(fontsize=7)
        sampled = "" if series[name].seen == len(values) else f", sample of {len(values)}"
        axis.set_title(f"{name} (n={series[name].seen}{sampled})", fontsize=8)
        axis.set_xlabel(xlabel, fontsize=8)
        axis.tick_params(labelsize=7)
    return _png(figure)


def centre_maps(series: dict[str, Reservoir[tuple[float, float]]]) -> bytes | None:
    """Where box centres fall in the image (normalised), one 2-D histogram per region kind."""
    names = [name for name in sorted(series) if series[name].items][:MAX_PANELS]
    if not names:
        return None
    figure, axes = _grid(len(names), 3.0, 3.0)
    for axis, name in zip(axes, names, strict=True):
        points = np.asarray(series[name].items, dtype=np.float64).reshape(-1, 2)
        axis.hist2d(points[:, 0], points[:, 1], bins=10, range=[[0, 1], [0, 1]], cmap="viridis")
        axis.invert_yaxis()
        axis.set_title(f"{name} centres (n={series[name].seen})", fontsize=8)
        axis.tick_params(labelsize=7)
    return _png(figure)


def count_bars(histograms_by_name: dict[str, Counter[int]], xlabel: str) -> bytes | None:
    """Bar charts of per-image counts (how many images have 0, 1, 2... regions)."""
    names = [name for name in sorted(histograms_by_name) if histograms_by_name[name]][:MAX_PANELS]
    if not names:
        return None
    figure, axes = _grid(len(names))
    for axis, name in zip(axes, names, strict=True):
        counts = histograms_by_name[name]
        keys = sorted(counts)
        axis.bar(keys, [counts[k] for k in keys], color="#d8703b", width=0.8)
        axis.set_xticks(keys if len(keys) <= 20 else keys[:: max(1, len(keys) // 10)])
        axis.set_title(name, fontsize=8)
        axis.set_xlabel(xlabel, fontsize=8)
        axis.set_ylabel("images", fontsize=8)
        axis.tick_params(labelsize=7)
    return _png(figure)
