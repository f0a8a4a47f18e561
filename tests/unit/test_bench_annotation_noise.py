"""Injected annotation noise is tagged, counted and written as COCO files pycocotools reads."""

from __future__ import annotations

import contextlib
import io

from bench.annotation_noise import CORRECT, NoiseRates, ground_truth, inject_noise
from bench.scenes import CLASSES, render_scene
from schemas.boxes import box_iou

SCENES = [render_scene(i, size=96) for i in range(40)]
NAMES = [f"s{i}.png" for i in range(40)]
NO_NOISE = NoiseRates(jitter=0, relabel=0, miss=0, spurious=0, junk_caption=0)


def _xyxy(bbox: list[float]) -> tuple[float, ...]:
    x, y, w, h = bbox
    return (x, y, x + w, y + h)


def test_without_noise_the_annotations_are_the_truth_all_tagged_correct() -> None:
    noisy = inject_noise(SCENES, NAMES, NO_NOISE)
    truth = ground_truth(SCENES, NAMES)
    assert [(a["image_id"], a["category_id"], a["bbox"]) for a in noisy.instances["annotations"]] == [
        (a["image_id"], a["category_id"], a["bbox"]) for a in truth["annotations"]
    ]
    assert noisy.tags() == {CORRECT: len(truth["annotations"]), "caption_correct": 40, "missed": 0}
    assert [c["caption"] for c in noisy.captions["annotations"]] == [s.caption for s in SCENES]


def test_every_true_object_is_annotated_or_listed_as_missed() -> None:
    noisy = inject_noise(SCENES, NAMES, NoiseRates(spurious=0))
    tags = noisy.tags()
    true_objects = sum(len(s.objects) for s in SCENES)
    annotated = sum(n for tag, n in tags.items() if not tag.startswith(("caption", "missed")))
    assert annotated + tags["missed"] == true_objects and tags["missed"] > 0
    assert tags["jittered"] > 0 and tags["relabelled"] + tags.get("jittered+relabelled", 0) > 0


def test_relabelled_objects_carry_another_class_and_correct_ones_the_true_box() -> None:
    noisy = inject_noise(SCENES, NAMES, NoiseRates(spurious=0, miss=0))
    truth = ground_truth(SCENES, NAMES)["annotations"]
    assert len(truth) == len(noisy.instances["annotations"])
    for true, annotation in zip(truth, noisy.instances["annotations"], strict=True):
        relabelled = "relabelled" in annotation["noise"]
        assert (annotation["category_id"] != true["category_id"]) == relabelled
        if annotation["noise"] == CORRECT:
            assert annotation["bbox"] == true["bbox"]
        if "jittered" in annotation["noise"]:
            assert annotation["bbox"] != true["bbox"]


def test_spurious_boxes_are_of_their_kind() -> None:
    noisy = inject_noise(SCENES, NAMES, NoiseRates(spurious=2.0))
    by_image = {i + 1: [o.box for o in s.objects] for i, s in enumerate(SCENES)}
    kinds = set()
    for annotation in noisy.instances["annotations"]:
        box, kind = _xyxy(annotation["bbox"]), annotation["noise"]
        overlap = max((box_iou(box, t) for t in by_image[annotation["image_id"]]), default=0.0)
        if kind == "spurious_duplicate":
            assert 0.55 <= overlap <= 0.85
        elif kind == "spurious_fragment":
            assert annotation["bbox"][2] <= 6.01 and annotation["bbox"][3] <= 8.5
        elif kind == "spurious_background":
            assert overlap < 0.3
        kinds.add(kind)
        assert 0 < annotation["score"] < 1 and annotation["category_id"] in range(1, len(CLASSES) + 1)
    assert {"spurious_background", "spurious_duplicate", "spurious_fragment"} <= kinds


def test_junk_captions_replace_the_scene_caption() -> None:
    noisy = inject_noise(SCENES, NAMES, NoiseRates(junk_caption=0.5))
    junk = [c for c in noisy.captions["annotations"] if c["noise"] == "junk"]
    assert 5 < len(junk) < 35
    assert all(c["caption"] != SCENES[c["image_id"] - 1].caption for c in junk)


def test_the_same_seed_gives_the_same_file_and_pycocotools_reads_it(tmp_path) -> None:
    from pycocotools.coco import COCO

    first, again = inject_noise(SCENES, NAMES, seed=1), inject_noise(SCENES, NAMES, seed=1)
    assert first.instances == again.instances and first.instances != inject_noise(SCENES, NAMES, seed=2).instances
    instances, captions = first.write(tmp_path)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(instances))
    assert len(coco.getAnnIds()) == len(first.instances["annotations"]) and len(coco.getImgIds()) == 40
    assert COCO(str(captions)).getAnnIds() != []
