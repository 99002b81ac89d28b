"""The decoding fast path gives Pillow's pixels, and the batch cache notices changed files."""

import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageOps

import skimgclf
from skimgclf import ImageFolderLoader
from skimgclf.io import decode as _images
from skimgclf.io import loader as _loader
from skimgclf.io import memcache, watch
from skimgclf.errors import ImageDecodeError
from skimgclf.io.decode import decode_image

RNG = np.random.default_rng(0)


def pil_only(monkeypatch, path, color_mode, target_size=None):
    """decode_image with the fast path switched off."""
    with monkeypatch.context() as m:
        m.setattr(_images, "_decode_fast", lambda *a: None)
        return decode_image(path, color_mode, target_size)


def noise(shape):
    return RNG.integers(0, 256, size=shape, dtype=np.uint8)


@pytest.mark.parametrize(
    "pil_mode, shape, color_mode",
    [("L", (28, 28), "grayscale"), ("RGB", (20, 30, 3), "rgb"), ("RGBA", (17, 9, 4), "rgba")],
)
def test_fast_path_equals_pillow_on_plain_pngs(tmp_path, monkeypatch, pil_mode, shape, color_mode):
    path = tmp_path / "a.png"
    Image.fromarray(noise(shape), pil_mode).save(path)
    fast = _images._decode_fast(path, color_mode, None, _images.DEFAULT_MAX_PIXELS)
    assert fast is not None, "a plain 8-bit PNG in the requested mode takes the fast path"
    slow = pil_only(monkeypatch, path, color_mode)
    assert fast.dtype == slow.dtype == np.uint8
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(decode_image(path, color_mode), slow)
    # Same size as the target: still the fast path; another size: Pillow resizes.
    assert _images._decode_fast(path, color_mode, shape[:2], None) is not None
    assert _images._decode_fast(path, color_mode, (8, 8), None) is None


def test_jpeg_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((30, 40, 3), np.uint8)
    arr[:10, :, 0] = 255  # red band on top
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "photo.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=95)
    assert _images._decode_fast(path, "rgb", None, None) is None
    out = decode_image(path, "rgb")
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert out.shape == (40, 30, 3)
    np.testing.assert_array_equal(out, expected)
    assert out[:, -5:, 0].mean() > 200 and out[:, :5, 0].mean() < 60  # the band is now on the right


def test_png_with_exif_orientation_falls_back(tmp_path):
    arr = noise((10, 20))
    exif = Image.Exif()
    exif[0x0112] = 8
    path = tmp_path / "rotated.png"
    Image.fromarray(arr, "L").save(path, exif=exif)
    assert _images._decode_fast(path, "grayscale", None, None) is None
    assert decode_image(path, "grayscale").shape == (20, 10, 1)


