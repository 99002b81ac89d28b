"""Transfer learning: a keras.applications backbone inside CNNClassifier, offline.

Every weights file here is written by the test itself (random-initialised
applications saved with ``save_weights``); nothing downloads. Images are real
PNG files on disk, read through ImageFolderLoader.
"""

import json
import math
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, make_blobs_images, write_images
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

import skimgclf
from skimgclf import BackboneWeightsError, CNNClassifier, ImageFolderLoader
from skimgclf.io import loader as _loader

ENV_CODE_OFFLINE = """
import socket
def _refuse(*args, **kwargs):
    raise OSError("network access refused by the test")
socket.getaddrinfo = _refuse
socket.socket.connect = _refuse
socket.create_connection = _refuse
"""
SMALL = dict(backbone="mobilenet_v3_small", hidden_layers=0, batch_size=16, random_state=0)


def _application(name):
    import keras

    from skimgclf.model.backbones import _SPECS

    constructor, extra = getattr(keras.applications, _SPECS[name][0]), _SPECS[name][1]
    return constructor(include_top=False, weights=None, input_shape=(32, 32, 3), **extra)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """MobileNetV3Small weights without its top, as a user brings them (save_weights); and the arrays."""
    import keras

    keras.utils.set_random_seed(7)
    app = _application("mobilenet_v3_small")
    for layer in app.layers:  # not Keras' initial values: a file that was really trained on something
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([gamma * 1.5, beta + 0.1, mean + 0.2, var * 2.0])
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v3_small.weights.h5"
    app.save_weights(path)
    return path, [layer.get_weights() for layer in app.layers if layer.weights]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """48 colour PNGs of 16x16 in two classes (a bright quadrant each), with a labelled table."""
    folder = tmp_path_factory.mktemp("photos")
    X, y = make_blobs_images(48, size=16, channels=3)
    ids = write_images(folder / "train", X, ids=[f"{i:03d}" for i in range(48)])
    table = pd.DataFrame({"id": ids, "label": np.where(y == 0, "cat", "dog")})
    table.to_csv(folder / "train.csv", index=False)
    return folder, table


def _backbone_weights(clf):
    from skimgclf.model.backbones import backbone_layers

    return [(layer, layer.get_weights()) for layer in backbone_layers(clf.model_) if layer.weights]


def test_weights_file_is_loaded_and_each_phase_trains_what_it_says(photos, weights_file):
    import keras

    folder, table = photos
    path, saved = weights_file
    pipe = make_pipeline(ImageFolderLoader(folder / "train"),
                         CNNClassifier(**SMALL, backbone_weights=str(path), epochs=3, freeze_epochs=1,
                                       fine_tune_fraction=0.5, class_weight="balanced", validation_split=0.25))
    weights = np.ones(len(table))
    weights[:4] = 0  # left out of training, as for the plain CNN
    draws = []
    real_split = CNNClassifier._validation_indices

    def counted(self, *args, **kwargs):
        draws.append(1)
        return real_split(self, *args, **kwargs)

    with pytest.warns(UserWarning, match="holds out only 11 images") as caught, \
            pytest.MonkeyPatch.context() as patch:
        patch.setattr(CNNClassifier, "_validation_indices", counted)
        pipe.fit(table, table["label"], cnnclassifier__sample_weight=weights)
    assert len(draws) == 1  # one validation split for both phases
    assert len([w for w in caught if "holds out only" in str(w.message)]) == 1  # once, not once per phase
    clf = pipe[-1]
    assert (clf.epochs_, clf.freeze_epochs_) == (3, 1)
    assert len(clf.history_["loss"]) == 3 and np.isfinite(clf.history_["loss"]).all()
    assert len(clf.history_["val_loss"]) == 3  # the same held-out images in both phases
    layers = _backbone_weights(clf)
    assert len(layers) == len(saved)
    changed = []  # the top half of the backbone trained, never batch normalisation
    for (layer, now), before in zip(layers, saved):
        same = all(np.array_equal(a, b) for a, b in zip(now, before))
        if isinstance(layer, keras.layers.BatchNormalization) or not layer.trainable:
            assert same, f"{layer.name} was frozen but its weights moved"
        else:
            changed.append(not same)
    assert changed and all(changed), "the unfrozen top of the backbone did not train"
    assert 0 < len(changed) < len(layers)
    schedule = clf.model_.optimizer._learning_rate  # the fine-tuning phase's own schedule
    assert math.isclose(float(schedule.initial_learning_rate), clf.learning_rate / 2, rel_tol=1e-6)
    assert pipe.predict(table.iloc[:5]).shape == (5,)


