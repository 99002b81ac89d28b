"""Prediction: a network's probabilities for a stack of images, eagerly or through a traced graph.

:func:`predict_proba` is the one entry point. Small work calls the Keras
model eagerly; a network asked for enough pixels is traced into a graph of
skimgclf's own (batch normalisation folded, convolutions cropped to what the
pooling reads, sub-batches that stay in the CPU caches), which gives Keras'
numbers faster (see ``docs/performance.rst``).

Importing this module imports Keras; TensorFlow is used when tracing.
"""

from __future__ import annotations

import weakref
import zlib

import keras
import numpy as np

__all__ = ["predict_proba"]


#: Per network (weakly: the entry goes with it): [weights stamp, traced
#: function or None, pixels asked for under these weights].
_INFERENCE = weakref.WeakKeyDictionary()
#: Per network (weakly): the bytes of activations one image takes (netcheck.cost), or None.
_ACTIVATION_BYTES = weakref.WeakKeyDictionary()
#: Bytes of activations one call of the network may hold: a chunk holds at most this much (and at
#: least one image, whatever it takes); the traced inference runs two sub-batches at once, each at
#: most half of it. netcheck.MAX_ACTIVATION_BYTES bounds what one image of a model file may take.
_CHUNK_ACTIVATION_BYTES = 2**30


def _weights_stamp(model):
    """A checksum of the weights, so a cached inference function follows retraining."""
    crc = 0
    for w in model.get_weights():
        crc = zlib.crc32(np.ascontiguousarray(w).view(np.uint8), crc)
    return crc


def _affine(bn):
    """``(scale, shift)`` in float64: what the batch norm ``bn`` computes at inference, ``x * scale + shift``."""
    var = keras.ops.convert_to_numpy(bn.moving_variance).astype(np.float64)
    mean = keras.ops.convert_to_numpy(bn.moving_mean).astype(np.float64)
    gamma = keras.ops.convert_to_numpy(bn.gamma).astype(np.float64) if bn.scale else 1.0
    beta = keras.ops.convert_to_numpy(bn.beta).astype(np.float64) if bn.center else 0.0
    scale = gamma / np.sqrt(var + bn.epsilon)
    return scale, beta - mean * scale


def _fold(layer, bn):
    """``(kernel, bias)`` of ``layer`` (Conv2D or Dense), with the batch norm ``bn`` after it folded in
    (without one: its own)."""
    kernel = keras.ops.convert_to_numpy(layer.kernel).astype(np.float64)
    bias = keras.ops.convert_to_numpy(layer.bias).astype(np.float64) if layer.use_bias else np.zeros(kernel.shape[-1])
    if bn is not None:
        scale, shift = _affine(bn)
        kernel, bias = kernel * scale, bias * scale + shift
    return kernel.astype(np.float32), np.broadcast_to(bias, kernel.shape[-1:]).astype(np.float32)


def _inference_steps(model):
    """The layers of a chain-shaped network for inference, batch norm folded.

    A list of ``("conv", kernel, bias, conv)``, ``("dense", kernel, bias)``,
    ``("affine", scale, shift)`` and ``("layer", layer)`` steps, or None when
    the network is not a simple chain of layers (then it is called as it
    is). Folding a batch normalisation into the convolution before it saves a
    pass over the largest tensors and lets TensorFlow fuse convolution, bias
    and ReLU. One that does not follow its layer directly (after a max
    pooling, which only commutes with an increasing scale) is an
    ``"affine"`` step of its own.
    """
    try:
        layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            return None
        previous = model.inputs[0]
        for layer in layers:
            if layer.input is not previous:
                return None
            previous = layer.output
        if previous is not model.outputs[0]:
            return None
    except (AttributeError, ValueError):
        return None
    def last_axis_bn(layer):
        return (isinstance(layer, keras.layers.BatchNormalization) and layer.axis in (-1, len(layer.input.shape) - 1)
                and layer.compute_dtype == "float32")

    steps, i = [], 0
    while i < len(layers):
        layer, bn = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        bn = bn if last_axis_bn(bn) else None
        linear = getattr(layer, "activation", None) is keras.activations.linear and layer.compute_dtype == "float32"
        if linear and type(layer) is keras.layers.Conv2D and layer.data_format == "channels_last" \
                and layer.groups == 1:
            steps.append(("conv",) + _fold(layer, bn) + (layer,))
        elif linear and bn is not None and type(layer) is keras.layers.Dense and len(layer.input.shape) == 2:
            steps.append(("dense",) + _fold(layer, bn))
        elif last_axis_bn(layer):
            steps.append(("affine",) + tuple(v.astype(np.float32) for v in _affine(layer)))
            bn = None
        else:
            steps.append(("layer", layer))
            bn = None
        i += 2 if bn is not None else 1
    return steps


