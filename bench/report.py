"""Printing a scenario's result as a table and saving it as JSON under ``bench/results/``."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        model = names[0] if names else ""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def flatten(result: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dict as (dotted key, value) rows; lists of scalars stay one row."""
    rows: list[tuple[str, Any]] = []
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(flatten(value, name + "."))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for i, item in enumerate(value):
                rows.extend(flatten(item, f"{name}[{i}]."))
        else:
            rows.append((name, value))
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def print_table(title: str, result: dict[str, Any]) -> None:
    rows = [(key, _cell(value)) for key, value in flatten(result)]
    width = max((len(key) for key, _ in rows), default=10)
    print(f"\n== {title} ==")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def save(scenario: str, result: dict[str, Any], folder: Path = RESULTS) -> Path:
    """Write ``result`` (with the machine and argv it ran on) to ``folder/<scenario>-<time>.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = folder / f"{scenario}-{stamp}.json"
    path.write_text(json.dumps({"scenario": scenario, "machine": machine(), "result": result}, indent=2, default=str))
    return path
