"""Helpers of training: scoped seeding, the epoch progress bar, batches read from memory maps.

Importing this module imports Keras.
"""

from __future__ import annotations

import contextlib
import math
import random

import keras
import numpy as np

from .._progress import bar, in_notebook

__all__ = ["AUTO_EPOCHS", "EpochBar", "MappedBatches", "SmoothedSparseCrossentropy", "all_finite", "auto_batch_size",
           "auto_epochs",
           "file_backed", "seeded"]


def auto_batch_size(batch_size, n_rows):
    """The batch size ``batch_size`` stands for when training on ``n_rows`` images.

    ``"auto"`` is 64, lowered on small data sets so that an epoch still
    takes at least 16 gradient steps: the largest power of two at most
    ``n_rows / 16``, and never below 8. A few hundred photos in batches of
    64 gave the network 2 to 4 steps an epoch, too few to learn in 10-15
    epochs (the README's example scored 0.44 on two classes).

    Parameters
    ----------
    batch_size : int or "auto"
        The classifier's parameter.
    n_rows : int
        Images trained on.

    Returns
    -------
    int
    """
    if batch_size != "auto":
        return int(batch_size)
    steps_of = max(1, int(n_rows) // 16)
    return int(min(64, max(8, 2 ** int(math.floor(math.log2(steps_of))))))


#: What ``epochs="auto"`` stands for: grayscale images, colour images, any images under a backbone.
AUTO_EPOCHS = {"grayscale": 10, "colour": 22, "backbone": 12}


def auto_epochs(epochs, channels, backbone=None):
    """The number of epochs ``epochs`` stands for on images of ``channels`` channels.

    ``"auto"`` is 10 for grayscale images and 22 for colour ones: on
    validation splits of cifar10k, photos under flips and shifts were still
    learning after 10 epochs (0.741 after 13, 0.746 after 22 with the
    cheaper colour blocks), while digits were not.

    Parameters
    ----------
    epochs : int or "auto"
        The classifier's parameter.
    channels : int
        Channels of the training images.
    backbone : str or None, default=None
        The classifier's ``backbone``: a pretrained network needs fewer
        passes (12, a third of them on the frozen backbone).

    Returns
    -------
    int
    """
    if epochs != "auto":
        return int(epochs)
    if backbone is not None:
        return AUTO_EPOCHS["backbone"]
    return AUTO_EPOCHS["colour" if int(channels) >= 3 else "grayscale"]


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
