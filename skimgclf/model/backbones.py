"""Pretrained backbones: a network of ``keras.applications`` under a new classification head.

:func:`build_transfer` builds, as one flat functional model (no nested
model, so that :mod:`.netcheck` can read every layer of a saved one):

1. the augmentation layers of the plain CNN (active only while training);
2. images smaller than :data:`MIN_SIDE` on a side resized up, keeping their
   aspect ratio, so that the shorter side is :data:`MIN_SIDE` (the smallest
   input the applications accept);
3. ``backbone_input``: a fixed (non-trainable) 1x1 convolution that maps
   the loader's ``[0, 1]`` images of 1, 3 or 4 channels to the 3 channels
   and the value range the backbone was trained on: grayscale repeated to
   three channels, alpha dropped, and each application's own preprocessing
   (MobileNetV3: ``[-1, 1]``; EfficientNet: ``[0, 255]``, which the network
   normalises itself; ResNet50: BGR, ImageNet means subtracted);
4. the application without its top (``include_top=False``);
5. the head: global average pooling, the classifier's hidden dense layers,
   and a softmax over the classes.

The backbone's weights come from ``backbone_weights``: ``"imagenet"`` (Keras
downloads and caches them), ``None`` (random), or the path of a file saved
with ``save_weights`` from the same application built without its top.

Importing this module imports Keras.
"""

from __future__ import annotations

import math
import os
import socket
import warnings

import keras
import numpy as np

from ..errors import Advice, BackboneWeightsError, Option
from .netcheck import MAX_INPUT_SIDE
from .params import BACKBONES

__all__ = ["BACKBONES", "MIN_SIDE", "backbone_layers", "build_transfer", "input_size",
           "save_backbone_weights", "set_phase"]

#: Smallest side of an image a backbone is given: smaller images are resized up to it.
MIN_SIDE = 32

#: Per backbone: the keras.applications constructor, its extra arguments, and the
#: preprocessing of ``[0, 1]`` RGB images as ``(scale, per-channel offset, BGR order)``.
_SPECS = {
    "mobilenet_v3_small": ("MobileNetV3Small", {"include_preprocessing": False}, 2.0, (-1.0, -1.0, -1.0), False),
    "mobilenet_v3_large": ("MobileNetV3Large", {"include_preprocessing": False}, 2.0, (-1.0, -1.0, -1.0), False),
    "efficientnet_b0": ("EfficientNetB0", {}, 255.0, (0.0, 0.0, 0.0), False),
    "resnet50": ("ResNet50", {}, 255.0, (-103.939, -116.779, -123.68), True),
}
assert set(_SPECS) == set(BACKBONES)

#: ImageNet channel means and standard deviations of [0, 1] RGB images (EfficientNet's normalisation).
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_IMAGENET_STDDEV = np.array([0.229, 0.224, 0.225], np.float32)

#: Names of the layers skimgclf adds around a backbone (everything else in a transfer network is the backbone's).
_OWN_PREFIXES = ("images", "augment_", "resize_up", "backbone_input", "head_", "probabilities")


def input_size(height, width):
    """``(height, width)`` a backbone sees for images of ``height x width``: at least :data:`MIN_SIDE` a side.

    Images whose shorter side is below :data:`MIN_SIDE` are scaled up, aspect
    ratio kept, until it is :data:`MIN_SIDE` (8x8 digits become 32x32, 20x40
    images 32x64); larger images are left as they are.
    """
    shorter = min(height, width)
    if shorter >= MIN_SIDE:
        return int(height), int(width)
    scale = MIN_SIDE / shorter
    return max(MIN_SIDE, round(height * scale)), max(MIN_SIDE, round(width * scale))


def _application(backbone, weights, input_shape=None, input_tensor=None):
    """The keras.applications network ``backbone`` without its top."""
    name, extra, *_ = _SPECS[backbone]
    constructor = getattr(keras.applications, name)
    return constructor(include_top=False, weights=weights, input_shape=input_shape, input_tensor=input_tensor,
                       **extra)


def _keras_home():
    """The folder Keras caches downloads in (``$KERAS_HOME`` or ``~/.keras``)."""
    from keras.src.backend import config

    return config.keras_home()


def _offline_help(backbone):
    name = _SPECS[backbone][0]
    save = (f"On a machine with a network, save them once: python -c \"import keras; "
            f"keras.applications.{name}(include_top=False, weights='imagenet')"
            f".save_weights('{backbone}.weights.h5')\"; then pass ")
    return save + Advice(
        f"backbone_weights='{backbone}.weights.h5' (a path), or backbone_weights=None to start from random weights",
        (Option("backbone_weights"), f" {backbone}.weights.h5 (a path), or ", Option("backbone_weights"),
         " none to start from random weights"))


