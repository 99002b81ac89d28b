"""The loader and the classifier together: split, grid search, joblib in another process, mnist10k."""

import json
import subprocess
import sys
import time

import joblib
import numpy as np
import pandas as pd
import pytest
from conftest import write_images
from PIL import Image
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline

import skimgclf
from skimgclf import CNNClassifier, ImageFolderLoader
from skimgclf.io import loader as _loader

SMALL = dict(conv_blocks=1, filters=8, units=16, epochs=3, batch_size=32, random_shift=0.0,
             random_rotation=0.0, random_zoom=0.0, validation_split=0.0, random_state=0)


@pytest.fixture(scope="module")
def layout(digits_layout):
    train = pd.read_csv(digits_layout["train_csv"], dtype={"id": str})
    return digits_layout, train


def _pipe(train_dir, **kw):
    return make_pipeline(ImageFolderLoader(train_dir, target_size=(8, 8)), CNNClassifier(**{**SMALL, **kw}))


def test_pipeline_on_a_train_test_split_of_the_csv(layout):
    paths, train = layout
    tr, va = train_test_split(train, test_size=0.25, random_state=0, stratify=train["label"])
    pipe = _pipe(paths["train_dir"], epochs=8).fit(tr, tr["label"])
    assert pipe.score(va, va["label"]) > 0.8
    pipe.set_params(imagefolderloader__image_dir=paths["test_dir"])
    test = pd.read_csv(paths["test_csv"], dtype={"id": str})
    pred = pipe.predict(test)
    truth = pd.read_csv(paths["test_labels_csv"], dtype={"id": str})
    assert list(truth["id"]) == list(test["id"])
    assert (pred == truth["label"].to_numpy()).mean() > 0.8


@pytest.mark.slow
def test_grid_search_over_layers_units_activations_decodes_images_once_per_split(layout, monkeypatch):
    paths, train = layout
    train = train.iloc[:400]
    skimgclf.clear_cache()
    calls = []
    for name in ("decode_image", "_decode_fast"):
        real = getattr(_loader, name)

        def counting(path, *args, _real=real, **kwargs):
            out = _real(path, *args, **kwargs)
            calls.append(path)
            return out

        monkeypatch.setattr(_loader, name, counting)
    grid = {
        "cnnclassifier__hidden_layers": [1, 2],
        "cnnclassifier__units": [8, 16],
        "cnnclassifier__activation": ["relu", "tanh"],
    }
    # scikit-learn's default error_score: a candidate that failed would score NaN silently.
    search = GridSearchCV(_pipe(paths["train_dir"], epochs=1), grid, cv=2)
    search.fit(train, train["label"])
    assert len(search.cv_results_["params"]) == 8
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert set(search.best_params_) == set(grid)
    assert search.best_estimator_.predict(train.iloc[:5]).shape == (5,)
    # 8 candidates x 2 folds read 2 x (train + test) sets plus the refit set:
    # each distinct set is decoded once, whatever the number of candidates.
    assert len(calls) <= 3 * len(train)


def test_joblib_round_trip_in_a_new_process(layout, tmp_path):
    paths, train = layout
    pipe = _pipe(paths["train_dir"], epochs=2).fit(train, train["label"])
    test = pd.read_csv(paths["test_csv"], dtype={"id": str})
    pipe.set_params(imagefolderloader__image_dir=paths["test_dir"])
    expected = pipe.predict_proba(test)
    model = tmp_path / "pipe.joblib"
    joblib.dump(pipe, model)
    code = f"""
import json, sys, joblib, pandas as pd
pipe = joblib.load({str(model)!r})
pipe.set_params(imagefolderloader__image_dir={paths['test_dir']!r})
test = pd.read_csv({paths['test_csv']!r}, dtype={{"id": str}})
print(json.dumps(pipe.predict_proba(test).tolist()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = np.asarray(json.loads(out.stdout.strip().splitlines()[-1]), dtype=np.float32)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.slow
def test_default_pipeline_on_mnist10k(mnist10k):
    train = pd.read_csv(mnist10k / "train.csv", dtype={"id": str})
    test = pd.read_csv(mnist10k / "test.csv", dtype={"id": str})
    truth = pd.read_csv(mnist10k / "test_labels.csv", dtype={"id": str})
    pipe = make_pipeline(ImageFolderLoader(mnist10k / "train"), CNNClassifier(random_state=0))
    start = time.perf_counter()
    pipe.fit(train, train["label"])
    fit_s = time.perf_counter() - start
    pipe.set_params(imagefolderloader__image_dir=mnist10k / "test")
    accuracy = float((pipe.predict(test) == truth["label"].to_numpy()).mean())
    print(f"mnist10k default pipeline: test accuracy {accuracy:.4f}, fit {fit_s:.0f} s")
    assert accuracy >= 0.985


# ----------------------------------- other sizes and colours at prediction time
def test_pipeline_converts_other_sizes_and_colours(blobs_pipeline, tmp_path):
    pipe, _, X = blobs_pipeline
    other = tmp_path / "other"
    noise = np.random.default_rng(0).integers(-40, 40, size=(16, 16))  # so that the 4 pixels shrunk into one differ
    big = [np.clip(np.kron(X[i, ..., 0], np.ones((2, 2))) + noise, 0, 255).astype(np.uint8) for i in range(4)]
    # 16x16 RGB instead of 8x8 grayscale, its channels unequal (so that the weights of the conversion count)
    big_rgb = [np.stack([b, 255 - b, (b // 3 + 7 * np.arange(16)).astype(np.uint8)], axis=2) for b in big]
    write_images(other, big_rgb)
    # Pillow's own conversion to grayscale, then the documented shrink (an area average), scaled to 0..1
    expected = []
    for i in range(4):
        with Image.open(other / f"{i}.png") as img:
            gray = np.asarray(img.convert("L"), dtype=np.float32)
        expected.append(gray.reshape(8, 2, 8, 2).mean(axis=(1, 3))[..., None] / 255)
    expected = np.stack(expected)
    assert not np.allclose(expected[..., 0], X[:4, ..., 0] / 255, atol=0.01)  # converted, not the originals
    pipe.set_params(imagefolderloader__image_dir=other)
    try:
        pixels = pipe[:-1].transform([0, 1, 2, 3])
        pred = pipe.predict([0, 1, 2, 3])
    finally:
        pipe.set_params(imagefolderloader__image_dir=blobs_pipeline[1])
    assert pixels.shape == (4, 8, 8, 1)
    np.testing.assert_allclose(pixels, expected, atol=1 / 255)  # cv2's area average rounds to uint8
    assert pred.shape == (4,) and set(pred) <= {"left", "right"}
    np.testing.assert_array_equal(pred, pipe[-1].predict(pixels))  # predicted from those pixels
