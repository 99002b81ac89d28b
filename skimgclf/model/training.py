"""Helpers of training: scoped seeding, the epoch progress bar, batches read from memory maps.

Importing this module imports Keras.
"""

from __future__ import annotations

import contextlib
import math
import random
import time

import keras
import numpy as np

from .._progress import bar, in_notebook
from .params import AUTO_EPOCHS, auto_batch_size, auto_epochs, auto_precision

# AUTO_EPOCHS, auto_batch_size and auto_epochs are the "auto" rules of
# params.py, importable from here as before.

__all__ = ["AUTO_EPOCHS", "EpochBar", "MappedBatches", "SmoothedSparseCrossentropy", "all_finite", "auto_batch_size",
           "auto_epochs", "continue_epochs", "file_backed", "Pace", "resolve_precision", "seeded", "training_kernels"]


def continue_epochs(epochs):
    """Epochs that continue a network trained ``epochs`` epochs on part of the rows, on all of them.

    A quarter of ``epochs``, at least one, on a new learning-rate schedule
    (``warm_start``): ``skimgclf train`` ends this way on every row after
    measuring accuracy on the rows held out, for about a quarter of the cost
    of training a new network on all of them (docs/performance.rst).

    Parameters
    ----------
    epochs : int
        Epochs the network trained.

    Returns
    -------
    int
    """
    return max(1, math.ceil(int(epochs) / 4))


def resolve_precision(precision):
    """The Keras dtype policy ``precision`` stands for on this machine: ``"float32"`` or ``"mixed_bfloat16"``.

    The rule is :func:`skimgclf.model.params.auto_precision`'s; this
    function asks the machine what it computes natively.

    Parameters
    ----------
    precision : {"auto", "float32", "bfloat16"}
        The classifier's parameter.

    Returns
    -------
    str
    """
    native = False
    if precision == "auto":
        from .devices import cpu_bfloat16, gpus

        native = cpu_bfloat16() and not gpus()
    return "mixed_bfloat16" if auto_precision(precision, native) == "bfloat16" else "float32"


#: The attribute of a network that holds the optimizer it was compiled with and
#: the train and test functions Keras traced for it under :func:`training_kernels`
#: (on the network, not in a table of networks: they refer to it, and would keep it alive).
_TRACED = "_skimgclf_traced"


def _fused_batch_norm(layer, inputs, training=None, mask=None):
    """``layer``'s ``call`` through TensorFlow's fused batch-norm kernel while it trains on 4-D maps.

    Keras 3 computes batch statistics with separate mean, variance, multiply
    and add operations, each a pass over the feature map; TensorFlow's fused
    kernel (oneDNN's on CPUs) does the same arithmetic in one. The moving
    statistics are updated as Keras does (the batch variance without
    Bessel's correction). Anything else goes to Keras' own ``call``.
    """
    channels_last = layer.axis in (-1, len(inputs.shape) - 1)
    if not (training and layer.trainable and mask is None and len(inputs.shape) == 4 and channels_last
            and not getattr(layer, "synchronized", False)):
        return type(layer).call(layer, inputs, training=training, mask=mask)
    import tensorflow as tf

    x = tf.cast(inputs, layer.compute_dtype)
    channels = x.shape[-1]
    scale = tf.cast(layer.gamma, "float32") if layer.scale else tf.ones((channels,), "float32")
    offset = tf.cast(layer.beta, "float32") if layer.center else tf.zeros((channels,), "float32")
    y, mean, variance = tf.compat.v1.nn.fused_batch_norm(x, scale, offset, epsilon=layer.epsilon,
                                                         data_format="NHWC", is_training=True)
    n = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), "float32")
    variance = variance * (n - 1) / tf.maximum(n, 2)  # the kernel returns it with Bessel's correction
    m = layer.momentum
    layer.moving_mean.assign(layer.moving_mean * m + tf.cast(mean, layer.moving_mean.dtype) * (1 - m))
    layer.moving_variance.assign(layer.moving_variance * m + tf.cast(variance, layer.moving_variance.dtype) * (1 - m))
    return y


