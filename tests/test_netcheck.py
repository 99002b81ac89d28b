"""The check of a model file's network before Keras builds or reads it (``skimgclf.model.netcheck``).

Each case is a real model file, edited or written as someone crafting one
would (checksums recomputed), loaded with ``skimgclf.load``; Keras is never
asked to load what is refused. What the user sees (``...`` is the file):

Weights file (``model.weights.h5``, read as HDF5 metadata only)
- a Dense bias replaced by a chunked, never-written dataset of 2^28 float32
  values (a 10 KB file): ``...: the network cannot be loaded safely (dataset
  layers/dense_1/vars/1 (weights of layer 'probabilities') is float32 of
  shape (268435456,), not float32 of shape (2,)); refused`` in milliseconds
  (Keras read it for 34 s, peaking at 4.9 GB, before refusing it);
- a dataset of the right shape that is chunked, compressed, never written,
  external or virtual (``... is stored chunked, not as the plain bytes Keras
  writes``), of another dtype, with attributes, a link, missing, or a
  dataset, group or datatype the network does not imply, or optimizer state
  that is not a copy of the trainable weights.

Cost per image (:func:`~skimgclf.model.netcheck.cost`)
- Resizing 8x8 to 2048x2048 then a 63x63 convolution (19 s an image):
  ``... (one image costs 99,9...,... floating-point operations, more than
  64,000,000,000 (layer 'convolution' alone ...)); refused``;
- Resizing to 4096x4096 then 16 filters: ``... (one image's activations take
  1,5...,... bytes, more than 1,073,741,824 (layer 'convolution' alone
  ...)); refused``;
- every network skimgclf builds at the sizes docs/security.rst lists is
  within both limits with at least twice the margin (a table printed by the
  test); the counts follow Keras' own shapes for any network the
  parameters allow.

A resizing other than the bilinear one counted, and a layer whose output
is never used, are refused too.

Outputs: five outputs for two classes, two for three, two output tensors, a
feature map, a ReLU output: ``... (its output 'probabilities' has 5 units,
but the classifier has 2 classes); refused`` and the like.

dtypes: ``"float64"`` as a plain string, a policy, a nested policy,
``"mixed_float16"``, an input of ``float64``: ``... (layer 'x' has a dtype
policy of 'float64', not float32); refused``.

Numbers: an operation's constant of 10**400, a NaN offset, an infinite
rate: ``... (args is 1000000000000000000000000000000000000000... (401 characters) in layer
'add', not a finite float32); refused``.

Every message starts with the file, names the layer or dataset, and is one
line without terminal escape codes.
"""

import io
import json
import math
import re
import time

import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import (
    assert_one_clean_line, edit_network, make_blobs_images, model_members, network_file, write_images, write_model,
)
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

import skimgclf
from skimgclf import ImageFolderLoader, ModelFileError
from skimgclf.model import netcheck, persistence

