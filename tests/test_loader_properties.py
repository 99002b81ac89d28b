"""ImageFolderLoader over the input space, against a plain Pillow reference.

Counts, sizes, source modes and formats, colour modes, target sizes,
scaling and caching are drawn by hypothesis; every loaded array must equal
what Pillow gives for the same files (and the documented resize rule:
OpenCV's area average to shrink, bilinear to enlarge, after Pillow's JPEG
draft scale), in the order of the ids, with the declared shape and dtype.
"""

import os
import tempfile

import cv2
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

import skimgclf
from skimgclf import ImageFolderLoader

MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}
SCALES = {"unit": (1 / 255, 0.0), "symmetric": (2 / 255, -1.0), None: (1.0, 0.0)}


def pillow_reference(path, color_mode, target_size):
    """The pixels of ``path`` as Pillow decodes them, resized by the documented rule."""
    mode = MODES[color_mode]
    with Image.open(path) as img:
        if target_size is not None and img.format == "JPEG":
            img.draft("RGB" if mode == "RGBA" else mode, (target_size[1], target_size[0]))
        img = ImageOps.exif_transpose(img)
        if img.mode.startswith("I;16"):
            img = Image.fromarray(np.clip(np.rint(np.asarray(img) / 257.0), 0, 255).astype(np.uint8), "L")
        arr = np.asarray(img.convert(mode))
    if target_size is not None and arr.shape[:2] != tuple(target_size):
        h, w = target_size
        shrink = h <= arr.shape[0] and w <= arr.shape[1]
        arr = cv2.resize(arr, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        arr = arr.reshape((h, w) + arr.shape[2:])
    return arr.reshape(arr.shape[:2] + (-1,))


def source_image(rng, mode, h, w):
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    if mode == "P":
        return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert("P")
    channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
    arr = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    return Image.fromarray(arr[..., 0] if channels == 1 else arr, mode)


case = st.fixed_dictionaries({
    "n": st.one_of(st.integers(1, 40), st.sampled_from([31, 32, 33, 64, 65, 255, 256, 257])),
    "height": st.integers(1, 48),
    "width": st.integers(1, 48),
    "mixed_sizes": st.booleans(),
    "source": st.sampled_from(["L", "LA", "RGB", "RGBA", "P", "I;16"]),
    "jpeg": st.booleans(),
    "color_mode": st.sampled_from(sorted(MODES)),
    "target": st.one_of(st.none(), st.tuples(st.integers(1, 40), st.integers(1, 40))),
    "scale": st.sampled_from(["unit", "symmetric", None]),
    "cache": st.booleans(),
    "padded_ids": st.booleans(),
    "seed": st.integers(0, 2**16),
})


@settings(max_examples=60, deadline=None)
@given(c=case)
def test_loaded_arrays_equal_pillow_for_any_count_size_and_mode(c):
    rng = np.random.default_rng(c["seed"])
    jpeg = c["jpeg"] and c["source"] in ("L", "RGB")
    suffix = ".jpg" if jpeg else ".png"
    target = c["target"]
    mixed = c["mixed_sizes"] and target is not None  # without a target, sizes must agree
    skimgclf.clear_cache()
    with tempfile.TemporaryDirectory() as folder:
        ids, refs = [], []
        for i in range(c["n"]):
            h, w = (int(rng.integers(1, 49)), int(rng.integers(1, 49))) if mixed else (c["height"], c["width"])
            image_id = f"{i:05d}" if c["padded_ids"] else str(i)
            path = os.path.join(folder, image_id + suffix)
            source_image(rng, c["source"], h, w).save(path, **({"quality": 90} if jpeg else {}))
            ids.append(image_id)
            refs.append(pillow_reference(path, c["color_mode"], target))
        loader = ImageFolderLoader(folder, suffix=suffix, target_size=target, color_mode=c["color_mode"],
                                   scale=c["scale"], cache=c["cache"], verbose=0)
        # The rows come back in the order asked, not the folder's; with the
        # cache, the same ids again (served from it) and in another order.
        first = rng.permutation(c["n"])
        for order in [first, first, rng.permutation(c["n"])][:3 if c["cache"] else 1]:
            out = loader.fit_transform([ids[k] for k in order])
            channels = {"grayscale": 1, "rgb": 3, "rgba": 4}[c["color_mode"]]
            h, w = target if target is not None else (c["height"], c["width"])
            assert out.shape == (c["n"], h, w, channels) and out.dtype == np.float32
            factor, offset = SCALES[c["scale"]]
            expected = np.stack([refs[k] for k in order]).astype(np.float32) * np.float32(factor) + offset
            np.testing.assert_allclose(out, expected, atol=1e-6)
    skimgclf.clear_cache()