#: Layers that act on each value alone at inference: rows and columns stay where they are.
_POINTWISE = ("Activation", "Dropout", "SpatialDropout2D", "ReLU", "LeakyReLU", "ELU", "GaussianNoise",
              "GaussianDropout", "AlphaDropout")


def _conv_window(steps, i, height, width):
    """Explicit padding and input crop for conv step ``i`` on a ``height x width`` map, or None.

    A "valid" pooling after a convolution (through pointwise layers) ignores
    the last rows or columns of an odd-sized map: 11x11 pooled by 2 uses
    10x10. Computing only the outputs it uses gives the same numbers for less
    work (a sixth of the second convolution of the default network on 28x28
    images). Returns
    ``(rows, cols, padding)``: the input rows and columns to keep and the
    ``tf.nn.conv2d`` explicit padding, or None to convolve as usual.
    """
    conv = steps[i][3]
    if tuple(conv.strides) != (1, 1) or tuple(conv.dilation_rate) != (1, 1):
        return None
    j = i + 1
    while j < len(steps) and (steps[j][0] == "affine"
                              or steps[j][0] == "layer" and type(steps[j][1]).__name__ in _POINTWISE):
        j += 1
    pool = steps[j][1] if j < len(steps) and steps[j][0] == "layer" else None
    if type(pool).__name__ not in ("MaxPooling2D", "AveragePooling2D") or pool.padding != "valid" \
            or pool.data_format != "channels_last":
        return None
    keep, padding, all_used = [], [[0, 0]], True
    same = conv.padding == "same"
    for size, k, p, s in zip((height, width), conv.kernel_size, pool.pool_size, pool.strides):
        if size is None:
            return None
        out = size if same else size - k + 1  # outputs of the convolution
        if out < p:
            return None
        used = (out - p) // s * s + p  # outputs the pooling reads
        all_used = all_used and used == out
        before = (k - 1) // 2 if same else 0  # what the padding adds before
        last = used - 1 - before + k - 1  # the last input row (or column) those outputs need
        keep.append(min(size, last + 1))
        padding.append([before, max(0, last - (size - 1))])
    if all_used:
        return None  # the pooling reads every output: convolve as usual
    return keep[0], keep[1], padding + [[0, 0]]


#: Pixels (images x height x width) a network is asked for before its
#: inference is traced. Tracing and optimising the graph costs a fixed time
#: once; the traced graph then runs faster than an eager call, which pays from
#: about this many pixels (~20,000 28x28 images or 16,000 32x32 photos;
#: figures in docs/performance.rst). Smaller work -- a validation fold, a
#: test set of a few thousand images -- is done eagerly.
_TRACE_FROM_PIXELS = 2**24


def predict_proba(model, X, flip=False, progress=False):
    """Probabilities of the float32 images ``X`` by the Keras ``model``, in chunks.

    Small work calls the network eagerly; once a network has been asked for
    :data:`_TRACE_FROM_PIXELS` pixels (since its weights last changed) it is
    traced (:func:`_inference_function`). Both give Keras' numbers (to float
    rounding: the traced graph folds batch normalisation). With ``flip``,
    each image's probabilities are averaged with its mirror image's. With
    ``progress``, a bar over the images shows when prediction takes more
    than a second where a person watches (:mod:`skimgclf._progress`).
    """
    from .._progress import bar

    with bar(show=progress, total=X.shape[0] * (2 if flip else 1), desc="predicting", unit="img") as shown:
        proba = _predict_chunks(model, X, shown.update)
        if flip:
            proba = (proba + _predict_chunks(model, X[:, :, ::-1], shown.update)) / np.float32(2)
    return proba


def _predict_chunks(model, X, done):
    """:func:`predict_proba` of one pass, calling ``done(rows)`` after each chunk."""
    n, h, w = X.shape[:3]
    stamp = _weights_stamp(model)
    entry = _INFERENCE.get(model)
    if entry is None or entry[0] != stamp:
        entry = _INFERENCE[model] = [stamp, None, 0]
    entry[2] += n * h * w
    if entry[1] is None and entry[2] >= _TRACE_FROM_PIXELS:
        entry[1] = _inference_function(model)
    if entry[1] is not None:
        call = entry[1]
    else:
        def call(x):
            return keras.ops.convert_to_numpy(model(x, training=False))
    # Large chunks: no dataset or iterator per call as in Model.predict
    # (figures in docs/performance.rst), as large as the network's activations allow.
    rows, chunk = _chunking(X.shape[1:], _activation_bytes(model))
    parts = []
    for start in range(0, n, chunk):
        parts.append(np.asarray(call(X[start:start + chunk])))
        done(parts[-1].shape[0])
    return np.concatenate(parts).astype(np.float32, copy=False).reshape(n, -1)


