"""Shared fixtures: real image files on disk, written fresh for each test."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import settings
from PIL import Image

# Property tests draw the same examples on every run (the README's test
# command and CI), so a green run stays green; SKIMGCLF_HYPOTHESIS=explore
# draws new ones each run, to look for cases nobody has tried.
settings.register_profile("fixed", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if os.environ.get("SKIMGCLF_HYPOTHESIS") == "explore" else "fixed")

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Tests run in parallel processes (pytest -n): one compute thread each, so
    # that TensorFlow in every worker (and the CLI subprocesses it starts) does
    # not take all the cores each.
    for _name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

REPO = Path(__file__).resolve().parent.parent


#: The files whose tests exercise what skimgclf uses of each dependency (marked ``compat``):
#: OpenCV and Pillow decoding, the batch cache, pandas tables, scikit-learn's checks and tags,
#: Keras' saving, pickling, matplotlib's figures, the private names. A test elsewhere joins
#: with ``@pytest.mark.compat`` (the traced inference, TensorFlow's side). .ci/run runs
#: ``-m compat`` at the oldest and the newest dependency versions.
COMPAT_FILES = {"test_decode.py", "test_memcache.py", "test_loader.py", "test_sklearn_checks.py",
                "test_persistence.py", "test_pickling.py", "test_plots.py", "test_private_names.py",
                "test_packaging.py", "test_docs.py", "test_progress.py"}


def pytest_collection_modifyitems(config, items):
    """Slow tests first: with parallel workers (pytest -n 2) none is left alone at the end."""
    for item in items:
        if item.path.name in COMPAT_FILES:
            item.add_marker(pytest.mark.compat)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
MNIST10K = Path(os.environ.get("SKIMGCLF_MNIST10K", REPO.parent / "shared" / "data" / "mnist10k"))


def write_images(folder, arrays, ids=None, suffix=".png", mode=None):
    """Write ``arrays`` (uint8, HxW or HxWxC) as image files named ``<id><suffix>``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids = list(range(len(arrays))) if ids is None else list(ids)
    for image_id, arr in zip(ids, arrays):
        Image.fromarray(np.asarray(arr, dtype=np.uint8), mode=mode).save(folder / f"{image_id}{suffix}")
    return ids


def make_blobs_images(n, size=8, channels=1, n_classes=2, seed=0):
    """Tiny learnable images: class k has a bright square in quadrant k."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    X = rng.integers(0, 40, size=(n, size, size, channels)).astype(np.uint8)
    half = size // 2
    for i, k in enumerate(y):
        r, c = divmod(int(k) % 4, 2)
        X[i, r * half:(r + 1) * half, c * half:(c + 1) * half, :] = 220
    return X, y


@pytest.fixture
def image_folder(tmp_path):
    """A folder of 40 8x8 grayscale PNGs in two learnable classes, with a labelled table."""
    X, y = make_blobs_images(40)
    ids = write_images(tmp_path / "train", X[..., 0])
    df = pd.DataFrame({"id": ids, "label": np.where(y == 0, "left", "right")})
    df.to_csv(tmp_path / "train.csv", index=False)
    return tmp_path, df, X


@pytest.fixture(scope="session")
def digits_layout(tmp_path_factory):
    """scikit-learn's digits written in the seed layout (train/test CSVs and PNGs)."""
    from skimgclf.datasets import make_sample_dataset

    return make_sample_dataset(tmp_path_factory.mktemp("digits"))


@pytest.fixture
def mnist10k():
    """The shared 10k-MNIST data set; skips the test when it is absent."""
    if not (MNIST10K / "train.csv").is_file():
        pytest.skip(f"mnist10k not found at {MNIST10K}")
    return MNIST10K


def count_decodes(monkeypatch):
    """The paths the loader decodes from now on (a list that grows): both of its decoders are counted,
    the fast path only where it gives the pixels (it returns None to hand a file to Pillow)."""
    from skimgclf.io import loader as _loader

    calls = []
    for name in ("decode_image", "_decode_fast"):
        real = getattr(_loader, name)

        def counting(path, *args, _real=real, **kwargs):
            out = _real(path, *args, **kwargs)
            if out is not None:
                calls.append(path)
            return out

        monkeypatch.setattr(_loader, name, counting)
    return calls


