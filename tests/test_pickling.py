"""pickle, joblib and copy.deepcopy of a fitted CNNClassifier, without scikeras' global patch.

``import scikeras`` replaces ``keras.Model.__reduce__``/``__deepcopy__`` and the
pickling of losses, metrics and optimizers for the whole process. The
classifier pickles its network itself (the bytes of a ``.keras`` file), so
these tests undo that patch first, in real subprocesses: a classifier
fitted and dumped in one process is loaded in another, predicts the same
probabilities, has the same optimizer state, and ``partial_fit`` continues
from it. The pickle names nothing from Keras or scikeras' saving helpers.
"""

import pickletools
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

#: Run first in each subprocess: import the classifier (so scikeras), then
#: give Keras back the pickling it had before scikeras patched it.
UNDO_SCIKERAS_PATCH = textwrap.dedent("""
    import keras
    _PATCHED = (keras.Model, keras.losses.Loss, keras.metrics.Metric, keras.optimizers.Optimizer)
    _ORIGINAL = {(cls, name): cls.__dict__.get(name) for cls in _PATCHED for name in ("__reduce__", "__deepcopy__")}
    import scikeras._saving_utils as patch
    from skimgclf import CNNClassifier
    for (cls, name), original in _ORIGINAL.items():
        if original is None:
            if name in cls.__dict__:
                delattr(cls, name)
        else:
            setattr(cls, name, original)
    assert keras.Model.__reduce__ is not patch.pack_keras_model
    assert keras.Model.__dict__.get("__deepcopy__") is not patch.deepcopy_model
    import copy, joblib, pickle, numpy as np
""")

FIT_AND_DUMP = UNDO_SCIKERAS_PATCH + textwrap.dedent("""
    from sklearn.base import clone
    rng = np.random.default_rng(0)
    X = rng.random((48, 8, 8, 1)).astype("float32")
    y = np.repeat(["cat", "dog", "emu"], 16)
    # label smoothing: a custom loss; a constant rate: partial_fit still moves the weights
    clf = CNNClassifier(conv_blocks=1, filters=4, units=8, epochs=1, label_smoothing=0.1, lr_schedule="constant",
                        verbose=0, random_state=0).fit(X, y)
    joblib.dump(clf, "clf.joblib")
    with open("clf.pickle", "wb") as fh:
        pickle.dump(clf, fh)
    np.savez("fitted.npz", X=X, y=y, proba=clf.predict_proba(X),
             *[np.asarray(v) for v in clf.model_.optimizer.variables])
    twin = copy.deepcopy(clf)
    assert twin.model_ is not clf.model_
    np.testing.assert_array_equal(twin.predict_proba(X), clf.predict_proba(X))
    assert not hasattr(clone(clf), "model_") and hasattr(clf, "model_")
    twin.partial_fit(X, y)  # the copy trains on its own
    assert int(clf.model_.optimizer.iterations) != int(twin.model_.optimizer.iterations)
    print("dumped")
""")

LOAD_AND_CONTINUE = UNDO_SCIKERAS_PATCH + textwrap.dedent("""
    saved = np.load("fitted.npz")
    X, y = saved["X"], saved["y"]
    clf = joblib.load("clf.joblib")
    np.testing.assert_allclose(clf.predict_proba(X), saved["proba"], atol=1e-6)
    variables = [np.asarray(v) for v in clf.model_.optimizer.variables]
    expected = [saved[f"arr_{i}"] for i in range(len(variables))]
    assert len(variables) == len([k for k in saved.files if k.startswith("arr_")])
    for got, want in zip(variables, expected):  # iterations, Adam's moments
        np.testing.assert_array_equal(got, want)
    steps = int(clf.model_.optimizer.iterations)
    clf.partial_fit(X, y)
    assert int(clf.model_.optimizer.iterations) == 2 * steps, (steps, int(clf.model_.optimizer.iterations))
    assert len(clf.history_["loss"]) == 2
    print("continued", steps)
""")


def _run(code, cwd):
    env = {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def _globals_named(path):
    """The ``module name`` pairs a pickle file would import when loaded."""
    names, strings = set(), []
    with open(path, "rb") as fh:
        data = fh.read()
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "SHORT_BINSTRING"):
            strings.append(arg)
        elif opcode.name == "STACK_GLOBAL":
            names.add(" ".join(strings[-2:]))
        elif opcode.name == "GLOBAL":
            names.add(arg)
    return names


@pytest.mark.slow
def test_joblib_round_trip_without_scikeras_patch_continues_training(tmp_path):
    dumped = _run(FIT_AND_DUMP, tmp_path)
    assert dumped.returncode == 0 and "dumped" in dumped.stdout, dumped.stderr[-3000:]
    imported = _globals_named(tmp_path / "clf.pickle")
    assert "skimgclf.model.classifier CNNClassifier" in imported
    from_keras = [name for name in imported
                  if name.split(".")[0] in ("keras", "tensorflow") or "_saving_utils" in name]
    assert from_keras == [], sorted(imported)
    loaded = _run(LOAD_AND_CONTINUE, tmp_path)
    assert loaded.returncode == 0 and "continued" in loaded.stdout, loaded.stderr[-3000:]
