"""ImageFolderLoader on real image files: inputs, ids, sizes, modes, scaling, cache, progress."""

import os
import re
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import count_decodes, gray_loader, write_folder, write_images
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps
from sklearn.base import clone

import skimgclf
from skimgclf import ImageFolderLoader
from skimgclf.io import loader as _loader


@pytest.fixture(autouse=True)
def _fresh_cache():
    skimgclf.clear_cache()
    yield
    skimgclf.clear_cache()


def _gray(n=5, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size), dtype=np.uint8)


def test_importing_the_loader_does_not_import_tensorflow():
    code = (
        "import sys; import skimgclf; from skimgclf import ImageFolderLoader, save, load, clear_cache; "
        "from skimgclf.datasets import make_sample_dataset; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_all_input_forms_give_the_same_array(tmp_path):
    imgs = _gray()
    ids = write_images(tmp_path, imgs)
    loader = ImageFolderLoader(tmp_path, target_size=(8, 8))
    expected = imgs[..., None].astype(np.float32) / 255
    forms = [
        pd.DataFrame({"id": ids, "label": list("abcab")}),
        pd.Series(ids),
        ids,
        [str(i) for i in ids],
        np.array(ids),
        np.array(ids).reshape(-1, 1),
    ]
    for X in forms:
        out = loader.fit_transform(X)
        assert out.dtype == np.float32 and out.shape == (5, 8, 8, 1)
        np.testing.assert_allclose(out, expected, atol=1e-6)


def test_integer_id_columns_give_the_ids_of_the_general_path():
    """NumPy integer ids take a shortcut; the text is that of one id at a time, errors stay."""
    from skimgclf.io.ids import _id_to_str, ids_from_table

    values = [0, 7, 12, 2**40, 65535]
    expected = [_id_to_str(v, row) for row, v in enumerate(values)]
    for X in (pd.DataFrame({"id": values}), pd.Series(values), np.array(values),
              np.array(values).reshape(-1, 1), pd.Series(values, dtype=np.uint64)):
        assert ids_from_table(X) == expected
    assert ids_from_table(np.array([3, 4], np.uint8)) == ["3", "4"]
    with pytest.raises(ValueError, match="row 1: the id is missing"):  # a nullable column is not NumPy's
        ids_from_table(pd.Series([1, None], dtype="Int64"))
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        ids_from_table(np.array([[1, 2], [3, 4]]))
    with pytest.raises(ValueError, match="boolean"):
        ids_from_table(pd.Series([True, False]))


def test_other_id_column(tmp_path):
    ids = write_images(tmp_path, _gray(3))
    df = pd.DataFrame({"image": ids})
    assert ImageFolderLoader(tmp_path, id_column="image", target_size=(8, 8)).fit_transform(df).shape[0] == 3


def test_string_ids_keep_leading_zeros(tmp_path):
    a, b = _gray(2)
    write_images(tmp_path, [a, b], ids=["0013035", "13035"])
    (tmp_path / "train.csv").write_text("id\n0013035\n")
    df = pd.read_csv(tmp_path / "train.csv", dtype=str)
    out = ImageFolderLoader(tmp_path, target_size=(8, 8), scale=None).fit_transform(df)
    np.testing.assert_array_equal(out[0, ..., 0], a)


def test_integer_ids_read_as_float_name_the_integer_file(tmp_path):
    imgs = _gray(2)
    write_images(tmp_path, imgs, ids=[12, 13])
    (tmp_path / "t.csv").write_text("id,label\n12,1\n,2\n13,3\n")
    df = pd.read_csv(tmp_path / "t.csv").dropna()
    assert df["id"].dtype == float  # pandas made them 12.0, 13.0
    out = ImageFolderLoader(tmp_path, target_size=(8, 8), scale=None).fit_transform(df)
    np.testing.assert_array_equal(out[:, ..., 0], imgs)


def test_suffix_is_appended_only_when_the_id_names_no_file(tmp_path):
    a, b, c = _gray(3)
    Image.fromarray(a).save(tmp_path / "x.png")
    Image.fromarray(b).save(tmp_path / "y.bmp")
    Image.fromarray(c).save(tmp_path / "z.jpg.png")
    out = ImageFolderLoader(tmp_path, target_size=(8, 8), scale=None).fit_transform(["x", "y.bmp", "z.jpg"])
    np.testing.assert_array_equal(out[0, ..., 0], a)
    np.testing.assert_array_equal(out[1, ..., 0], b)
    np.testing.assert_array_equal(out[2, ..., 0], c)
    jpg = ImageFolderLoader(tmp_path, suffix=".bmp", target_size=(8, 8), scale=None).fit_transform(["y"])
    np.testing.assert_array_equal(jpg[0, ..., 0], b)


def test_target_size_resizes_and_none_keeps_size(tmp_path):
    write_images(tmp_path, _gray(3, size=20))
    assert ImageFolderLoader(tmp_path, target_size=(12, 6)).fit_transform([0, 1, 2]).shape == (3, 12, 6, 1)
    assert ImageFolderLoader(tmp_path, target_size=None).fit_transform([0, 1, 2]).shape == (3, 20, 20, 1)


@pytest.mark.parametrize("mode,channels", [("grayscale", 1), ("rgb", 3), ("rgba", 4)])
def test_color_modes_give_their_channel_count(tmp_path, mode, channels):
    rgb = np.random.default_rng(1).integers(0, 256, size=(2, 10, 10, 3), dtype=np.uint8)
    write_images(tmp_path, rgb)
    out = ImageFolderLoader(tmp_path, color_mode=mode, target_size=(10, 10)).fit_transform([0, 1])
    assert out.shape == (2, 10, 10, channels)
    if mode == "rgb":
        np.testing.assert_allclose(out, rgb / 255, atol=1e-6)
    if mode == "rgba":
        np.testing.assert_allclose(out[..., 3], 1.0)
    if mode == "grayscale":  # ITU-R 601 luma, as Pillow's "L"
        luma = rgb @ np.array([0.299, 0.587, 0.114])
        np.testing.assert_allclose(out[..., 0] * 255, luma, atol=1.0)


def test_grayscale_image_in_rgb_mode_repeats_the_channel(tmp_path):
    write_images(tmp_path, _gray(1))
    out = ImageFolderLoader(tmp_path, color_mode="rgb", target_size=(8, 8)).fit_transform([0])
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


@pytest.mark.parametrize("scale,lo,hi", [("unit", 0.0, 1.0), ("symmetric", -1.0, 1.0), (None, 0.0, 255.0)])
def test_scaling(tmp_path, scale, lo, hi):
    img = np.zeros((8, 8), np.uint8)
    img[:4] = 255
    write_images(tmp_path, [img])
    out = ImageFolderLoader(tmp_path, target_size=(8, 8), scale=scale).fit_transform([0])
    assert out.min() == pytest.approx(lo) and out.max() == pytest.approx(hi)


def test_tiny_and_large_images(tmp_path):
    tiny = np.random.default_rng(0).integers(0, 256, size=(8, 8), dtype=np.uint8)
    Image.fromarray(tiny).save(tmp_path / "tiny.png")
    yy, xx = np.mgrid[0:1536, 0:2048]
    photo = np.stack([(xx % 256), (yy % 256), ((xx + yy) % 256)], axis=-1).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=90)
    out = ImageFolderLoader(tmp_path, color_mode="rgb", target_size=(32, 32)).fit_transform(["tiny", "photo.jpg"])
    assert out.shape == (2, 32, 32, 3)
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert out[1].std() > 0.05  # the photo's content survived the reduced-scale decode