#: The bias of the output layer ('probabilities', the second Dense layer) in the weights file.
BIAS = "layers/dense_1/vars/1"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny trained pipeline on 8x8 PNGs (two classes), saved."""
    from sklearn.pipeline import make_pipeline

    from skimgclf import CNNClassifier

    folder = tmp_path_factory.mktemp("netcheck")
    X, y = make_blobs_images(24, size=8)
    ids = write_images(folder / "images", X[..., 0])
    pipe = make_pipeline(ImageFolderLoader(folder / "images", target_size=(8, 8), verbose=0),
                         CNNClassifier(conv_blocks=1, filters=4, units=8, epochs=1, random_state=0))
    pipe.fit(pd.DataFrame({"id": ids}), np.where(y == 0, "a", "b"))
    return skimgclf.save(pipe, folder / "model.skimgclf")


@pytest.fixture
def no_keras(monkeypatch):
    """Fail the test if Keras is asked to load the network."""
    monkeypatch.setattr(persistence, "_load_network", lambda data: pytest.fail("Keras was asked to load it"))


def refused(path):
    """The message ``skimgclf.load(path)`` refuses the file with (one clean line naming the file)."""
    with pytest.raises(ModelFileError) as info:
        skimgclf.load(path)
    message = str(info.value)
    assert_one_clean_line(message, path)
    assert "the network cannot be loaded safely (" in message and message.endswith("; refused"), message
    return message


# ------------------------------------------------------------------ the weights file
def _replace(dataset, make):
    """A weights-file edit that replaces ``dataset`` with ``make(group, name)``."""
    def edit(h5):
        group, name = dataset.rsplit("/", 1)
        del h5[dataset]
        make(h5[group], name)
    return edit


def test_a_never_written_dataset_of_a_gigabyte_is_refused_before_keras_reads_it(model, tmp_path, no_keras):
    edit = _replace(BIAS, lambda group, name: group.create_dataset(name, shape=(2**28,), dtype="<f4", chunks=(2**20,)))
    path = write_model(tmp_path / "m.skimgclf", edit_network(model_members(model), weights=edit))
    assert path.stat().st_size < 100_000
    start = time.perf_counter()
    message = refused(path)
    assert time.perf_counter() - start < 5
    assert ("dataset layers/dense_1/vars/1 (weights of layer 'probabilities') is float32 of shape (268435456,), "
            "not float32 of shape (2,)") in message


def _virtual(group, name):
    layout = h5py.VirtualLayout(shape=(2,), dtype="<f4")
    layout[:] = h5py.VirtualSource(".", "layers/dense_1/vars/0", shape=(8, 2))[0, :]
    group.create_virtual_dataset(name, layout)


def _with_attribute(group, name):
    group.create_dataset(name, data=np.zeros(2, "<f4"))
    group[name].attrs["dtype"] = "bfloat16"  # Keras would read the data as bfloat16


BIAS_CASES = {
    "chunked, never written": (lambda g, n: g.create_dataset(n, shape=(2,), dtype="<f4", chunks=(1,)),
                               f"dataset {BIAS} (weights of layer 'probabilities') is stored chunked, not as the "
                               "plain bytes Keras writes"),
    "compressed": (lambda g, n: g.create_dataset(n, data=np.zeros(2, "<f4"), compression="gzip"),
                   f"dataset {BIAS} (weights of layer 'probabilities') is stored chunked"),
    "contiguous, never written": (lambda g, n: g.create_dataset(n, shape=(2,), dtype="<f4"),
                                  f"dataset {BIAS} (weights of layer 'probabilities') declares 8 bytes, but its "
                                  "weights file holds 0 of them"),
    "external": (lambda g, n: g.create_dataset(n, shape=(2,), dtype="<f4", external=[("/dev/zero", 0, 8)]),
                 f"dataset {BIAS} (weights of layer 'probabilities') is stored in an external file"),
    "virtual": (_virtual, f"dataset {BIAS} (weights of layer 'probabilities') is stored virtual"),
    "float64": (lambda g, n: g.create_dataset(n, data=np.zeros(2, "<f8")),
                f"dataset {BIAS} (weights of layer 'probabilities') is float64 of shape (2,), not float32 of "
                "shape (2,)"),
    "big-endian": (lambda g, n: g.create_dataset(n, data=np.zeros(2, ">f4")),
                   f"dataset {BIAS} (weights of layer 'probabilities') is float32 big-endian of shape (2,)"),
    "with an attribute": (_with_attribute, f"dataset {BIAS} (weights of layer 'probabilities') has attributes "
                                           "['dtype']"),
    "a soft link": (lambda g, n: g.__setitem__(n, h5py.SoftLink("/layers/dense_1/vars/0")),
                    f"{BIAS} in its weights file is a link (SoftLink), not a group or dataset of its own"),
    "an external link": (lambda g, n: g.__setitem__(n, h5py.ExternalLink("other.h5", "/bias")),
                         f"{BIAS} in its weights file is a link (ExternalLink)"),
    "missing": (lambda g, n: None,
                f"dataset {BIAS} (weights of layer 'probabilities') is missing from its weights file"),
}


@pytest.mark.parametrize("case", BIAS_CASES)
def test_a_dataset_stored_otherwise_than_keras_writes_it_is_refused(model, tmp_path, no_keras, case):
    make, expected = BIAS_CASES[case]
    path = write_model(tmp_path / "m.skimgclf", edit_network(model_members(model), weights=_replace(BIAS, make)))
    message = refused(path)
    assert expected in message, message


def _optimizer_dataset(h5):
    state = h5["optimizer/vars"]
    state.create_dataset(str(len(state)), data=np.zeros(10**6, "<f4"))


def _optimizer_shape(h5):
    _replace("optimizer/vars/1", lambda g, n: g.create_dataset(n, data=np.zeros((3, 3, 1, 400), "<f4")))(h5)


EXTRA_CASES = {
    "a dataset": (lambda h5: h5["layers/dense_1/vars"].create_dataset("2", data=np.zeros(2, "<f4")),
                  "its weights file holds dataset layers/dense_1/vars/2, which the network does not imply"),
    "a group": (lambda h5: h5.create_group("payload"), "its weights file holds group payload, which the network"),
    "a named datatype": (lambda h5: h5["layers"].__setitem__("t", np.dtype("<f4")),
                         "its weights file holds datatype layers/t, which the network does not imply"),
    "a group attribute": (lambda h5: h5["layers"].attrs.__setitem__("x", 1),
                          "group /layers/ of its weights file has attributes ['x']"),
    "optimizer state of a million values": (_optimizer_dataset, "its optimizer state holds 18 datasets, not the "
                                                                "state of its 8 trainable weights"),
    "optimizer state of another shape": (_optimizer_shape, "dataset optimizer/vars/1 (optimizer state) is "
                                                           "float32 of shape (3, 3, 1, 400), not float32 of shape "
                                                           "(3, 3, 1, 4)"),
}


@pytest.mark.parametrize("case", EXTRA_CASES)
def test_anything_the_network_does_not_imply_is_refused(model, tmp_path, no_keras, case):
    edit, expected = EXTRA_CASES[case]
    path = write_model(tmp_path / "m.skimgclf", edit_network(model_members(model), weights=edit))
    message = refused(path)
    assert expected in message, message


def test_the_weights_files_skimgclf_writes_load(model):
    """The control: the file as saved passes the check and loads."""
    pipe = skimgclf.load(model)
    assert pipe[-1].predict_proba(np.zeros((1, 8, 8, 1), np.float32)).shape == (1, 2)


# ------------------------------------------------------------------ cost per image
def _resize_and_convolve(side, filters, kernel):
    """8x8 colour images resized to ``side`` a side, then one convolution, pooled into two classes."""
    import keras

    inputs = keras.Input((8, 8, 3), name="images")
    x = keras.layers.Resizing(side, side, name="resize")(inputs)
    x = keras.layers.Conv2D(filters, kernel, padding="same", name="convolution")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="average")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="probabilities")(x)
    network = keras.Model(inputs, outputs)
    network.compile("adam", "sparse_categorical_crossentropy")
    return network


@pytest.mark.parametrize("side, filters, kernel, expected", [
    (2048, 1, 63, r"one image costs 99,9\d\d,\d{3},\d{3} floating-point operations, more than 64,000,000,000 "
                  r"\(layer 'convolution' alone 99,\d{3},\d{3},\d{3}\)"),
    (4096, 16, 3, r"one image's activations take 1,5\d\d,\d{3},\d{3} bytes, more than 1,073,741,824 "
                  r"\(layer 'convolution' alone 1,073,741,824\)"),
])
def test_a_network_costing_too_much_per_image_is_refused(tmp_path, no_keras, side, filters, kernel, expected):
    import re

    path = network_file(tmp_path / "m.skimgclf", _resize_and_convolve(side, filters, kernel))
    assert path.stat().st_size < 100_000
    message = refused(path)
    assert re.search(expected, message), message


def test_a_costly_network_within_the_limits_loads(tmp_path):
    """The control: the same shape of network at a cost below both limits."""
    path = network_file(tmp_path / "m.skimgclf", _resize_and_convolve(256, 4, 5))
    assert skimgclf.load(path).predict_proba(np.zeros((2, 8, 8, 3), np.float32)).shape == (2, 2)


@pytest.mark.parametrize("setting, expected", [
    ({"interpolation": "lanczos5"}, "layer 'resize' sets interpolation='lanczos5'"),
    ({"antialias": True}, "layer 'resize' sets antialias=True"),
])
def test_a_resizing_costlier_than_the_bilinear_one_counted_is_refused(tmp_path, no_keras, setting, expected):
    import keras

    inputs = keras.Input((8, 8, 3), name="images")
    x = keras.layers.Resizing(64, 64, name="resize", **setting)(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="average")(x)
    network = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="probabilities")(x))
    message = refused(network_file(tmp_path / "m.skimgclf", network))
    assert expected in message, message


def test_a_layer_whose_output_is_never_used_is_refused(model, tmp_path, no_keras):
    """A layer outside the path from the input to the output: counted by nothing Keras runs, refused."""
    import copy

    def dangle(config):
        layers = config["config"]["layers"]
        flatten = next(layer for layer in layers if layer["class_name"] == "Flatten")
        spare = copy.deepcopy(flatten)
        spare["name"] = spare["config"]["name"] = "spare"
        layers.insert(layers.index(flatten) + 1, spare)

    message = refused(write_model(tmp_path / "m.skimgclf", edit_network(model_members(model), config=dangle)))
    assert "the output of layer 'spare' is never used" in message, message


def _reference():
    """What skimgclf builds at the sizes docs/security.rst lists: ``(what, shape, parameters)``."""
    from skimgclf.model.params import BACKBONES

    large = dict(filters=64, conv_blocks=4, kernel_size=5, convs_per_block=2, units=1024, hidden_layers=2)
    cases = [(f"backbone {b}", shape, dict(backbone=b, backbone_weights=None))
             for b in BACKBONES for shape in ((128, 128, 3), (224, 224, 3), (1, 128, 1), (4, 128, 1))]
    cases += [("plain CNN, defaults", shape, {}) for shape in ((28, 28, 1), (128, 128, 3), (224, 224, 3))]
    cases += [("plain CNN, large", shape, large) for shape in ((128, 128, 3), (224, 224, 3))]
    return cases


@pytest.mark.slow
def test_the_limits_hold_everything_skimgclf_builds_with_margin():
    """Twice the FLOPs and activations of each network skimgclf builds fit the limits; ResNet50 at 512x512 too."""
    import keras

    from skimgclf.model.network import build_cnn

    rows = []
    for what, shape, params in _reference() + [("backbone resnet50 (beyond the margin)", (512, 512, 3),
                                                dict(backbone="resnet50", backbone_weights=None))]:
        flops, activations = netcheck.cost(build_cnn(shape, 1000, **params))
        keras.backend.clear_session()
        rows.append((what, shape, flops, activations))
        margin = 1 if "beyond" in what else 2
        assert margin * flops <= netcheck.MAX_FLOPS and margin * activations <= netcheck.MAX_ACTIVATION_BYTES, rows[-1]
    for what, shape, flops, activations in rows:  # the table in docs/security.rst (pytest -s shows it)
        print(f"{what:40} {'x'.join(map(str, shape)):12} {flops / 1e9:8.2f} GFLOPs {activations / 2**20:8.1f} MiB")


def _keras_cost(network):
    """FLOPs and activation bytes of one image from Keras' own shapes and weights (not netcheck's propagation)."""
    flops = values = 0
    for op in network.operations:
        kind, out = type(op).__name__, math.prod(op.output.shape[1:])
        values += out
        if kind in ("Conv2D", "DepthwiseConv2D"):
            flops += 2 * math.prod(op.kernel.shape[:3 if kind == "Conv2D" else 2]) * out
        elif kind == "Dense":
            flops += 2 * math.prod(op.kernel.shape)
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            flops += math.prod(op.pool_size) * out
        elif kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            flops += math.prod(op.input.shape[1:])
        elif kind == "Resizing":
            flops += 8 * out
        flops += {"BatchNormalization": 2, "Normalization": 2, "Rescaling": 2, "Activation": 1, "ReLU": 1,
                  "Add": 1, "Multiply": 1}.get(kind, 0) * out
    return flops, 4 * values


#: Plain-CNN configurations (with the image size, channels and classes) for the property tests.
CNN_CONFIGS = dict(
    size=st.tuples(st.integers(4, 40), st.integers(4, 40)), channels=st.sampled_from([1, 3, 4]),
    conv_blocks=st.integers(0, 3), filters=st.integers(1, 24), convs_per_block=st.integers(1, 2),
    pool_after=st.sampled_from(["auto", 1, 2]), kernel_size=st.integers(1, 5),
    padding=st.sampled_from(["auto", "same", "valid"]), pooling=st.sampled_from(["max", "avg", None]),
    batch_norm=st.booleans(), global_pooling=st.sampled_from(["auto", "flatten", "avg", "max"]),
    hidden_layers=st.integers(0, 2), units=st.integers(1, 40), n_classes=st.integers(2, 12),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**CNN_CONFIGS)
def test_cost_follows_the_shapes_keras_builds(size, channels, n_classes, **params):
    from skimgclf.model.network import build_cnn

    try:
        network = build_cnn((*size, channels), n_classes, **params)
    except ValueError:  # "valid" convolutions that leave nothing: Keras refuses to build them
        return
    assert netcheck.cost(network) == _keras_cost(network)


@pytest.mark.parametrize("backbone", ["mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "resnet50"])
def test_cost_of_every_backbone_follows_the_shapes_keras_builds(backbone):
    from skimgclf.model.network import build_cnn

    network = build_cnn((20, 48, 1), 3, backbone=backbone, backbone_weights=None)  # resized up to 32x77
    assert netcheck.cost(network) == _keras_cost(network)


def test_cost_reads_a_config_as_json_text_or_a_model_and_refuses_other_networks():
    import json

    import keras

    network = _resize_and_convolve(64, 2, 3)
    expected = netcheck.cost(network)
    assert netcheck.cost(network.to_json()) == netcheck.cost(json.loads(network.to_json())) == expected
    assert expected[0] == 8 * 64 * 64 * 3 + 2 * 9 * 3 * 2 * 64 * 64 + 4 * 32 * 32 * 2 + 32 * 32 * 2 + 2 * 2 * 2
    inputs = keras.Input((8, 8, 1))
    other = keras.Model(inputs, keras.layers.LSTM(2)(keras.layers.Reshape((8, 8))(inputs)))
    with pytest.raises(ValueError, match=r"not a network skimgclf builds \(.*keras\.layers\.LSTM"):
        netcheck.cost(other)


# ------------------------------------------------------------------ outputs
def _dense_network(*units, activation="softmax", feature_map=False):
    """A small network on 8x8 grayscale images whose outputs are Dense layers of ``units`` (or a feature map)."""
    import keras

    inputs = keras.Input((8, 8, 1), name="images")
    features = keras.layers.Conv2D(3, 3, name="features")(inputs)
    flat = keras.layers.Flatten(name="flat")(features)
    outputs = [keras.layers.Dense(u, activation=activation, name="probabilities" if not i else f"extra_{i}")(flat)
               for i, u in enumerate(units)]
    network = keras.Model(inputs, features if feature_map else outputs[0] if len(outputs) == 1 else outputs)
    network.compile("adam", "sparse_categorical_crossentropy")
    return network


OUTPUT_CASES = {
    "5 outputs, 2 classes": (lambda: _dense_network(5), ("a", "b"),
                             "its output 'probabilities' has 5 units, but the classifier has 2 classes"),
    "2 outputs, 3 classes": (lambda: _dense_network(2), ("a", "b", "c"),
                             "its output 'probabilities' has 2 units, but the classifier has 3 classes"),
    "two output tensors": (lambda: _dense_network(2, 2), ("a", "b"),
                           "its outputs are [['probabilities', 0, 0], ['extra_1', 0, 0]], not one layer"),
    "a feature map": (lambda: _dense_network(2, feature_map=True), ("a", "b"),
                      "its output 'features' is a Conv2D with activation 'linear', not a softmax Dense layer"),
    "a ReLU output": (lambda: _dense_network(2, activation="relu"), ("a", "b"),
                      "its output 'probabilities' is a Dense with activation 'relu', not a softmax Dense layer"),
}


@pytest.mark.parametrize("case", OUTPUT_CASES)
def test_the_output_must_be_a_softmax_over_the_classes(tmp_path, no_keras, case):
    make, classes, expected = OUTPUT_CASES[case]
    message = refused(network_file(tmp_path / "m.skimgclf", make(), classes))
    assert expected in message, message


def test_a_softmax_over_the_classes_loads_and_predicts(tmp_path):
    """The control: the same kind of network, one softmax unit per class."""
    pipe = skimgclf.load(network_file(tmp_path / "m.skimgclf", _dense_network(3), ("a", "b", "c")))
    assert set(pipe.predict(np.random.default_rng(0).random((20, 8, 8, 1), dtype=np.float32))) <= {"a", "b", "c"}


# ------------------------------------------------------------------ dtypes and numbers
def _policy(name):
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name}, "registered_name": None}


def _set_dtype(kind, value):
    def edit(config):
        layer = next(layer for layer in config["config"]["layers"] if layer["class_name"] == kind)
        layer["config"]["dtype"] = value
    return edit


DTYPE_CASES = {
    "a plain string": (_set_dtype("Conv2D", "float64"), "'float64'"),
    "a policy": (_set_dtype("Conv2D", _policy("float64")), "'float64'"),
    "a nested policy": (_set_dtype("Conv2D", _policy(_policy("float64"))), "'float64'"),
    "mixed precision": (_set_dtype("Dense", "mixed_float16"), "'mixed_float16'"),
    "an alias": (_set_dtype("Dense", "double"), "'double'"),
    "the input": (_set_dtype("InputLayer", "float64"), "'float64'"),
}


@pytest.mark.parametrize("case", DTYPE_CASES)
def test_every_spelling_of_a_dtype_other_than_float32_is_refused(model, tmp_path, no_keras, case):
    import re

    edit, name = DTYPE_CASES[case]
    message = refused(write_model(tmp_path / "m.skimgclf", edit_network(model_members(model), config=edit)))
    assert re.search(rf"layer '[a-z_0-9]+' has a dtype policy of {name}, not float32", message), message


def _operation_network():
    """Flatten, an operation (x + 3.0), a rescaling, a dropout and the softmax."""
    import keras

    inputs = keras.Input((8, 8, 1), name="images")
    x = keras.ops.add(keras.layers.Flatten(name="flat")(inputs), 3.0)
    x = keras.layers.Rescaling(0.5, name="rescale")(x)
    x = keras.layers.Dropout(0.1, name="dropout")(x)
    network = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="probabilities")(x))
    network.compile("adam", "sparse_categorical_crossentropy")
    return network


def _layer(config, kind):
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == kind)


def _constant(config):
    _layer(config, "Add")["inbound_nodes"][0]["args"][1] = 10**400


NUMBER_CASES = {
    "an operation's constant of 10**400": (_constant, r"args is 10{39}\.\.\. \(401 characters\) in "
                                                      r"layer 'add(_\d+)?', not a finite float32"),
    "a NaN offset": (lambda c: _layer(c, "Rescaling")["config"].update(offset=float("nan")),
                     r"offset is nan in layer 'rescale', not a finite float32"),
    "an infinite rate": (lambda c: _layer(c, "Dropout")["config"].update(rate=float("inf")),
                         r"rate is inf in layer 'dropout', not a finite float32"),
}


@pytest.mark.parametrize("case", NUMBER_CASES)
def test_numbers_a_float32_cannot_hold_are_refused(tmp_path, no_keras, case):
    import re

    edit, expected = NUMBER_CASES[case]
    members = model_members(network_file(tmp_path / "good.skimgclf", _operation_network()))
    message = refused(write_model(tmp_path / "m.skimgclf", edit_network(members, config=edit)))
    assert re.search(expected, message), message


# ------------------------------------------------------------ safe loading
def _keras_bytes(model):
    from keras.src.saving import saving_lib

    buffer = io.BytesIO()
    saving_lib.save_model(model, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("backbone", ["mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "resnet50"])
def test_netcheck_counts_every_backbone_weight_exactly(backbone):
    from skimgclf.model.netcheck import check_network
    from skimgclf.model.network import build_cnn

    for shape in ((20, 24, 1), (40, 33, 3)):
        net = build_cnn(shape, 3, backbone=backbone, backbone_weights=None)
        net.compile("adam", "sparse_categorical_crossentropy")
        assert check_network(_keras_bytes(net), "m", shape) == net.count_params()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**CNN_CONFIGS)
def test_netcheck_counts_the_weights_keras_builds(size, channels, n_classes, **params):
    from skimgclf.model.netcheck import check_network
    from skimgclf.model.network import build_cnn

    shape = (*size, channels)
    try:
        net = build_cnn(shape, n_classes, **params)
    except ValueError:  # "valid" convolutions that leave nothing: Keras refuses to build them
        reject()  # not a passed case: hypothesis draws another (and fails if it must reject too many)
    net.compile("adam", "sparse_categorical_crossentropy")
    assert check_network(_keras_bytes(net), "m", shape) == net.count_params()


def _edit_operation(data, edit):
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    config = json.loads(members["config.json"])
    edit(config["config"]["layers"])
    members["config.json"] = json.dumps(config).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, value in members.items():
            zf.writestr(name, value)
    return out.getvalue()


def _constant_array(layers):
    op = next(layer for layer in layers if layer["module"] == "keras.src.ops.numpy")
    op["inbound_nodes"][0]["args"][1] = [[3.0] * 1000] * 1000


def _other_operation(layers):
    op = next(layer for layer in layers if layer["module"] == "keras.src.ops.numpy")
    op["class_name"] = op["registered_name"] = "Tile"


def _float64(layers):
    layer = next(layer for layer in layers if layer["class_name"] == "DepthwiseConv2D")
    layer["config"]["dtype"]["config"]["name"] = "float64"


def _depthwise_multiplier(layers):
    layer = next(layer for layer in layers if layer["class_name"] == "DepthwiseConv2D")
    layer["config"]["depth_multiplier"] = 4096


@pytest.mark.parametrize("edit, message", [
    (_constant_array, r"operation 'add(_\d+)?' takes \[\[\[3\.0, 3\.0, [0-9., ]*\.\.\., not a number\)"),
    (_other_operation, r"keras\.src\.ops\.numpy\.Tile, which is not something skimgclf builds"),
    (_depthwise_multiplier, r"sets depth_multiplier=4096"),
    (_float64, r"a dtype policy of 'float64', not float32"),
])
def test_the_backbone_allowlist_admits_what_backbones_build_and_nothing_more(edit, message):
    from skimgclf.errors import ModelFileError
    from skimgclf.model.netcheck import check_network
    from skimgclf.model.network import build_cnn

    net = build_cnn((32, 32, 3), 2, backbone="mobilenet_v3_small", backbone_weights=None)
    net.compile("adam", "sparse_categorical_crossentropy")
    data = _keras_bytes(net)
    check_network(data, "m", (32, 32, 3))
    with pytest.raises(ModelFileError, match="the network cannot be loaded safely") as info:
        check_network(_edit_operation(data, edit), "m", (32, 32, 3))
    assert re.search(message, str(info.value)), info.value


def test_what_builds_backbones_is_what_loading_accepts():
    from skimgclf.model.netcheck import BACKBONE_LAYERS, LAYERS
    from skimgclf.model.network import build_cnn
    from skimgclf.model.params import BACKBONES

    seen = set()
    for backbone in BACKBONES:
        net = build_cnn((16, 16, 1), 2, backbone=backbone, backbone_weights=None)
        seen |= {type(layer).__name__ for layer in net.layers}
    assert seen <= LAYERS | BACKBONE_LAYERS, seen - LAYERS - BACKBONE_LAYERS
    assert BACKBONE_LAYERS - seen == set(), "an allowed layer no backbone builds"


def test_a_config_asking_for_a_huge_layer_is_refused_before_keras_builds_it(model, tmp_path, monkeypatch):
    import keras

    def huge(config):
        output = next(layer for layer in config["config"]["layers"] if layer["name"] == "probabilities")
        output["config"]["units"] = 10_000_000  # consistent otherwise: nothing comes after it

    path = write_model(tmp_path / "m.skimgclf", edit_network(model_members(model), huge))
    monkeypatch.setattr(keras.saving, "load_model", lambda *a, **k: pytest.fail("Keras was asked to build it"))
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=r"the network cannot be loaded safely \(its output 'probabilities' "
                                             r"has 10,000,000 units, more than 100,000 classes\); refused"):
        skimgclf.load(path)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("activation, named", [
    ({"module": "keras.datasets.mnist", "class_name": "function", "config": "load_data",
      "registered_name": "load_data"}, "keras.datasets.mnist.function"),
    ("exponential", "activation 'exponential' is not one skimgclf builds"),
])
def test_an_activation_skimgclf_does_not_build_is_refused(model, tmp_path, monkeypatch, activation, named):
    import keras

    def foreign(config):
        _layer(config, "Dense")["config"]["activation"] = activation

    called = []
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda *a, **k: called.append(1))
    path = write_model(tmp_path / "m.skimgclf", edit_network(model_members(model), foreign))
    with pytest.raises(ModelFileError, match=r"the network cannot be loaded safely \(.*" + named.replace(".", r"\.")):
        skimgclf.load(path)
    assert not called


def test_network_input_must_be_the_classifiers_shape(model, tmp_path):
    for side, message in ((20000, r"an input of 8x20000 pixels \(at most 16384 a side\)"),
                          (9000, r"an input of shape \(8, 9000, 1\), but the classifier says \(8, 8, 1\)")):
        def wider(config):
            _layer(config, "InputLayer")["config"]["batch_shape"] = [None, 8, side, 1]

        path = write_model(tmp_path / "m.skimgclf", edit_network(model_members(model), wider))
        with pytest.raises(ModelFileError, match=message):
            skimgclf.load(path)


def _nest(config):
    """The whole network again, as a layer of itself (Keras builds a nested model's layers)."""
    inner = json.loads(json.dumps(config))
    inner["name"] = inner["config"]["name"] = "inner"
    dense = _layer(config, "Dense")
    inner["inbound_nodes"] = dense["inbound_nodes"]
    config["config"]["layers"].insert(config["config"]["layers"].index(dense), inner)


def _rename(config):
    _layer(config, "Flatten")["name"] = "elsewhere"


def _rebuild(config):
    _layer(config, "Dense")["build_config"] = {"input_shape": [None, 1_000_000_000]}


def _upper_padding(config):
    _layer(config, "Conv2D")["config"]["padding"] = "SAME"


def _lora(config):
    _layer(config, "Dense")["config"]["lora_rank"] = 100_000


@pytest.mark.parametrize("edit, message", [
    (_nest, "layer 'inner' is a keras.src.models.functional.Functional, not a layer skimgclf builds"),
    (_rename, "layer 'elsewhere' is named twice or two ways"),
    (_rebuild, "is built for {'input_shape': [None, 1000000000]}"),
    (_upper_padding, "has padding 'SAME'"),
    (_lora, "sets lora_rank=100000"),
])
def test_configs_that_would_make_keras_build_more_than_counted_are_refused(model, tmp_path, monkeypatch, edit,
                                                                           message):
    import keras

    monkeypatch.setattr(keras.saving, "load_model", lambda *a, **k: pytest.fail("Keras was asked to build it"))
    path = write_model(tmp_path / "m.skimgclf", edit_network(model_members(model), edit))
    with pytest.raises(ModelFileError) as info:
        skimgclf.load(path)
    assert "the network cannot be loaded safely" in str(info.value) and message in str(info.value), info.value


def test_what_builds_the_networks_is_what_loading_accepts():
    """The allow-list of layers is the builder's: every option combination builds only listed layers."""
    from skimgclf.model.netcheck import LAYERS, _check_objects
    from skimgclf.model.network import build_cnn

    seen = set()
    for params in ({}, {"pooling": "avg", "global_pooling": "max", "conv_dropout": 0.1, "random_rotation": 0.1,
                        "random_zoom": 0.1, "random_flip": "horizontal"}, {"global_pooling": "avg", "hidden_layers": 0},
                   {"batch_norm": False, "pooling": None, "activation": "gelu"}):
        for shape in ((8, 8, 1), (32, 32, 3)):
            net = build_cnn(shape, 3, **params)
            seen |= {type(layer).__name__ for layer in net.layers}
            _check_objects(json.loads(net.to_json()))
    assert seen <= LAYERS, seen - LAYERS