def test_grayscale_small_images_reach_the_backbone_as_32x32_rgb_and_results_repeat(image_folder):
    folder, table, _ = image_folder  # 8x8 grayscale PNGs
    loader = ImageFolderLoader(folder / "train")

    def fitted():
        clf = CNNClassifier(**SMALL, backbone_weights=None, epochs=2, freeze_epochs=1)
        return make_pipeline(loader, clf).fit(table, table["label"])

    first, second = fitted(), fitted()
    model = first[-1].model_
    assert model.input_shape == (None, 8, 8, 1)
    assert model.get_layer("resize_up").output.shape[1:] == (32, 32, 1)
    assert model.get_layer("backbone_input").output.shape[1:] == (32, 32, 3)
    np.testing.assert_array_equal(first.predict_proba(table), second.predict_proba(table))


def test_partial_fit_trains_the_head_first_then_fine_tunes(image_folder):
    from skimgclf.model.backbones import backbone_layers

    folder, table, _ = image_folder
    X = ImageFolderLoader(folder / "train").fit_transform(table)
    clf = CNNClassifier(**SMALL, backbone_weights=None, freeze_epochs=1, fine_tune_fraction=0.5)

    def training():
        return sum(layer.trainable for layer in backbone_layers(clf.model_) if layer.weights)

    clf.partial_fit(X, table["label"])
    assert training() == 0
    optimizer = clf.model_.optimizer
    clf.partial_fit(X, table["label"])
    assert training() > 0 and clf.model_.optimizer is not optimizer
    optimizer = clf.model_.optimizer
    clf.partial_fit(X, table["label"])
    assert clf.model_.optimizer is optimizer  # fine-tuning goes on with the same optimizer state
    assert len(clf.history_["loss"]) == 3


def test_efficientnet_imagenet_normalisation_is_applied_saved_and_exported(tmp_path):
    import keras

    from skimgclf.model.backbones import _IMAGENET_MEAN, _IMAGENET_STDDEV

    app = _application("efficientnet_b0")
    norm = next(layer for layer in app.layers if isinstance(layer, keras.layers.Normalization))
    mean, var, count = norm.get_weights()
    norm.set_weights([_IMAGENET_MEAN.reshape(mean.shape), (_IMAGENET_STDDEV ** 2).reshape(var.shape), count])
    path = tmp_path / "efficientnet_b0.weights.h5"  # as Keras' ImageNet file holds them
    app.save_weights(path)
    original = [layer.get_weights() for layer in app.layers if layer.weights]

    X, y = make_blobs_images(16, size=32, channels=3)
    clf = CNNClassifier(backbone="efficientnet_b0", backbone_weights=str(path), epochs=1, freeze_epochs=3,
                        hidden_layers=0, random_state=0).fit(X, y)
    assert clf.freeze_epochs_ == 1  # capped at epochs_: nothing fine-tuned
    ours = next(layer for layer in clf.model_.layers if isinstance(layer, keras.layers.Normalization))
    probe = keras.Model(clf.model_.input, ours.output)
    image = np.full((1, 32, 32, 3), 0.5, np.float32)
    expected = (0.5 - _IMAGENET_MEAN) / np.sqrt(_IMAGENET_STDDEV ** 2 * _IMAGENET_STDDEV)
    np.testing.assert_allclose(probe.predict(image, verbose=0)[0, 3, 3], expected, rtol=1e-4)

    expected_proba = clf.predict_proba(X)
    skimgclf.save(clf, tmp_path / "m.skimgclf")
    np.testing.assert_allclose(skimgclf.load(tmp_path / "m.skimgclf").predict_proba(X), expected_proba, atol=1e-5)

    clf.save_backbone_weights(tmp_path / "out.weights.h5")
    back = _application("efficientnet_b0")
    back.load_weights(tmp_path / "out.weights.h5")
    for before, after in zip(original, [layer.get_weights() for layer in back.layers if layer.weights]):
        for a, b in zip(before, after):
            np.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.raises(ValueError, match=r"must end in \.weights\.h5"):
        clf.save_backbone_weights(tmp_path / "out.h5")


