"""A user filter: drops `object` boxes smaller than a share of the image (the filter side of the contract)."""

from dataclasses import dataclass
from typing import ClassVar

from filters.base import Filter, Verdict, below
from schemas.records import ImageRecord, Region


@dataclass(frozen=True)
class MinAreaOptions:
    min_share: float = 0.01


class MinArea(Filter):
    backend: ClassVar[str] = "min_area"
    targets: ClassVar[tuple[str, ...]] = ("regions",)
    Options: ClassVar[type] = MinAreaOptions

    def check(self, region: Region, record: ImageRecord) -> Verdict | None:
        x0, y0, x1, y1 = region.bbox
        share = (x1 - x0) * (y1 - y0) / (record.width * record.height)
        return below("min_area", share, self.options.min_share)
