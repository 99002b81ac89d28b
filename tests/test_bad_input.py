"""Bad input gets a clear error naming the file, row or parameter.

Each case is one test on real files written in ``tmp_path``; the message the
user sees is quoted (``...`` stands for the temporary folder).

CSV tables
- read by the command line (``skimgclf.io.tables.read_table``/``iter_table``):
  empty file -> ``TableError: .../train.csv: the file is empty (expected a
  header line such as 'id,label')``; header only -> ``.../train.csv: the table
  has a header but no rows``; missing id column -> ``.../train.csv: no column
  'id'; the columns are ['name', 'label'] (choose one with --id-column)``;
  missing label column when training -> ``... no column 'label'; the columns
  are ['id'] (choose one with --label-column)``; an empty label ->
  ``.../train.csv line 3: the label is empty``; bytes that are not UTF-8 ->
  ``.../train.csv line 2: not UTF-8 text (invalid continuation byte at byte 14)``.
- read by the user with pandas and given to a pipeline: a header-only table
  -> ``ValueError: X holds no images (0 samples)``; a missing id column ->
  ``ValueError: the id column 'id' is not in the table; its columns are
  ['name', 'label'] (set id_column=... to choose another)``; a NaN label ->
  ``ValueError: y has a missing or empty label at row 1 (nan); every training
  image needs a label`` (also for ``""`` and ``"  "``); a single class ->
  ``ValueError: y has only 1 class ('cat'); a classifier needs at least 2``;
  labels mixing text and numbers -> ``ValueError: y mixes text labels and
  labels of type int (row 1: 1); use one type for all labels``; an id that
  is not UTF-8 bytes -> ``ValueError: row 0: id b'\\xff' is not valid UTF-8``.
- Policy, duplicate ids: allowed. Every row is a sample of its own: the
  loader returns one image per row (decoded once, thanks to the cache), so
  prediction gives one prediction per row, duplicates included, in order; a
  duplicated training row counts twice.
- Policy, spaces around ids: kept, ids are read exactly as written (``" 7"``
  names `` 7.png``, never ``7.png``); an id of spaces only -> ``ValueError:
  row 1: the id is only whitespace ('   ')``. More in ``test_tables.py``.

Images
- missing file -> ``ImageDecodeError: row 1: no image for id 'nope':
  .../images/nope.png does not exist`` (with or without the cache).
- truncated -> ``row 0: id 'cut': .../cut.png: cannot decode image (image file
  is truncated)``; corrupt pixel data -> ``row 0: id 'bad': .../bad.png: cannot
  decode image (...)``; a text file named .png -> ``row 0: id 'notes':
  .../notes.png: not a readable image file``; a zero-byte file -> ``row 0: id
  'empty': .../empty.png: empty file (0 bytes), not an image``.
- decoded correctly: 16-bit PNG (scaled by 65535, not clipped at 255),
  palette PNG (palette colours, not indices), RGBA (alpha kept in "rgba",
  dropped otherwise), CMYK JPEG (converted to RGB), EXIF-rotated JPEG
  (orientation applied before resizing).
- mixed sizes with ``target_size=None`` -> ``ValueError: row 1: image
  .../big.png has shape (9, 8, 1), but .../0.png has (8, 8, 1); with
  target_size=None all images must have the same size (set
  target_size=(height, width) to resize them)``.
- decompression bombs: see ``test_security.py``.

Parameters
- every public parameter of ``ImageFolderLoader`` and ``CNNClassifier`` with
  an invalid value is rejected at ``fit`` in scikit-learn's words, e.g.
  ``InvalidParameterError: The 'color_mode' parameter of ImageFolderLoader
  must be a str among {...}. Got 'cmyk' instead.``; ``The 'image_dir'
  parameter of ImageFolderLoader must be an existing folder. Got '.../nope'
  instead.``; ``The 'filters' parameter of CNNClassifier must be a positive
  int or a list of 2 positive ints (one per conv block, conv_blocks=2). Got
  [8] instead.``

Shapes at prediction time
- through a pipeline, images of another size or colour mode are converted by
  the loader to the training ``target_size``/``color_mode``: predictions work.
- ``CNNClassifier`` given arrays of another shape -> ``ValueError: X has
  images of shape (9, 8, 1) (height, width, channels), but CNNClassifier's
  network was trained on images of shape (8, 8, 1); load them with the same
  target_size and color_mode``; a 3-D
  array -> ``X must be a 4-D array (n_samples, height, width, channels); got
  3-D shape (8, 8, 1). Reshape your data to (n_samples, height, width,
  channels). For a single image use X[np.newaxis]; ...``; an empty dimension
  -> ``X has images of shape (8, 0, 1) (height, width, channels), but every
  dimension must be at least 1: ...``.
"""

