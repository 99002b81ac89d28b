"""ImageFolderLoader() with nothing given works on any folder of the seed layout.

The suffix is found per id, the colour mode and the size are decided at fit
from the images (the rule of skimgclf.io.detect), kept by transform, and
explicit values win. Real files on disk: JPEG photos of several sizes, PNG
digits, folders that mix formats.
"""

import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import skimgclf
from skimgclf import ImageFolderLoader
from skimgclf.io.detect import MAX_SIDE, decide

RNG = np.random.default_rng(0)


def photos(folder, sizes, suffix=".jpg", mode="RGB", names=None):
    """Write noise photos of the given ``(height, width)`` sizes; their ids."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = names or [f"{i:04d}" for i in range(len(sizes))]
    for image_id, (h, w) in zip(ids, sizes):
        channels = {"RGB": 3, "L": 1}[mode]
        arr = RNG.integers(0, 256, (h, w, channels), dtype=np.uint8)
        Image.fromarray(arr[..., 0] if channels == 1 else arr, mode).save(folder / f"{image_id}{suffix}")
    return ids


def test_colour_photos_of_many_sizes(tmp_path):
    sizes = [(375, 500), (333, 500), (500, 375), (400, 600), (360, 480), (375, 500)]
    ids = photos(tmp_path, sizes)
    loader = ImageFolderLoader(tmp_path).fit(ids)
    assert loader.color_mode_ == "rgb"
    # No size is shared by half of them: the median (375 x 500), shrunk to 64 on the longer side.
    assert loader.target_size_ == (48, 64)
    X = loader.transform(ids)
    assert X.shape == (6, 48, 64, 3) and X.dtype == np.float32
    assert loader.get_params()["color_mode"] == "auto"  # fit sets attributes, never parameters


def test_digits_keep_their_size_and_gray(tmp_path):
    ids = photos(tmp_path, [(28, 28)] * 7 + [(30, 30)], suffix=".png", mode="L")
    loader = ImageFolderLoader(tmp_path).fit(ids)
    assert (loader.color_mode_, loader.target_size_) == ("grayscale", (28, 28))  # 7 of 8 share 28x28
    assert loader.transform(ids).shape == (8, 28, 28, 1)


def test_the_size_rule():
    assert decide(["L"] * 4, [(8, 8), (8, 8), (9, 9), (10, 10)]) == ("grayscale", (8, 8))  # half share 8x8
    assert decide(["L", "L"], [(60, 30), (300, 150)]) == ("grayscale", (60, 30))  # one of two is half
    assert decide(["RGB", "L", "L"], [(100, 50), (300, 150), (200, 100)]) == ("rgb", (64, 32))  # median, capped
    assert decide(["I;16"], [(40, 1000)]) == ("grayscale", (3, MAX_SIDE))
    assert decide(["P"], [(16, 16)]) == ("rgb", (16, 16))


def test_explicit_values_win(tmp_path):
    ids = photos(tmp_path, [(40, 60)] * 3)
    loader = ImageFolderLoader(tmp_path, color_mode="grayscale", target_size=(10, 20)).fit(ids)
    assert (loader.color_mode_, loader.target_size_) == ("grayscale", (10, 20))
    assert loader.transform(ids).shape == (3, 10, 20, 1)
    half = ImageFolderLoader(tmp_path, color_mode="rgba").fit(ids)
    assert (half.color_mode_, half.target_size_) == ("rgba", (40, 60))


def test_a_folder_may_mix_formats_and_an_id_matching_two_files_is_an_error(tmp_path):
    photos(tmp_path, [(20, 20)] * 2, suffix=".png", names=["a", "b"])
    photos(tmp_path, [(20, 20)] * 2, suffix=".jpg", names=["c", "d"])
    loader = ImageFolderLoader(tmp_path).fit(["a", "b", "c", "d"])
    assert loader.transform(["a", "c", "b", "d"]).shape == (4, 20, 20, 3)
    photos(tmp_path, [(20, 20)], suffix=".bmp", names=["a"])
    with pytest.raises(ValueError, match=re.escape(f"row 1: id 'a' matches 2 files in {tmp_path.resolve()} "
                                                   "(a.bmp, a.png); set suffix to choose")):
        loader.transform(["c", "a"])
    # Many ids (the folder-listing path) say the same.
    with pytest.raises(ValueError, match="row 70: id 'a' matches 2 files"):
        loader.transform(["c"] * 70 + ["a"])
    assert ImageFolderLoader(tmp_path, suffix=".bmp").fit(["a"]).transform(["a"]).shape == (1, 20, 20, 3)


def test_transform_keeps_what_fit_decided_in_another_folder(tmp_path):
    train = photos(tmp_path / "train", [(32, 32)] * 4)
    test = photos(tmp_path / "test", [(50, 70)] * 2, suffix=".png", mode="L")  # other format, size, mode
    loader = ImageFolderLoader(tmp_path / "train").fit(train)
    loader.set_params(image_dir=tmp_path / "test")
    assert loader.transform(test).shape == (2, 32, 32, 3)


def test_transform_before_fit(tmp_path):
    ids = photos(tmp_path, [(12, 12)] * 2)
    with pytest.raises(NotFittedError, match="call 'fit' first, or give both explicitly"):
        ImageFolderLoader(tmp_path).transform(ids)
    assert ImageFolderLoader(tmp_path, color_mode="rgb", target_size=(6, 6)).transform(ids).shape == (2, 6, 6, 3)
    assert ImageFolderLoader(tmp_path).__sklearn_tags__().requires_fit
    assert not ImageFolderLoader(tmp_path, color_mode="rgb", target_size=None).__sklearn_tags__().requires_fit
    with pytest.raises(ValueError, match="cannot decide color_mode and target_size .* without images"):
        ImageFolderLoader(tmp_path).fit([])


def test_detection_reads_a_spread_sample_and_names_a_bad_row(tmp_path):
    ids = photos(tmp_path, [(16, 16)] * 200)
    (tmp_path / "0199.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=re.escape("row 199: id '0199':")):
        ImageFolderLoader(tmp_path).fit(ids)  # the last row is always in the sample
    with pytest.raises(ValueError, match=re.escape("row 3: no image for id 'nope'")):
        ImageFolderLoader(tmp_path).fit(ids[:3] + ["nope"])


def test_the_two_commonest_mistakes_get_a_hint(tmp_path):
    photos(tmp_path, [(8, 8)] * 2, names=["007", "x"])
    loader = ImageFolderLoader(tmp_path, color_mode="rgb", target_size=(8, 8))
    with pytest.raises(ValueError, match=re.escape(
            "the folder holds 007.jpg: ids with leading zeros lose them when the CSV is read as numbers, so "
            "read it with pandas.read_csv(..., dtype={'id': str})")):
        loader.transform(pd.read_csv(pd.io.common.StringIO("id\n7\n")))
    with pytest.raises(ValueError, match=re.escape("x.bmp does not exist; x.jpg exists: set suffix='.jpg'")):
        loader.set_params(suffix=".bmp").transform(["x"])


def test_fitted_settings_survive_clone_free_persistence(tmp_path):
    ids = photos(tmp_path / "img", [(24, 36)] * 3)
    loader = ImageFolderLoader(tmp_path / "img").fit(ids)
    skimgclf.save(loader, tmp_path / "loader.skimgclf")
    back = skimgclf.load(tmp_path / "loader.skimgclf")
    assert (back.color_mode_, back.target_size_) == ("rgb", (24, 36))
    np.testing.assert_array_equal(back.transform(ids), loader.transform(ids))
    assert not hasattr(clone(loader), "color_mode_")  # clone is unfitted, as in scikit-learn


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5000), st.integers(1, 5000)), min_size=1, max_size=60))
def test_the_size_rule_over_sizes(sizes):
    """Any sizes: the decided size is one of them (or their median), shrunk to MAX_SIDE, never enlarged."""
    _, (h, w) = decide(["RGB"] * len(sizes), sizes)
    assert 1 <= h and 1 <= w and max(h, w) <= max(MAX_SIDE, min(max(s) for s in sizes))
    (common, count), = Counter(sizes).most_common(1)
    base = common if 2 * count >= len(sizes) else tuple(round(float(np.median([s[i] for s in sizes]))) for i in (0, 1))
    if max(base) <= MAX_SIDE:
        assert (h, w) == tuple(base)  # small enough: kept as it is
    else:
        assert max(h, w) == MAX_SIDE  # shrunk to the cap on its longer side, proportions kept to a pixel
        scale = MAX_SIDE / max(base)
        assert abs(h - base[0] * scale) <= 0.5 + 1e-9 or h == 1
        assert abs(w - base[1] * scale) <= 0.5 + 1e-9 or w == 1
