"""Generated scenes carry exact truth: each box is the extent of its shape's pixels, each sign its word."""

from __future__ import annotations

import numpy as np

from bench.scenes import CLASSES, SIGN_WORDS, mask_box, render_scene


def _extent_of_dominant_colour(pixels: np.ndarray, box: tuple[float, ...], margin: int = 3) -> tuple[float, ...]:
    """The box of the most frequent colour inside ``box``, searched in ``box`` widened by ``margin``."""
    x0, y0, x1, y1 = (int(v) for v in box)
    inside = pixels[y0:y1, x0:x1].reshape(-1, 3)
    colours, counts = np.unique(inside, axis=0, return_counts=True)
    colour = colours[counts.argmax()]
    height, width = pixels.shape[:2]
    top, left = max(0, y0 - margin), max(0, x0 - margin)
    window = pixels[top : min(height, y1 + margin), left : min(width, x1 + margin)]
    found = mask_box((window == colour).all(axis=2))
    assert found is not None
    return (found[0] + left, found[1] + top, found[2] + left, found[3] + top)


def test_every_box_is_the_extent_of_its_drawn_shape() -> None:
    checked = 0
    for index in range(12):
        scene = render_scene(index)
        for obj in scene.objects:
            assert _extent_of_dominant_colour(scene.pixels, obj.box) == obj.box
            checked += 1
    assert checked >= 20


def test_a_scene_is_the_same_pixels_for_the_same_index_and_seed() -> None:
    first, again = render_scene(5, size=96, seed=3), render_scene(5, size=96, seed=3)
    assert np.array_equal(first.pixels, again.pixels) and first.objects == again.objects
    assert not np.array_equal(first.pixels, render_scene(5, size=96, seed=4).pixels)
    assert first.pixels.shape == (96, 96, 3) and first.pixels.dtype == np.uint8


def test_objects_do_not_overlap_and_labels_are_classes() -> None:
    for index in range(30):
        boxes = [o.box for o in render_scene(index).objects]
        assert 1 <= len(boxes) <= 4
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
        assert all(o.label in CLASSES for o in render_scene(index).objects)


def test_a_sign_scene_prints_its_word_in_dark_ink_inside_the_plate() -> None:
    scene = render_scene(0, sign_every=1)
    (sign,) = [o for o in scene.objects if o.label == "sign"]
    (text,) = scene.texts
    assert text.text in SIGN_WORDS and f'"{text.text}"' in scene.caption
    assert sign.box[0] < text.box[0] and text.box[2] < sign.box[2]
    assert sign.box[1] < text.box[1] and text.box[3] < sign.box[3]
    x0, y0, x1, y1 = (int(v) for v in text.box)
    ink = (scene.pixels[y0:y1, x0:x1] == (15, 15, 15)).all(axis=2)
    assert ink.sum() >= 10 and mask_box(ink) == (0.0, 0.0, float(x1 - x0), float(y1 - y0))


def test_scenes_without_signs_have_no_text_and_captions_name_every_object() -> None:
    scene = render_scene(4, sign_every=0)
    assert scene.texts == () and all(o.label != "sign" for o in scene.objects)
    assert all(o.label in scene.caption for o in scene.objects)
    assert scene.caption.endswith("textured background.")
