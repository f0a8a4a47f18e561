"""A stage that fails on one image records the error for that image; the others keep their annotations."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from engine.execute.stage_runner import run_stage_on_table, run_stages_on_table
from schemas.arrow import IN_FLIGHT_SCHEMA
from schemas.records import GroundedRegion, ImageRecord, Phrase, Provenance, Region
from schemas.stage import Resources
from schemas.validation import validate_record
from tests.support.image_files import jpeg_bytes


class BoxEveryImage:
    """Adds one box per image, and raises on images whose width is 13."""

    name = "boxer"
    resources = Resources()
    needs_pixels = True

    def fingerprint(self) -> str:
        return "boxer-v1"

    def setup(self) -> None:
        pass

    def process(self, records: list[ImageRecord], images: list[np.ndarray] | None) -> None:
        for record, image in zip(records, images or [], strict=True):
            if image.shape[1] == 13:
                raise ValueError("cannot box a 13 pixel wide image")
            record.regions.append(Region("object", (0, 0, 5, 5), "thing", Provenance("boxer", "m")))


def in_flight(widths: list[int]) -> pa.Table:
    rows = []
    for i, width in enumerate(widths):
        row = ImageRecord(f"{i:064d}", f"/img/{i}.jpg", width, 20, "jpeg").to_row()
        row["image_bytes"] = jpeg_bytes(width, 20, seed=i)
        rows.append(row)
    rows.append(ImageRecord("f" * 64, "/img/broken.jpg", 10, 10, "jpeg").to_row() | {"image_bytes": b"junk"})
    return pa.Table.from_pylist(rows, schema=IN_FLIGHT_SCHEMA)


def test_failure_is_isolated_to_the_image_that_caused_it() -> None:
    out = [
        ImageRecord.from_row(r) for r in run_stage_on_table(BoxEveryImage(), in_flight([40, 13, 30]), 10**8).to_pylist()
    ]
    assert [len(r.regions) for r in out] == [1, 0, 1, 0]
    assert out[1].errors[0].stage == "boxer" and "cannot box a 13 pixel wide image" in out[1].errors[0].message
    assert out[3].errors[0].message.startswith("decode failed: not_an_image")
    assert all(r.stages == {"boxer": "boxer-v1"} for r in out)


def test_image_bytes_travel_through_unchanged() -> None:
    table = in_flight([40])
    out = run_stage_on_table(BoxEveryImage(), table, 10**8)
    assert out.column("image_bytes").to_pylist() == table.column("image_bytes").to_pylist()
    assert out.schema == IN_FLIGHT_SCHEMA


class CountEveryImage:
    """A pixel-free stage that counts the images it processes and adds one proposal to each."""

    name = "counter"
    resources = Resources()
    needs_pixels = False

    def __init__(self) -> None:
        self.seen = 0

    def fingerprint(self) -> str:
        return "counter-v1"

    def setup(self) -> None:
        pass

    def process(self, records: list[ImageRecord], images: list[np.ndarray] | None) -> None:
        assert images is None
        for record in records:
            self.seen += 1
            record.regions.append(Region("proposal", (1, 1, 4, 4), "", Provenance("counter", "m")))


def test_a_chain_keeps_the_other_stages_work_on_the_image_one_stage_failed_on() -> None:
    counter = CountEveryImage()
    table = run_stages_on_table([counter, BoxEveryImage()], in_flight([40, 13, 30]), 10**8)
    out = [ImageRecord.from_row(r) for r in table.to_pylist()]
    assert [[r.kind for r in record.regions] for record in out] == [
        ["proposal", "object"],
        ["proposal"],
        ["proposal", "object"],
        ["proposal"],
    ]
    assert [e.stage for e in out[1].errors] == ["boxer"]
    assert out[3].errors[0].message.startswith("decode failed: not_an_image")
    assert all(r.stages == {"counter": "counter-v1", "boxer": "boxer-v1"} for r in out)


def test_a_chain_decodes_each_image_once(monkeypatch) -> None:
    import engine.execute.stage_runner as runner

    calls: list[int] = []
    real = runner.decode_image

    def counting(data: bytes, max_pixels: int):
        calls.append(len(data))
        return real(data, max_pixels)

    monkeypatch.setattr(runner, "decode_image", counting)

    class SecondBoxer(BoxEveryImage):
        name = "second"

        def fingerprint(self) -> str:
            return "second-v1"

    run_stages_on_table([BoxEveryImage(), SecondBoxer()], in_flight([40, 30]), 10**8)
    assert len(calls) == 3  # two images and the broken one, not once per stage


def test_stages_skip_rows_that_carry_their_fingerprint() -> None:
    once = run_stages_on_table([CountEveryImage()], in_flight([40, 30]), 10**8)
    counter = CountEveryImage()
    assert run_stages_on_table([counter], once, 10**8) is once
    assert counter.seen == 0
    twice = run_stage_on_table(counter, once, 10**8)  # the one-stage form runs whatever the fingerprints say
    assert counter.seen == 3 and [len(r) for r in twice.column("regions").to_pylist()] == [2, 2, 2]


class DanglingPhrase:
    """Adds a box to every image, and on 30-pixel-wide images also a phrase of a text that does not exist."""

    name = "grounder"
    resources = Resources()
    needs_pixels = False

    def fingerprint(self) -> str:
        return "grounder-v1"

    def setup(self) -> None:
        pass

    def process(self, records: list[ImageRecord], images: list[np.ndarray] | None) -> None:
        for record in records:
            record.regions.append(Region("object", (0, 0, 5, 5), "thing", Provenance("grounder", "m")))
            if record.width == 30:
                region = GroundedRegion((0, 0, 5, 5))
                record.phrases.append(Phrase("no-such-text", 0, 3, "dog", [region], Provenance("grounder", "m")))


def test_a_stage_that_leaves_a_record_invalid_loses_its_work_there_with_a_stage_error() -> None:
    table = run_stages_on_table([BoxEveryImage(), DanglingPhrase()], in_flight([40, 30]), 10**8)
    out = [ImageRecord.from_row(r) for r in table.to_pylist()]
    assert [(len(r.regions), len(r.phrases)) for r in out[:2]] == [(2, 0), (1, 0)]  # the boxer's box stays
    (error,) = out[1].errors
    assert error.stage == "grounder" and "invalid record" in error.message and "names no text" in error.message
    assert out[0].errors == [] and all(r.stages == {"boxer": "boxer-v1", "grounder": "grounder-v1"} for r in out)
    for record in out[:2]:
        validate_record(record)


def test_a_record_invalid_before_the_chain_gets_one_input_error_and_no_stage_is_blamed() -> None:
    row = ImageRecord("a" * 64, "/img/a.jpg", 40, 20, "jpeg").to_row()
    row["phrases"] = [Phrase("gone", 0, 1, "x", [], Provenance("old", "m")).to_dict()]
    row["image_bytes"] = jpeg_bytes(40, 20, seed=1)
    table = pa.Table.from_pylist([row], schema=IN_FLIGHT_SCHEMA)
    (out,) = [ImageRecord.from_row(r) for r in run_stage_on_table(BoxEveryImage(), table, 10**8).to_pylist()]
    assert [e.stage for e in out.errors] == ["input_check"] and len(out.regions) == 1
