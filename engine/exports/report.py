"""What an export wrote: images, annotations per kind, skipped images per reason, throughput."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from engine.store.location import Where


@dataclass
class ExportReport:
    format: str
    destination: Where
    images: int = 0
    records: int = 0
    seconds: float = 0.0
    annotations: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    files: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def format_lines(self) -> str:
        rate = self.records / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"{self.format} export to {self.destination}: {self.images} images from {self.records} records "
            f"in {self.seconds:.2f}s ({rate:.1f} records/s)"
        ]
        for name, count in sorted(self.annotations.items()):
            lines.append(f"  {name:<32} {count:>8}")
        for name, count in sorted(self.files.items()):
            lines.append(f"  file {name:<27} {count:>8} rows")
        for reason, count in sorted(self.skipped.items()):
            lines.append(f"  skipped {count} images: {reason}")
        return "\n".join(lines)
