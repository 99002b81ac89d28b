"""Security: no input makes skimgclf read outside its image folder or run code.

Cases (each one test on real files; the message the user sees is quoted):

Paths (``ImageFolderLoader``; every id is resolved before any file is opened)
- ``../secret``, ``a/../../b``, ``..\\x`` (Windows style, refused on every OS),
  ``/etc/passwd``, ``C:/x``: ``ValueError: row 0: id '../secret' points
  outside the image folder /.../images; refused``.
- an id with a NUL byte: ``ValueError: row 0: id 'a\\x00b' contains a NUL
  byte; refused``.
- a symbolic link inside the folder that points outside it: ``ValueError:
  row 0: id 'link' resolves to /.../secret.png, outside the image folder
  /.../images (a symbolic link?); refused``; the same for a link to a folder.
  A spy on ``open``/``PIL.Image.open`` shows the target is never opened,
  although it is a valid PNG.
- links that stay inside the folder are followed.
- the same holds for large tables (ids resolved from one folder listing) and
  after a cached load when a file is replaced by a link that leaves the
  folder: ``ValueError: row 5: id '5' resolves to /.../secret.png, outside
  the image folder ...``.

Decompression bombs (``max_pixels``, default 64 million)
- a 100-byte PNG whose header declares 9000x9000 pixels: ``ImageDecodeError:
  row 1: id 'bomb': /.../bomb.png: image of 9000x9000 pixels exceeds
  max_pixels=64000000 (possible decompression bomb); refused before decoding``.
- one declaring 100000x100000 (beyond Pillow's own hard limit, which Image.open
  enforces): ``ImageDecodeError: row 1: id 'bomb': /.../bomb.png: Image size
  (10000000000 pixels) exceeds limit of 178956970 pixels, could be decompression
  bomb DOS attack. (possible decompression bomb; Pillow's limit,
  PIL.Image.MAX_IMAGE_PIXELS, applies whatever max_pixels is); refused before
  decoding``.
- a real 16x16 PNG with ``max_pixels=100``: the same message; pixel data is
  never decoded (a spy on ``ImageFile.load``).

Model files (``skimgclf.load`` runs no code from the file)
- a file that names an estimator outside skimgclf (``"class": "Popen"``):
  ``ModelFileError: ...: unknown estimator 'Popen'; a skimgclf model file may
  only name ['CNNClassifier', 'ImageFolderLoader', 'Pipeline']; refused``.
- a Pipeline with a ``memory`` parameter (would unpickle cached results):
  ``ModelFileError: ...: unknown parameters ['memory'] for Pipeline; refused``.
- a network with a Lambda layer, checksums recomputed by the attacker:
  ``ModelFileError: ...: the network cannot be loaded safely (Requested the
  deserialization of a `Lambda` layer ... `safe_mode=True` ...)``; the lambda
  (which would create a marker file) never runs. A control shows the same
  file does run it with ``safe_mode=False``.
- the same file after ``keras.config.enable_unsafe_deserialization()`` was
  called somewhere in the process (a process-wide flag that overrides
  ``safe_mode=True`` in Keras 3): still refused; the caller's flag is restored.
- a network whose config names a class outside Keras (``os.system``):
  refused with ``ModelFileError ... cannot be loaded safely``; nothing runs.
- malformed descriptions (steps that are not a list, parameters that are not
  a dict, an unknown ``__set__`` marker, a missing network member, JSON nested
  100000 deep): ``ModelFileError: ...: malformed model description (...);
  refused`` / ``unexpected object in parameters`` / ``missing member
  model_0.keras`` / ``unreadable manifest``; never an uncaught KeyError or
  RecursionError.
- a pickle/joblib file: ``ModelFileError: ...: not a skimgclf model file, or
  truncated or corrupt (File is not a zip file); it looks like a pickle or
  joblib file, which skimgclf.load never opens because loading a pickle
  (joblib.load) runs code from the file ...``; the pickle's payload never runs.
- the warning that ``joblib.load`` executes code is in the docstrings of
  ``skimgclf.save`` and ``skimgclf.load`` and in the help of ``skimgclf
  train/predict/evaluate`` ("joblib and pickle files are not accepted:
  loading one runs whatever code it contains").
"""

import builtins
import hashlib
import io
import json
import os
import struct
import zipfile
import zlib