def test_16bit_png_falls_back_and_is_scaled(tmp_path, monkeypatch):
    arr = RNG.integers(0, 65536, size=(12, 12), dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    assert Image.open(path).mode.startswith("I")
    assert _images._decode_fast(path, "grayscale", None, None) is None
    out = decode_image(path, "grayscale")
    np.testing.assert_array_equal(out, pil_only(monkeypatch, path, "grayscale"))
    np.testing.assert_allclose(out[..., 0], arr / 257.0, atol=0.51)


@pytest.mark.parametrize("color_mode", ["grayscale", "rgb", "rgba"])
def test_palette_and_transparency_fall_back(tmp_path, monkeypatch, color_mode):
    pal = Image.fromarray(noise((16, 16, 3)), "RGB").quantize(colors=16)
    pal_path, trns_path = tmp_path / "pal.png", tmp_path / "trns.png"
    pal.save(pal_path)
    Image.fromarray(noise((16, 16)), "L").save(trns_path, transparency=7)
    for path in (pal_path, trns_path):
        assert _images._decode_fast(path, color_mode, None, None) is None
        expected = np.asarray(Image.open(path).convert({"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}[color_mode]))
        out = decode_image(path, color_mode)
        np.testing.assert_array_equal(out.reshape(expected.shape), expected)


def test_colour_conversion_falls_back(tmp_path):
    path = tmp_path / "rgb.png"
    Image.fromarray(noise((9, 9, 3)), "RGB").save(path)
    assert _images._decode_fast(path, "grayscale", None, None) is None
    expected = np.asarray(Image.open(path).convert("L"))
    np.testing.assert_array_equal(decode_image(path, "grayscale")[..., 0], expected)


def test_broken_png_still_raises_pillows_error(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(noise((40, 40)), "L").save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert _images._decode_fast(path, "grayscale", None, None) is None
    with pytest.raises(ImageDecodeError, match="cut.png"):
        decode_image(path, "grayscale")


def test_bomb_check_happens_before_the_fast_path(tmp_path):
    path = tmp_path / "big.png"
    Image.fromarray(noise((50, 50)), "L").save(path)
    assert _images._decode_fast(path, "grayscale", None, 100) is None
    with pytest.raises(ImageDecodeError, match="max_pixels"):
        decode_image(path, "grayscale", max_pixels=100)


def write_folder(folder, n=80, size=12):
    folder.mkdir()
    arrays = [noise((size, size)) for _ in range(n)]
    for i, arr in enumerate(arrays):
        Image.fromarray(arr, "L").save(folder / f"{i}.png")
    return arrays


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


def test_batch_cache_reuses_and_notices_changes(tmp_path, monkeypatch):
    folder = tmp_path / "imgs"
    arrays = write_folder(folder)
    table = pd.DataFrame({"id": range(len(arrays))})
    skimgclf.clear_cache()
    loader = ImageFolderLoader(folder, target_size=(12, 12), color_mode="grayscale", verbose=0)
    first = loader.transform(table)
    assert not first.flags.writeable, "a cached batch is shared, so read-only"
    assert loader.transform(table) is first
    assert loader.transform(list(range(len(arrays)))) is first  # same ids, another container

    # Overwritten in place (no rename, same size): noticed.
    Image.fromarray(255 - arrays[5], "L").save(folder / "5.png")
    second = loader.transform(table)
    assert second is not first
    np.testing.assert_allclose(second[5, ..., 0], (255 - arrays[5]) / np.float32(255), atol=1e-7)

    # Replaced by a rename: noticed.
    Image.fromarray(arrays[5], "L").save(tmp_path / "new.png")
    os.replace(tmp_path / "new.png", folder / "5.png")
    third = loader.transform(table)
    np.testing.assert_allclose(third[5, ..., 0], arrays[5] / np.float32(255), atol=1e-7)

    # Removed: the error of a missing file, never the old array.
    os.remove(folder / "7.png")
    with pytest.raises(ValueError, match="7"):
        loader.transform(table)

    assert ImageFolderLoader(folder, target_size=(12, 12), color_mode="grayscale", cache=False, verbose=0).transform(
        table.drop(7)).flags.writeable


def test_batch_cache_notices_changes_in_sub_folders(tmp_path):
    """Ids in sub-folders: a change there (not in the image folder itself) is noticed."""
    folder = tmp_path / "imgs"
    arrays = write_folder(folder, n=2)
    (folder / "a").mkdir()
    arrays = write_folder(folder / "a" / "b", n=3) + arrays
    ids = ["a/b/0", "a/b/1", "a/b/2", "0", "1"]
    assert memcache.folders_of([os.path.join(str(folder), "a", "b", "0.png"), str(folder / "1.png"),
                                str(folder / "a" / "b" / "2.png")]) == {str(folder / "a" / "b"), str(folder)}
    skimgclf.clear_cache()
    loader = ImageFolderLoader(folder, target_size=(12, 12), color_mode="grayscale", verbose=0)
    first = loader.transform(ids)
    assert loader.transform(ids) is first
    Image.fromarray(255 - arrays[1], "L").save(folder / "a" / "b" / "1.png")
    again = loader.transform(ids)
    assert again is not first
    np.testing.assert_allclose(again[1, ..., 0], (255 - arrays[1]) / np.float32(255), atol=1e-7)


def test_batch_cache_without_inotify_checks_every_file(tmp_path, monkeypatch):
    monkeypatch.setattr(watch.CHANGES, "token", lambda dirs: None)
    folder = tmp_path / "imgs"
    arrays = write_folder(folder)
    skimgclf.clear_cache()
    loader = ImageFolderLoader(folder, target_size=(12, 12), color_mode="grayscale", verbose=0)
    ids = list(range(len(arrays)))
    first = loader.transform(ids)
    assert loader.transform(ids) is first
    Image.fromarray(255 - arrays[2], "L").save(folder / "2.png")
    st = os.stat(folder / "2.png")
    os.utime(folder / "2.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = loader.transform(ids)
    assert again is not first
    np.testing.assert_allclose(again[2, ..., 0], (255 - arrays[2]) / np.float32(255), atol=1e-7)


def test_seed_architecture_is_expressible():
    """padding="valid" and per-convolution filters give the seed tutorial's network exactly."""
    from skimgclf.model.network import build_cnn

    model = build_cnn((28, 28, 1), 10, conv_blocks=1, filters=[[32, 64]], convs_per_block=2,
                      padding="valid", batch_norm=False, conv_dropout=0.25, global_pooling="flatten",
                      hidden_layers=1, units=128, dropout=0.5)
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [32, 64]
    assert [tuple(c.output.shape[1:]) for c in convs] == [(26, 26, 32), (24, 24, 64)]
    assert model.count_params() == 1_199_882  # the seed network's parameter count
    assert not any(type(layer).__name__ == "BatchNormalization" for layer in model.layers)


def test_folded_inference_matches_keras_and_follows_new_weights(monkeypatch):
    """predict folds batch norm into the layer before it: same numbers as Keras' own predict.

    A batch norm after a max pooling is not folded into the convolution
    before the pooling (max commutes only with an increasing scale): it is
    applied on the pooled map, right also where its scale is negative.
    """
    from skimgclf import CNNClassifier
    from skimgclf.model import inference as _classifier
    from skimgclf.model.inference import _inference_steps

    monkeypatch.setattr(_classifier, "_TRACE_FROM_PIXELS", 0)  # the traced graph from the first call
    X = RNG.random((120, 8, 8, 1), dtype=np.float32)
    y = np.arange(120) % 3
    clf = CNNClassifier(conv_blocks=2, filters=4, units=8, epochs=1, random_state=0).fit(X, y)
    kinds = [step[0] for step in _inference_steps(clf.model_)]
    # 8x8: conv, pool, its batch norm alone, activation; 4x4 -> 2x2 (not pooled): conv with its batch
    # norm folded in, activation; the hidden dense layer with its batch norm folded in
    assert kinds[:6] == ["conv", "layer", "affine", "layer", "conv", "layer"]
    assert kinds.count("conv") == 2 and kinds.count("affine") == 1 and kinds.count("dense") == 1
    np.testing.assert_allclose(clf.predict_proba(X), clf.model_.predict(X, verbose=0), atol=1e-5)
    bns = [layer for layer in clf.model_.layers if type(layer).__name__ == "BatchNormalization"]
    bns[0].moving_mean.assign(bns[0].moving_mean + 0.5)  # the weights change: no stale folded copy
    np.testing.assert_allclose(clf.predict_proba(X), clf.model_.predict(X, verbose=0), atol=1e-5)
    for bn in bns:  # half the channels' scales negative: max(-x) is not -max(x)
        bn.gamma.assign(bn.gamma * np.where(np.arange(bn.gamma.shape[0]) % 2, -1.0, 1.0).astype(np.float32))
    np.testing.assert_allclose(clf.predict_proba(X), clf.model_.predict(X, verbose=0), atol=1e-5)


@pytest.mark.parametrize("n", [1, 7, 16, 17, 40])
def test_inference_in_sub_batches_gives_every_row(monkeypatch, n):
    """Sub-batches of the traced inference: fewer rows than one, exactly some, and a remainder."""
    from skimgclf import CNNClassifier
    from skimgclf.model import inference as _classifier

    monkeypatch.setattr(_classifier, "_inference_rows", lambda shape: 8)
    monkeypatch.setattr(_classifier, "_TRACE_FROM_PIXELS", 0)
    X = RNG.random((n, 12, 12, 1), dtype=np.float32)
    y = np.arange(n) % 2 if n > 1 else np.array([0])
    clf = CNNClassifier(conv_blocks=1, filters=4, units=8, epochs=1, random_state=0).fit(
        np.concatenate([X, X]), np.concatenate([y, 1 - y]))
    proba = clf.predict_proba(X)
    assert proba.shape == (n, 2)
    np.testing.assert_allclose(proba, clf.model_.predict(X, verbose=0), atol=1e-5)
    np.testing.assert_allclose(proba[-1:], clf.predict_proba(X[-1:]), atol=1e-6)  # a row alone, the same


# ------------------------------------------------------------------ JPEG fast path
def photo(shape):
    """A crop of a real photograph shipped with scikit-learn (``china.jpg``)."""
    from sklearn.datasets import load_sample_image

    img = load_sample_image("china.jpg")[100:100 + shape[0], 150:150 + shape[1]]
    return img if len(shape) == 3 else np.asarray(Image.fromarray(img).convert("L"))


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("source", ["L", "RGB"])
@pytest.mark.parametrize("color_mode", ["grayscale", "rgb"])
@pytest.mark.parametrize("target", [(64, 64), (28, 28), (100, 80), (90, 120), (150, 210)])
def test_jpeg_fast_path_equals_pillow(tmp_path, monkeypatch, progressive, source, color_mode, target):
    """Reduced-scale OpenCV decoding + the shared resize give the Pillow path's pixels."""
    path = tmp_path / "p.jpg"
    shape = (180, 240, 3) if source == "RGB" else (180, 240)
    Image.fromarray(photo(shape)).save(path, quality=90, progressive=progressive)
    fast = _images._decode_fast(path, color_mode, target, _images.DEFAULT_MAX_PIXELS)
    assert fast is not None, "a plain JPEG to be resized takes the fast path"
    slow = pil_only(monkeypatch, path, color_mode, target)
    assert fast.shape == slow.shape == target + ({"grayscale": 1, "rgb": 3}[color_mode],)
    np.testing.assert_array_equal(fast, slow)


def test_jpeg_decodes_at_reduced_scale_like_pillows_draft(tmp_path, monkeypatch):
    """The scale is Pillow's draft() choice: the largest of 1/8, 1/4, 1/2 still >= the target."""
    import cv2

    path = tmp_path / "p.jpg"
    Image.fromarray(photo((180, 240, 3))).save(path, quality=90)
    seen = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda buf, flag: seen.append(real(buf, flag).shape) or real(buf, flag))
    for target, decoded in [((20, 20), (23, 30, 3)), ((40, 40), (45, 60, 3)), ((60, 100), (90, 120, 3)),
                            ((120, 200), (180, 240, 3))]:
        _images._decode_fast(path, "rgb", target, None)
        assert seen.pop() == decoded
        with Image.open(path) as img:
            img.draft("RGB", (target[1], target[0]))
            assert img.size == (decoded[1], decoded[0])


def _jpeg_with_xmp_orientation(path):
    """A JPEG whose only orientation is in an XMP packet (Pillow reads it there too)."""
    Image.fromarray(photo((60, 80, 3))).save(path, quality=90)
    xmp = (b'http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
           b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
           b'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
    data = path.read_bytes()
    segment = b"\xff\xe1" + (len(xmp) + 2).to_bytes(2, "big") + xmp
    path.write_bytes(data[:2] + segment + data[2:])


def test_jpegs_that_pillow_must_handle_fall_back(tmp_path, monkeypatch):
    """Rotation (EXIF or XMP), CMYK, truncation, RGBA, no resize, bombs: never the fast path."""
    target = (32, 32)
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(photo((60, 80, 3))).save(rotated, exif=exif, quality=90)
    upright = tmp_path / "upright.jpg"
    exif[0x0112] = 1
    Image.fromarray(photo((60, 80, 3))).save(upright, exif=exif, quality=90)
    xmp = tmp_path / "xmp.jpg"
    _jpeg_with_xmp_orientation(xmp)
    cmyk = tmp_path / "cmyk.jpg"
    Image.fromarray(photo((60, 80, 3))).convert("CMYK").save(cmyk, quality=90)
    cut = tmp_path / "cut.jpg"
    Image.fromarray(photo((60, 80, 3))).save(cut, quality=90)
    cut.write_bytes(cut.read_bytes()[:-200])

    assert _images._decode_fast(upright, "rgb", target, None) is not None  # orientation 1: nothing to do
    for path in (rotated, xmp, cmyk, cut):
        assert _images._decode_fast(path, "rgb", target, None) is None, path.name
    assert _images._decode_fast(upright, "rgba", target, None) is None
    assert _images._decode_fast(upright, "rgb", None, None) is None
    assert _images._decode_fast(upright, "rgb", target, 100) is None

    # And Pillow does what they need: rotates, converts, reports.
    assert Image.open(xmp).getexif().get(0x0112) == 6
    for path in (rotated, xmp):
        out = decode_image(path, "rgb", (40, 30))
        expected = _images._resize(np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB")), (40, 30))
        np.testing.assert_array_equal(out, expected)
    assert decode_image(cmyk, "rgb", target).shape == (32, 32, 3)
    with pytest.raises(ImageDecodeError, match="cut.jpg"):
        decode_image(cut, "rgb", target)
    with pytest.raises(ImageDecodeError, match="max_pixels"):
        decode_image(upright, "rgb", target, max_pixels=100)


def test_resize_shrinks_by_area_and_enlarges_bilinearly():
    """Shrinking averages the covered pixels (no aliasing); enlarging interpolates."""
    stripes = np.zeros((8, 8), np.uint8)
    stripes[:, ::2] = 200  # one-pixel stripes: nearest-neighbour would keep only one colour
    small = _images._resize(stripes, (4, 4))
    np.testing.assert_array_equal(small, np.full((4, 4), 100, np.uint8))
    ramp = np.array([[0, 100, 200]], np.uint8)
    big = _images._resize(ramp, (1, 9))
    assert big[0, 0] == 0 and big[0, -1] == 200
    assert len(np.unique(big)) > 3, "enlarging interpolates between the pixels, not blocks of copies"
    colour = np.zeros((10, 10, 3), np.uint8)
    assert _images._resize(colour, (5, 5)).shape == (5, 5, 3)
    one = np.zeros((10, 10, 1), np.uint8)
    assert _images._resize(one, (5, 6)).shape == (5, 6, 1)
    assert _images._resize(one, (10, 10)) is one


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


@pytest.mark.parametrize("shape, params, windows", [
    # 14 -> pool -> 7 -> the second convolution computes only the 6x6 the pooling reads
    ((14, 14, 1), dict(conv_blocks=2, padding="same"), [None, (7, 7, [[0, 0], [1, 0], [1, 0], [0, 0]])]),
    # an even kernel pads 1 before and 2 after; odd sizes drop the last row/column
    ((15, 13, 3), dict(conv_blocks=2, convs_per_block=1, kernel_size=4, padding="same"),
     [(15, 13, [[0, 0], [1, 1], [1, 1], [0, 0]]), (7, 6, [[0, 0], [1, 1], [1, 2], [0, 0]])]),
    # a 5x5 kernel before average pooling of a 9x11 map: one row is never needed at all
    ((9, 11, 1), dict(conv_blocks=1, kernel_size=5, pooling="avg", padding="same"),
     [(9, 11, [[0, 0], [2, 1], [2, 1], [0, 0]])]),
    # the default on 28x28: 26 pools evenly; 13 -> 11 pooled to 5 reads 10, so 12 input rows;
    # 5 -> 3 is not pooled
    ((28, 28, 1), dict(), [None, (12, 12, [[0, 0], [0, 0], [0, 0], [0, 0]]), None]),
])
def test_inference_skips_outputs_the_pooling_drops(monkeypatch, shape, params, windows):
    """Odd-sized maps before "valid" pooling: only the used outputs are computed, same numbers."""
    from skimgclf import CNNClassifier
    from skimgclf.model import inference as _classifier
    from skimgclf.model.inference import _conv_window, _inference_steps

    monkeypatch.setattr(_classifier, "_TRACE_FROM_PIXELS", 0)
    X = RNG.random((90,) + shape, dtype=np.float32)
    y = np.arange(90) % 3
    clf = CNNClassifier(filters=4, units=8, epochs=1, test_time_flip=False, random_state=0, **params).fit(X, y)
    steps = _inference_steps(clf.model_)
    convs = [i for i, step in enumerate(steps) if step[0] == "conv"]
    sizes = [tuple(steps[i][3].input.shape[1:3]) for i in convs]
    assert [_conv_window(steps, i, *hw) for i, hw in zip(convs, sizes)] == windows
    np.testing.assert_allclose(clf.predict_proba(X), clf.model_.predict(X, verbose=0), atol=1e-5)


@pytest.mark.slow
def test_predicting_with_many_networks_does_not_warn_of_retracing(caplog, monkeypatch):
    """One traced inference graph per network (a grid search fits many): no TensorFlow warning."""
    import logging

    from skimgclf import CNNClassifier
    from skimgclf.model import inference as _classifier

    monkeypatch.setattr(_classifier, "_TRACE_FROM_PIXELS", 0)
    X = RNG.random((40, 8, 8, 1), dtype=np.float32)
    y = np.arange(40) % 2
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for seed in range(7):
            CNNClassifier(conv_blocks=1, filters=4, units=8, epochs=1, random_state=seed).fit(X, y).predict(X)
    assert not [r for r in caplog.records if "run_in_rows" in r.getMessage()]