def test_set_params_points_at_another_folder(tmp_path):
    train, test = _gray(2, seed=1), _gray(2, seed=2)
    write_images(tmp_path / "train", train)
    write_images(tmp_path / "test", test)
    loader = ImageFolderLoader(tmp_path / "train", target_size=(8, 8), scale=None).fit([0, 1])
    np.testing.assert_array_equal(loader.transform([0, 1])[..., 0], train)
    loader.set_params(image_dir=tmp_path / "test")
    np.testing.assert_array_equal(loader.transform([0, 1])[..., 0], test)


def test_params_clone_and_repr(tmp_path):
    loader = ImageFolderLoader(str(tmp_path), target_size=(16, 16), color_mode="rgb")
    twin = clone(loader)
    assert twin.get_params() == loader.get_params()
    assert "color_mode='rgb'" in repr(loader)
    assert not hasattr(ImageFolderLoader(), "image_shape_")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_cache_reuses_decoded_images_and_notices_changes(tmp_path, monkeypatch, suffix):
    imgs = _gray(6)
    write_images(tmp_path, imgs, suffix=suffix)
    calls = count_decodes(monkeypatch)
    loader = ImageFolderLoader(tmp_path, suffix=suffix, target_size=(8, 8), n_jobs=1)
    first = loader.fit_transform([0, 1, 2, 3, 4, 5])
    assert len(calls) == 6
    again = clone(loader).fit_transform([0, 1, 2, 3, 4, 5])  # a clone, as in a grid search
    np.testing.assert_array_equal(again, first)
    assert len(calls) == 6
    if suffix == ".jpg":  # decoded images are also cached one by one
        sub = clone(loader).fit_transform([5, 4, 3])
        np.testing.assert_array_equal(sub, first[[5, 4, 3]])
        assert len(calls) == 6
    new = np.zeros((8, 8), np.uint8)
    Image.fromarray(new).save(tmp_path / f"4{suffix}")
    os.utime(tmp_path / f"4{suffix}", ns=(0, 10**18))
    changed = loader.transform([0, 1, 2, 3, 4, 5])
    np.testing.assert_allclose(changed[4, ..., 0], new / 255, atol=0.02)
    np.testing.assert_array_equal(changed[:4], first[:4])
    no_cache = ImageFolderLoader(tmp_path, suffix=suffix, target_size=(8, 8), cache=False, n_jobs=1)
    before = len(calls)
    no_cache.fit_transform([0, 1])
    no_cache.fit_transform([0, 1])
    assert len(calls) - before == 4