import numpy as np
import pytest
from conftest import write_images
from PIL import Image, ImageFile

import skimgclf
from skimgclf import ImageFolderLoader, ModelFileError
from skimgclf.errors import ImageDecodeError


# ------------------------------------------------------------------- helpers
def _png(path, arr):
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(path)


@pytest.fixture
def folder(tmp_path):
    """``tmp_path/images`` with two valid PNGs, and a valid ``tmp_path/secret.png`` outside it."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        _png(images / f"{i}.png", np.full((8, 8), 40 * i))
    _png(tmp_path / "secret.png", np.full((8, 8), 200))
    (images / "sub").mkdir()
    _png(images / "sub" / "ok.png", np.full((8, 8), 90))
    return images


def _loader(images, **kw):
    kw.setdefault("target_size", (8, 8))
    return ImageFolderLoader(images, verbose=0, cache=False, **kw)


class _OpenSpy:
    """Records every path given to ``builtins.open`` and ``PIL.Image.open``."""

    def __init__(self, monkeypatch):
        self.paths = []
        real_open, real_pil_open = builtins.open, Image.open

        def spy_open(file, *a, **k):
            self.paths.append(os.fspath(file) if isinstance(file, (str, os.PathLike)) else file)
            return real_open(file, *a, **k)

        def spy_pil_open(fp, *a, **k):
            self.paths.append(os.fspath(fp) if isinstance(fp, (str, os.PathLike)) else fp)
            return real_pil_open(fp, *a, **k)

        monkeypatch.setattr(builtins, "open", spy_open)
        monkeypatch.setattr(Image, "open", spy_pil_open)

    def opened(self, name):
        return [p for p in self.paths if isinstance(p, str) and os.path.basename(p) == name]


# --------------------------------------------------------------------- paths
@pytest.mark.parametrize("bad_id", ["../secret", "a/../../secret", "..\\secret", "sub/../../secret",
                                    "..", "./../secret"])
def test_parent_traversal_ids_are_refused_and_never_read(folder, monkeypatch, bad_id):
    spy = _OpenSpy(monkeypatch)
    with pytest.raises(ValueError, match=r"row 1: id .* points outside the image folder .*; refused"):
        _loader(folder).fit_transform(["0", bad_id])
    assert spy.opened("secret.png") == []
    assert spy.opened("0.png") == []  # every id is checked before any image is read


@pytest.mark.parametrize("bad_id", ["/etc/passwd", "C:/Windows/win.ini", "c:secret", "\\\\server\\share\\x"])
def test_absolute_ids_are_refused(folder, bad_id):
    with pytest.raises(ValueError, match=r"row 0: id .* points outside the image folder"):
        _loader(folder).fit_transform([bad_id])


def test_absolute_id_to_a_real_image_is_refused(folder, monkeypatch):
    """Refused even when the absolute path names a decodable image."""
    target = str(folder.parent / "secret.png")
    spy = _OpenSpy(monkeypatch)
    with pytest.raises(ValueError, match="points outside the image folder"):
        _loader(folder).fit_transform([target])
    assert spy.opened("secret.png") == []


def test_nul_byte_in_id_is_refused(folder):
    with pytest.raises(ValueError, match=r"row 0: id 'a\\x00b' contains a NUL byte; refused"):
        _loader(folder).fit_transform(["a\x00b"])


def test_symlink_to_a_file_outside_is_refused_and_never_read(folder, monkeypatch):
    os.symlink(folder.parent / "secret.png", folder / "link.png")
    spy = _OpenSpy(monkeypatch)
    with pytest.raises(ValueError) as info:
        _loader(folder).fit_transform(["0", "link"])
    msg = str(info.value)
    assert "row 1: id 'link' resolves to" in msg
    assert "secret.png, outside the image folder" in msg and "(a symbolic link?); refused" in msg
    assert spy.opened("secret.png") == [] and spy.opened("link.png") == []


def test_symlinked_folder_pointing_outside_is_refused(folder, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    _png(outside / "x.png", np.zeros((8, 8)))
    os.symlink(outside, folder / "door")
    with pytest.raises(ValueError, match=r"row 0: id 'door/x' resolves to .*outside the image folder"):
        _loader(folder).fit_transform(["door/x"])


def test_symlinks_that_stay_inside_are_followed(folder):
    os.symlink(folder / "1.png", folder / "alias.png")
    X = _loader(folder, scale=None).fit_transform(["alias", "sub/ok"])
    assert X[0, 0, 0, 0] == 40 and X[1, 0, 0, 0] == 90


def test_image_dir_itself_may_be_a_symlink(folder, tmp_path):
    os.symlink(folder, tmp_path / "images_link")
    X = _loader(tmp_path / "images_link", scale=None).fit_transform(["1"])
    assert X[0, 0, 0, 0] == 40


# --------------------------------------------------------- decompression bombs
def _png_header_only(path, width, height):
    """A valid PNG signature and IHDR declaring ``width x height``, one tiny IDAT, IEND."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) \
        + chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