@settings(max_examples=40, deadline=None)
@given(height=st.integers(1, 300), width=st.integers(1, 300))
def test_images_below_32_pixels_are_resized_up_keeping_their_shape(height, width):
    from skimgclf.model.backbones import MIN_SIDE, input_size

    h, w = input_size(height, width)
    if min(height, width) >= MIN_SIDE:
        assert (h, w) == (height, width)
    else:
        assert min(h, w) == MIN_SIDE
        assert abs(h / w - height / width) <= max(height / width, 1) * 2 / MIN_SIDE + 1e-9


@pytest.mark.parametrize("backbone, rgb, expected", [
    ("mobilenet_v3_small", (1.0, 0.5, 0.0), (1.0, 0.0, -1.0)),  # [-1, 1]
    ("efficientnet_b0", (1.0, 0.5, 0.0), (255.0, 127.5, 0.0)),  # [0, 255]: it normalises itself
    ("resnet50", (1.0, 0.5, 0.0), (0 - 103.939, 127.5 - 116.779, 255 - 123.68)),  # BGR, ImageNet means off
])
def test_each_backbone_gets_its_own_preprocessing(backbone, rgb, expected):
    import keras

    from skimgclf.model.network import build_cnn

    net = build_cnn((32, 32, 3), 2, backbone=backbone, backbone_weights=None)
    mapped = keras.Model(net.input, net.get_layer("backbone_input").output)
    image = np.broadcast_to(np.asarray(rgb, np.float32), (1, 32, 32, 3))
    np.testing.assert_allclose(mapped.predict(image, verbose=0)[0, 5, 5], expected, atol=1e-3)


def test_imagenet_weights_without_a_network_fail_at_once_naming_backbone_weights(tmp_path, monkeypatch):
    import socket

    from keras.src.backend import config

    monkeypatch.setattr(config, "keras_home", lambda: str(tmp_path))  # nothing cached

    def refuse(*args, **kwargs):
        raise OSError("network access refused by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    X, y = make_blobs_images(16, size=8, channels=3)
    start = time.perf_counter()
    with pytest.raises(BackboneWeightsError) as info:
        CNNClassifier(backbone="mobilenet_v3_small", epochs=1).fit(X, y)
    assert time.perf_counter() - start < 60  # seconds, not a download's minutes of retries
    message = str(info.value)
    assert message.startswith("backbone_weights='imagenet': the ImageNet weights of mobilenet_v3_small")
    assert "save_weights('mobilenet_v3_small.weights.h5')" in message and "backbone_weights=None" in message
    assert "Traceback" not in message and "\n" not in message


def test_weights_advice_speaks_python_or_the_command_line():
    """One error, two audiences: the option names come from the command line's own parser."""
    from skimgclf.cli.parser import build_parser, option_names
    from skimgclf.errors import speaking_cli
    from skimgclf.model.backbones import _offline_help

    advice = _offline_help("mobilenet_v3_small")
    python = str(advice)
    assert "backbone_weights='mobilenet_v3_small.weights.h5'" in python and "backbone_weights=None" in python
    with speaking_cli(option_names(build_parser())):
        cli = str(advice)
    assert "--backbone-weights mobilenet_v3_small.weights.h5 (a path)" in cli and "--backbone-weights none" in cli
    assert "backbone_weights" not in cli and str(advice) == python  # the block is over


def test_a_missing_file_or_another_networks_weights_are_refused(tmp_path, weights_file):
    X, y = make_blobs_images(16, size=8, channels=3)
    missing = tmp_path / "nope.weights.h5"
    with pytest.raises(BackboneWeightsError, match=r"backbone_weights='.*nope\.weights\.h5': no such file"):
        CNNClassifier(backbone="mobilenet_v3_small", backbone_weights=str(missing), epochs=1).fit(X, y)
    with pytest.raises(BackboneWeightsError, match=r"backbone_weights='.*': a folder, not a weights file"):
        CNNClassifier(backbone="mobilenet_v3_small", backbone_weights=str(tmp_path), epochs=1).fit(X, y)
    other = tmp_path / "large.weights.h5"
    _application("mobilenet_v3_large").save_weights(other)
    with pytest.raises(BackboneWeightsError, match=r"not the weights of keras\.applications\.MobileNetV3Small "
                                                   r"without its top"):
        CNNClassifier(backbone="mobilenet_v3_small", backbone_weights=str(other), epochs=1).fit(X, y)


def test_saved_model_predicts_in_a_process_without_network(photos, weights_file, tmp_path):
    folder, table = photos
    pipe = make_pipeline(ImageFolderLoader(folder / "train"),
                         CNNClassifier(**SMALL, backbone_weights=str(weights_file[0]), epochs=2))
    pipe.fit(table, table["label"])
    expected = pipe.predict_proba(table)
    skimgclf.save(pipe, tmp_path / "m.skimgclf")
    import joblib

    joblib.dump(pipe, tmp_path / "m.joblib")
    (tmp_path / "weights-gone").mkdir()
    weights_file[0].rename(tmp_path / "weights-gone" / "w.h5")  # the model needs its own file only
    try:
        code = ENV_CODE_OFFLINE + textwrap.dedent(f"""
            import json, sys, joblib, pandas as pd, skimgclf
            table = pd.read_csv({str(folder / 'train.csv')!r}, dtype=str)
            out = {{}}
            out["safe"] = skimgclf.load({str(tmp_path / 'm.skimgclf')!r}).predict_proba(table).tolist()
            out["joblib"] = joblib.load({str(tmp_path / 'm.joblib')!r}).predict_proba(table).tolist()
            print(json.dumps(out))
        """)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                              env={"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin",
                                   "CUDA_VISIBLE_DEVICES": ""})
    finally:
        (tmp_path / "weights-gone" / "w.h5").rename(weights_file[0])
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(got["safe"], expected, atol=1e-5)
    np.testing.assert_allclose(got["joblib"], expected, atol=1e-5)