def _given(weights):
    """``backbone_weights`` as the user gave it: ``backbone_weights='x'`` in Python, ``--backbone-weights x``."""
    return Advice(f"backbone_weights={weights!r}", (Option("backbone_weights"), f" {weights}"))


def reference_weights(backbone, backbone_weights, input_shape):
    """The backbone's weights (a list of arrays, in layer order) from ``backbone_weights``.

    Raises
    ------
    BackboneWeightsError
        When the ImageNet weights are neither cached nor downloadable within
        seconds, or the file is missing or holds another network's weights.
    """
    if backbone_weights == "imagenet":
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(10)  # an unreachable host fails in seconds, not minutes
        try:
            with warnings.catch_warnings():  # "weights for (224, 224) will be loaded": shape-free without a top
                warnings.filterwarnings("ignore", message=".*input_shape.*", category=UserWarning)
                model = _application(backbone, "imagenet", input_shape=input_shape)
        except Exception as exc:  # noqa: BLE001 - Keras raises a bare Exception on a failed download
            reason = " ".join(str(exc).split())[:200]
            raise BackboneWeightsError(
                _given("imagenet") + f": the ImageNet weights of {backbone} are not in Keras' cache "
                f"({os.path.join(_keras_home(), 'models')}) "
                f"and could not be downloaded ({reason}). " + _offline_help(backbone)
            ) from None
        finally:
            socket.setdefaulttimeout(previous)
    else:
        path = os.fspath(backbone_weights)
        if not os.path.isfile(path):
            what = "a folder, not a weights file" if os.path.isdir(path) else "no such file"
            raise BackboneWeightsError(
                _given(path) + f": {what}. Pass " + Advice("'imagenet', None,", "imagenet, none,")
                + f" or the path of a file saved with save_weights from keras.applications."
                f"{_SPECS[backbone][0]}(include_top=False, weights=None)")
        model = _application(backbone, None, input_shape=input_shape)
        try:
            with warnings.catch_warnings():
                # Keras only warns when a file matches some layers and not others
                # ("... will retain their freshly-initialized weights"): refuse that.
                warnings.simplefilter("error")
                model.load_weights(path)
        except Exception as exc:  # noqa: BLE001 - h5py and Keras raise many kinds
            reason = " ".join(str(exc).split())[:300]
            raise BackboneWeightsError(
                _given(path) + f": not the weights of keras.applications.{_SPECS[backbone][0]} "
                f"without its top (include_top=False), saved with save_weights ({type(exc).__name__}: "
                f"{reason})") from None
    return [layer.get_weights() for layer in model.layers if layer.weights]


def build_transfer(input_shape, n_classes, *, backbone, backbone_weights, seed=None, name="cnn", augment, head):
    """Build (uncompiled) a classifier on the pretrained ``backbone``.

    Parameters
    ----------
    input_shape : tuple of int
        ``(height, width, channels)`` of the images, values in [0, 1].
    n_classes : int
        Number of softmax outputs.
    backbone : str
        One of :data:`BACKBONES`.
    backbone_weights : "imagenet", None or path
        Where the backbone's weights come from.
    seed : int or None
        Seeds the head's initializers (the backbone's come from Keras' global seed).
    name : str
        Name of the Keras model.
    augment : callable
        ``augment(x) -> x``: the training-time augmentation layers.
    head : callable
        ``head(x) -> x``: the classifier's hidden dense layers on the pooled features.

    Returns
    -------
    keras.Model
        One functional model (the backbone's layers inline), the backbone frozen.
    """
    h, w, c = (int(v) for v in input_shape)
    inputs = keras.Input(shape=(h, w, c), name="images")
    x = augment(inputs)
    size = input_size(h, w)
    if max(size) > MAX_INPUT_SIDE:
        raise ValueError(
            f"images of {h}x{w} pixels would reach the backbone as {size[0]}x{size[1]} (their shorter side "
            f"resized up to {MIN_SIDE}), more than {MAX_INPUT_SIDE} on a side; load them with a target_size "
            "closer to square")
    if size != (h, w):
        x = keras.layers.Resizing(*size, interpolation="bilinear", name="resize_up")(x)
    affine = keras.layers.Conv2D(3, 1, name="backbone_input", trainable=False)
    x = affine(x)
    reference = None if backbone_weights is None else reference_weights(backbone, backbone_weights,
                                                                          (*size, 3))
    app = _application(backbone, None, input_tensor=x)
    ours = [layer for layer in app.layers if not layer.name.startswith(_OWN_PREFIXES)]
    for layer in ours:
        if isinstance(layer, keras.layers.BatchNormalization):
            # The applications use 0.999, tuned for ImageNet's millions of steps: over the
            # few thousand steps of a small data set the moving statistics would lag far
            # behind the weights. 0.9 is the plain CNN's; it matters only where batch norm trains.
            layer.momentum = 0.9
    features = keras.layers.GlobalAveragePooling2D(name="head_pool")(app.output)
    features = head(features)
    init = keras.initializers.GlorotUniform(seed=None if seed is None else int(seed))
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities", kernel_initializer=init)(
        features)
    model = keras.Model(inputs, outputs, name=name)
    _set_input_affine(affine, backbone, c)
    if reference is not None:
        _load_reference(ours, reference, backbone)
    set_phase(model, 0.0)
    return model


