"""The network: the Keras CNN that :class:`~skimgclf.CNNClassifier` trains, built from its parameters.

What each ``"auto"`` stands for is decided by the rules of
:mod:`skimgclf.model.params` (``auto_*``); this module only builds layers.
Importing this module imports Keras.
"""

from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np

from .params import (NETWORK, auto_augmentation, auto_convs_per_block, auto_filters, auto_flip, auto_global_pooling,
                     auto_padding, auto_pool_after, colour, defaults)

__all__ = ["build_cnn", "resolve_flip"]


def _augmentation(name, value, height, width, channels):
    """The rate ``value`` of augmentation ``name`` stands for (:func:`~skimgclf.model.params.auto_augmentation`)."""
    return auto_augmentation(name, value, height, width, channels)


def resolve_flip(random_flip, channels):
    """The flips ``random_flip`` stands for on images of ``channels`` channels (None: no flip).

    The rule is :func:`skimgclf.model.params.auto_flip`'s.
    """
    return auto_flip(random_flip, channels)


class _Seeds:
    """One stream of seeds for every random layer and initializer of a network (None: Keras' global seeding)."""

    def __init__(self, seed):
        self.stream = None if seed is None else np.random.default_rng(seed)

    def next(self):
        return None if self.stream is None else int(self.stream.integers(2**31 - 1))

    def init(self):
        return keras.initializers.GlorotUniform(seed=self.next())


def _pool(x, pooling, size_h, size_w):
    """2x2 ``pooling`` of ``x`` while the map is at least 4 pixels a side: ``(x, new height, new width)``."""
    if pooling is None or size_h < 4 or size_w < 4:
        return x, size_h, size_w
    layer = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
    return layer(2)(x), size_h // 2, size_w // 2


def _augment(x, p, shape, seeds):
    """The training-time augmentation layers on ``x`` (Keras skips them in inference)."""
    h, w, c = shape
    rates = {name: auto_augmentation(name, getattr(p, name), h, w, c)
             for name in ("random_shift", "random_rotation", "random_zoom")}
    # What a shift, rotation or zoom brings into the frame: a photo's border
    # reflected (photos have no background colour), a digit's black background.
    fill = "reflect" if colour(c) else "constant"
    if rates["random_shift"]:
        x = keras.layers.RandomTranslation(rates["random_shift"], rates["random_shift"], fill_mode=fill,
                                           seed=seeds.next(), name="augment_shift")(x)
    if rates["random_rotation"]:
        x = keras.layers.RandomRotation(rates["random_rotation"], fill_mode=fill, seed=seeds.next(),
                                        name="augment_rotation")(x)
    if rates["random_zoom"]:
        x = keras.layers.RandomZoom(rates["random_zoom"], fill_mode=fill, seed=seeds.next(), name="augment_zoom")(x)
    flip = auto_flip(p.random_flip, c)
    if flip:
        x = keras.layers.RandomFlip(flip, seed=seeds.next(), name="augment_flip")(x)
    return x


def _head(x, p, seeds):
    """The dense hidden layers (with batch normalisation, activation and dropout) on the feature vector ``x``."""
    layer_units = list(p.units) if isinstance(p.units, (list, tuple)) else [int(p.units)] * p.hidden_layers
    for i, u in enumerate(layer_units):
        x = keras.layers.Dense(u, use_bias=not p.batch_norm, kernel_initializer=seeds.init(),
                               name=f"head_dense_{i}")(x)
        if p.batch_norm:
            x = keras.layers.BatchNormalization(momentum=0.9, name=f"head_norm_{i}")(x)
        x = keras.layers.Activation(p.activation, name=f"head_activation_{i}")(x)
        if p.dropout:
            x = keras.layers.Dropout(p.dropout, seed=seeds.next(), name=f"head_dropout_{i}")(x)
    return x