def _inference_function(model):
    """A traced ``images -> probabilities`` function of ``model``, or None.

    Folds batch normalisation into the layer before it, computes only the
    convolution outputs a pooling reads, and runs large chunks in sub-batches
    that stay in the CPU caches. None where the Keras backend is not
    TensorFlow (the network is then called eagerly).
    """
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    steps = _inference_steps(model)
    spec = tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32)
    if steps is None:
        ref = weakref.ref(model)  # the function must not keep the model alive

        def run(x):
            return ref()(x, training=False)
    else:
        def run(x):
            for i, step in enumerate(steps):
                if step[0] == "conv":
                    _, kernel, bias, conv = step
                    window = _conv_window(steps, i, x.shape[1], x.shape[2])
                    if window is None:
                        x = tf.nn.conv2d(x, kernel, strides=conv.strides, padding=conv.padding.upper(),
                                         dilations=conv.dilation_rate)
                    else:
                        rows, cols, padding = window
                        x = tf.nn.conv2d(x[:, :rows, :cols], kernel, strides=1, padding=padding)
                    x = tf.nn.bias_add(x, bias)
                elif step[0] == "dense":
                    x = tf.matmul(x, step[1]) + step[2]
                elif step[0] == "affine":
                    x = x * step[1] + step[2]
                else:
                    x = step[1](x, training=False)
            return x

    rows, _ = _chunking(model.input_shape[1:], _activation_bytes(model))
    out_spec = tf.TensorSpec((None,) + tuple(model.output_shape[1:]), tf.float32)

    def run_in_rows(x):
        # Sub-batches of ``rows`` images, one after the other: the largest
        # feature maps of a sub-batch stay in the CPU caches instead of a pass
        # through memory for the whole chunk.
        # Rows are independent at inference, so the numbers are the same.
        # The network is never run on an empty batch: TensorFlow's fused
        # kernels fail on one ("input depth must be evenly divisible"), which
        # is what a count that is a multiple of ``rows`` would leave over.
        n = tf.shape(x)[0]
        full = n // rows * rows

        def sub_batches():
            head = tf.reshape(x[:full], tf.concat([[-1, rows], tf.shape(x)[1:]], 0))
            done = tf.map_fn(run, head, fn_output_signature=out_spec, parallel_iterations=2)
            return tf.reshape(done, tf.concat([[full], tf.shape(done)[2:]], 0))

        def rest():
            return run(x[full:])

        return tf.cond(full == 0, rest,
                       lambda: tf.cond(full == n, sub_batches, lambda: tf.concat([sub_batches(), rest()], 0)))

    # Traced once, here, and called as a concrete function: a grid search
    # builds many networks, and tf.function would warn of "retracing" for
    # every new one.
    return tf.function(run_in_rows, input_signature=[spec]).get_concrete_function()


def _activation_bytes(model):
    """Bytes of activations one image takes in ``model`` (:func:`skimgclf.model.netcheck.cost`), or None.

    None for a network netcheck cannot read (one skimgclf did not build):
    its chunks are then sized by pixels alone.
    """
    if model not in _ACTIVATION_BYTES:
        from .netcheck import cost

        try:
            _ACTIVATION_BYTES[model] = cost(model)[1]
        except ValueError:
            _ACTIVATION_BYTES[model] = None
    return _ACTIVATION_BYTES[model]


def _chunking(image_shape, activation_bytes=None):
    """``(rows, chunk)``: images per sub-batch of the traced inference, and per call of the network.

    Sub-batches are about 128 Ki pixels (8 to 512 images), chunks about
    2 Mi pixels and a whole number of sub-batches; both are made smaller
    where the network's activations (``activation_bytes`` per image) would
    exceed :data:`_CHUNK_ACTIVATION_BYTES` a chunk (half of it a sub-batch),
    down to one image.
    """
    h, w = (int(v or 1) for v in image_shape[:2])
    rows = _inference_rows(image_shape)
    chunk = max(1, 2**21 // max(1, h * w * rows)) * rows
    if activation_bytes:
        # Smaller sub-batches never make a chunk larger than by pixels.
        rows = max(1, min(rows, _CHUNK_ACTIVATION_BYTES // 2 // activation_bytes))
        chunk = max(1, min(chunk // rows, _CHUNK_ACTIVATION_BYTES // (activation_bytes * rows))) * rows
    return rows, chunk


def _inference_rows(image_shape):
    """Images per sub-batch of the traced inference by pixels alone: about 128 Ki pixels, 8 to 512 images."""
    h, w = (int(v or 1) for v in image_shape[:2])
    return max(8, min(512, 2**17 // max(1, h * w)))
