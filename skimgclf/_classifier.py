"""CNNClassifier: a configurable Keras CNN with the scikit-learn classifier API.

This is the only module of skimgclf that imports keras and scikeras. scikeras
0.13 is no longer maintained and gets several scikit-learn contracts wrong;
each one is fixed here (see ``CNNClassifier`` notes) so that the rest of the
package never depends on scikeras' behaviour.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import random
import sys
import weakref
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from scikeras.wrappers import KerasClassifier  # noqa: E402
from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.utils._param_validation import Interval, StrOptions  # noqa: E402
from sklearn.utils._tags import ClassifierTags  # noqa: E402
from sklearn.utils.validation import check_consistent_length, column_or_1d  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

__all__ = ["CNNClassifier", "build_cnn"]

_OPTIMIZERS = {"adam", "adamw", "nadam", "rmsprop", "sgd"}
_ACTIVATIONS = {"relu", "elu", "selu", "gelu", "silu", "swish", "tanh", "sigmoid", "leaky_relu", "mish"}


# --------------------------------------------------------------------- seeding
@contextlib.contextmanager
def _seeded(seed):
    """Seed Python, NumPy, TensorFlow and Keras for the duration of a block.

    Unlike scikeras' ``tensorflow_random_state`` this switches on no global
    determinism flag and, on exit, gives the process back its unseeded random
    state: a later fit with ``random_state=None`` is random again and may use
    dropout or shuffling freely.
    """
    if seed is None:
        yield
        return
    import tensorflow as tf
    from keras.src.backend.common import global_state

    py_state, np_state = random.getstate(), np.random.get_state()
    keras.utils.set_random_seed(int(seed))
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        tf.random.set_seed(None)
        global_state.set_global_attribute("global_random_seed", None)
        global_state.set_global_attribute("global_seed_generator", None)


# ----------------------------------------------------------------- the network
#: ``"auto"`` augmentation is on for images at least this many pixels on
#: their shorter side: a tenth of an 8x8 image is a sub-pixel shift that only
#: blurs it (measured on scikit-learn's 8x8 digits: 0.978 with, 0.992 without).
_AUGMENT_FROM = 16
#: What ``"auto"`` augmentation means for images large enough.
_AUGMENT_AUTO = {"random_shift": 0.1, "random_rotation": 0.03, "random_zoom": 0.1}


def _augmentation(name, value, height, width):
    """The rate ``value`` of augmentation ``name`` stands for on ``height x width`` images."""
    if value == "auto":
        return _AUGMENT_AUTO[name] if min(height, width) >= _AUGMENT_FROM else 0.0
    return float(value)


def build_cnn(
    input_shape,
    n_classes,
    *,
    conv_blocks=3,
    filters=32,
    convs_per_block=1,
    kernel_size=3,
    padding="auto",
    pooling="max",
    batch_norm=True,
    conv_dropout=0.0,
    global_pooling="auto",
    hidden_layers=1,
    units=128,
    activation="relu",
    dropout=0.3,
    random_shift="auto",
    random_rotation="auto",
    random_zoom="auto",
    random_flip=None,
    name="cnn",
):
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
    conv_blocks, filters, convs_per_block, kernel_size, padding, pooling, batch_norm, \
conv_dropout, global_pooling, hidden_layers, units, activation, dropout, \
random_shift, random_rotation, random_zoom, random_flip
        See :class:`CNNClassifier`.
    name : str, default="cnn"
        Name of the Keras model.

    Returns
    -------
    keras.Model
        The functional model, mapping images to class probabilities.
    """
    h, w, c = (int(v) for v in input_shape)
    inputs = keras.Input(shape=(h, w, c), name="images")
    x = inputs
    random_shift = _augmentation("random_shift", random_shift, h, w)
    random_rotation = _augmentation("random_rotation", random_rotation, h, w)
    random_zoom = _augmentation("random_zoom", random_zoom, h, w)
    # Augmentation layers are active only in training (Keras skips them in
    # inference), so predictions are never perturbed.
    if random_shift:
        x = keras.layers.RandomTranslation(random_shift, random_shift, fill_mode="constant")(x)
    if random_rotation:
        x = keras.layers.RandomRotation(random_rotation, fill_mode="constant")(x)
    if random_zoom:
        x = keras.layers.RandomZoom(random_zoom, fill_mode="constant")(x)
    if random_flip:
        x = keras.layers.RandomFlip(random_flip)(x)

    block_filters = list(filters) if isinstance(filters, (list, tuple)) else [
        int(filters) * 2**b for b in range(conv_blocks)
    ]
    size_h, size_w = h, w
    for b in range(conv_blocks):
        conv_filters = block_filters[b]
        if not isinstance(conv_filters, (list, tuple)):
            conv_filters = [conv_filters] * convs_per_block
        for n_filters in conv_filters:
            k = min(int(kernel_size), size_h, size_w) if size_h > 1 and size_w > 1 else 1
            pad = padding
            if pad == "auto":
                # Trim the border while the map stays at least a kernel wide.
                pad = "valid" if min(size_h, size_w) - k + 1 >= k else "same"
            x = keras.layers.Conv2D(int(n_filters), k, padding=pad, use_bias=not batch_norm)(x)
            if pad == "valid":
                size_h, size_w = size_h - k + 1, size_w - k + 1
            if batch_norm:
                x = keras.layers.BatchNormalization(momentum=0.9)(x)
            x = keras.layers.Activation(activation)(x)
        if pooling is not None and size_h >= 4 and size_w >= 4:
            layer = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
            x = layer(2)(x)
            size_h, size_w = size_h // 2, size_w // 2
        if conv_dropout:
            x = keras.layers.Dropout(conv_dropout)(x)

    head = global_pooling
    if head == "auto":
        head = "flatten" if size_h * size_w <= 64 else "avg"
    if head == "flatten":
        x = keras.layers.Flatten()(x)
    elif head == "avg":
        x = keras.layers.GlobalAveragePooling2D()(x)
    else:
        x = keras.layers.GlobalMaxPooling2D()(x)

    layer_units = list(units) if isinstance(units, (list, tuple)) else [int(units)] * hidden_layers
    for u in layer_units:
        x = keras.layers.Dense(u, use_bias=not batch_norm)(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.Activation(activation)(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


class _EpochBar(keras.callbacks.Callback):
    """One tqdm bar over epochs, with the latest metrics as its postfix."""

    def __init__(self, epochs, initial_epoch=0):
        super().__init__()
        self.bar = tqdm(total=epochs, initial=initial_epoch, desc="training", unit="epoch",
                        disable=not sys.stderr.isatty(), leave=False)

    def on_epoch_end(self, epoch, logs=None):
        self.bar.set_postfix({k: f"{v:.4f}" for k, v in (logs or {}).items() if k != "learning_rate"})
        self.bar.update(1)

    def on_train_end(self, logs=None):
        self.bar.close()


#: Per network (weakly: the entry goes with it): [weights stamp, traced
#: function or None, pixels asked for under these weights].
_INFERENCE = weakref.WeakKeyDictionary()


def _weights_stamp(model):
    """A checksum of the weights, so a cached inference function follows retraining."""
    crc = 0
    for w in model.get_weights():
        crc = zlib.crc32(np.ascontiguousarray(w).view(np.uint8), crc)
    return crc


def _fold(layer, bn):
    """``(kernel, bias)`` of ``layer`` (Conv2D or Dense) with the batch norm after it folded in."""
    var = keras.ops.convert_to_numpy(bn.moving_variance).astype(np.float64)
    mean = keras.ops.convert_to_numpy(bn.moving_mean).astype(np.float64)
    gamma = keras.ops.convert_to_numpy(bn.gamma).astype(np.float64) if bn.scale else 1.0
    beta = keras.ops.convert_to_numpy(bn.beta).astype(np.float64) if bn.center else 0.0
    scale = gamma / np.sqrt(var + bn.epsilon)
    kernel = keras.ops.convert_to_numpy(layer.kernel).astype(np.float64) * scale
    bias = keras.ops.convert_to_numpy(layer.bias).astype(np.float64) if layer.use_bias else 0.0
    bias = beta + (bias - mean) * scale
    return kernel.astype(np.float32), np.broadcast_to(bias, scale.shape).astype(np.float32)


def _inference_steps(model):
    """The layers of a chain-shaped network for inference, batch norm folded.

    A list of ``("conv", kernel, bias, conv)``, ``("dense", kernel, bias)``
    and ``("layer", layer)`` steps, or None when the network is not a simple
    chain of layers (then it is called as it is). Folding a batch
    normalisation into the convolution before it saves a pass over the
    largest tensors and lets TensorFlow fuse convolution, bias and ReLU.
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
    steps, i = [], 0
    while i < len(layers):
        layer, bn = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        foldable = (
            isinstance(bn, keras.layers.BatchNormalization)
            and bn.axis in (-1, len(bn.input.shape) - 1)
            and getattr(layer, "activation", None) is keras.activations.linear
            and layer.compute_dtype == "float32"
        )
        if foldable and type(layer) is keras.layers.Conv2D and layer.data_format == "channels_last" \
                and layer.groups == 1:
            steps.append(("conv",) + _fold(layer, bn) + (layer,))
            i += 2
        elif foldable and type(layer) is keras.layers.Dense and len(layer.input.shape) == 2:
            steps.append(("dense",) + _fold(layer, bn))
            i += 2
        else:
            steps.append(("layer", layer))
            i += 1
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
    while j < len(steps) and steps[j][0] == "layer" and type(steps[j][1]).__name__ in _POINTWISE:
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
#: inference is traced. Tracing and optimising the graph costs ~0.6 s once; it
#: then runs ~2-3x faster than an eager call (benchmarks/bench_inference.py),
#: which pays from about this many pixels (~5,000 28x28 images). Smaller work
#: -- a validation fold, a few test images -- is done eagerly.
_TRACE_FROM_PIXELS = 2**22


def predict_proba(model, X):
    """Probabilities of the float32 images ``X`` by the Keras ``model``, in chunks.

    Small work calls the network eagerly; once a network has been asked for
    :data:`_TRACE_FROM_PIXELS` pixels (since its weights last changed) it is
    traced (:func:`_inference_function`). Both give Keras' numbers (to float
    rounding: the traced graph folds batch normalisation).
    """
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
    # (on mnist10k the traced graph is 3x faster than Model.predict).
    rows = _inference_rows(X.shape[1:])
    chunk = max(1, 2**21 // max(1, h * w * rows)) * rows  # ~2 Mi pixels a call
    parts = [np.asarray(call(X[start:start + chunk])) for start in range(0, n, chunk)]
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
                else:
                    x = step[1](x, training=False)
            return x

    rows = _inference_rows(model.input_shape[1:])
    out_spec = tf.TensorSpec((None,) + tuple(model.output_shape[1:]), tf.float32)

    def run_in_rows(x):
        # Sub-batches of ``rows`` images, one after the other: the largest
        # feature maps of a sub-batch stay in the CPU caches instead of a pass
        # through memory for the whole chunk (15 % faster on 28x28 digits).
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


def _inference_rows(image_shape):
    """Images per sub-batch of the traced inference: about 128 Ki pixels, 8 to 512 images."""
    h, w = (int(v or 1) for v in image_shape[:2])
    return max(8, min(512, 2**17 // max(1, h * w)))


def _file_backed(X):
    """Whether ``X`` is (a view of) a memory-mapped file, such as a ``numpy.memmap``."""
    import mmap

    seen = 0
    while X is not None and seen < 32:
        if isinstance(X, (np.memmap, mmap.mmap)):
            return True
        X, seen = getattr(X, "base", None), seen + 1
    return False


def _all_finite(X, rows=4096):
    """``np.isfinite(X).all()`` without a temporary as large as ``X`` for large arrays."""
    if X.nbytes <= 64 * 1024**2:
        return bool(np.isfinite(X).all())
    return all(np.isfinite(X[i:i + rows]).all() for i in range(0, X.shape[0], rows))


class _MappedBatches(keras.utils.PyDataset):
    """Batches of memory-mapped images, read from the file as training asks for them.

    The rows are shuffled every epoch (``shuffle=True``); within a batch they
    are read in file order, so reads move forward through the file.
    """

    def __init__(self, X, y, sample_weight, rows, batch_size, shuffle, seed=None):
        super().__init__()
        self.X, self.y, self.sample_weight = X, y, sample_weight
        self.rows = np.asarray(rows)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = self.rows.copy()
        if shuffle:
            self._rng.shuffle(self._order)

    def __len__(self):
        return math.ceil(len(self.rows) / self.batch_size)

    def __getitem__(self, index):
        idx = np.sort(self._order[index * self.batch_size:(index + 1) * self.batch_size])
        batch = (np.asarray(self.X[idx], dtype=np.float32), self.y[idx])
        return batch if self.sample_weight is None else batch + (self.sample_weight[idx],)

    def on_epoch_end(self):
        if self.shuffle:
            self._rng.shuffle(self._order)


def _positive_ints(value):
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in value
    )


def _missing_label(v):
    """Whether a label is missing: None, NaN, pandas' NA/NaT, or empty text."""
    if v is None or (isinstance(v, float) and v != v):
        return True
    if isinstance(v, (str, bytes)):
        return not v.strip()
    return type(v).__name__ in ("NAType", "NaTType")


# ------------------------------------------------------------------ the wrapper
class CNNClassifier(KerasClassifier):
    """A convolutional network image classifier with the scikit-learn API.

    A :class:`scikeras.wrappers.KerasClassifier` whose architecture is plain
    constructor parameters, so :class:`~sklearn.model_selection.GridSearchCV`
    can vary layers, units and activations. It takes 4-D image arrays
    ``(n_samples, height, width, channels)`` such as those of
    :class:`~skimgclf.ImageFolderLoader`, and labels of any type.

    The network: optional augmentation layers (active only while training),
    ``conv_blocks`` blocks of ``convs_per_block`` convolutions (with batch
    normalisation and ``activation``) each followed by pooling while the map
    is large enough, then ``hidden_layers`` dense layers of ``units`` with
    dropout, and a softmax over the classes.

    Parameters
    ----------
    conv_blocks : int, default=3
        Number of convolution blocks.
    filters : int or list of (int or list of int), default=32
        Filters of the first block, doubled in each later block; or one
        value per block; or, per block, a list of ``convs_per_block`` values,
        one per convolution (``[[32, 64]]`` is the seed tutorial's block).
    convs_per_block : int, default=1
        Convolution layers in each block.
    kernel_size : int, default=3
        Side of the square convolution kernels (reduced for tiny maps).
    padding : {"auto", "same", "valid"}, default="auto"
        ``"same"`` keeps the size of the feature maps through a convolution;
        ``"valid"`` trims ``kernel_size - 1`` pixels (Keras' own default).
        ``"auto"`` trims while the output of the convolution is still at
        least ``kernel_size`` wide and keeps the size of smaller maps: on
        28x28 digits every convolution trims (as accurate as ``"same"`` on a
        validation split of MNIST, with 40 % less computation), while 8x8
        images are not convolved into nothing.
    pooling : {"max", "avg"} or None, default="max"
        2x2 pooling after each block, skipped where the map is smaller than 4.
    batch_norm : bool, default=True
        Batch normalisation after each convolution and hidden dense layer.
    conv_dropout : float, default=0.0
        Dropout rate after each convolution block.
    global_pooling : {"auto", "flatten", "avg", "max"}, default="auto"
        How the last feature map becomes a vector. ``"auto"`` flattens maps of
        at most 64 positions and averages larger ones.
    hidden_layers : int, default=1
        Number of dense hidden layers.
    units : int or list of int, default=128
        Units of each hidden layer (or one value per layer).
    activation : str, default="relu"
        Activation of the convolution and hidden layers, e.g. ``"relu"``,
        ``"elu"``, ``"gelu"``, ``"tanh"``.
    dropout : float, default=0.3
        Dropout rate after each hidden dense layer.
    random_shift : float or "auto", default="auto"
        Training-time random translation, as a fraction of height and width.
        ``"auto"`` is 0.1 for images of at least 16 pixels on their shorter
        side and 0 (off) for smaller ones, where a fraction of the image is
        a sub-pixel shift that only blurs it.
    random_rotation : float or "auto", default="auto"
        Training-time random rotation, as a fraction of a full turn;
        ``"auto"`` is 0.03 (about 11 degrees), off below 16 pixels.
    random_zoom : float or "auto", default="auto"
        Training-time random zoom, as a fraction; ``"auto"`` is 0.1, off below
        16 pixels.
    random_flip : {"horizontal", "vertical", "horizontal_and_vertical"} or None, default=None
        Training-time random flips (off by default: digits and text must not be flipped).
    optimizer : {"adam", "adamw", "nadam", "rmsprop", "sgd"}, default="adam"
        Keras optimizer.
    learning_rate : float, default=0.002
        Initial learning rate.
    lr_schedule : {"cosine", "constant"}, default="cosine"
        ``"cosine"`` decays the learning rate to zero over ``epochs``.
    epochs : int, default=10
        Maximum number of passes over the training data.
    batch_size : int, default=64
        Samples per gradient step.
    validation_split : float, default=0.0
        Fraction of the training data held out, stratified and drawn with
        ``random_state``, to monitor validation loss and accuracy (and for
        early stopping). ``0`` trains on everything: with the cosine schedule
        the last epoch is usually the best, and on mnist10k the 10 % more
        training images beat early stopping on a held-out tenth.
    early_stopping : bool, default=True
        Stop when the validation loss has not improved for ``patience``
        epochs and restore the best weights (needs ``validation_split > 0``).
    patience : int, default=4
        Epochs without improvement before early stopping.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, dropout, augmentation and the
        validation split. The same value and data give identical predictions;
        the seed does not leak into later fits.
    verbose : int, default=0
        ``0`` silent, ``1`` a progress bar over epochs (on a terminal),
        ``2`` one line per epoch from Keras.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    n_classes_ : int
        Number of classes.
    model_ : keras.Model
        The trained network.
    history_ : dict of list of float
        Per-epoch ``loss``, ``accuracy``, and ``val_loss``, ``val_accuracy``
        when a validation split is used.
    image_shape_ : tuple of int
        ``(height, width, channels)`` of the training images.

    See Also
    --------
    skimgclf.ImageFolderLoader : Turns a table of image ids into the input array.

    Notes
    -----
    Fixes over scikeras 0.13: the estimator is a classifier to scikit-learn
    (``is_classifier``, stratified CV, calibration, voting, stacking);
    ``predict_proba`` is always 2-D; seeding does not leak into later fits;
    any numeric dtype is accepted at predict time; the validation split is
    stratified and random; every parameter is an explicit, cloneable
    constructor argument.

    Input scaling: unsigned 8- and 16-bit integer arrays are scaled to [0, 1]
    (as the loader does); other dtypes are used as they are.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skimgclf import CNNClassifier
    >>> digits = load_digits()
    >>> X = (digits.images / 16.0)[..., None]
    >>> clf = CNNClassifier(epochs=2, random_state=0).fit(X[:500], digits.target[:500])
    >>> clf.predict_proba(X[:1]).shape
    (1, 10)
    """

    # scikeras reads these; they are fixed by this subclass, not parameters.
    model = None
    build_fn = None
    warm_start = False
    loss = "sparse_categorical_crossentropy"
    metrics = None
    callbacks = None
    shuffle = True
    run_eagerly = False
    validation_batch_size = None

    _parameter_constraints = {
        "conv_blocks": [Interval(numbers.Integral, 0, None, closed="left")],
        "filters": [Interval(numbers.Integral, 1, None, closed="left"), list, tuple],
        "convs_per_block": [Interval(numbers.Integral, 1, None, closed="left")],
        "kernel_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "padding": [StrOptions({"auto", "same", "valid"})],
        "pooling": [StrOptions({"max", "avg"}), None],
        "batch_norm": ["boolean"],
        "conv_dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "global_pooling": [StrOptions({"auto", "flatten", "avg", "max"})],
        "hidden_layers": [Interval(numbers.Integral, 0, None, closed="left")],
        "units": [Interval(numbers.Integral, 1, None, closed="left"), list, tuple],
        "activation": [StrOptions(_ACTIVATIONS)],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "random_shift": [Interval(numbers.Real, 0, 1, closed="both"), StrOptions({"auto"})],
        "random_rotation": [Interval(numbers.Real, 0, 1, closed="both"), StrOptions({"auto"})],
        "random_zoom": [Interval(numbers.Real, 0, 1, closed="left"), StrOptions({"auto"})],
        "random_flip": [StrOptions({"horizontal", "vertical", "horizontal_and_vertical"}), None],
        "optimizer": [StrOptions(_OPTIMIZERS)],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions({"cosine", "constant"})],
        "epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "validation_split": [Interval(numbers.Real, 0, 1, closed="left")],
        "early_stopping": ["boolean"],
        "patience": [Interval(numbers.Integral, 0, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        conv_blocks=3,
        filters=32,
        convs_per_block=1,
        kernel_size=3,
        padding="auto",
        pooling="max",
        batch_norm=True,
        conv_dropout=0.0,
        global_pooling="auto",
        hidden_layers=1,
        units=128,
        activation="relu",
        dropout=0.3,
        random_shift="auto",
        random_rotation="auto",
        random_zoom="auto",
        random_flip=None,
        optimizer="adam",
        learning_rate=0.002,
        lr_schedule="cosine",
        epochs=10,
        batch_size=64,
        validation_split=0.0,
        early_stopping=True,
        patience=4,
        class_weight=None,
        random_state=None,
        verbose=0,
    ):
        # Deliberately not calling KerasClassifier.__init__: it would store
        # parameters of its own (model, loss, ...) and swallow **kwargs.
        self.conv_blocks = conv_blocks
        self.filters = filters
        self.convs_per_block = convs_per_block
        self.kernel_size = kernel_size
        self.padding = padding
        self.pooling = pooling
        self.batch_norm = batch_norm
        self.conv_dropout = conv_dropout
        self.global_pooling = global_pooling
        self.hidden_layers = hidden_layers
        self.units = units
        self.activation = activation
        self.dropout = dropout
        self.random_shift = random_shift
        self.random_rotation = random_rotation
        self.random_zoom = random_zoom
        self.random_flip = random_flip
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation_split = validation_split
        self.early_stopping = early_stopping
        self.patience = patience
        self.class_weight = class_weight
        self.random_state = random_state
        self.verbose = verbose

    # -- scikit-learn plumbing that scikeras gets wrong ----------------------------
    # Parameters are the named constructor arguments (scikeras lists whatever
    # sits in __dict__), set_params rejects unknown names, repr is sklearn's.
    _get_param_names = classmethod(BaseEstimator._get_param_names.__func__)
    set_params = BaseEstimator.set_params
    __repr__ = BaseEstimator.__repr__
    score = ClassifierMixin.score

    def __sklearn_tags__(self):
        # KerasClassifier lists ClassifierMixin after BaseEstimator, so
        # scikit-learn never sees it as a classifier; declare it here.
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = True
        tags.input_tags.two_d_array = False
        tags.non_deterministic = self.random_state is None
        return tags

    def _check_params(self):
        self._validate_params()
        for name, count in (("filters", self.conv_blocks), ("units", self.hidden_layers)):
            value = getattr(self, name)
            if name == "filters" and isinstance(value, (list, tuple)) and len(value) == count and all(
                _positive_ints(v) and len(v) == self.convs_per_block for v in value
                if isinstance(v, (list, tuple))
            ) and _positive_ints([1 if isinstance(v, (list, tuple)) else v for v in value]):
                continue  # per-convolution filters: one list of convs_per_block ints per block
            if isinstance(value, (list, tuple)) and not (_positive_ints(value) and len(value) == count):
                other = "conv_blocks" if name == "filters" else "hidden_layers"
                raise ValueError(
                    f"The '{name}' parameter of CNNClassifier must be a positive int or a list of "
                    f"{count} positive ints (one per {other[:-1].replace('_', ' ')}, {other}={count}). "
                    f"Got {value!r} instead."
                )

    def _seed(self):
        rs = self.random_state
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(np.iinfo(np.int32).max))
        return None if rs is None else int(rs)

    # -- data checks ---------------------------------------------------------------
    def _check_images(self, X, reset):
        """``X`` as float32 images, checked; ``reset`` records the training shape.

        The messages use scikit-learn's own words where its checks expect
        them (sparse, complex, "Reshape your data", "0 feature(s)",
        "X has N features, but ... is expecting M features").
        """
        name = type(self).__name__
        if hasattr(X, "columns") or (hasattr(X, "dtype") and getattr(X, "ndim", 0) == 1
                                     and not np.issubdtype(X.dtype, np.number)):
            raise ValueError(
                f"{name} takes an array of images (n_samples, height, width, channels); "
                "to pass a table of image ids, put an ImageFolderLoader before it in a pipeline"
            )
        if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
            raise TypeError(f"Sparse data is not supported: {name} takes a dense array of images "
                            "(n_samples, height, width, channels)")
        X = np.asarray(X)
        if X.dtype.kind == "c":
            raise ValueError(f"Complex data not supported: X has dtype {X.dtype}; images hold real numbers")
        if X.dtype.kind == "O":
            try:
                X = X.astype(np.float64)
            except (TypeError, ValueError) as exc:  # a TypeError stays one, as in check_array
                raise type(exc)(f"X must hold numbers; got an array of dtype object ({exc})") from None
        if X.dtype.kind not in "biuf":
            raise ValueError(f"X must hold numbers; got an array of dtype {X.dtype}")
        if X.ndim != 4:
            hint = ""
            if X.ndim == 3:
                hint = (" For a single image use X[np.newaxis]; for a stack of grayscale images "
                        "without a channel axis use X[..., np.newaxis].")
            raise ValueError(
                f"X must be a 4-D array (n_samples, height, width, channels); got {X.ndim}-D "
                f"shape {X.shape}. Reshape your data to (n_samples, height, width, channels)." + hint
            )
        n, shape = X.shape[0], tuple(int(v) for v in X.shape[1:])
        if n == 0:
            raise ValueError(f"X holds no images (0 samples); a minimum of 1 is required (shape {X.shape})")
        if 0 in shape:
            raise ValueError(
                f"X has images of shape {shape} (height, width, channels), but every dimension must "
                f"be at least 1: found array with 0 feature(s) (shape=({n}, 0)) while a minimum of 1 "
                "is required."
            )
        expected = getattr(self, "image_shape_", None)
        if not reset and expected is not None and shape != tuple(expected):
            raise ValueError(
                f"X has {int(np.prod(shape))} features, but {name} is expecting "
                f"{int(np.prod(expected))} features as input: its images have shape {shape} (height, "
                f"width, channels) and the network was trained on {tuple(expected)}; load them with the "
                "same target_size and color_mode"
            )
        if X.dtype == np.uint8:
            X = X.astype(np.float32) / np.float32(255)
        elif X.dtype == np.uint16:
            X = X.astype(np.float32) / np.float32(65535)
        else:
            X = X.astype(np.float32, copy=False)
        if not _all_finite(X):
            raise ValueError("X contains NaN or infinity")
        if reset:
            self.image_shape_ = shape
            self.n_features_in_ = int(np.prod(shape))
            self.X_shape_ = X.shape
            self.X_dtype_ = X.dtype
        return X

    def _validate_data(self, X=None, y=None, reset=False, y_numeric=False):
        # Replaces scikeras' check, which refuses float64 after float32 and
        # knows nothing about image shapes.
        if X is not None:
            X = self._check_images(X, reset)
        if y is not None:
            y = column_or_1d(np.asarray(y), warn=True)
            if y.dtype.kind == "f" and np.isnan(y).any():
                raise ValueError(f"y has a missing label (NaN) at row {int(np.flatnonzero(np.isnan(y))[0])}")
            if y.dtype.kind in "OUS":
                bad = [i for i, v in enumerate(y) if _missing_label(v)]
                if bad:
                    raise ValueError(
                        f"y has a missing or empty label at row {bad[0]} ({y[bad[0]]!r}); "
                        "every training image needs a label"
                    )
                if y.dtype == object and len({isinstance(v, str) for v in y.tolist()}) > 1:
                    first = next(i for i, v in enumerate(y) if not isinstance(v, str))
                    raise ValueError(
                        f"y mixes text labels and labels of type {type(y[first]).__name__} "
                        f"(row {first}: {y[first]!r}); use one type for all labels"
                    )
            if reset:
                classes = np.unique(y)
                if classes.size < 2:
                    raise ValueError(
                        f"y has only 1 class ({classes.tolist()[0]!r}); a classifier needs "
                        "at least 2"
                    )
                self.target_type_ = self._type_of_target(y)
                self.y_dtype_ = y.dtype
                self.y_ndim_ = y.ndim
            if X is not None:
                check_consistent_length(X, y)
        return X, y

    # -- building and training -----------------------------------------------------
    def _build_keras_model(self):
        # scikeras would wrap this in its leaking tensorflow_random_state.
        return self._keras_build_fn(meta=self._get_metadata())

    def _keras_build_fn(self, meta):
        model = build_cnn(
            meta["image_shape_"],
            int(meta["n_classes_"]),
            conv_blocks=self.conv_blocks,
            filters=self.filters,
            convs_per_block=self.convs_per_block,
            kernel_size=self.kernel_size,
            padding=self.padding,
            pooling=self.pooling,
            batch_norm=self.batch_norm,
            conv_dropout=self.conv_dropout,
            global_pooling=self.global_pooling,
            hidden_layers=self.hidden_layers,
            units=self.units,
            activation=self.activation,
            dropout=self.dropout,
            random_shift=self.random_shift,
            random_rotation=self.random_rotation,
            random_zoom=self.random_zoom,
            random_flip=self.random_flip,
        )
        model.compile(
            optimizer=self._make_optimizer(meta.get("n_train_steps_")),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def _make_optimizer(self, total_steps):
        lr = float(self.learning_rate)
        # partial_fit builds the network without a planned number of steps:
        # no schedule can be laid out then, so the rate stays constant.
        if self.lr_schedule == "cosine" and total_steps:
            lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, int(total_steps)))
        classes = {
            "adam": keras.optimizers.Adam,
            "adamw": keras.optimizers.AdamW,
            "nadam": keras.optimizers.Nadam,
            "rmsprop": keras.optimizers.RMSprop,
            "sgd": lambda learning_rate: keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True),
        }
        return classes[self.optimizer](learning_rate=lr)

    def fit(self, X, y, sample_weight=None, **kwargs):
        """Build a new network and train it on images ``X`` and labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width, channels)
            Training images, any numeric dtype (see Notes on scaling).
        y : array-like of shape (n_samples,)
            Class labels: strings, integers, at least two classes.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the loss. Rows of weight 0 are left
            out of training (and of the validation split).
        **kwargs : dict
            Extra arguments for :meth:`keras.Model.fit` (advanced use).

        Returns
        -------
        self : CNNClassifier
            The fitted classifier.
        """
        self._check_params()
        # The learning-rate schedule is laid out when the network is built,
        # before scikeras drops the rows of weight 0: count what will train.
        n_rows = self._rows_trained(X, y, sample_weight)
        self.n_train_steps_ = math.ceil(n_rows / self.batch_size) * self.epochs
        if sample_weight is not None:
            # scikeras multiplies class weights into it in place: never the caller's array.
            sample_weight = np.array(sample_weight, dtype=np.float32)
        self._fit_seed_ = self._seed()
        with _seeded(self._fit_seed_):
            super().fit(X, y, sample_weight=sample_weight, **kwargs)
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None, **kwargs):
        """Train the network (built on the first call) for one more epoch.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width, channels)
            Training images.
        y : array-like of shape (n_samples,)
            Class labels.
        classes : array-like of shape (n_classes,), default=None
            Every class of all calls; needed on the first call when ``y``
            does not hold them all.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the loss.
        **kwargs : dict
            Extra arguments for :meth:`keras.Model.fit` (advanced use).

        Returns
        -------
        self : CNNClassifier
            The classifier, trained one epoch more; ``history_`` grows by
            one entry per metric.
        """
        # Fixes scikeras' seeding (a global determinism flag); each epoch
        # gets its own seed so that epochs do not repeat one random stream.
        self._check_params()
        if not hasattr(self, "model_"):
            self.n_train_steps_ = None  # no schedule: the number of calls is unknown
        if sample_weight is not None:
            sample_weight = np.array(sample_weight, dtype=np.float32)
        base = self._fit_seed_ = self._seed()
        with _seeded(None if base is None else base + self.current_epoch):
            super().partial_fit(X, y, classes=classes, sample_weight=sample_weight, **kwargs)
        return self

    def _rows_trained(self, X, y, sample_weight):
        """How many rows of ``X`` the network trains on: weight 0 and the validation split left out."""
        n = len(X) if hasattr(X, "__len__") else 0  # anything else is refused when validated
        keep = np.ones(n, dtype=bool)
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            if weights.shape[0] == n:
                keep &= weights != 0
        if isinstance(self.class_weight, dict):
            zero = [c for c, w in self.class_weight.items() if w == 0]
            if zero:
                keep &= ~np.isin(np.asarray(y, dtype=object).reshape(-1), np.asarray(zero, dtype=object))
        kept = int(keep.sum())
        return max(1, kept - self._validation_size(kept))

    def _validation_size(self, n):
        """Rows of ``n`` held out by ``validation_split`` (0 when nothing would be left to train on)."""
        if not self.validation_split:
            return 0
        n_val = int(math.ceil(self.validation_split * n))
        return n_val if 1 <= n_val < n else 0

    def _validation_indices(self, y, seed):
        """Stratified (train, validation) row indices of ``y``, or None without a split."""
        y = np.asarray(y).reshape(-1)
        n = len(y)
        n_val = self._validation_size(n)
        if not n_val:
            return None
        _, counts = np.unique(y, return_counts=True)
        stratify = y if counts.min() >= 2 and n_val >= counts.size and n - n_val >= counts.size else None
        return train_test_split(np.arange(n), test_size=n_val, stratify=stratify,
                                random_state=seed if seed is not None else np.random.randint(2**31 - 1))

    def _fit_keras_model(self, X, y, sample_weight, warm_start, epochs, initial_epoch, **kwargs):
        # Replaces scikeras' own: the validation split is drawn here, on the
        # rows that train (after scikeras dropped those of weight 0), stratified
        # and seeded; memory-mapped images are read batch by batch; history_
        # grows over partial_fit calls.
        split = self._validation_indices(y, getattr(self, "_fit_seed_", None))
        fit_args = dict(epochs=initial_epoch + epochs, initial_epoch=initial_epoch,
                        verbose=2 if self.verbose >= 2 else 0)
        if _file_backed(X):
            # Memory-mapped images (ImageFolderLoader(cache_dir=...)): Keras
            # would copy the whole array into memory first; read each batch
            # from the file when it is needed instead.
            train = np.arange(X.shape[0]) if split is None else split[0]
            if split is not None:
                fit_args["validation_data"] = _MappedBatches(X, y, sample_weight, split[1],
                                                             self.batch_size, shuffle=False)
            data = _MappedBatches(X, y, sample_weight, train, self.batch_size, shuffle=True,
                                  seed=getattr(self, "_fit_seed_", None))
            args = (data,)
        else:
            if split is not None:
                train, val = split
                fit_args["validation_data"] = (X[val], y[val]) if sample_weight is None else (
                    X[val], y[val], sample_weight[val])
                X, y = X[train], y[train]
                if sample_weight is not None:
                    sample_weight = sample_weight[train]
            fit_args.update(batch_size=self.batch_size, shuffle=True, sample_weight=sample_weight)
            args = (X, y)
        callbacks = [keras.callbacks.TerminateOnNaN()]
        if split is not None and self.early_stopping:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=self.patience, restore_best_weights=True))
        if self.verbose == 1:
            callbacks.append(_EpochBar(initial_epoch + epochs, initial_epoch))
        fit_args.update(kwargs)
        fit_args["callbacks"] = callbacks + list(fit_args.get("callbacks") or [])
        hist = self.model_.fit(*args, **fit_args)
        losses = hist.history.get("loss", [])
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size or not all(np.isfinite(w).all() for w in self.model_.get_weights()):
            what = (f"the loss became {losses[bad[0]]} in epoch {initial_epoch + int(bad[0]) + 1}"
                    if bad.size else "the network's weights are no longer finite numbers")
            raise ValueError(
                f"training diverged: {what}, so the network is not usable; lower learning_rate "
                f"(now {self.learning_rate}) or scale the images to [0, 1]"
            )
        if initial_epoch == 0 or not hasattr(self, "history_"):
            self.history_ = {}
        for key, values in hist.history.items():
            if key != "learning_rate":
                self.history_.setdefault(key, []).extend(float(v) for v in values)

    # -- prediction ------------------------------------------------------------------
    def _predict_raw(self, X, **kwargs):
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "This CNNClassifier instance is not fitted yet. Call 'fit' with appropriate "
                "arguments before using this estimator."
            )
        X = self._check_images(X, reset=False)
        if kwargs:
            proba = self.model_.predict(X, batch_size=max(256, self.batch_size), verbose=0, **kwargs)
            proba = np.asarray(proba, dtype=np.float32).reshape(X.shape[0], -1)
        else:
            proba = predict_proba(self.model_, X)
        finite = np.isfinite(proba).all(axis=1)
        if not finite.all():
            raise ValueError(
                f"the network's output is not a finite number for {int((~finite).sum())} of {len(proba)} "
                f"images (row {int(np.flatnonzero(~finite)[0])}): its training diverged; refit with a "
                f"lower learning_rate (now {self.learning_rate})"
            )
        return proba

    def predict_proba(self, X, **kwargs):
        """Class probabilities of images ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width, channels)
            Images of the training shape, any numeric dtype.
        **kwargs : dict
            Extra arguments for :meth:`keras.Model.predict` (advanced use).

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``; always 2-D, also for
            one sample.
        """
        return self._predict_raw(X, **kwargs)

    def predict(self, X, **kwargs):
        """Predicted class labels of images ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width, channels)
            Images of the training shape, any numeric dtype.
        **kwargs : dict
            Extra arguments for :meth:`keras.Model.predict` (advanced use).

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self._predict_raw(X, **kwargs)
        return self.classes_[np.argmax(proba, axis=1)]