def _set_input_affine(affine, backbone, channels):
    """Weights of the 1x1 convolution that maps [0, 1] images to what ``backbone`` expects (gray to RGB too)."""
    _, _, scale, offset, bgr = _SPECS[backbone]
    kernel = np.zeros((1, 1, channels, 3), np.float32)
    order = [2, 1, 0] if bgr else [0, 1, 2]
    for out, source in enumerate(order):
        kernel[0, 0, source if channels >= 3 else 0, out] = scale  # gray: every output channel reads channel 0
    affine.set_weights([kernel, np.asarray(offset, np.float32)])


def _load_reference(layers, reference, backbone):
    """Set the weights of the backbone's ``layers`` to ``reference`` (one list of arrays per layer with weights)."""
    with_weights = [layer for layer in layers if layer.weights]
    if len(with_weights) != len(reference):
        raise BackboneWeightsError(
            f"backbone_weights: {len(reference)} layers with weights, but {backbone} has {len(with_weights)}")
    for layer, values in zip(with_weights, reference):
        if isinstance(layer, keras.layers.Normalization) and _imagenet_normalization(values):
            # EfficientNet's ImageNet weights expect its inputs divided by
            # sqrt(stddev) once more after this layer (Keras adds a Rescaling
            # only when it loads weights="imagenet" itself): fold that into the
            # variance, as sqrt(var * stddev) = sqrt(var) * sqrt(stddev).
            values = [values[0], values[1] * _IMAGENET_STDDEV.reshape(np.shape(values[1])), *values[2:]]
        layer.set_weights(values)
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()  # it divides by copies of its variables, made when built


def _imagenet_normalization(values):
    """Whether a Normalization layer's weights are ImageNet's channel means (EfficientNet's)."""
    mean = np.asarray(values[0], np.float64).reshape(-1)
    return mean.size == 3 and np.allclose(mean, _IMAGENET_MEAN, atol=1e-3)


def backbone_layers(model):
    """The layers of a transfer network that belong to its backbone, in order (empty for the plain CNN)."""
    names = [layer.name for layer in model.layers]
    if "backbone_input" not in names:
        return []
    return [layer for layer in model.layers if not layer.name.startswith(_OWN_PREFIXES)]


def set_phase(model, fraction, batch_norm=False):
    """Freeze the backbone of ``model`` but for the top ``fraction`` of its layers.

    ``0`` trains the head only. Batch normalisation layers stay frozen (in
    Keras a frozen one runs in inference mode) unless ``batch_norm``:
    re-estimating pretrained statistics from a few small batches of new
    images wrecks the features they normalise, but a backbone that starts
    from random weights has no statistics to keep.

    Returns
    -------
    int
        How many backbone layers with weights now train.
    """
    layers = backbone_layers(model)
    first = len(layers) - int(math.floor(float(fraction) * len(layers) + 0.5))
    training = 0
    for i, layer in enumerate(layers):
        layer.trainable = i >= first and (batch_norm or not isinstance(layer, keras.layers.BatchNormalization))
        training += layer.trainable and bool(layer.weights)
    return training


def save_backbone_weights(model, backbone, path):
    """Save the backbone of a transfer network as ``keras.applications`` would, without its top.

    The file is what ``save_weights`` writes for the application built with
    ``include_top=False``, so another classifier takes it as ``backbone_weights``.
    """
    size = tuple(int(v) for v in model.get_layer("backbone_input").output.shape[1:3])
    app = _application(backbone, None, input_shape=(*size, 3))
    targets = [layer for layer in app.layers if layer.weights]
    sources = [layer for layer in backbone_layers(model) if layer.weights]
    if len(targets) != len(sources):  # pragma: no cover - the same constructor builds both
        raise RuntimeError(f"{backbone}: {len(sources)} layers with weights, the application has {len(targets)}")
    for target, source in zip(targets, sources):
        values = source.get_weights()
        if isinstance(source, keras.layers.Normalization) and _imagenet_normalization(values):
            # Undo the fold of build_transfer: the file holds what Keras' own save_weights would.
            values = [values[0], values[1] / _IMAGENET_STDDEV.reshape(np.shape(values[1])), *values[2:]]
        target.set_weights(values)
    app.save_weights(os.fspath(path))

