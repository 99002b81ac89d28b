"""Shared fixtures: real image files on disk, written fresh for each test."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Tests run in parallel processes (pytest -n): one compute thread each, so
    # that TensorFlow in every worker (and the CLI subprocesses it starts) does
    # not take all the cores each.
    for _name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

REPO = Path(__file__).resolve().parent.parent


#: The files whose tests exercise what skimgclf uses of each dependency (marked ``compat``):
#: OpenCV and Pillow decoding, pandas tables, scikit-learn's checks and tags, Keras' saving,
#: pickling, matplotlib's figures, the private names. .ci/run runs ``-m compat`` at the
#: oldest and the newest dependency versions.
COMPAT_FILES = {"test_fast_path.py", "test_loader.py", "test_sklearn_checks.py", "test_persistence.py",
                "test_pickling.py", "test_plots.py", "test_private_names.py", "test_packaging.py", "test_docs.py",
                "test_progress.py"}


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