@pytest.mark.slow
def test_grid_search_over_backbone_decodes_each_split_once(photos, weights_file, monkeypatch):
    folder, table = photos
    skimgclf.clear_cache()
    calls = []
    for name in ("decode_image", "_decode_fast"):
        real = getattr(_loader, name)

        def counting(path, *args, _real=real, **kwargs):
            calls.append(path)
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(_loader, name, counting)
    pipe = make_pipeline(ImageFolderLoader(folder / "train"),
                         CNNClassifier(**SMALL, backbone_weights=str(weights_file[0]), epochs=1))
    grid = {"cnnclassifier__backbone": [None, "mobilenet_v3_small"]}
    search = GridSearchCV(pipe, grid, cv=2).fit(table, table["label"])
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert [p["cnnclassifier__backbone"] for p in search.cv_results_["params"]] == [None, "mobilenet_v3_small"]
    assert len(calls) <= 3 * len(table)


# ------------------------------------------------------------------- CLI
@pytest.mark.slow
def test_cli_trains_and_predicts_with_a_local_backbone_file(photos, weights_file, tmp_path):
    folder, table = photos
    env = {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "",
           "KERAS_HOME": str(tmp_path / "keras-home")}  # no cached ImageNet weights

    def cli(*args):
        code = ENV_CODE_OFFLINE + "import sys\nfrom skimgclf.cli import main\nsys.exit(main(sys.argv[1:]))"
        return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                              timeout=600, env=env, cwd=tmp_path)

    bad = cli("train", folder / "train.csv", "--images", folder / "train", "--backbone-weights", "none",
              "--model", "m.skimgclf")
    assert bad.returncode != 0 and "--backbone-weights needs --backbone" in bad.stderr
    assert not (tmp_path / "m.skimgclf").exists()
    trained = cli("train", folder / "train.csv", "--images", folder / "train", "--backbone", "mobilenet_v3_small",
                  "--backbone-weights", weights_file[0], "--epochs", "2", "--model", "m.skimgclf")
    assert trained.returncode == 0, trained.stderr[-3000:]
    offline = cli("train", folder / "train.csv", "--images", folder / "train", "--backbone", "mobilenet_v3_small",
                  "--epochs", "1", "--model", "other.skimgclf")
    assert offline.returncode != 0 and "--backbone-weights imagenet: the ImageNet weights" in offline.stderr
    assert "--backbone-weights none" in offline.stderr and "backbone_weights" not in offline.stderr
    assert not (tmp_path / "other.skimgclf").exists()
    predicted = cli("predict", "m.skimgclf", folder / "train.csv", "--images", folder / "train", "--out", "p.csv")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    out = pd.read_csv(tmp_path / "p.csv", dtype=str)
    assert list(out["id"]) == list(table["id"]) and set(out["label"]) <= {"cat", "dog"}