# ---------------------------------------------------- model files, edited as an attacker would
def model_members(path):
    """The members of a skimgclf model file, its checksum list aside."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist() if name != "SHA256SUMS"}


def write_model(path, members):
    """A skimgclf model file of ``members`` with honest checksums (an attacker recomputes them)."""
    import hashlib
    import zipfile

    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in members.items())
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("SHA256SUMS", sums)
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def edit_network(members, config=None, weights=None, manifest=None):
    """``members`` with ``model_0.keras`` edited: ``config(dict)`` changes its config.json,
    ``weights(h5py.File)`` its model.weights.h5 (opened for writing), ``manifest(dict)`` skimgclf.json."""
    import io
    import json
    import zipfile

    import h5py

    with zipfile.ZipFile(io.BytesIO(members["model_0.keras"])) as zf:
        parts = {name: zf.read(name) for name in zf.namelist()}
    if config is not None:
        parsed = json.loads(parts["config.json"])
        config(parsed)
        parts["config.json"] = json.dumps(parsed).encode()
    if weights is not None:
        buffer = io.BytesIO(parts["model.weights.h5"])
        with h5py.File(buffer, "r+") as h5:
            weights(h5)
        parts["model.weights.h5"] = buffer.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:  # stored, as Keras writes a .keras file
        for name, data in parts.items():
            zf.writestr(name, data)
    edited = {**members, "model_0.keras": out.getvalue()}
    if manifest is not None:
        parsed = json.loads(members["skimgclf.json"])
        manifest(parsed)
        edited["skimgclf.json"] = json.dumps(parsed).encode()
    return edited


def network_file(path, network, classes=("a", "b")):
    """A skimgclf model file of one fitted CNNClassifier holding the Keras ``network`` as it is: what
    someone who writes a model file by hand can make (``skimgclf.save`` refuses networks over its limits)."""
    import io
    import json

    from keras.src.saving import saving_lib

    buffer = io.BytesIO()
    saving_lib.save_model(network, buffer)
    fitted = {"model": "model_0.keras", "classes": {"dtype": "str", "values": list(classes)},
              "image_shape": list(network.input_shape[1:]), "history": {}}
    manifest = {"format": "skimgclf-model", "format_version": 1, "skimgclf_version": "0",
                "estimator": {"class": "CNNClassifier", "params": {}, "fitted": fitted}}
    return write_model(path, {"skimgclf.json": json.dumps(manifest).encode(), "model_0.keras": buffer.getvalue()})


def assert_one_clean_line(message, path):
    """An error message names the file first and is one line without terminal escape codes."""
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message and "\x1b" not in message and "\r" not in message, repr(message)


# ---------------------------------------------------- noise images (decoding and the batch cache)
RNG = np.random.default_rng(0)


def noise(shape):
    """uint8 noise pixels of ``shape``."""
    return RNG.integers(0, 256, size=shape, dtype=np.uint8)


def write_folder(folder, n=80, size=12):
    """``n`` grayscale noise PNGs ``0.png`` ... of ``size`` x ``size`` in a new ``folder``; their arrays."""
    folder.mkdir()
    arrays = [noise((size, size)) for _ in range(n)]
    for i, arr in enumerate(arrays):
        Image.fromarray(arr, "L").save(folder / f"{i}.png")
    return arrays


# ---------------------------------------------------- a saved pipeline (for model files and commands)
@pytest.fixture(scope="module")
def pipeline_file(tmp_path_factory):
    """A tiny trained pipeline on 8x8 PNGs, saved: (path, folder of images, ids)."""
    from sklearn.pipeline import make_pipeline

    import skimgclf
    from skimgclf import CNNClassifier, ImageFolderLoader

    folder = tmp_path_factory.mktemp("hostile")
    X, y = make_blobs_images(32, size=8)
    ids = write_images(folder / "images", X[..., 0])
    pipe = make_pipeline(ImageFolderLoader(folder / "images", target_size=(8, 8), verbose=0),
                         CNNClassifier(conv_blocks=1, filters=4, units=8, epochs=1, random_state=0))
    pipe.fit(pd.DataFrame({"id": ids}), np.where(y == 0, "a", "b"))
    return skimgclf.save(pipe, folder / "model.skimgclf"), folder / "images", [str(i) for i in ids]


# ---------------------------------------------------- small estimators, and a pipeline trained once a module
def small_cnn(**kw):
    """A CNNClassifier small enough to train in a second (one block, one epoch, no validation split)."""
    from skimgclf import CNNClassifier

    params = {"conv_blocks": 1, "filters": 8, "units": 16, "epochs": 1, "random_state": 0,
              "validation_split": 0.0}
    params.update(kw)
    return CNNClassifier(**params)


def gray_loader(folder, **kw):
    """An ImageFolderLoader of ``folder`` giving 8x8 grayscale images, quiet (``kw`` overrides)."""
    from skimgclf import ImageFolderLoader

    kw.setdefault("target_size", (8, 8))
    kw.setdefault("color_mode", "grayscale")
    return ImageFolderLoader(folder, verbose=0, **kw)


@pytest.fixture
def images(tmp_path):
    """``tmp_path/images`` with 0.png ... 5.png (8x8 grayscale, value 40*i)."""
    write_images(tmp_path / "images", [np.full((8, 8), 40 * i) for i in range(6)])
    return tmp_path / "images"


@pytest.fixture(scope="module")
def blobs_pipeline(tmp_path_factory):
    """One tiny pipeline trained on 8x8 grayscale blobs: (pipeline, its image folder, the images)."""
    from sklearn.pipeline import make_pipeline

    folder = tmp_path_factory.mktemp("fitted")
    X, y = make_blobs_images(24, size=8)
    ids = write_images(folder, X[..., 0])
    labels = np.where(y == 0, "left", "right")
    pipe = make_pipeline(gray_loader(folder), small_cnn()).fit(pd.DataFrame({"id": ids}), labels)
    return pipe, folder, X