def _forbid_decoding_larger_than(monkeypatch, n_pixels):
    real_load = ImageFile.ImageFile.load

    def load(self):
        if self.size[0] * self.size[1] > n_pixels:
            pytest.fail(f"pixel data of a {self.size} image decoded")
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


@pytest.mark.parametrize("side, expected", [
    (9_000, ("image of 9000x9000 pixels exceeds max_pixels=64000000 (possible decompression bomb); "
             "refused before decoding")),
    (100_000, ("Image size (10000000000 pixels) exceeds limit of 178956970 pixels, could be decompression "
               "bomb DOS attack. (possible decompression bomb; Pillow's limit, PIL.Image.MAX_IMAGE_PIXELS, "
               "applies whatever max_pixels is); refused before decoding")),
])
def test_png_declaring_huge_dimensions_is_refused_before_decoding(folder, monkeypatch, side, expected):
    path = _png_header_only(folder / "bomb.png", side, side)
    assert path.stat().st_size < 200
    _forbid_decoding_larger_than(monkeypatch, 64)
    with pytest.raises(ImageDecodeError) as info:
        _loader(folder).fit_transform(["0", "bomb"])
    assert str(info.value) == f"row 1: id 'bomb': {path}: {expected}"


def test_lowered_max_pixels_refuses_a_real_image_before_decoding(folder, monkeypatch):
    _png(folder / "big.png", np.zeros((16, 16)))
    assert _loader(folder, target_size=None).fit_transform(["big"]).shape == (1, 16, 16, 1)
    _forbid_decoding_larger_than(monkeypatch, 64)
    with pytest.raises(ImageDecodeError,
                       match=r"big\.png: image of 16x16 pixels exceeds max_pixels=100 "
                             r"\(possible decompression bomb\); refused before decoding"):
        _loader(folder, max_pixels=100).fit_transform(["big"])


# ----------------------------------------------------------------- model files
def _write_model_zip(path, manifest, extra=None):
    """A skimgclf model file with checksums recomputed, as an attacker would."""
    members = {"skimgclf.json": json.dumps(manifest).encode()}
    members.update(extra or {})
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in members.items())
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("SHA256SUMS", sums)
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _manifest(estimator):
    return {"format": "skimgclf-model", "format_version": 1, "estimator": estimator}


def _fitted_node(model_member="model_0.keras"):
    return {"class": "CNNClassifier", "params": {},
            "fitted": {"model": model_member, "classes": {"dtype": "str", "values": ["a", "b"]},
                       "image_shape": [4, 4, 1], "history": {}}}


def test_unknown_estimator_class_is_refused(tmp_path):
    path = _write_model_zip(tmp_path / "m.skimgclf", _manifest(
        {"class": "Popen", "params": {"args": ["touch", str(tmp_path / "pwned")]}}))
    with pytest.raises(ModelFileError, match=r"unknown estimator 'Popen'; a skimgclf model file may only "
                                             r"name \['CNNClassifier', 'ImageFolderLoader', 'Pipeline'\]"):
        skimgclf.load(path)
    assert not (tmp_path / "pwned").exists()


def test_pipeline_memory_parameter_is_refused(tmp_path):
    loader = {"class": "ImageFolderLoader", "params": {}}
    path = _write_model_zip(tmp_path / "m.skimgclf", _manifest(
        {"class": "Pipeline", "params": {"memory": str(tmp_path)}, "steps": [["load", loader]]}))
    with pytest.raises(ModelFileError, match=r"unknown parameters \['memory'\] for Pipeline; refused"):
        skimgclf.load(path)