@contextlib.contextmanager
def training_kernels(model, policy):
    """Train ``model`` with fused batch normalisation and in the dtype ``policy``; as it was after the block.

    - Batch normalisation layers compute their training statistics with
      TensorFlow's fused kernel (:func:`_fused_batch_norm`; the same
      numbers, a fraction of the time), with the TensorFlow backend.
    - Every layer but the network's output computes in ``policy``
      (``"mixed_bfloat16"``: bfloat16 arithmetic on float32 weights; the
      softmax stays float32, as Keras' mixed-precision guide advises).

    The network outside the block is the plain Keras float32 network: what
    predicts and what is saved never depends on either. The functions Keras
    traced inside are kept for the next block (``partial_fit`` calls) until
    the network is compiled again.

    Parameters
    ----------
    model : keras.Model
        The network, built in float32.
    policy : str
        A Keras dtype policy name: ``"float32"`` or ``"mixed_bfloat16"``.
    """
    import types

    outputs = {id(t) for t in model.outputs}
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    mixed = [layer for layer in layers if id(layer.output) not in outputs] if policy != "float32" else []
    fused = ([layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
             if keras.backend.backend() == "tensorflow" else [])
    traced = getattr(model, _TRACED, None)
    if traced is None or traced["optimizer"] is not model.optimizer:  # compiled again: trace again
        traced = {"optimizer": model.optimizer}
        object.__setattr__(model, _TRACED, traced)  # not a tracked attribute of the Keras model
    for layer in mixed:
        layer.dtype_policy = policy
    for layer in fused:
        layer.call = types.MethodType(_fused_batch_norm, layer)
    model.train_function, model.test_function = traced.get("train"), traced.get("test")
    try:
        yield
    finally:
        traced["train"], traced["test"] = model.train_function, model.test_function
        for layer in fused:
            del layer.call
        for layer in mixed:
            layer.dtype_policy = "float32"
        model.train_function = model.test_function = model.predict_function = None


@keras.saving.register_keras_serializable(package="skimgclf")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of class indices with label smoothing.

    Keras' sparse cross-entropy has no label smoothing and its categorical
    one needs one-hot targets, which scikeras gives multiclass targets only
    (not binary ones); this one takes the class indices scikeras gives both.

    Parameters
    ----------
    label_smoothing : float, default=0.0
        The target of the true class is ``1 - label_smoothing``, plus its
        share of ``label_smoothing`` spread evenly over all classes.
    name : str, default="smoothed_sparse_crossentropy"
        Name of the loss.
    **kwargs : dict
        Passed to :class:`keras.losses.Loss` (``reduction``, ``dtype``).
    """

    def __init__(self, label_smoothing=0.0, name="smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        """Per-sample loss of class indices ``y_true`` against probabilities ``y_pred``."""
        ops = keras.ops
        depth = ops.shape(y_pred)[-1]
        indices = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        target = ops.one_hot(indices, depth, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(target, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        """The constructor arguments, for saving."""
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@contextlib.contextmanager
def seeded(seed):
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


class EpochBar(keras.callbacks.Callback):
    """One tqdm bar over epochs, with the latest metrics as its postfix.

    In a notebook the bar stays when training ends, showing the last
    epoch's metrics; on a terminal it goes, as the other bars do.
    """

    def __init__(self, epochs, initial_epoch=0):
        super().__init__()
        self.bar = bar(total=epochs, initial=initial_epoch, desc="training", unit="epoch", delay=0,
                       leave=in_notebook(), lines=True)  # lines: a line per epoch in the CLI's logs

    def on_epoch_end(self, epoch, logs=None):
        self.bar.set_postfix({k: f"{v:.4f}" for k, v in (logs or {}).items() if k != "learning_rate"})
        self.bar.update(1)

    def on_train_end(self, logs=None):
        self.close()

    def close(self):
        """Close the bar, as complete when training stopped early (not as failed: a notebook paints those red)."""
        if self.bar.total is not None and self.bar.n < self.bar.total:
            self.bar.total = self.bar.n
            self.bar.refresh()
        self.bar.close()



class Pace(keras.callbacks.Callback):
    """Time training steps; once ``after`` seconds are timed, call ``report(seconds_per_step)`` once.

    The first step of each ``fit`` (where the network is traced) is not
    timed, so the pace is that of the steps to come.

    Parameters
    ----------
    report : callable
        Called with the mean seconds of a training step and the number of
        steps taken so far.
    after : float, default=5.0
        Seconds of timed steps before reporting.
    """

    def __init__(self, report, after=5.0):
        super().__init__()
        self.report, self.after = report, float(after)
        self.seconds, self.steps, self.reported = 0.0, 0, False

    def on_train_begin(self, logs=None):
        self._skip, self.taken = True, 0

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.taken += 1
        if self.reported or self._skip:
            self._skip = False
            return
        self.seconds += time.perf_counter() - self._start
        self.steps += 1
        if self.seconds >= self.after:
            self.reported = True
            self.report(self.seconds / self.steps, self.taken)


def file_backed(X):
    """Whether ``X`` is (a view of) a memory-mapped file, such as a ``numpy.memmap``."""
    import mmap

    seen = 0
    while X is not None and seen < 32:
        if isinstance(X, (np.memmap, mmap.mmap)):
            return True
        X, seen = getattr(X, "base", None), seen + 1
    return False


def all_finite(X, rows=4096):
    """``np.isfinite(X).all()`` without a temporary as large as ``X`` for large arrays."""
    if X.nbytes <= 64 * 1024**2:
        return bool(np.isfinite(X).all())
    return all(np.isfinite(X[i:i + rows]).all() for i in range(0, X.shape[0], rows))


def array_batches(X, y, sample_weight, batch_size, seed=None):
    """In-memory training arrays as a ``tf.data.Dataset`` of batches, reshuffled every epoch.

    What Keras builds from arrays (the arrays held once, each batch gathered
    by shuffled indices), with tf.data's autotuning off. Keras' own dataset
    autotunes, and its tuning thread sleeps up to 10 s between rounds; the
    iterator of each epoch waits for that thread when it is destroyed, so
    once epochs last some 15 s, the start of every epoch stalls idle for up
    to 10 s (TensorFlow 2.20-2.21; docs/performance.rst, "Idle epoch
    boundaries"). Nothing here needs tuning: gathering a batch takes a
    millisecond, and one batch is prepared ahead.

    Parameters
    ----------
    X, y : ndarray
        Images and encoded labels, row-aligned.
    sample_weight : ndarray or None
        Per-row weights, given to Keras as the third element of each batch.
    batch_size : int
        Rows per batch; the last batch of an epoch may be smaller.
    seed : int or None
        Seed of the shuffles (one new order every epoch).

    Returns
    -------
    tf.data.Dataset
    """
    import tensorflow as tf

    data = (X, y) if sample_weight is None else (X, y, sample_weight)
    n = len(X)
    order = tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True).batch(int(batch_size))
    held = tf.data.Dataset.from_tensors(data).repeat()
    batches = tf.data.Dataset.zip((order, held)).map(lambda rows, arrays: tuple(tf.gather(a, rows) for a in arrays))
    options = tf.data.Options()
    options.autotune.enabled = False
    return batches.prefetch(1).with_options(options)


class MappedBatches(keras.utils.PyDataset):
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
