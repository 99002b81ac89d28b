"""CNNClassifier: a configurable Keras CNN with the scikit-learn classifier API.

The estimator only; its parts live beside it: the parameters
(:mod:`.params`), the network (:mod:`.network`), training helpers
(:mod:`.training`) and prediction (:mod:`.inference`). This is the only
module of skimgclf that imports scikeras. scikeras 0.13 is no longer
maintained and gets several scikit-learn contracts wrong; each override
below says which one it fixes, so the rest of the package never depends on
scikeras' behaviour.
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
import tempfile
import warnings

from .._backend import configure

configure()  # the backend's settings (log level, GPU memory growth), before Keras is first imported here

import keras  # noqa: E402
import numpy as np  # noqa: E402
from scikeras.wrappers import KerasClassifier  # noqa: E402
from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.utils import ClassifierTags  # noqa: E402
from sklearn.utils.validation import check_consistent_length, column_or_1d  # noqa: E402

from .inference import predict_proba  # noqa: E402
from .backbones import backbone_layers, save_backbone_weights, set_phase  # noqa: E402
from .network import build_cnn  # noqa: E402
from .params import (  # noqa: E402
    MIN_MONITORED, NETWORK, auto_fine_tune_learning_rate, auto_freeze_epochs, auto_label_smoothing,
    auto_test_time_flip, constraints, early_stopping_acts)
from .training import (  # noqa: E402
    EpochBar, MappedBatches, SmoothedSparseCrossentropy, all_finite, array_batches, auto_batch_size, auto_epochs,
    file_backed, resolve_precision, seeded, training_kernels)

__all__ = ["MIN_MONITORED", "CNNClassifier"]

# MIN_MONITORED (fewest held-out images early stopping acts on) is a rule of
# params.py, importable from here as before.

#: The key of a pickled classifier's state that holds its network, as the bytes of a .keras file.
_NETWORK_STATE = "_network_keras_bytes"


def _positive_ints(value):
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in value
    )


def _image_shape(X):
    """``(height, width, channels)`` of images ``X``, or ``(1, 1, 1)`` when ``X`` is no 4-D array (refused later)."""
    shape = getattr(X, "shape", None)
    if shape is None:
        try:  # np.asarray, not np.shape: array-likes may refuse NumPy's array functions
            shape = np.asarray(X).shape
        except Exception:  # noqa: BLE001 - not images; validation says so
            return (1, 1, 1)
    return tuple(int(v) for v in shape[1:]) if len(shape) == 4 else (1, 1, 1)


def _network_bytes(model):
    """The bytes of ``model`` saved as a ``.keras`` file: layers, weights, loss and optimizer state."""
    with tempfile.TemporaryDirectory(prefix="skimgclf-pickle-") as tmp:
        path = os.path.join(tmp, "network.keras")
        keras.saving.save_model(model, path)
        with open(path, "rb") as fh:
            return fh.read()


def _network_from_bytes(data):
    """The network of :func:`_network_bytes`, compiled as it was (Keras' safe mode)."""
    with tempfile.TemporaryDirectory(prefix="skimgclf-unpickle-") as tmp:
        path = os.path.join(tmp, "network.keras")
        with open(path, "wb") as fh:
            fh.write(data)
        return keras.saving.load_model(path, safe_mode=True)


def _callers_level():
    """The ``stacklevel`` of a warning that names the first caller outside skimgclf and scikeras.

    fit, partial_fit and scikeras' own methods stand between the user's
    call and the warning, at depths that differ from one path to another.
    """
    frame, level = inspect.currentframe().f_back, 1
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in ("skimgclf", "scikeras"):
        frame, level = frame.f_back, level + 1
    return level


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
    backbone : {"mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "resnet50"} or None, default=None
        A pretrained network of ``keras.applications`` (without its top) to
        fine-tune instead of training the convolution blocks from scratch;
        ``None`` is the plain CNN. With a backbone, the convolution parameters
        (``conv_blocks`` to ``global_pooling``) are not used: the network is
        the augmentation layers, the backbone, global average pooling,
        ``hidden_layers`` dense layers and the softmax. Images whose shorter
        side is below 32 pixels are resized up to 32 (aspect kept); grayscale
        ones are repeated to three channels, and values are mapped from [0, 1]
        to what each backbone expects. See the transfer-learning guide.
    backbone_weights : "imagenet", path or None, default="imagenet"
        The backbone's initial weights: ``"imagenet"`` (Keras downloads them
        once into its cache; without a network and cache, ``fit`` fails at once
        saying how to bring a file), ``None`` (random), or the path of a file
        saved with ``save_weights`` from the same application built without its
        top, e.g. ``keras.applications.MobileNetV3Small( include_top=False,
        weights=None)``. Not used without a backbone.
    conv_blocks : int, default=3
        Number of convolution blocks.
    filters : int, list of (int or list of int) or "auto", default="auto"
        Filters of the first block, doubled in each later block; or one value
        per block; or, per block, a list of values, one per convolution of that
        block (``[[32, 64]]`` is one block of two convolutions; ``[[32], [64,
        64]]`` has one convolution, then two). Multiples of 16 run fastest on
        CPUs. ``"auto"`` is 32 for the first block, doubled in each later
        block; for colour images larger than 32 pixels on their longer side,
        with two or more convolutions a block, each block widens after its
        pooling: its first convolution keeps the filters of the block before,
        and the first block has one convolution fewer (``[[32], [32, 64], [64,
        128]]`` for three blocks of two).
    convs_per_block : int or "auto", default="auto"
        Convolution layers in each block. ``"auto"`` is 2 for colour images (3
        channels or more) and 1 for grayscale ones. Photos need the second
        convolution; digits are as accurate with one, at a third of the cost.
    pool_after : int or "auto", default="auto"
        Where each block pools: after this many of its convolutions (the rest
        then run on the pooled, four times smaller map); a value at least
        ``convs_per_block`` pools after the last. ``"auto"`` pools colour
        blocks after their first convolution and grayscale ones after the last.
        Pooling between two convolutions makes an epoch much cheaper, and
        colour images reach the same accuracy in more, cheaper epochs.
    kernel_size : int, default=3
        Side of the square convolution kernels (reduced for tiny maps).
    padding : {"auto", "same", "valid"}, default="auto"
        ``"same"`` keeps the size of the feature maps through a convolution;
        ``"valid"`` trims ``kernel_size - 1`` pixels (Keras' own default).
        ``"auto"`` is ``"same"`` for colour images; for grayscale ones
        ``"valid"`` while the output of the convolution is still at least
        ``kernel_size`` wide, else ``"same"``: trimming costs photos accuracy,
        saves digits computation at the same accuracy, and small images are not
        convolved into nothing.
    pooling : {"max", "avg"} or None, default="max"
        2x2 pooling in each block (where ``pool_after`` says), skipped where
        the map is smaller than 4. Max pooling comes right after its
        convolution, before the normalisation and activation (which then run on
        a quarter of the values); average pooling after the activation.
    batch_norm : bool, default=True
        Batch normalisation after each convolution and hidden dense layer.
    conv_dropout : float, default=0.0
        Dropout rate after each convolution block.
    global_pooling : {"auto", "flatten", "avg", "max"}, default="auto"
        How the last feature map becomes a vector. ``"auto"`` is ``"flatten"``
        for maps of at most 64 positions and ``"avg"`` for larger ones, so that
        large images do not make the dense layers huge.
    hidden_layers : int, default=1
        Number of dense hidden layers.
    units : int or list of int, default=128
        Units of each hidden layer (or one value per layer).
    activation : str, default="relu"
        Activation of the convolution and hidden layers: one of ``"relu"``,
        ``"elu"``, ``"selu"``, ``"gelu"``, ``"silu"``, ``"swish"``, ``"tanh"``,
        ``"sigmoid"``, ``"leaky_relu"``, ``"mish"``.
    dropout : float, default=0.3
        Dropout rate after each hidden dense layer.
    random_shift : float or "auto", default="auto"
        Training-time random translation, as a fraction of height and width.
        ``"auto"`` is 0.1 for images of at least 16 pixels on their shorter
        side and 0 (off) for smaller ones: there a fraction of the image is a
        sub-pixel shift that only blurs it. What a shift (or rotation, or zoom)
        brings into the frame is the image's border reflected for colour images
        and black for grayscale ones (a digit's background).
    random_rotation : float or "auto", default="auto"
        Training-time random rotation, as a fraction of a full turn. ``"auto"``
        is 0.03 (about 11 degrees) for grayscale images of at least 16 pixels
        on their shorter side, and 0 (off) for smaller ones and for colour
        images: rotation and zoom cost photos accuracy; they get flips and
        shifts instead.
    random_zoom : float or "auto", default="auto"
        Training-time random zoom, as a fraction. ``"auto"`` is 0.1 for
        grayscale images of at least 16 pixels on their shorter side, and 0
        (off) for smaller ones and for colour images.
    random_flip : {"auto", "horizontal", "vertical", "horizontal_and_vertical"} or None, default="auto"
        Training-time random flips. ``"auto"`` is ``"horizontal"`` for colour
        images and ``None`` (no flip) for grayscale ones: a photo's mirror
        image shows the same thing, but digits and text must not be flipped.
    optimizer : {"adam", "adamw", "nadam", "rmsprop", "sgd"}, default="adam"
        Keras optimizer (SGD with Nesterov momentum 0.9).
    learning_rate : float, default=0.003
        Initial learning rate.
    lr_schedule : {"cosine", "constant"}, default="cosine"
        ``"cosine"`` decays the learning rate to zero over ``epochs``.
    freeze_epochs : int or "auto", default="auto"
        With a backbone: the first epochs of ``epochs`` train the new head
        only, on the frozen backbone; the rest fine-tune the top
        ``fine_tune_fraction`` of the backbone too, at
        ``fine_tune_learning_rate``, each phase with its own cosine schedule.
        ``"auto"`` is a third of ``epochs_`` (at least 1); a number is capped
        at ``epochs_`` (then nothing is fine-tuned); the number used is
        ``freeze_epochs_``. ``partial_fit`` counts its calls instead: the first
        ``freeze_epochs_`` train the head. Not used without a backbone.
    fine_tune_fraction : float, default=1.0
        With a backbone: the fraction of the backbone's layers, counted from
        its top, trained after ``freeze_epochs``; ``0`` keeps the backbone
        frozen (features only), ``1`` (as fastai's ``fine_tune`` and Keras'
        fine-tuning guide do) trains all of it. Batch normalisation layers stay
        frozen throughout (in inference mode), as Keras' guide advises, unless
        ``backbone_weights=None`` (random weights have no statistics to keep).
        On small data sets, fine-tuning all layers did better than fine-tuning
        the top few at a lower rate.
    fine_tune_learning_rate : float or "auto", default="auto"
        With a backbone: the initial learning rate of the fine-tuning phase.
        ``"auto"`` is half of ``learning_rate`` (fastai's rate for the top
        layers). Lower it for weights learnt on far more images than yours
        (Keras' guide fine-tunes ImageNet weights at 1e-5).
    label_smoothing : float or "auto", default="auto"
        Label smoothing of the cross-entropy loss: the target of the true class
        is ``1 - label_smoothing`` and the rest is shared by the other classes,
        which keeps the network from growing over-confident. ``"auto"`` is 0.1
        for colour images and 0 for grayscale ones.
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        The arithmetic of training. ``"bfloat16"`` computes the layers in
        bfloat16 with float32 weights (Keras' ``"mixed_bfloat16"``; the output
        layer stays float32); ``"float32"`` computes everything in float32.
        Prediction and model files are float32 either way. ``"auto"`` is
        ``"bfloat16"`` when training on a CPU with native bfloat16 instructions
        (Intel AMX or AVX512-BF16) and no GPU is visible, else ``"float32"``;
        the value used is ``precision_``.
    warm_start : bool, default=False
        When True and the classifier is fitted, ``fit`` trains the fitted
        network further (``epochs`` more epochs, on a new learning-rate
        schedule from ``learning_rate``) instead of building a new one;
        ``history_`` grows. The images must have the training shape and the
        labels be among ``classes_``. As in scikit-learn, it is how a model
        measured on part of the data can be trained on the rest without
        starting over.
    epochs : int or "auto", default="auto"
        Maximum number of passes over the training data. ``"auto"`` is 10 for
        grayscale images, 22 for colour images of at most 32 pixels on their
        longer side, 16 for larger colour images (more on fewer than 625
        training images, so that training sees about 10,000 images, at most 40
        epochs) and 12 with a pretrained ``backbone`` (photos need more passes
        under flips and shifts); the number used is ``epochs_``.
    batch_size : int or "auto", default="auto"
        Samples per gradient step. ``"auto"`` is 64, lowered on data sets of
        fewer than 1,024 images so that an epoch has at least 16 steps (never
        below 8); the size used is ``batch_size_``.
    validation_split : float, default=0.0
        Fraction of the training data held out, stratified and drawn with
        ``random_state``, to monitor validation loss and accuracy (and for
        early stopping). ``0`` trains on everything: with the cosine schedule
        the last epoch is usually the best, and the images held out are worth
        more as training images than as a stopping signal.
    early_stopping : bool, default=True
        Stop when the validation loss has not improved for ``patience`` epochs
        and restore the best weights. It needs ``validation_split > 0``, and it
        acts only when at least 100 images are held out; on fewer it is off,
        with a warning, because the "best" epoch would be chance.
    patience : int, default=4
        Epochs without improvement before early stopping.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn.
    test_time_flip : bool or "auto", default="auto"
        Predict each image as the average of its probabilities and those of its
        mirror image (twice the work at prediction). ``"auto"`` is ``True``
        when the network is trained with horizontal flips.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, dropout, augmentation and the
        validation split. The same value and data give identical predictions;
        the seed does not leak into later fits.
    verbose : int, default=1
        ``0`` silent; ``1`` progress bars where a person watches (a terminal or
        a Jupyter notebook; nothing in logs, pipes or CI): one over the epochs
        with the latest metrics, and one over the images when a prediction
        takes more than a second; ``2`` one line per epoch from Keras, wherever
        the output goes (logs included).

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
    batch_size_ : int
        The batch size ``fit`` trained with (``batch_size``, or what
        ``"auto"`` stood for on that many images).
    epochs_ : int
        The number of epochs ``fit`` planned (``epochs``, or what ``"auto"``
        stood for on these images); early stopping may end sooner.
    precision_ : {"float32", "mixed_bfloat16"}
        The Keras dtype policy the network trained in (``precision``, or
        what ``"auto"`` stood for on this machine).

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

    # scikeras reads these as parameters of its own; here they are fixed (the
    # network comes from _keras_build_fn), so they are class attributes, not
    # constructor arguments that get_params/clone would carry.
    model = None
    build_fn = None
    loss = "sparse_categorical_crossentropy"  # class indices, for binary and multiclass alike
    metrics = None
    callbacks = None
    shuffle = True
    run_eagerly = False
    validation_batch_size = None

    _parameter_constraints = constraints()

    def __init__(
        self,
        *,
        backbone=None,
        backbone_weights="imagenet",
        conv_blocks=3,
        filters="auto",
        convs_per_block="auto",
        pool_after="auto",
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
        random_flip="auto",
        optimizer="adam",
        learning_rate=0.003,
        lr_schedule="cosine",
        freeze_epochs="auto",
        fine_tune_fraction=1.0,
        fine_tune_learning_rate="auto",
        label_smoothing="auto",
        precision="auto",
        warm_start=False,
        epochs="auto",
        batch_size="auto",
        validation_split=0.0,
        early_stopping=True,
        patience=4,
        class_weight=None,
        test_time_flip="auto",
        random_state=None,
        verbose=1,
    ):
        # Deliberately not calling KerasClassifier.__init__: it would store
        # parameters of its own (model, loss, ...) and swallow **kwargs.
        self.backbone = backbone
        self.backbone_weights = backbone_weights
        self.conv_blocks = conv_blocks
        self.filters = filters
        self.convs_per_block = convs_per_block
        self.pool_after = pool_after
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
        self.freeze_epochs = freeze_epochs
        self.fine_tune_fraction = fine_tune_fraction
        self.fine_tune_learning_rate = fine_tune_learning_rate
        self.label_smoothing = label_smoothing
        self.precision = precision
        self.warm_start = warm_start
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation_split = validation_split
        self.early_stopping = early_stopping
        self.patience = patience
        self.class_weight = class_weight
        self.test_time_flip = test_time_flip
        self.random_state = random_state
        self.verbose = verbose

    # -- scikit-learn plumbing that scikeras gets wrong ----------------------------
    # Fix scikeras' parameters: they are the named constructor arguments
    # (scikeras lists whatever sits in __dict__), set_params rejects unknown
    # names (scikeras accepts routed "fit__x" names), repr and score are
    # scikit-learn's (scikeras re-validates y and drops zero weights in score).
    _get_param_names = classmethod(BaseEstimator._get_param_names.__func__)
    set_params = BaseEstimator.set_params
    __repr__ = BaseEstimator.__repr__
    score = ClassifierMixin.score

    def __sklearn_tags__(self):
        # Fixes scikeras' tags: KerasClassifier lists ClassifierMixin after
        # BaseEstimator, so scikit-learn never sees it as a classifier.
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = True
        tags.input_tags.two_d_array = False
        tags.non_deterministic = self.random_state is None
        return tags

    # Fixes scikeras' pickling: ``import scikeras`` replaces keras.Model.__reduce__
    # and __deepcopy__ (and those of losses, metrics and optimizers) for the
    # whole process, through Keras' private saving library. Here the network
    # travels as the bytes of a .keras file, written and read with Keras'
    # public saving API; nothing of Keras is pickled. pickle, joblib and
    # copy.deepcopy all go through these two methods.
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns __dict__ itself
        model = state.pop("model_", None)
        if model is not None:
            state[_NETWORK_STATE] = _network_bytes(model)
        return state

    def __setstate__(self, state):
        state = dict(state)
        data = state.pop(_NETWORK_STATE, None)
        if data is not None:
            state["model_"] = _network_from_bytes(data)
        super().__setstate__(state)

    def _check_params(self):
        self._validate_params()
        for name, count in (("filters", self.conv_blocks), ("units", self.hidden_layers)):
            value = getattr(self, name)
            if name == "filters" and isinstance(value, (list, tuple)) and len(value) == count and all(
                _positive_ints(v) for v in value if isinstance(v, (list, tuple))
            ) and _positive_ints([1 if isinstance(v, (list, tuple)) else v for v in value]):
                continue  # per-convolution filters: a list of ints per block, one per convolution
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

        The messages speak of images (shapes as height, width, channels);
        scikit-learn's check suite, which passes tables, translates them to
        its own wording in its test adapter.
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
                "be at least 1: an image needs at least one row, one column and one channel"
            )
        expected = getattr(self, "image_shape_", None)
        if not reset and expected is not None and shape != tuple(expected):
            raise ValueError(
                f"X has images of shape {shape} (height, width, channels), but {name}'s network was "
                f"trained on images of shape {tuple(expected)}; load them with the same target_size and "
                "color_mode"
            )
        if X.dtype == np.uint8:
            X = X.astype(np.float32) / np.float32(255)
        elif X.dtype == np.uint16:
            X = X.astype(np.float32) / np.float32(65535)
        else:
            X = X.astype(np.float32, copy=False)
        if not all_finite(X):
            raise ValueError("X contains NaN or infinity")
        if reset:
            self.image_shape_ = shape
            self.n_features_in_ = int(np.prod(shape))
            self.X_shape_ = X.shape
            self.X_dtype_ = X.dtype
        return X

    def _validate_data(self, X=None, y=None, reset=False, y_numeric=False):
        # Fixes scikeras' check, which refuses float64 after float32 and
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
        # Fixes scikeras' build, which wraps this in its leaking tensorflow_random_state.
        return self._keras_build_fn(meta=self._get_metadata())

    def _keras_build_fn(self, meta):
        # scikeras' extension point: the network from the constructor parameters.
        model = build_cnn(meta["image_shape_"], int(meta["n_classes_"]), seed=getattr(self, "_fit_seed_", None),
                          **{name: getattr(self, name) for name in NETWORK})
        total = meta.get("n_train_steps_")
        if self.backbone is not None and total:
            # The head trains alone first, on its own schedule (see _fit_keras_model).
            total = total // self.epochs_ * self.freeze_epochs_
        model.compile(optimizer=self._make_optimizer(total), loss=self._loss(meta["image_shape_"]), metrics=["accuracy"])
        return model

    def _loss(self, image_shape):
        """The training loss on images of ``image_shape``: cross-entropy of class indices, smoothed or not."""
        smoothing = self._label_smoothing(image_shape)
        return SmoothedSparseCrossentropy(smoothing) if smoothing else "sparse_categorical_crossentropy"

    def _continue_training(self, y):
        """Prepare a warm-started fit: check the labels, give the network a new schedule; the first epoch's number."""
        labels = column_or_1d(np.asarray(y), warn=True)
        unknown = np.setdiff1d(np.unique(labels.astype(self.classes_.dtype, copy=False)), self.classes_)
        if unknown.size:
            raise ValueError(f"warm_start=True continues a network trained on the classes {self.classes_[:10].tolist()}; "
                             f"y has others: {unknown[:5].tolist()}. Fit a new network (warm_start=False) for them.")
        lr = None
        if self.backbone is not None and any(layer.trainable and layer.weights for layer in backbone_layers(self.model_)):
            self._fine_tuning = True
            lr = auto_fine_tune_learning_rate(self.fine_tune_learning_rate, self.learning_rate)
        self.model_.compile(optimizer=self._make_optimizer(self.n_train_steps_, lr),
                            loss=self.model_.loss or self._loss(self.image_shape_), metrics=["accuracy"])
        return len(getattr(self, "history_", {}).get("loss", []))

    def _start_fine_tuning(self, steps):
        """Unfreeze the top of the backbone and recompile at the fine-tuning rate over ``steps`` steps."""
        set_phase(self.model_, self.fine_tune_fraction, batch_norm=self.backbone_weights is None)
        lr = auto_fine_tune_learning_rate(self.fine_tune_learning_rate, self.learning_rate)
        # Keras applies trainable only at compile; a new optimizer starts the new phase's schedule.
        self.model_.compile(optimizer=self._make_optimizer(steps, lr), loss=self.model_.loss, metrics=["accuracy"])

    def save_backbone_weights(self, path):
        """Save the fitted backbone's weights for ``backbone_weights`` of another classifier.

        The file is what ``save_weights`` writes for the ``keras.applications``
        network built without its top (``include_top=False``): pretrain a
        backbone here on a large set of images, then fine-tune it on a small
        one with ``CNNClassifier(backbone=..., backbone_weights=path)``.

        Parameters
        ----------
        path : str or path-like
            The file to write; Keras requires the name to end in ``.weights.h5``.

        Returns
        -------
        self : CNNClassifier
            The classifier, unchanged.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            Without a backbone, or when ``path`` does not end in ``.weights.h5``.
        """
        if not hasattr(self, "model_"):
            raise NotFittedError("This CNNClassifier instance is not fitted yet. Call 'fit' with appropriate "
                                 "arguments before using this estimator.")
        if self.backbone is None:
            raise ValueError("save_backbone_weights needs a classifier with a backbone (backbone=None: the plain "
                             "CNN has none)")
        if not os.fspath(path).endswith(".weights.h5"):
            raise ValueError(f"save_backbone_weights: {os.fspath(path)!r} must end in .weights.h5 (Keras' name "
                             "for weights files)")
        save_backbone_weights(self.model_, self.backbone, path)
        return self

    def _resolve_freeze_epochs(self):
        """What ``freeze_epochs`` stands for with ``epochs_`` epochs: at most ``epochs_`` (0 without a backbone)."""
        return auto_freeze_epochs(self.freeze_epochs, self.epochs_, self.backbone)

    def _label_smoothing(self, image_shape):
        """The label smoothing ``label_smoothing`` stands for on images of ``image_shape``."""
        return auto_label_smoothing(self.label_smoothing, image_shape[-1])

    def _make_optimizer(self, total_steps, learning_rate=None):
        lr = float(self.learning_rate if learning_rate is None else learning_rate)
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
            ``validation_data=(X_val, y_val)``, images and labels, is
            evaluated after every epoch and recorded in ``history_``
            (``val_loss``, ``val_accuracy``); unlike ``validation_split`` it
            steers nothing (no early stopping), so a test set can be watched
            without being learnt from.

        Returns
        -------
        self : CNNClassifier
            The fitted classifier.
        """
        # Fixes scikeras' seeding (its tensorflow_random_state flips a global
        # determinism flag and leaks the seed into later fits).
        self._check_params()
        # The learning-rate schedule is laid out when the network is built,
        # before scikeras drops the rows of weight 0: count what will train.
        n_rows = self._rows_trained(X, y, sample_weight)
        self.batch_size_ = auto_batch_size(self.batch_size, n_rows)
        self.epochs_ = auto_epochs(self.epochs, _image_shape(X), self.backbone, n_rows)
        self.freeze_epochs_ = self._resolve_freeze_epochs()
        self.precision_ = resolve_precision(self.precision)
        self.n_train_steps_ = math.ceil(n_rows / self.batch_size_) * self.epochs_
        if sample_weight is not None:
            # scikeras multiplies class weights into it in place: never the caller's array.
            sample_weight = np.array(sample_weight, dtype=np.float32)
        self._fit_seed_ = self._seed()
        classes = None
        if self.warm_start and hasattr(self, "model_"):
            classes = self.classes_  # scikeras forgets them on every fit; the network keeps its outputs
            kwargs["initial_epoch"] = self._continue_training(y)
            if self._fit_seed_ is not None:  # not the first fit's shuffles and augmentations again
                self._fit_seed_ += kwargs["initial_epoch"]
        with seeded(self._fit_seed_):
            try:
                super().fit(X, y, sample_weight=sample_weight, **kwargs)
            finally:
                if classes is not None:
                    self.classes_ = classes
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
            self.epochs_ = auto_epochs(self.epochs, _image_shape(X), self.backbone)
            self.freeze_epochs_ = self._resolve_freeze_epochs()
            self.precision_ = resolve_precision(self.precision)
        if sample_weight is not None:
            sample_weight = np.array(sample_weight, dtype=np.float32)
        base = self._fit_seed_ = self._seed()
        with seeded(None if base is None else base + self.current_epoch):
            super().partial_fit(X, y, classes=classes, sample_weight=sample_weight, **kwargs)
        return self

    def _batch(self):
        """The batch size in use: decided at fit (``batch_size_``), else from 1,024 rows."""
        return getattr(self, "batch_size_", None) or auto_batch_size(self.batch_size, 1024)

    def _flips_at_prediction(self):
        """Whether predictions average each image with its mirror image (test_time_flip)."""
        return auto_test_time_flip(self.test_time_flip, self.random_flip, self.image_shape_[-1])

    def _set_fitted(self, state):
        """Make this classifier fitted from ``state``, a trained network and its facts (skimgclf.load).

        The fitted-state protocol of skimgclf's estimators (the loader has the
        same method): ``state`` holds ``model`` (the Keras network),
        ``classes``, ``image_shape``, ``history`` and, if known, ``epochs``
        (``epochs_``); returns ``self``. The
        one place outside fit that knows the fitted state scikeras keeps.
        """
        model, classes, image_shape, history = (state[k] for k in ("model", "classes", "image_shape", "history"))
        self.model_ = model
        self.classes_ = np.asarray(classes)
        self.n_classes_ = int(self.classes_.size)
        self.image_shape_ = tuple(int(v) for v in image_shape)
        self.n_features_in_ = int(np.prod(self.image_shape_))
        self.X_shape_ = (None,) + self.image_shape_
        self.X_dtype_ = np.dtype(np.float32)
        self.history_ = {k: [float(v) for v in values] for k, values in history.items()}
        self.epochs_ = int(state.get("epochs") or auto_epochs(self.epochs, self.image_shape_, self.backbone))
        self.freeze_epochs_ = self._resolve_freeze_epochs()
        self.precision_ = resolve_precision(self.precision)
        self.target_type_ = "multiclass" if self.n_classes_ > 2 else "binary"
        self.y_dtype_, self.y_ndim_ = self.classes_.dtype, 1
        self.target_encoder_ = self.target_encoder.fit(self.classes_)
        self.feature_encoder_ = self.feature_encoder.fit(np.zeros((1,) + self.image_shape_, np.float32))
        self._initialize_callbacks()
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
        """Stratified (train, validation) row indices of ``y`` (encoded labels), or None without a split."""
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
        # grows over partial_fit calls. With a backbone, the epochs before
        # freeze_epochs_ train the head alone and the rest fine-tune.
        if epochs == "auto":  # scikeras passes the parameter; fit decided what it stands for
            epochs = self.epochs_
        if kwargs.get("validation_data") is not None:
            kwargs["validation_data"] = self._watched(kwargs["validation_data"])
        # One validation split for every phase (also with random_state=None).
        split = self._validation_indices(y, getattr(self, "_fit_seed_", None))
        if self.backbone is None:
            self._train(X, y, sample_weight, epochs, initial_epoch, split, **kwargs)
            return
        if initial_epoch == 0:  # a new network (fit, or the first partial_fit): the head trains first
            self._fine_tuning = False
        elif not hasattr(self, "_fine_tuning"):  # loaded from a file: the network says where it is
            self._fine_tuning = any(layer.trainable and layer.weights for layer in backbone_layers(self.model_))
        head_epochs = min(epochs, max(0, self.freeze_epochs_ - initial_epoch))
        head_stop = snapshot = None
        if head_epochs:
            head_stop = self._train(X, y, sample_weight, head_epochs, initial_epoch, split, **kwargs)
            if head_stop is not None:  # the head phase's best network, in case fine-tuning never beats it
                snapshot = [(v, np.array(v.numpy())) for v in self.model_.weights]
        if epochs > head_epochs:
            if not self._fine_tuning:  # once per network
                self._fine_tuning = True
                total = self.n_train_steps_
                self._start_fine_tuning(total // self.epochs_ * (epochs - head_epochs) if total else None)
            tune_stop = self._train(X, y, sample_weight, epochs - head_epochs, initial_epoch + head_epochs, split,
                                    warn=not head_epochs, **kwargs)
            if snapshot is not None and tune_stop is not None and head_stop.best < tune_stop.best:
                for variable, value in snapshot:
                    variable.assign(value)

    def _watched(self, data):
        """``fit``'s ``validation_data`` as Keras takes it: images checked, labels encoded as ``y``."""
        if self.validation_split:
            raise ValueError(f"validation_data and validation_split={self.validation_split} both hold out images "
                             "to watch; give one of them")
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise ValueError("validation_data must be a pair (X_val, y_val) of images and their labels; got "
                             f"{type(data).__name__}")
        X_val = self._check_images(data[0], reset=False)
        y_val = column_or_1d(np.asarray(data[1]), warn=True)
        check_consistent_length(X_val, y_val)
        classes = self.target_encoder_.classes_
        unknown = np.setdiff1d(np.unique(y_val.astype(classes.dtype, copy=False)), classes)
        if unknown.size:
            raise ValueError(f"validation_data has labels that are not among the training classes: "
                             f"{unknown[:5].tolist()}")
        return X_val, self.target_encoder_.transform(y_val)

    def _train(self, X, y, sample_weight, epochs, initial_epoch, split, warn=True, **kwargs):
        """``model_.fit`` for ``epochs`` epochs from ``initial_epoch``; extends ``history_``.

        Returns the early-stopping callback that acted (None without one).
        """
        stopping = None
        fit_args = dict(epochs=initial_epoch + epochs, initial_epoch=initial_epoch,
                        verbose=2 if self.verbose >= 2 else 0)
        if file_backed(X):
            # Memory-mapped images (ImageFolderLoader(cache_dir=...)): Keras
            # would copy the whole array into memory first; read each batch
            # from the file when it is needed instead.
            train = np.arange(X.shape[0]) if split is None else split[0]
            if split is not None:
                fit_args["validation_data"] = MappedBatches(X, y, sample_weight, split[1],
                                                             self._batch(), shuffle=False)
            data = MappedBatches(X, y, sample_weight, train, self._batch(), shuffle=True,
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
            # Shuffled every epoch by the dataset itself (Keras' shuffle would only warn).
            fit_args["shuffle"] = False
            args = (array_batches(X, y, sample_weight, self._batch(), seed=getattr(self, "_fit_seed_", None)),)
        callbacks = [keras.callbacks.TerminateOnNaN()]
        if split is not None and self.early_stopping:
            if early_stopping_acts(self.early_stopping, len(split[1])):
                stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.patience,
                                                         restore_best_weights=True)
                callbacks.append(stopping)
            elif warn:  # once per fit, not once per phase
                warnings.warn(
                    f"validation_split={self.validation_split} holds out only {len(split[1])} images, too few "
                    f"to tell one epoch from the next (at least {MIN_MONITORED} are needed): early stopping is "
                    "off and the last epoch is kept. Hold out more, or set early_stopping=False.",
                    UserWarning, stacklevel=_callers_level())
        shown = EpochBar(initial_epoch + epochs, initial_epoch) if self.verbose == 1 else None
        if shown is not None:
            callbacks.append(shown)
        fit_args.update(kwargs)
        fit_args["callbacks"] = callbacks + list(fit_args.get("callbacks") or [])
        try:
            with training_kernels(self.model_, self.precision_):
                hist = self.model_.fit(*args, **fit_args)
        finally:  # Keras skips on_train_end when fit raises (Ctrl-C included)
            if shown is not None:
                shown.close()
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
        return stopping

    # -- prediction ------------------------------------------------------------------
    def _predict_raw(self, X, **kwargs):
        # Fixes scikeras' prediction: Model.predict in batches of 32 (slow) on
        # arrays validated for 2-D tables; here images, eagerly or traced.
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "This CNNClassifier instance is not fitted yet. Call 'fit' with appropriate "
                "arguments before using this estimator."
            )
        X = self._check_images(X, reset=False)
        if kwargs:
            proba = self.model_.predict(X, batch_size=max(256, self._batch()), verbose=0, **kwargs)
            proba = np.asarray(proba, dtype=np.float32).reshape(X.shape[0], -1)
        else:
            proba = predict_proba(self.model_, X, flip=self._flips_at_prediction(), progress=self.verbose == 1)
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
        # Fixes scikeras' predict_proba, which is 1-D for a single sample.
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
        # scikeras decodes through its target encoder; the classes are classes_.
        proba = self._predict_raw(X, **kwargs)
        return self.classes_[np.argmax(proba, axis=1)]