def test_unknown_estimator_parameter_is_refused(tmp_path):
    path = _write_model_zip(tmp_path / "m.skimgclf", _manifest(
        {"class": "ImageFolderLoader", "params": {"__class__": "x"}}))
    with pytest.raises(ModelFileError, match=r"unknown parameters \['__class__'\] for ImageFolderLoader"):
        skimgclf.load(path)


@pytest.fixture(scope="module")
def lambda_keras(tmp_path_factory):
    """A .keras network with a Lambda layer that creates a marker file when it runs."""
    import keras

    tmp = tmp_path_factory.mktemp("lambda")
    marker = tmp / "lambda_ran"
    fn = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]")
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Lambda(fn)(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    marker.unlink()  # building the model ran it once
    file = tmp / "evil.keras"
    model.save(file)
    assert not marker.exists()
    return file, marker


def test_lambda_layer_control_runs_code_without_safe_mode(lambda_keras):
    """The crafted network really does run code when loaded unsafely (so the next test can fail)."""
    import keras

    file, marker = lambda_keras
    keras.saving.load_model(file, safe_mode=False)
    assert marker.exists()
    marker.unlink()


def test_lambda_layer_is_refused_by_safe_mode(lambda_keras, tmp_path):
    file, marker = lambda_keras
    path = _write_model_zip(tmp_path / "m.skimgclf", _manifest(_fitted_node()),
                            {"model_0.keras": file.read_bytes()})
    with pytest.raises(ModelFileError, match=r"the network cannot be loaded safely \(it names "
                                             r"keras\.layers\.Lambda, which is not something skimgclf builds\)"):
        skimgclf.load(path)
    assert not marker.exists()


def test_lambda_layer_is_refused_by_keras_safe_mode_too(lambda_keras, tmp_path, monkeypatch):
    """Second line of defence: with skimgclf's own config check switched off, Keras' safe mode refuses."""
    from skimgclf.model import netcheck

    monkeypatch.setattr(netcheck, "_check", lambda *args: 0)
    file, marker = lambda_keras
    path = _write_model_zip(tmp_path / "m.skimgclf", _manifest(_fitted_node()),
                            {"model_0.keras": file.read_bytes()})
    with pytest.raises(ModelFileError) as info:
        skimgclf.load(path)
    msg = str(info.value)
    assert "the network cannot be loaded safely" in msg and "Lambda" in msg and "safe_mode" in msg
    assert not marker.exists()


def test_keras_config_naming_a_foreign_function_is_refused(tmp_path):
    import keras

    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    good = io.BytesIO()
    model.save(tmp_path / "good.keras")
    with zipfile.ZipFile(tmp_path / "good.keras") as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(parts["config.json"])
    dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
    marker = tmp_path / "pwned"
    dense["config"]["activation"] = {"module": "os", "class_name": "function", "config": "system",
                                     "registered_name": "system"}
    dense["config"]["kernel_initializer"] = {"module": "subprocess", "class_name": "Popen",
                                             "config": {"args": ["touch", str(marker)]}}
    parts["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(good, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    path = _write_model_zip(tmp_path / "m.skimgclf", _manifest(_fitted_node()),
                            {"model_0.keras": good.getvalue()})
    with pytest.raises(ModelFileError, match="the network cannot be loaded safely"):
        skimgclf.load(path)
    assert not marker.exists()


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("compress", [0, 3])
def test_joblib_file_is_refused_without_unpickling(tmp_path, compress):
    import joblib

    marker = str(tmp_path / "unpickled")
    path = tmp_path / "model.joblib"
    joblib.dump(_Payload(marker), path, compress=compress)
    with pytest.raises(ModelFileError) as info:
        skimgclf.load(path)
    msg = str(info.value)
    assert "not a skimgclf model file" in msg
    assert "looks like a pickle or joblib file" in msg and "runs code from the file" in msg
    assert not os.path.exists(marker)
    joblib.load(path)  # control: joblib does run the payload
    assert os.path.exists(marker)


def test_docstrings_warn_that_joblib_load_executes_code():
    for func in (skimgclf.save, skimgclf.load):
        doc = " ".join(func.__doc__.split())
        assert "joblib.load" in doc and "execute code" in doc, func.__name__


def test_cli_help_warns_that_joblib_files_run_code(capsys):
    cli = pytest.importorskip("skimgclf.cli")
    from skimgclf.cli.parser import MODEL_FILES_HELP

    # The warning's meaning (docs/security.rst): joblib and pickle files are refused, for loading one runs
    # code; a model of one's own is re-saved with skimgclf.save. Its wording is the parser's to choose.
    warning = " ".join(MODEL_FILES_HELP.split())
    for phrase in ("joblib", "pickle", "not accepted", "code", "skimgclf.save"):
        assert phrase in warning, phrase
    for name in ("train", "predict", "evaluate"):  # the help each command prints, as a user asks for it
        with pytest.raises(SystemExit) as exited:
            cli.build_parser().parse_args([name, "--help"])
        assert exited.value.code == 0
        assert warning in " ".join(capsys.readouterr().out.split()), name


# ------------------------------------------------ the loader's fast paths too
def test_symlink_refused_among_many_ids(folder, monkeypatch):
    """Large tables resolve ids from one folder listing; links still go through the checks."""
    write_images(folder, [np.full((8, 8), i) for i in range(70)])
    os.symlink(folder.parent / "secret.png", folder / "link.png")
    spy = _OpenSpy(monkeypatch)
    ids = [str(i) for i in range(70)]
    with pytest.raises(ValueError, match=r"row 70: id 'link' resolves to .*secret\.png, outside the image folder"):
        _loader(folder).fit_transform(ids + ["link"])
    assert spy.opened("secret.png") == [] and spy.opened("link.png") == []


def test_file_swapped_for_an_outside_link_after_a_cached_load(folder):
    """A table loaded once (and cached) is checked again after a file becomes a link outside."""
    write_images(folder, [np.full((8, 8), i) for i in range(70)])
    ids = [str(i) for i in range(70)]
    loader = ImageFolderLoader(folder, target_size=(8, 8), color_mode="grayscale", verbose=0, cache=True)
    assert loader.fit_transform(ids).shape == (70, 8, 8, 1)
    os.unlink(folder / "5.png")
    os.symlink(folder.parent / "secret.png", folder / "5.png")
    with pytest.raises(ValueError, match=r"row 5: id '5' resolves to .*secret\.png, outside the image folder"):
        loader.fit_transform(ids)


def test_safe_mode_holds_even_after_keras_unsafe_deserialization_was_enabled(lambda_keras, tmp_path):
    """``keras.config.enable_unsafe_deserialization()`` (by any library) must not open the door."""
    from keras.src.saving import serialization_lib

    file, marker = lambda_keras
    path = _write_model_zip(tmp_path / "m.skimgclf", _manifest(_fitted_node()),
                            {"model_0.keras": file.read_bytes()})
    before = serialization_lib.in_safe_mode()
    import keras

    keras.config.enable_unsafe_deserialization()
    try:
        with pytest.raises(ModelFileError, match="the network cannot be loaded safely"):
            skimgclf.load(path)
        assert serialization_lib.in_safe_mode() is False  # the caller's setting is given back
    finally:
        serialization_lib.global_state.set_global_attribute("safe_mode_saving", before)
    assert not marker.exists()


@pytest.mark.parametrize("estimator", [
    {"class": "Pipeline", "params": {}, "steps": "not a list"},
    {"class": "ImageFolderLoader", "params": {"target_size": {"__set__": []}}},
    {"class": "ImageFolderLoader", "params": ["not", "a", "dict"]},
    {"class": ["ImageFolderLoader"], "params": {}},
    "ImageFolderLoader",
    {"class": "CNNClassifier", "params": {}, "fitted": {"model": "model_0.keras"}},
])
def test_malformed_model_descriptions_are_refused(tmp_path, estimator):
    path = _write_model_zip(tmp_path / "m.skimgclf", _manifest(estimator))
    with pytest.raises(ModelFileError):
        skimgclf.load(path)


def test_deeply_nested_manifest_is_refused(tmp_path):
    nested = "[" * 100_000 + "]" * 100_000
    members = {"skimgclf.json": ('{"format": "skimgclf-model", "format_version": 1, "estimator": {"class": '
                                 '"ImageFolderLoader", "params": {"suffix": ' + nested + '}}}').encode()}
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in members.items())
    path = tmp_path / "m.skimgclf"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("SHA256SUMS", sums)
        zf.writestr("skimgclf.json", members["skimgclf.json"])
    with pytest.raises(ModelFileError, match="unreadable manifest|malformed model description"):
        skimgclf.load(path)