def _conv(x, p, n_filters, channels, size_h, size_w, pool_here, seeds):
    """One convolution with its normalisation, activation and (``pool_here``) pooling: ``(x, height, width)``."""
    k = min(int(p.kernel_size), size_h, size_w) if size_h > 1 and size_w > 1 else 1
    pad = auto_padding(p.padding, channels, size_h, size_w, k)
    x = keras.layers.Conv2D(int(n_filters), k, padding=pad, use_bias=not p.batch_norm,
                            kernel_initializer=seeds.init())(x)
    if pad == "valid":
        size_h, size_w = size_h - k + 1, size_w - k + 1
    # Max pooling right after the convolution: normalisation and activation
    # then run on a quarter of the values. Average pooling stays after the activation.
    if pool_here and p.pooling == "max":
        x, size_h, size_w = _pool(x, p.pooling, size_h, size_w)
    if p.batch_norm:
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.Activation(p.activation)(x)
    if pool_here and p.pooling != "max":
        x, size_h, size_w = _pool(x, p.pooling, size_h, size_w)
    return x, size_h, size_w


def _conv_blocks(x, p, shape, seeds):
    """The ``conv_blocks`` convolution blocks on ``x``: ``(x, height, width)`` of the last feature map."""
    size_h, size_w, c = shape
    convs_per_block = auto_convs_per_block(p.convs_per_block, c)
    block_filters = auto_filters(p.filters, p.conv_blocks, convs_per_block, shape)
    pool_after = auto_pool_after(p.pool_after, c)
    for b in range(p.conv_blocks):
        conv_filters = block_filters[b]
        if not isinstance(conv_filters, (list, tuple)):
            conv_filters = [conv_filters] * convs_per_block
        pool_at = len(conv_filters) if pool_after is None else min(pool_after, len(conv_filters))
        for i, n_filters in enumerate(conv_filters):
            x, size_h, size_w = _conv(x, p, n_filters, c, size_h, size_w, i + 1 == pool_at, seeds)
        if p.conv_dropout:
            x = keras.layers.Dropout(p.conv_dropout, seed=seeds.next())(x)
    return x, size_h, size_w


def _to_vector(x, global_pooling, size_h, size_w):
    """The last ``size_h x size_w`` feature map ``x`` as a vector: flattened or pooled globally."""
    pooling = auto_global_pooling(global_pooling, size_h, size_w)
    if pooling == "flatten":
        return keras.layers.Flatten()(x)
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D()(x)
    return keras.layers.GlobalMaxPooling2D()(x)


def build_cnn(input_shape, n_classes, *, seed=None, name="cnn", **params):
    """Build (uncompiled) the Keras CNN that :class:`CNNClassifier` trains.

    The network adapts to ``input_shape``: a block pools only while the
    feature map is at least twice the pool size, ``padding="auto"`` trims
    borders only while the map is large enough, and ``"auto"`` augmentation
    is off for tiny images, so small images (8x8) are never convolved or
    pooled into nothing; large feature maps are averaged globally instead of
    flattened so the dense head stays small.

    Parameters
    ----------
    input_shape : tuple of int
        ``(height, width, channels)``.
    n_classes : int
        Number of softmax outputs.
    seed : int or None, default=None
        Seeds every random layer and initializer from one stream, so that
        the network does not depend on Python's global ``random`` (which other
        threads of the process, a Dask worker's event loop say, may draw
        from). ``None`` leaves them to Keras' global seeding.
    name : str, default="cnn"
        Name of the Keras model.
    **params : dict
        The network parameters of :class:`~skimgclf.CNNClassifier`
        (:data:`skimgclf.model.params.NETWORK`); those left out take their
        defaults.

    Returns
    -------
    keras.Model
        The functional model, mapping images to class probabilities.
    """
    unknown = set(params) - set(NETWORK)
    if unknown:
        raise TypeError(f"build_cnn() got unexpected network parameters {sorted(unknown)}")
    p = SimpleNamespace(**{**defaults("network"), **params})
    seeds = _Seeds(seed)
    shape = tuple(int(v) for v in input_shape)

    def augment(x):
        return _augment(x, p, shape, seeds)

    def head(x):
        return _head(x, p, seeds)

    if p.backbone is not None:
        from .backbones import build_transfer

        return build_transfer(shape, n_classes, backbone=p.backbone, backbone_weights=p.backbone_weights,
                              seed=seeds.next(), name=name, augment=augment, head=head)
    inputs = keras.Input(shape=shape, name="images")
    x, size_h, size_w = _conv_blocks(augment(inputs), p, shape, seeds)
    x = head(_to_vector(x, p.global_pooling, size_h, size_w))
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities",
                                 kernel_initializer=seeds.init())(x)
    return keras.Model(inputs, outputs, name=name)
