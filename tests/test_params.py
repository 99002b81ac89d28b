"""The classifier's parameters are declared once (skimgclf.model.params); everything else follows.

These tests fail when the constructor, the constraints, the docstring, the
network builder or the command line drift from the declarations. Below them:
an invalid value of every public parameter of both estimators is refused at
``fit``, in scikit-learn's words.
"""

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from conftest import gray_loader, small_cnn
from numpydoc.docscrape import ClassDoc
from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

from skimgclf import CNNClassifier, ImageFolderLoader
from skimgclf.model import params
from skimgclf.model.network import build_cnn


def test_constructor_lists_the_declared_parameters_in_order_with_their_defaults():
    signature = inspect.signature(CNNClassifier.__init__)
    names = [n for n in signature.parameters if n != "self"]
    assert names == [p.name for p in params.PARAMETERS]
    for p in params.PARAMETERS:
        assert signature.parameters[p.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert signature.parameters[p.name].default == p.default, p.name
    assert CNNClassifier().get_params() == params.defaults()


def test_constraints_are_the_declared_ones():
    # What scikit-learn checks at fit is each row of the table (not whatever constraints() returns) ...
    assert CNNClassifier._parameter_constraints == {p.name: list(p.constraints) for p in params.PARAMETERS}
    # ... and it really checks every parameter: its default passes, an object of no declared type is refused.
    for p in params.PARAMETERS:
        validate_parameter_constraints(CNNClassifier._parameter_constraints, {p.name: p.default}, "CNNClassifier")
        with pytest.raises(InvalidParameterError, match=f"The '{p.name}' parameter of CNNClassifier must be"):
            validate_parameter_constraints(CNNClassifier._parameter_constraints, {p.name: object()}, "CNNClassifier")


def test_docstring_documents_every_parameter_with_its_default():
    doc = ClassDoc(CNNClassifier)
    documented = {p.name: p for p in doc["Parameters"]}
    assert list(documented) == [p.name for p in params.PARAMETERS]
    for p in params.PARAMETERS:
        default = f'"{p.default}"' if isinstance(p.default, str) else repr(p.default)
        assert documented[p.name].type == f"{p.kind}, default={default}", p.name
        assert " ".join(documented[p.name].desc), p.name


def test_the_network_builder_takes_exactly_the_network_parameters():
    model = build_cnn((8, 8, 1), 3, **params.defaults("network"))
    assert model.output_shape == (None, 3)
    with pytest.raises(TypeError, match="unexpected network parameters \\['epochs'\\]"):
        build_cnn((8, 8, 1), 3, epochs=3)
    assert set(params.NETWORK) <= set(params.defaults())


@pytest.mark.parametrize("command", ["train", "search"])
def test_command_line_options_follow_the_declarations(command):
    out = subprocess.run([sys.executable, "-m", "skimgclf", command, "--help"], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split()).split("network (CNNClassifier):", 1)[1]
    for p in params.PARAMETERS:
        if p.cli:
            entry = text.split(f" {p.cli} ", 1)[1].split(" --", 1)[0]
            assert entry.startswith(("N ", "X ", "NAME ")) and entry.endswith(f"(default: {p.default})"), entry


def test_command_line_refuses_values_outside_the_declared_range(tmp_path):
    out = subprocess.run([sys.executable, "-m", "skimgclf", "train", "x.csv", "--epochs", "0"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 2
    assert "argument --epochs: '0' must be an int in the range [1, inf)" in out.stderr
    out = subprocess.run([sys.executable, "-m", "skimgclf", "train", "x.csv", "--activation", "nope"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 2 and "invalid choice: 'nope'" in out.stderr


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
    clf = small_cnn(**{name: value})
    _expect_param_error(name, "CNNClassifier", lambda: clf.fit(X, [0, 1, 0, 1]))
    assert not hasattr(clf, "model_")


def test_invalid_parameter_message_is_sklearns(images):
    with pytest.raises(InvalidParameterError, match=re.escape(
            "The 'color_mode' parameter of ImageFolderLoader must be a str among")):
        gray_loader(images, color_mode="cmyk").fit(["0"])
    with pytest.raises(ValueError, match=re.escape(
            f"The 'image_dir' parameter of ImageFolderLoader must be an existing folder. "
            f"Got '{images / 'nope'}' instead.")):
        gray_loader(images / "nope").fit(["0"])


# ------------------------------------------------------------ the "auto" rules
def _plain(text):
    return " ".join(text.replace("``", "").split())


AUTO_PARAMETERS = [p.name for p in params.PARAMETERS if p.default == "auto"]


def test_every_auto_parameter_has_one_rule_and_the_resolver_decides_it():
    assert list(params.AUTO_RULES) == AUTO_PARAMETERS
    resolved = params.resolve({}, image_shape=(32, 32, 3), n_rows=500)
    assert set(resolved) == set(AUTO_PARAMETERS)
    assert "auto" not in resolved.values()
    given = {"epochs": 7, "batch_size": 5, "padding": "valid", "random_flip": None, "label_smoothing": 0.2}
    assert params.resolve(given, image_shape=(32, 32, 3), n_rows=500).items() >= given.items()


def test_classifier_docstring_is_the_declarations_literally():
    """The section is literal text (IDEs, -OO); ci/sync_docstring.py rewrites it from numpydoc()."""
    assert "{parameters}" not in CNNClassifier.__doc__
    assert "    Parameters\n    ----------\n" + params.numpydoc() + "\n\n    Attributes\n" in CNNClassifier.__doc__, (
        "CNNClassifier's docstring drifted from skimgclf.model.params: run python ci/sync_docstring.py")


def test_each_parameter_docstring_states_its_auto_rule():
    docs = {p.name: _plain(p.doc) for p in params.PARAMETERS}
    for name, rule in params.AUTO_RULES.items():
        assert _plain(rule) in docs[name], name
    assert _plain(params.EARLY_STOPPING_RULE) in docs["early_stopping"]


def test_the_user_guide_quotes_every_auto_rule():
    guide = (Path(__file__).resolve().parent.parent / "docs" / "user_guide" / "architecture.rst").read_text()
    guide = _plain(guide)
    for name in params.AUTO_RULES:
        entry = _plain(f"``{name}`` {params._auto(name)}.")  # the whole entry, so that no part is left out
        assert entry in guide, f"architecture.rst does not quote the rule of {name}: {entry!r}"
    assert _plain(params.EARLY_STOPPING_RULE) + "." in guide


def test_command_line_help_quotes_the_rules():
    from skimgclf.cli.parser import build_parser

    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]  # argparse has no public accessor
    text = " ".join(train.format_help().split())
    for p in params.PARAMETERS:
        if p.cli and p.default == "auto":
            assert f"(auto: {_plain(params.AUTO_RULES[p.name])}) (default: auto)" in text, p.name
    for name in ("random_shift", "random_rotation", "random_zoom", "random_flip"):  # --no-augment, --flip
        assert _plain(params.AUTO_RULES[name]) + (")" if name == "random_flip" else ";") in text, name
    assert _plain(params.EARLY_STOPPING_RULE) + " (default: 0" in text
    assert f"at least {params.MIN_MONITORED} images" in text


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3), (64, 48, 3)])
def test_the_network_is_built_by_the_resolver(shape):
    """build_cnn's "auto" layers are what resolve() says, for grayscale and colour, tiny and larger images."""
    import keras

    rules = params.resolve({}, image_shape=shape)
    model = build_cnn(shape, 3, seed=0)
    names = {layer.name for layer in model.layers}
    for name, layer in (("random_shift", "augment_shift"), ("random_rotation", "augment_rotation"),
                        ("random_zoom", "augment_zoom")):
        assert (layer in names) == bool(rules[name]), (shape, name)
    assert ("augment_flip" in names) == (rules["random_flip"] is not None)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    per_conv = [f for block in rules["filters"]
                for f in (block if isinstance(block, list) else [block] * rules["convs_per_block"])]
    assert [conv.filters for conv in convs] == per_conv
    assert convs[0].padding == rules["padding"]


@settings(max_examples=60, deadline=None)
@given(h=st.one_of(st.integers(28, 36), st.integers(1, 300)), w=st.integers(1, 300),
       channels=st.sampled_from([1, 2, 3, 4]), conv_blocks=st.integers(0, 5), convs_per_block=st.integers(1, 3))
@example(h=64, w=48, channels=3, conv_blocks=3, convs_per_block=2)
@example(h=32, w=32, channels=3, conv_blocks=3, convs_per_block=2)
@example(h=33, w=20, channels=3, conv_blocks=3, convs_per_block=2)
@example(h=33, w=1, channels=3, conv_blocks=0, convs_per_block=2)  # no blocks: no filters (found in CI)
def test_auto_filters_widen_photo_blocks_after_pooling(h, w, channels, conv_blocks, convs_per_block):
    """Grayscale images and colour thumbnails: 32 doubled per block. Larger colour images (two or
    more convolutions a block): the same widths at the end of each block, reached after pooling,
    the first block one convolution fewer."""
    given = {"conv_blocks": conv_blocks, "convs_per_block": convs_per_block}
    filters = params.resolve(given, image_shape=(h, w, channels))["filters"]
    widths = [32 * 2**b for b in range(conv_blocks)]
    if channels < 3 or max(h, w) <= 32 or convs_per_block < 2 or conv_blocks == 0:
        assert filters == widths
    else:
        assert [block[-1] for block in filters] == widths
        assert [len(block) for block in filters] == [convs_per_block - 1] + [convs_per_block] * (conv_blocks - 1)
        assert [block[0] for block in filters[1:]] == widths[:-1]
        if conv_blocks == 3 and convs_per_block == 2:
            assert filters == [[32], [32, 64], [64, 128]]
    for explicit in (16, [8] * conv_blocks):  # what a user gives is kept
        expected = explicit if isinstance(explicit, list) else [16 * 2**b for b in range(conv_blocks)]
        assert params.resolve({**given, "filters": explicit}, image_shape=(h, w, channels))["filters"] == expected


_SIDES = st.one_of(st.integers(28, 36), st.integers(1, 300))  # dense around the 32-pixel edge


@settings(max_examples=80, deadline=None)
@given(h=_SIDES, w=_SIDES, channels=st.sampled_from([1, 2, 3, 4]), backbone=st.sampled_from([None, "mobilenet_v3_small"]),
       n_rows=st.one_of(st.integers(1, 1000), st.integers(240, 700)))
@example(h=32, w=32, channels=3, backbone=None, n_rows=2000)
@example(h=20, w=33, channels=3, backbone=None, n_rows=2000)
@example(h=40, w=40, channels=3, backbone=None, n_rows=625)
@example(h=40, w=40, channels=3, backbone=None, n_rows=624)
@example(h=40, w=40, channels=3, backbone=None, n_rows=250)
@example(h=40, w=40, channels=3, backbone=None, n_rows=249)
def test_auto_epochs_follow_the_image_size_colour_and_rows(h, w, channels, backbone, n_rows):
    """Colour thumbnails (at most 32 px on the longer side) train for 22 epochs, larger colour
    images for 16 (on fewer than 625 images, enough epochs to see 10,000, at most 40),
    grayscale ones for 10 at any size, any image under a backbone for 12."""
    epochs = params.resolve({"backbone": backbone}, image_shape=(h, w, channels), n_rows=n_rows)["epochs"]
    if backbone is not None:
        expected = 12
    elif channels < 3:
        expected = 10
    elif max(h, w) <= 32:
        expected = 22
    else:
        expected = min(40, max(16, -(-10_000 // n_rows)))
    assert epochs == expected
    assert params.resolve({"epochs": 5, "backbone": backbone}, image_shape=(h, w, channels))["epochs"] == 5
    if channels >= 3 and max(h, w) > 32 and backbone is None:  # rows unknown (partial_fit): 16
        assert params.resolve({}, image_shape=(h, w, channels))["epochs"] == 16