def test_progress_bar_only_on_a_terminal(tmp_path, monkeypatch):
    write_images(tmp_path, _gray(3))
    seen = []

    class Bar:
        def __init__(self, *args, disable=False, **kwargs):
            seen.append(disable)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n=1):
            pass

    monkeypatch.setattr("tqdm.std.tqdm", Bar)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    ImageFolderLoader(tmp_path, target_size=(8, 8), cache=False, verbose=1).fit_transform([0, 1, 2])
    ImageFolderLoader(tmp_path, target_size=(8, 8), cache=False, verbose=0).fit_transform([0, 1, 2])
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    ImageFolderLoader(tmp_path, target_size=(8, 8), cache=False, verbose=1).fit_transform([0, 1, 2])
    assert seen == [False, True, True]


def test_no_progress_output_when_not_a_terminal(tmp_path):
    write_images(tmp_path, _gray(300, size=8))
    code = (
        "import sys; from skimgclf import ImageFolderLoader; "
        f"X = ImageFolderLoader({str(tmp_path)!r}, target_size=(8, 8), verbose=1).fit_transform(list(range(300))); "
        "print(X.shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(300, 8, 8, 1)"
    assert out.stderr == ""


def test_empty_id_list_gives_an_empty_array(tmp_path):
    out = ImageFolderLoader(tmp_path, target_size=(8, 8), color_mode="rgb").fit_transform([])
    assert out.shape == (0, 8, 8, 3)


def test_loader_listing_path_matches_and_keeps_safety(tmp_path, monkeypatch):
    folder = tmp_path / "imgs"
    arrays = write_folder(folder)
    (folder / "sub").mkdir()
    Image.fromarray(arrays[0], "L").save(folder / "sub" / "x.png")
    ids = [str(i) for i in range(len(arrays))] + ["sub/x", "3.png"]
    loader = ImageFolderLoader(folder, target_size=(12, 12), color_mode="grayscale", cache=False, verbose=0)
    X = loader.transform(ids)
    expected = np.stack(arrays + [arrays[0], arrays[3]])[..., None] / np.float32(255)
    np.testing.assert_allclose(X, expected, rtol=0, atol=1e-7)
    # A link leaving the folder is refused on the listing path too.
    outside = tmp_path / "secret.png"
    Image.fromarray(arrays[1], "L").save(outside)
    os.symlink(outside, folder / "link.png")
    with pytest.raises(ValueError, match="outside the image folder"):
        loader.transform(ids + ["link"])


def test_loader_uses_threads_only_where_decoding_is_slow(tmp_path, monkeypatch):
    """A timed first run decides: tiny PNGs stay in this thread, slow decodes go to threads."""
    import time

    folder = tmp_path / "imgs"
    arrays = write_folder(folder, n=60)
    pools = []
    real_pool = _loader.ThreadPoolExecutor
    monkeypatch.setattr(_loader, "ThreadPoolExecutor", lambda *a, **k: pools.append(a) or real_pool(*a, **k))
    monkeypatch.setattr(_loader, "_THREADS_FROM_SECONDS", 0.002)  # 2 ms: far above a tiny PNG
    loader = ImageFolderLoader(folder, target_size=(12, 12), color_mode="grayscale", cache=False, n_jobs=2, verbose=0)
    fast = loader.transform(range(60))
    assert pools == []

    real_decode = _loader._decode_fast

    def slow_decode(*args, **kwargs):
        time.sleep(0.003)
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(_loader, "_decode_fast", slow_decode)
    slow = loader.transform(range(60))
    assert pools == [(2,)]
    np.testing.assert_array_equal(slow, fast)  # same pixels whichever way
    np.testing.assert_allclose(fast[..., 0], np.stack(arrays) / np.float32(255), atol=1e-7)


def test_mixed_sizes_without_target_size_names_both_files(images):
    write_images(images, [np.zeros((9, 8))], ids=["big"])
    with pytest.raises(ValueError, match=re.escape(
            f"row 1: image {images / 'big.png'} has shape (9, 8, 1), but {images / '0.png'} has (8, 8, 1); "
            "with target_size=None all images must have the same size (set target_size=(height, width) "
            "to resize them)")):
        gray_loader(images, target_size=None).fit_transform(["0", "big"])


# ------------------------------------------------ over the input space, against a plain Pillow reference
# Counts, sizes, source modes and formats, colour modes, target sizes, scaling and caching are drawn by
# hypothesis; every loaded array must equal what Pillow gives for the same files (and the documented resize
# rule: OpenCV's area average to shrink, bilinear to enlarge, after Pillow's JPEG draft scale), in the order
# of the ids, with the declared shape and dtype.
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
