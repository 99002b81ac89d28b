"""The network: the Keras CNN that :class:`~skimgclf.CNNClassifier` trains, built from its parameters.

Importing this module imports Keras.
"""

from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np

from .params import NETWORK, defaults

__all__ = ["build_cnn", "resolve_flip"]


#: ``"auto"`` augmentation is on for images at least this many pixels on
#: their shorter side: a tenth of an 8x8 image is a sub-pixel shift that only
#: blurs it (see "How the defaults were chosen" in the architecture guide).
_AUGMENT_FROM = 16
#: What ``"auto"`` augmentation means for images large enough.
_AUGMENT_AUTO = {"random_shift": 0.1, "random_rotation": 0.03, "random_zoom": 0.1}


def _augmentation(name, value, height, width, channels):
    """The rate ``value`` of augmentation ``name`` stands for on ``height x width x channels`` images."""
    if value == "auto":
        if name != "random_shift" and channels >= 3:
            return 0.0  # photos: flips and shifts, no rotation or zoom
        return _AUGMENT_AUTO[name] if min(height, width) >= _AUGMENT_FROM else 0.0
    return float(value)


def resolve_flip(random_flip, channels):
    """The flips ``random_flip`` stands for on images of ``channels`` channels (None: no flip).

    ``"auto"`` is ``"horizontal"`` for colour images and None for grayscale ones.
    """
    if random_flip == "auto":
        return "horizontal" if channels >= 3 else None
    return random_flip


def _pool(x, pooling, size_h, size_w):
    """2x2 ``pooling`` of ``x`` while the map is at least 4 pixels a side: ``(x, new height, new width)``."""
    if pooling is None or size_h < 4 or size_w < 4:
        return x, size_h, size_w
    layer = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
    return layer(2)(x), size_h // 2, size_w // 2


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
    stream = None if seed is None else np.random.default_rng(seed)

    def next_seed():
        return None if stream is None else int(stream.integers(2**31 - 1))

    def init():
        return keras.initializers.GlorotUniform(seed=next_seed())
    h, w, c = (int(v) for v in input_shape)
    colour = c >= 3

    def augment(x):
        # Augmentation layers are active only in training (Keras skips them in
        # inference), so predictions are never perturbed.
        random_shift = _augmentation("random_shift", p.random_shift, h, w, c)
        random_rotation = _augmentation("random_rotation", p.random_rotation, h, w, c)
        random_zoom = _augmentation("random_zoom", p.random_zoom, h, w, c)
        # What a shift, rotation or zoom brings into the frame: a photo's
        # border reflected (cifar10k validation +0.3, +1.5 and +2.5 % on
        # three splits against black), a digit's black background.
        fill = "reflect" if colour else "constant"
        if random_shift:
            x = keras.layers.RandomTranslation(random_shift, random_shift, fill_mode=fill, seed=next_seed(),
                                               name="augment_shift")(x)
        if random_rotation:
            x = keras.layers.RandomRotation(random_rotation, fill_mode=fill, seed=next_seed(),
                                            name="augment_rotation")(x)
        if random_zoom:
            x = keras.layers.RandomZoom(random_zoom, fill_mode=fill, seed=next_seed(), name="augment_zoom")(x)
        flip = resolve_flip(p.random_flip, c)
        if flip:
            x = keras.layers.RandomFlip(flip, seed=next_seed(), name="augment_flip")(x)
        return x

    def head(x):
        layer_units = list(p.units) if isinstance(p.units, (list, tuple)) else [int(p.units)] * p.hidden_layers
        for i, u in enumerate(layer_units):
            x = keras.layers.Dense(u, use_bias=not p.batch_norm, kernel_initializer=init(), name=f"head_dense_{i}")(x)
            if p.batch_norm:
                x = keras.layers.BatchNormalization(momentum=0.9, name=f"head_norm_{i}")(x)
            x = keras.layers.Activation(p.activation, name=f"head_activation_{i}")(x)
            if p.dropout:
                x = keras.layers.Dropout(p.dropout, seed=next_seed(), name=f"head_dropout_{i}")(x)
        return x

    if p.backbone is not None:
        from .backbones import build_transfer

        return build_transfer((h, w, c), n_classes, backbone=p.backbone, backbone_weights=p.backbone_weights,
                              seed=next_seed(), name=name, augment=augment, head=head)
    inputs = keras.Input(shape=(h, w, c), name="images")
    x = augment(inputs)
    convs_per_block = (2 if colour else 1) if p.convs_per_block == "auto" else int(p.convs_per_block)
    block_filters = list(p.filters) if isinstance(p.filters, (list, tuple)) else [
        int(p.filters) * 2**b for b in range(p.conv_blocks)
    ]
    pool_after = (1 if colour else None) if p.pool_after == "auto" else int(p.pool_after)
    size_h, size_w = h, w
    for b in range(p.conv_blocks):
        conv_filters = block_filters[b]
        if not isinstance(conv_filters, (list, tuple)):
            conv_filters = [conv_filters] * convs_per_block
        pool_at = len(conv_filters) if pool_after is None else min(pool_after, len(conv_filters))
        for i, n_filters in enumerate(conv_filters):
            k = min(int(p.kernel_size), size_h, size_w) if size_h > 1 and size_w > 1 else 1
            pad = p.padding
            if pad == "auto" and colour:
                pad = "same"
            elif pad == "auto":
                # Trim the border while the map stays at least a kernel wide.
                pad = "valid" if min(size_h, size_w) - k + 1 >= k else "same"
            x = keras.layers.Conv2D(int(n_filters), k, padding=pad, use_bias=not p.batch_norm,
                                    kernel_initializer=init())(x)
            if pad == "valid":
                size_h, size_w = size_h - k + 1, size_w - k + 1
            # Max-pooling right after the convolution: normalisation and
            # activation then run on a quarter of the values (epochs a quarter
            # shorter on 32x32 photos, at the same accuracy; docs/user_guide/
            # architecture.rst). Average pooling stays after the activation.
            pool_here = i + 1 == pool_at
            if pool_here and p.pooling == "max":
                x, size_h, size_w = _pool(x, p.pooling, size_h, size_w)
            if p.batch_norm:
                x = keras.layers.BatchNormalization(momentum=0.9)(x)
            x = keras.layers.Activation(p.activation)(x)
            if pool_here and p.pooling != "max":
                x, size_h, size_w = _pool(x, p.pooling, size_h, size_w)
        if p.conv_dropout:
            x = keras.layers.Dropout(p.conv_dropout, seed=next_seed())(x)

    pooling = p.global_pooling
    if pooling == "auto":
        pooling = "flatten" if size_h * size_w <= 64 else "avg"
    if pooling == "flatten":
        x = keras.layers.Flatten()(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D()(x)
    else:
        x = keras.layers.GlobalMaxPooling2D()(x)
    x = head(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities", kernel_initializer=init())(x)
    return keras.Model(inputs, outputs, name=name)