import io
import re
import struct
import zlib

import numpy as np
import pandas as pd
import pytest
from conftest import make_blobs_images, write_images
from PIL import Image
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError

from skimgclf import ImageFolderLoader
from skimgclf.errors import ImageDecodeError


def _cnn(**kw):
    from skimgclf import CNNClassifier

    params = {"conv_blocks": 1, "filters": 8, "units": 16, "epochs": 1, "random_state": 0,
              "validation_split": 0.0}
    params.update(kw)
    return CNNClassifier(**params)


def _loader(folder, **kw):
    kw.setdefault("target_size", (8, 8))
    kw.setdefault("color_mode", "grayscale")
    return ImageFolderLoader(folder, verbose=0, **kw)


@pytest.fixture
def images(tmp_path):
    """``tmp_path/images`` with 0.png ... 5.png (8x8 grayscale, value 40*i)."""
    write_images(tmp_path / "images", [np.full((8, 8), 40 * i) for i in range(6)])
    return tmp_path / "images"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One tiny pipeline trained on 8x8 grayscale blobs (the only training here)."""
    folder = tmp_path_factory.mktemp("fitted")
    X, y = make_blobs_images(24, size=8)
    ids = write_images(folder, X[..., 0])
    labels = np.where(y == 0, "left", "right")
    pipe = make_pipeline(_loader(folder), _cnn()).fit(pd.DataFrame({"id": ids}), labels)
    return pipe, folder, X


# ------------------------------------------------------------------ CSV tables
def _tables():
    return pytest.importorskip("skimgclf.io.tables")


def test_csv_empty_file(tmp_path):
    tables = _tables()
    path = tmp_path / "train.csv"
    path.write_bytes(b"")
    with pytest.raises(tables.TableError, match=re.escape(
            f"{path}: the file is empty (expected a header line such as 'id,label')")):
        tables.read_table(path, label_column="label")
    with pytest.raises(tables.TableError, match="the file is empty"):
        list(tables.iter_table(path))


def test_csv_header_only(tmp_path, images):
    tables = _tables()
    path = tmp_path / "train.csv"
    path.write_text("id,label\n")
    with pytest.raises(tables.TableError, match=re.escape(f"{path}: the table has a header but no rows")):
        tables.read_table(path, label_column="label")
    with pytest.raises(tables.TableError, match="the table has a header but no rows"):
        list(tables.iter_table(path))
    df = pd.read_csv(path)  # the Python API: a detecting loader has nothing to decide from
    with pytest.raises(ValueError, match=re.escape("cannot decide color_mode and target_size")):
        make_pipeline(ImageFolderLoader(images), _cnn()).fit(df, df["label"])
    # one told the settings loads nothing, and the classifier refuses an empty training set
    with pytest.raises(ValueError, match=re.escape("X holds no images (0 samples)")):
        make_pipeline(_loader(images), _cnn()).fit(df, df["label"])


def test_csv_missing_id_column(tmp_path, images):
    tables = _tables()
    path = tmp_path / "train.csv"
    path.write_text("name,label\n0,a\n1,b\n")
    with pytest.raises(tables.TableError, match=re.escape(
            f"{path}: no column 'id'; the columns are ['name', 'label'] (choose one with --id-column)")):
        tables.read_table(path, label_column="label")
    with pytest.raises(ValueError, match=re.escape(
            "the id column 'id' is not in the table; its columns are ['name', 'label'] "
            "(set id_column=... to choose another)")):
        _loader(images).fit_transform(pd.read_csv(path))
    assert _loader(images, id_column="name").fit_transform(pd.read_csv(path)).shape == (2, 8, 8, 1)


def test_csv_missing_label_column_for_training(tmp_path):
    tables = _tables()
    path = tmp_path / "train.csv"
    path.write_text("id\n0\n1\n")
    with pytest.raises(tables.TableError, match=re.escape(
            f"{path}: no column 'label'; the columns are ['id'] (choose one with --label-column)")):
        tables.read_table(path, label_column="label")
    assert len(tables.read_table(path)) == 2  # fine for prediction


def test_csv_duplicate_ids_each_row_gets_its_image_and_prediction(fitted):
    pipe, folder, X = fitted
    ids = ["3", "3", "0", "3"]
    images = _loader(folder, scale=None).fit_transform(ids)
    assert images.shape == (4, 8, 8, 1)
    np.testing.assert_array_equal(images[0], images[1])
    np.testing.assert_array_equal(images[0, ..., 0], X[3, ..., 0])
    pred = pipe.predict(pd.DataFrame({"id": ids}))
    assert pred.shape == (4,) and pred[0] == pred[1] == pred[3]


def test_csv_empty_or_nan_label_names_the_row(tmp_path, images):
    tables = _tables()
    path = tmp_path / "train.csv"
    path.write_text("id,label\n0,a\n1,\n2,b\n")
    with pytest.raises(tables.TableError, match=re.escape(f"{path} line 3: the label is empty")):
        tables.read_table(path, label_column="label")
    df = pd.read_csv(path)  # pandas reads the empty cell as NaN
    assert df["label"].isna().sum() == 1
    pipe = make_pipeline(_loader(images), _cnn())
    with pytest.raises(ValueError, match=re.escape(
            "y has a missing or empty label at row 1 (nan); every training image needs a label")):
        pipe.fit(df, df["label"])
    for blank in ("", "  "):
        with pytest.raises(ValueError, match="y has a missing or empty label at row 2"):
            pipe.fit(df, ["a", "b", blank])
    with pytest.raises(ValueError, match=re.escape("y has a missing label (NaN) at row 1")):
        pipe.fit(df, [0.0, np.nan, 1.0])


def test_csv_single_class(tmp_path, images):
    path = tmp_path / "train.csv"
    path.write_text("id,label\n0,cat\n1,cat\n2,cat\n")
    df = pd.read_csv(path)
    with pytest.raises(ValueError, match=re.escape("y has only 1 class ('cat'); a classifier needs at least 2")):
        make_pipeline(_loader(images), _cnn()).fit(df, df["label"])


def test_labels_mixing_text_and_numbers(images):
    with pytest.raises(ValueError, match=re.escape(
            "y mixes text labels and labels of type int (row 1: 1); use one type for all labels")):
        make_pipeline(_loader(images), _cnn()).fit(["0", "1", "2"], np.array(["a", 1, "b"], dtype=object))


def test_csv_ids_with_surrounding_spaces_are_kept(tmp_path, images):
    path = tmp_path / "test.csv"
    path.write_text("id\n 1\n2 \n\t3 \n")
    for name, value in ((" 1", 200), ("2 ", 210), ("\t3 ", 220)):
        write_images(images, [np.full((8, 8), value)], ids=[name])
    X = _loader(images, scale=None).fit_transform(pd.read_csv(path, dtype=str))
    assert X[:, 0, 0, 0].tolist() == [200, 210, 220]
    tables = _tables()
    X = _loader(images, scale=None).fit_transform(tables.read_table(path))
    assert X[:, 0, 0, 0].tolist() == [200, 210, 220]
    with pytest.raises(ValueError, match=re.escape("row 1: the id is only whitespace ('   ')")):
        _loader(images).fit_transform(["1", "   "])


def test_csv_not_utf8(tmp_path):
    tables = _tables()
    path = tmp_path / "train.csv"
    path.write_bytes("id,label\n0,caf\u00e9\n1,b\n".encode("latin-1"))
    with pytest.raises(tables.TableError) as info:
        tables.read_table(path, label_column="label")
    assert str(info.value) == f"{path} line 2: not UTF-8 text (invalid continuation byte at byte 14)"
    with pytest.raises(tables.TableError, match=re.escape(f"{path} line 2: not UTF-8 text")):
        list(tables.iter_table(path, label_column="label"))


def test_id_bytes_not_utf8(images):
    with pytest.raises(ValueError, match=re.escape("row 0: id b'\\xff' is not valid UTF-8")):
        _loader(images).fit_transform(np.array([b"\xff"], dtype=object))


# ---------------------------------------------------------------------- images
@pytest.mark.parametrize("cache", [True, False])
def test_missing_image_names_row_id_and_path(images, cache):
    with pytest.raises(ImageDecodeError, match=re.escape(
            f"row 1: no image for id 'nope': no file nope or nope.<image extension> in {images}")):
        _loader(images, cache=cache).fit_transform(["0", "nope"])
    with pytest.raises(ImageDecodeError, match=re.escape(  # a suffix given: the one file it names
            f"row 1: no image for id 'nope': {images / 'nope.png'} does not exist")):
        _loader(images, cache=cache, suffix=".png").fit_transform(["0", "nope"])


def _png_bytes(arr):
    buf = io.BytesIO()
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("cache", [True, False])
def test_truncated_image(images, cache):
    data = _png_bytes(np.random.default_rng(0).integers(0, 255, (8, 8)))
    (images / "cut.png").write_bytes(data[: len(data) - 30])
    with pytest.raises(ImageDecodeError, match=re.escape(
            f"row 0: id 'cut': {images / 'cut.png'}: cannot decode image (image file is truncated)")):
        _loader(images, cache=cache).fit_transform(["cut"])


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.mark.parametrize("cache", [True, False])
def test_corrupt_pixel_data(images, cache):
    """A structurally valid PNG (right chunks and CRCs) whose compressed pixel data is garbage."""
    ihdr = struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0)
    garbage = bytes(np.random.default_rng(1).integers(0, 256, 40, dtype=np.uint8))
    (images / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", garbage)
                                     + _chunk(b"IEND", b""))
    with pytest.raises(ImageDecodeError) as info:
        _loader(images, cache=cache).fit_transform(["0", "bad"])
    assert str(info.value).startswith(f"row 1: id 'bad': {images / 'bad.png'}: cannot decode image (")


def test_text_file_named_png(images):
    (images / "notes.png").write_text("id,label\nthis is not an image\n")
    with pytest.raises(ImageDecodeError, match=re.escape(
            f"row 0: id 'notes': {images / 'notes.png'}: not a readable image file")):
        _loader(images).fit_transform(["notes"])


def test_zero_byte_file(images):
    (images / "empty.png").write_bytes(b"")
    with pytest.raises(ImageDecodeError, match=re.escape(
            f"row 0: id 'empty': {images / 'empty.png'}: empty file (0 bytes), not an image")):
        _loader(images).fit_transform(["empty"])


def test_16bit_png_is_scaled_not_clipped(images):
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16).repeat(2, axis=0)
    Image.fromarray(values).save(images / "deep.png")
    assert Image.open(images / "deep.png").mode.startswith("I")
    X = _loader(images, target_size=None).fit_transform(["deep"])
    np.testing.assert_allclose(X[0, 0, :, 0], values[0] / 65535, atol=1 / 255)
    assert 0.45 < X[0, 0, 2, 0] < 0.55  # clipping at 255 would give 1.0


def test_palette_png_uses_palette_colours(images):
    img = Image.fromarray(np.array([[0, 1], [2, 1]], dtype=np.uint8), mode="P")
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    img.save(images / "pal.png")
    assert Image.open(images / "pal.png").mode == "P"
    X = _loader(images, target_size=None, color_mode="rgb", scale=None).fit_transform(["pal"])
    assert X[0, 0, 1].tolist() == [255, 0, 0] and X[0, 1, 0].tolist() == [0, 0, 255]
    gray = _loader(images, target_size=None, scale=None).fit_transform(["pal"])
    assert gray[0, 0, 1, 0] == 76  # luminance of pure red (ITU-R 601-2), not the index 1


def test_rgba_png(images):
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., 1] = 200
    arr[..., 3] = 128
    Image.fromarray(arr, mode="RGBA").save(images / "alpha.png")
    rgba = _loader(images, target_size=None, color_mode="rgba", scale=None).fit_transform(["alpha"])
    assert rgba.shape == (1, 4, 4, 4) and rgba[0, 0, 0].tolist() == [0, 200, 0, 128]
    rgb = _loader(images, target_size=None, color_mode="rgb", scale=None).fit_transform(["alpha"])
    assert rgb.shape == (1, 4, 4, 3) and rgb[0, 0, 0].tolist() == [0, 200, 0]


def test_cmyk_jpeg(images):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(images / "red.jpg", quality=95)
    assert Image.open(images / "red.jpg").mode == "CMYK"
    X = _loader(images, target_size=None, color_mode="rgb", scale=None, suffix=".jpg").fit_transform(["red"])
    r, g, b = X[0, 4, 4]
    assert r > 240 and g < 15 and b < 15


def test_exif_rotated_jpeg(images):
    arr = np.zeros((8, 16), np.uint8)  # 16 wide, 8 high; bright left half
    arr[:, :8] = 255
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    img.save(images / "rot.jpg", exif=exif, quality=95)
    X = _loader(images, target_size=None, scale=None, suffix=".jpg").fit_transform(["rot"])
    assert X.shape == (1, 16, 8, 1)  # displayed portrait
    assert X[0, :6, :, 0].mean() > 200 and X[0, 10:, :, 0].mean() < 50  # left half is now on top
    X = _loader(images, target_size=(4, 2), scale=None, suffix=".jpg").fit_transform(["rot"])
    assert X[0, 0, :, 0].mean() > 200 and X[0, 3, :, 0].mean() < 50


def test_mixed_sizes_without_target_size_names_both_files(images):
    write_images(images, [np.zeros((9, 8))], ids=["big"])
    with pytest.raises(ValueError, match=re.escape(
            f"row 1: image {images / 'big.png'} has shape (9, 8, 1), but {images / '0.png'} has (8, 8, 1); "
            "with target_size=None all images must have the same size (set target_size=(height, width) "
            "to resize them)")):
        _loader(images, target_size=None).fit_transform(["0", "big"])


# ------------------------------------------------------------------ parameters
LOADER_BAD = {
    "image_dir": ["does-not-exist", 3],
    "id_column": [None, 1.5],
    "suffix": [5, b".png"],
    "target_size": [(0, 8), (8,), "8x8", (8.0, 8), (True, 8), (20000, 8)],
    "color_mode": ["cmyk", None],
    "scale": ["minmax", 255],
    "cache": ["yes"],
    "cache_dir": [3, ["a"]],
    "max_pixels": [0, 1.5],
    "n_jobs": [0, 1.5],
    "verbose": [-1, "loud"],
}
CNN_BAD = {
    "backbone": ["mobilenet", "resnet"],
    "backbone_weights": [3, ["imagenet"]],
    "freeze_epochs": [-1, "half"],
    "fine_tune_fraction": [1.5, -0.1],
    "fine_tune_learning_rate": [0, "fast"],
    "conv_blocks": [-1, 1.5],
    "filters": [0, [8, 8], "8"],
    "convs_per_block": [0],
    "pool_after": [0, "first"],
    "kernel_size": [0],
    "padding": ["full", None],
    "pooling": ["min"],
    "batch_norm": ["yes"],
    "conv_dropout": [1.0, -0.1],
    "global_pooling": ["sum"],
    "hidden_layers": [-1],
    "units": [0, [16, 16]],
    "activation": ["foo", None],
    "dropout": [1.0],
    "random_shift": [2.0, "on"],
    "random_rotation": [-1, "Auto"],
    "random_zoom": [1.0, None],
    "random_flip": ["diagonal"],
    "optimizer": ["lbfgs"],
    "learning_rate": [0, -1e-3],
    "lr_schedule": ["step"],
    "label_smoothing": [1.0, -0.1, "0.1"],
    "precision": ["float16", "bf16", None],
    "warm_start": ["yes", 2],
    "epochs": [0],
    "batch_size": [0],
    "validation_split": [1.0],
    "early_stopping": ["no"],
    "patience": [-1],
    "class_weight": ["auto"],
    "test_time_flip": ["yes", 2],
    "random_state": ["seed"],
    "verbose": [-1],
}


def _cases(table):
    return [pytest.param(name, value, id=f"{name}={value!r}") for name, values in table.items() for value in values]


def test_every_public_parameter_has_an_invalid_value_case():
    from skimgclf import CNNClassifier

    assert set(LOADER_BAD) == set(ImageFolderLoader().get_params())
    assert set(CNN_BAD) == set(CNNClassifier().get_params())


def _expect_param_error(name, cls_name, call):
    with pytest.raises(ValueError) as info:  # InvalidParameterError is a ValueError
        call()
    msg = str(info.value)
    assert msg.startswith(f"The '{name}' parameter of {cls_name} must be "), msg
    assert re.search(r"Got .* instead\.$", msg), msg


@pytest.mark.parametrize("name, value", _cases(LOADER_BAD))
def test_invalid_loader_parameter_rejected_at_fit(images, monkeypatch, name, value):
    monkeypatch.chdir(images)
    loader = ImageFolderLoader(**{"image_dir": images, name: value})  # __init__ only stores
    assert loader.get_params()[name] == value
    _expect_param_error(name, "ImageFolderLoader", lambda: loader.fit(["0"]))
    _expect_param_error(name, "ImageFolderLoader", lambda: loader.transform(["0"]))


@pytest.mark.parametrize("name, value", _cases(CNN_BAD))
def test_invalid_classifier_parameter_rejected_at_fit(name, value):
    X = np.zeros((4, 8, 8, 1), np.float32)
    clf = _cnn(**{name: value})
    _expect_param_error(name, "CNNClassifier", lambda: clf.fit(X, [0, 1, 0, 1]))
    assert not hasattr(clf, "model_")


def test_invalid_parameter_message_is_sklearns(images):
    with pytest.raises(InvalidParameterError, match=re.escape(
            "The 'color_mode' parameter of ImageFolderLoader must be a str among")):
        _loader(images, color_mode="cmyk").fit(["0"])
    with pytest.raises(ValueError, match=re.escape(
            f"The 'image_dir' parameter of ImageFolderLoader must be an existing folder. "
            f"Got '{images / 'nope'}' instead.")):
        _loader(images / "nope").fit(["0"])


# ----------------------------------------------------- shapes at prediction time
def test_pipeline_converts_other_sizes_and_colours(fitted, tmp_path):
    pipe, _, X = fitted
    other = tmp_path / "other"
    big_rgb = [np.repeat(np.kron(X[i, ..., 0], np.ones((2, 2), np.uint8))[..., None], 3, axis=2) for i in range(4)]
    write_images(other, big_rgb)  # 16x16 RGB instead of 8x8 grayscale
    pipe.set_params(imagefolderloader__image_dir=other)
    try:
        pred = pipe.predict([0, 1, 2, 3])
    finally:
        pipe.set_params(imagefolderloader__image_dir=fitted[1])
    assert pred.shape == (4,) and set(pred) <= {"left", "right"}


@pytest.mark.parametrize("shape", [(2, 9, 8, 1), (2, 8, 8, 3)])
def test_classifier_wrong_shape_names_both_shapes(fitted, shape):
    clf = fitted[0][-1]
    with pytest.raises(ValueError, match=re.escape(
            f"X has images of shape {shape[1:]} (height, width, channels), but CNNClassifier's network "
            "was trained on images of shape (8, 8, 1); load them with the same target_size and color_mode")):
        clf.predict(np.zeros(shape, np.float32))


@pytest.mark.parametrize("shape", [(3, 0, 8, 1), (3, 8, 0, 1), (3, 8, 8, 0), (3, 0, 0, 0)])
@pytest.mark.parametrize("method", ["fit", "predict", "predict_proba"])
def test_classifier_empty_image_dimension_is_a_clear_error(fitted, shape, method):
    """Images with no rows, columns or channels never reach TensorFlow."""
    clf = fitted[0][-1]
    X = np.zeros(shape, np.float32)
    call = (lambda: clone(clf).fit(X, [0, 1, 0])) if method == "fit" else (lambda: getattr(clf, method)(X))
    with pytest.raises(ValueError, match=re.escape(
            f"X has images of shape {shape[1:]} (height, width, channels), but every dimension must be "
            "at least 1")):
        call()


def test_classifier_3d_array_gets_a_hint(fitted):
    with pytest.raises(ValueError, match=re.escape(
            "X must be a 4-D array (n_samples, height, width, channels); got 3-D shape (8, 8, 1). "
            "Reshape your data to (n_samples, height, width, channels). For a single image use "
            "X[np.newaxis]")):
        fitted[0][-1].predict(np.zeros((8, 8, 1), np.float32))
