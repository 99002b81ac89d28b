"""The parameters of :class:`~skimgclf.CNNClassifier`, declared once.

Each :class:`Parameter` gives a name, its default, the values it accepts
(scikit-learn's parameter constraints), its documentation and, where the
command line exposes it, its option. From this one list come:

- ``CNNClassifier._parameter_constraints`` (checked at fit, in
  scikit-learn's words);
- the "Parameters" section of ``CNNClassifier``'s docstring;
- the network options of ``skimgclf train`` / ``search`` (type, range,
  default and help);
- the keyword arguments :func:`~skimgclf.model.network.build_cnn` takes.

What each ``"auto"`` stands for on given data is decided here too, once:
one function per rule, :func:`resolve` for all of them, and
:data:`AUTO_RULES` saying each in words for the docstring, the command
line's help and the user guide.

``CNNClassifier.__init__`` lists the same names and defaults explicitly, as
scikit-learn requires; a test fails if it drifts from this list.

Importing this module imports scikit-learn's validation helpers only: the
command line reads it without TensorFlow.
"""

from __future__ import annotations

import math
import numbers
import os
import textwrap
from dataclasses import dataclass

from sklearn.utils._param_validation import Interval, StrOptions

__all__ = ["ACTIVATIONS", "AUTO_EPOCHS", "AUTO_RULES", "BACKBONES", "EARLY_STOPPING_RULE", "MIN_MONITORED", "NETWORK",
           "OPTIMIZERS", "PARAMETERS", "Parameter", "auto_augmentation", "auto_batch_size", "auto_convs_per_block",
           "auto_epochs", "auto_fine_tune_learning_rate", "auto_flip", "auto_freeze_epochs", "auto_global_pooling",
           "auto_label_smoothing", "auto_padding", "auto_pool_after", "auto_precision", "auto_test_time_flip",
           "constraints", "defaults", "early_stopping_acts", "numpydoc", "resolve"]

ACTIVATIONS = ("relu", "elu", "selu", "gelu", "silu", "swish", "tanh", "sigmoid", "leaky_relu", "mish")
#: Pretrained networks of ``keras.applications`` that ``backbone`` may name.
BACKBONES = ("mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "resnet50")
OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "sgd")


@dataclass(frozen=True)
class Parameter:
    """One constructor parameter of CNNClassifier.

    Parameters
    ----------
    name : str
        The keyword argument.
    default : object
        Its default value.
    constraints : tuple
        scikit-learn parameter constraints (``Interval``, ``StrOptions``,
        types, ``None``, ``"boolean"``, ...).
    kind : str
        The numpydoc type line (``"int"``, ``"float or 'auto'"``).
    doc : str
        The description (reStructuredText).
    part : {"network", "training", "prediction", "estimator"}
        ``"network"`` parameters shape the Keras model (they are
        :func:`~skimgclf.model.network.build_cnn`'s keyword arguments).
    cli : str or None, default=None
        The command-line option, when exposed (``"--conv-blocks"``).
    cli_help : str or None, default=None
        Its one-line help (the default is appended).
    """

    name: str
    default: object
    constraints: tuple
    kind: str
    doc: str
    part: str
    cli: str | None = None
    cli_help: str | None = None


def _int(low):
    return Interval(numbers.Integral, low, None, closed="left")


_FRACTION = Interval(numbers.Real, 0, 1, closed="left")
_AUTO = StrOptions({"auto"})

# ------------------------------------------------------------ the "auto" rules
# Each "auto" rule is stated once: its constants and function here, its prose
# in AUTO_RULES (built from the same constants). The network, the classifier,
# the docstring and the command line's help all use these; a test checks that
# the user guide quotes AUTO_RULES. How the values were chosen (measurements)
# is in docs/performance.rst, "How the defaults were chosen".

#: Images of at least this many channels are colour images; fewer, grayscale.
COLOUR_CHANNELS = 3
#: ``"auto"`` augmentation is on for images at least this many pixels on their
#: shorter side: a fraction of a smaller image is a sub-pixel shift that only blurs it.
AUGMENT_FROM = 16
#: The rate of each ``"auto"`` augmentation where it is on.
AUGMENT_AUTO = {"random_shift": 0.1, "random_rotation": 0.03, "random_zoom": 0.1}
#: What ``epochs="auto"`` stands for: grayscale images, colour thumbnails (at
#: most ``THUMBNAIL_SIDE`` pixels on the longer side), larger colour images, any
#: images under a backbone. Thumbnails keep gaining from more passes for longer
#: than larger photos, whose passes also cost more.
AUTO_EPOCHS = {"grayscale": 10, "thumbnail": 22, "colour": 16, "backbone": 12}
THUMBNAIL_SIDE = 32
#: Larger colour images: on a small data set, more epochs, so that training
#: sees about this many images, up to ``MOST_AUTO_EPOCHS``; a few hundred
#: photos learn little in 16 short epochs, and their epochs are cheap.
SMALL_SET_IMAGES, MOST_AUTO_EPOCHS = 10_000, 40
#: ``batch_size="auto"``: this size, lowered so that an epoch has at least
#: ``AUTO_MIN_STEPS`` steps, never below ``AUTO_MIN_BATCH``.
AUTO_BATCH, AUTO_MIN_STEPS, AUTO_MIN_BATCH = 64, 16, 8
#: ``filters="auto"``: the first block's filters, doubled in each later block.
AUTO_FILTERS = 32
#: ``global_pooling="auto"`` flattens maps of at most this many positions and averages larger ones.
FLATTEN_UP_TO = 64
#: ``label_smoothing="auto"`` for colour images (grayscale ones: 0).
AUTO_SMOOTHING = 0.1
#: Fewest held-out images early stopping acts on. On fewer, the validation
#: loss moves from one epoch to the next more by chance than by learning, and
#: the "best" epoch would be a coin toss.
MIN_MONITORED = 100

#: The rule of each ``"auto"``, in words: what ``"auto"`` is (reStructuredText).
AUTO_RULES = {
    "filters": (f"{AUTO_FILTERS} for the first block, doubled in each later block; for colour images larger than "
                f"{THUMBNAIL_SIDE} pixels on their longer side, with two or more convolutions a block, each block "
                "widens after its pooling: its first convolution keeps the filters of the block before, and the "
                "first block has one convolution fewer (``[[32], [32, 64], [64, 128]]`` for three blocks of two)"),
    "convs_per_block": "2 for colour images (3 channels or more) and 1 for grayscale ones",
    "pool_after": "pools colour blocks after their first convolution and grayscale ones after the last",
    "padding": ('``"same"`` for colour images; for grayscale ones ``"valid"`` while the output of the '
                'convolution is still at least ``kernel_size`` wide, else ``"same"``'),
    "global_pooling": f'``"flatten"`` for maps of at most {FLATTEN_UP_TO} positions and ``"avg"`` for larger ones',
    "random_shift": (f"{AUGMENT_AUTO['random_shift']} for images of at least {AUGMENT_FROM} pixels on their "
                     "shorter side and 0 (off) for smaller ones"),
    "random_rotation": (f"{AUGMENT_AUTO['random_rotation']} (about 11 degrees) for grayscale images of at least "
                        f"{AUGMENT_FROM} pixels on their shorter side, and 0 (off) for smaller ones and for colour "
                        "images"),
    "random_zoom": (f"{AUGMENT_AUTO['random_zoom']} for grayscale images of at least {AUGMENT_FROM} pixels on "
                    "their shorter side, and 0 (off) for smaller ones and for colour images"),
    "random_flip": '``"horizontal"`` for colour images and ``None`` (no flip) for grayscale ones',
    "freeze_epochs": "a third of ``epochs_`` (at least 1)",
    "fine_tune_learning_rate": "half of ``learning_rate``",
    "label_smoothing": f"{AUTO_SMOOTHING} for colour images and 0 for grayscale ones",
    "precision": ('``"bfloat16"`` when training on a CPU with native bfloat16 instructions (Intel AMX or '
                  'AVX512-BF16) and no GPU is visible, else ``"float32"``'),
    "epochs": (f"{AUTO_EPOCHS['grayscale']} for grayscale images, {AUTO_EPOCHS['thumbnail']} for colour images of "
               f"at most {THUMBNAIL_SIDE} pixels on their longer side, {AUTO_EPOCHS['colour']} for larger colour "
               f"images (more on fewer than {SMALL_SET_IMAGES // AUTO_EPOCHS['colour']:,} training images, so "
               f"that training sees about {SMALL_SET_IMAGES:,} images, at most {MOST_AUTO_EPOCHS} epochs) and "
               f"{AUTO_EPOCHS['backbone']} with a pretrained ``backbone``"),
    "batch_size": (f"{AUTO_BATCH}, lowered on data sets of fewer than {AUTO_BATCH * AUTO_MIN_STEPS:,} images so "
                   f"that an epoch has at least {AUTO_MIN_STEPS} steps (never below {AUTO_MIN_BATCH})"),
    "test_time_flip": "``True`` when the network is trained with horizontal flips",
}
#: When early stopping acts (``validation_split`` and ``MIN_MONITORED``), in words.
EARLY_STOPPING_RULE = f"it acts only when at least {MIN_MONITORED} images are held out; on fewer it is off, with a warning"


def colour(channels):
    """Whether images of ``channels`` channels are colour images (the "auto" rules treat them apart)."""
    return int(channels) >= COLOUR_CHANNELS


def auto_augmentation(name, value, height, width, channels):
    """The rate augmentation ``name`` (``"random_shift"``, ...) stands for on ``height x width x channels`` images."""
    if value != "auto":
        return float(value)
    if name != "random_shift" and colour(channels):
        return 0.0  # photos: flips and shifts, no rotation or zoom
    return AUGMENT_AUTO[name] if min(int(height), int(width)) >= AUGMENT_FROM else 0.0


def auto_flip(random_flip, channels):
    """The flips ``random_flip`` stands for on images of ``channels`` channels (None: no flip)."""
    if random_flip == "auto":
        return "horizontal" if colour(channels) else None
    return random_flip


def auto_test_time_flip(test_time_flip, random_flip, channels):
    """Whether predictions average each image with its mirror image."""
    if test_time_flip == "auto":
        return auto_flip(random_flip, channels) in ("horizontal", "horizontal_and_vertical")
    return bool(test_time_flip)


def auto_filters(filters, conv_blocks, convs_per_block, image_shape):
    """The filters of each block: a list with, per block, an int or a list of one int per convolution.

    ``convs_per_block`` is the resolved number of convolutions a block.
    """
    if filters != "auto":
        if isinstance(filters, (list, tuple)):
            return list(filters)
        return [int(filters) * 2**b for b in range(conv_blocks)]
    widths = [AUTO_FILTERS * 2**b for b in range(conv_blocks)]
    h, w, c = (int(v) for v in image_shape)
    if not colour(c) or max(h, w) <= THUMBNAIL_SIDE or convs_per_block < 2 or not widths:
        return widths
    # Larger photos: the wider convolutions run on the pooled map, a quarter
    # of the pixels; half the computation of the plain blocks, as accurate.
    more = convs_per_block - 1
    return [[widths[0]] * more] + [[widths[b - 1]] + [widths[b]] * more for b in range(1, conv_blocks)]


def auto_convs_per_block(convs_per_block, channels):
    """The convolutions in each block ``convs_per_block`` stands for."""
    return (2 if colour(channels) else 1) if convs_per_block == "auto" else int(convs_per_block)


def auto_pool_after(pool_after, channels):
    """After how many convolutions of a block it pools; None: after the last."""
    return (1 if colour(channels) else None) if pool_after == "auto" else int(pool_after)


def auto_padding(padding, channels, size_h, size_w, kernel):
    """The padding of a convolution of ``kernel`` pixels on a ``size_h x size_w`` map."""
    if padding != "auto":
        return padding
    if colour(channels):
        return "same"
    # Trim the border while the map stays at least a kernel wide.
    return "valid" if min(size_h, size_w) - kernel + 1 >= kernel else "same"


def auto_global_pooling(global_pooling, size_h, size_w):
    """How the last ``size_h x size_w`` feature map becomes a vector."""
    if global_pooling != "auto":
        return global_pooling
    return "flatten" if size_h * size_w <= FLATTEN_UP_TO else "avg"


def auto_label_smoothing(label_smoothing, channels):
    """The label smoothing ``label_smoothing`` stands for on images of ``channels`` channels."""
    if label_smoothing == "auto":
        return AUTO_SMOOTHING if colour(channels) else 0.0
    return float(label_smoothing)


def auto_epochs(epochs, image_shape, backbone=None, n_rows=None):
    """The epochs ``epochs`` stands for on images of ``image_shape`` ``(height, width, channels)``.

    ``n_rows`` is the number of images trained on (None: not known, as in
    ``partial_fit``; no small-set raise then).
    """
    if epochs != "auto":
        return int(epochs)
    if backbone is not None:
        return AUTO_EPOCHS["backbone"]
    h, w, c = (int(v) for v in image_shape)
    if not colour(c):
        return AUTO_EPOCHS["grayscale"]
    if max(h, w) <= THUMBNAIL_SIDE:
        return AUTO_EPOCHS["thumbnail"]
    base = AUTO_EPOCHS["colour"]
    if not n_rows:
        return base
    return min(MOST_AUTO_EPOCHS, max(base, math.ceil(SMALL_SET_IMAGES / int(n_rows))))


def auto_batch_size(batch_size, n_rows):
    """The batch size ``batch_size`` stands for when training on ``n_rows`` images.

    The largest power of two at most ``n_rows / AUTO_MIN_STEPS``, between
    ``AUTO_MIN_BATCH`` and ``AUTO_BATCH``: an epoch of too few steps does not
    learn in the epochs ``"auto"`` gives.
    """
    if batch_size != "auto":
        return int(batch_size)
    steps_of = max(1, int(n_rows) // AUTO_MIN_STEPS)
    return int(min(AUTO_BATCH, max(AUTO_MIN_BATCH, 2 ** int(math.floor(math.log2(steps_of))))))


def auto_freeze_epochs(freeze_epochs, epochs, backbone):
    """The epochs trained on the frozen backbone, of ``epochs`` (0 without a backbone)."""
    if backbone is None:
        return 0
    if freeze_epochs == "auto":
        return min(epochs, max(1, epochs // 3))
    return min(int(freeze_epochs), epochs)


def auto_fine_tune_learning_rate(fine_tune_learning_rate, learning_rate):
    """The initial learning rate of the fine-tuning phase."""
    if fine_tune_learning_rate == "auto":
        return float(learning_rate) / 2
    return float(fine_tune_learning_rate)


def auto_precision(precision, native_bfloat16):
    """``"bfloat16"`` or ``"float32"``: what ``precision`` stands for where ``native_bfloat16`` tells the machine.

    ``native_bfloat16``: the CPU computes bfloat16 natively and no GPU is
    visible (elsewhere bfloat16 is emulated, or the GPU is left to float32).
    """
    if precision == "auto":
        return "bfloat16" if native_bfloat16 else "float32"
    return precision


def early_stopping_acts(early_stopping, n_held_out):
    """Whether early stopping acts with ``n_held_out`` images held out (at least ``MIN_MONITORED``)."""
    return bool(early_stopping) and n_held_out >= MIN_MONITORED


def resolve(params, *, image_shape, n_rows=None, native_bfloat16=False):
    """What every ``"auto"`` of ``params`` stands for on the given data: the one resolver.

    Parameters
    ----------
    params : dict
        Classifier parameters; those left out take their defaults.
    image_shape : tuple of int
        ``(height, width, channels)`` of the training images.
    n_rows : int or None, default=None
        Images trained on (``batch_size`` is left out when None).
    native_bfloat16 : bool, default=False
        Whether the machine computes bfloat16 natively with no GPU visible.

    Returns
    -------
    dict
        ``{name: value}`` for every data-level rule: ``filters`` (a list,
        one entry per block), ``convs_per_block``,
        ``pool_after`` (None: after the last convolution), the three
        augmentation rates, ``random_flip``, ``test_time_flip``,
        ``label_smoothing``, ``epochs``, ``freeze_epochs``,
        ``fine_tune_learning_rate``, ``precision``, ``batch_size``, and
        ``padding`` and ``global_pooling`` of the input-sized map (the
        network applies those two to each map with :func:`auto_padding`
        and :func:`auto_global_pooling`).
    """
    p = {**defaults(), **params}
    h, w, c = (int(v) for v in image_shape)
    epochs = auto_epochs(p["epochs"], (h, w, c), p["backbone"], n_rows)
    convs_per_block = auto_convs_per_block(p["convs_per_block"], c)
    out = {
        "filters": auto_filters(p["filters"], int(p["conv_blocks"]), convs_per_block, (h, w, c)),
        "convs_per_block": convs_per_block,
        "pool_after": auto_pool_after(p["pool_after"], c),
        "padding": auto_padding(p["padding"], c, h, w, int(p["kernel_size"])),
        "global_pooling": auto_global_pooling(p["global_pooling"], h, w),
        **{name: auto_augmentation(name, p[name], h, w, c) for name in AUGMENT_AUTO},
        "random_flip": auto_flip(p["random_flip"], c),
        "test_time_flip": auto_test_time_flip(p["test_time_flip"], p["random_flip"], c),
        "label_smoothing": auto_label_smoothing(p["label_smoothing"], c),
        "epochs": epochs,
        "freeze_epochs": auto_freeze_epochs(p["freeze_epochs"], epochs, p["backbone"]),
        "fine_tune_learning_rate": auto_fine_tune_learning_rate(p["fine_tune_learning_rate"], p["learning_rate"]),
        "precision": auto_precision(p["precision"], native_bfloat16),
    }
    if n_rows is not None:
        out["batch_size"] = auto_batch_size(p["batch_size"], n_rows)
    return out


def _auto(name):
    """The sentence of a parameter's docstring that states its ``"auto"`` rule."""
    return f'``"auto"`` is {AUTO_RULES[name]}' if name != "pool_after" else f'``"auto"`` {AUTO_RULES[name]}'

PARAMETERS = (
    # ------------------------------------------------------------ the network
    Parameter("backbone", None, (StrOptions(set(BACKBONES)), None), "{" + ", ".join(f'"{b}"' for b in BACKBONES)
              + "} or None", """
        A pretrained network of ``keras.applications`` (without its top) to
        fine-tune instead of training the convolution blocks from scratch;
        ``None`` is the plain CNN. With a backbone, the convolution
        parameters (``conv_blocks`` to ``global_pooling``) are not used: the
        network is the augmentation layers, the backbone, global average
        pooling, ``hidden_layers`` dense layers and the softmax. Images whose
        shorter side is below 32 pixels are resized up to 32 (aspect kept);
        grayscale ones are repeated to three channels, and values are mapped
        from [0, 1] to what each backbone expects. See the transfer-learning
        guide.""", "network"),
    Parameter("backbone_weights", "imagenet", (StrOptions({"imagenet"}), str, os.PathLike, None),
              '"imagenet", path or None', """
        The backbone's initial weights: ``"imagenet"`` (Keras downloads them
        once into its cache; without a network and cache, ``fit`` fails at
        once saying how to bring a file), ``None`` (random), or the path of
        a file saved with ``save_weights`` from the same application built
        without its top, e.g. ``keras.applications.MobileNetV3Small(
        include_top=False, weights=None)``. Not used without a backbone.""", "network"),
    Parameter("conv_blocks", 3, (_int(0),), "int", "Number of convolution blocks.", "network",
              "--conv-blocks", "convolution blocks (each: conv, batch norm, pooling)"),
    Parameter("filters", "auto", (_int(1), list, tuple, _AUTO), 'int, list of (int or list of int) or "auto"', f"""
        Filters of the first block, doubled in each later block; or one value
        per block; or, per block, a list of values, one per convolution of
        that block (``[[32, 64]]`` is one block of two convolutions;
        ``[[32], [64, 64]]`` has one convolution, then two). Multiples of 16
        run fastest on CPUs. {_auto("filters")}.""", "network",
              "--filters", "filters of the first block, doubled in each later block"),
    Parameter("convs_per_block", "auto", (_int(1), _AUTO), 'int or "auto"', f"""
        Convolution layers in each block. {_auto("convs_per_block")}. Photos
        need the second convolution; digits are as accurate with one, at a
        third of the cost.""", "network"),
    Parameter("pool_after", "auto", (_int(1), _AUTO), 'int or "auto"', f"""
        Where each block pools: after this many of its convolutions (the
        rest then run on the pooled, four times smaller map); a value at
        least ``convs_per_block`` pools after the last. {_auto("pool_after")}.
        Pooling between two convolutions makes an epoch much cheaper, and
        colour images reach the same accuracy in more, cheaper epochs.""", "network"),
    Parameter("kernel_size", 3, (_int(1),), "int",
              "Side of the square convolution kernels (reduced for tiny maps).", "network"),
    Parameter("padding", "auto", (StrOptions({"auto", "same", "valid"}),), '{"auto", "same", "valid"}', f"""
        ``"same"`` keeps the size of the feature maps through a convolution;
        ``"valid"`` trims ``kernel_size - 1`` pixels (Keras' own default).
        {_auto("padding")}: trimming costs photos accuracy, saves digits
        computation at the same accuracy, and small images are not convolved
        into nothing.""", "network"),
    Parameter("pooling", "max", (StrOptions({"max", "avg"}), None), '{"max", "avg"} or None',
              """
        2x2 pooling in each block (where ``pool_after`` says), skipped where
        the map is smaller than 4. Max pooling comes right after its
        convolution, before the normalisation and activation (which then run
        on a quarter of the values); average pooling after the
        activation.""", "network"),
    Parameter("batch_norm", True, ("boolean",), "bool",
              "Batch normalisation after each convolution and hidden dense layer.", "network"),
    Parameter("conv_dropout", 0.0, (_FRACTION,), "float", "Dropout rate after each convolution block.",
              "network"),
    Parameter("global_pooling", "auto", (StrOptions({"auto", "flatten", "avg", "max"}),),
              '{"auto", "flatten", "avg", "max"}', f"""
        How the last feature map becomes a vector. {_auto("global_pooling")},
        so that large images do not make the dense layers huge.""", "network"),
    Parameter("hidden_layers", 1, (_int(0),), "int", "Number of dense hidden layers.", "network",
              "--hidden-layers", "dense hidden layers after the convolutions"),
    Parameter("units", 128, (_int(1), list, tuple), "int or list of int",
              "Units of each hidden layer (or one value per layer).", "network",
              "--units", "units of each dense hidden layer"),
    Parameter("activation", "relu", (StrOptions(set(ACTIVATIONS)),), "str", f"""
        Activation of the convolution and hidden layers: one of
        {", ".join(f'``"{a}"``' for a in ACTIVATIONS)}.""", "network",
              "--activation", "activation of the convolution and hidden layers"),
    Parameter("dropout", 0.3, (_FRACTION,), "float", "Dropout rate after each hidden dense layer.", "network",
              "--dropout", "dropout rate after each dense hidden layer"),
    Parameter("random_shift", "auto", (Interval(numbers.Real, 0, 1, closed="both"), _AUTO), 'float or "auto"', f"""
        Training-time random translation, as a fraction of height and width.
        {_auto("random_shift")}: there a fraction of the image is a
        sub-pixel shift that only blurs it. What a shift (or rotation, or
        zoom) brings into the frame is the image's border reflected for
        colour images and black for grayscale ones (a digit's
        background).""", "network"),
    Parameter("random_rotation", "auto", (Interval(numbers.Real, 0, 1, closed="both"), _AUTO),
              'float or "auto"', f"""
        Training-time random rotation, as a fraction of a full turn.
        {_auto("random_rotation")}: rotation and zoom cost photos accuracy;
        they get flips and shifts instead.""", "network"),
    Parameter("random_zoom", "auto", (_FRACTION, _AUTO), 'float or "auto"', f"""
        Training-time random zoom, as a fraction. {_auto("random_zoom")}.""", "network"),
    Parameter("random_flip", "auto",
              (StrOptions({"auto", "horizontal", "vertical", "horizontal_and_vertical"}), None),
              '{"auto", "horizontal", "vertical", "horizontal_and_vertical"} or None', f"""
        Training-time random flips. {_auto("random_flip")}: a photo's mirror
        image shows the same thing, but digits and text must not be
        flipped.""", "network"),
    # ------------------------------------------------------------- training
    Parameter("optimizer", "adam", (StrOptions(set(OPTIMIZERS)),), "{" + ", ".join(f'"{o}"' for o in OPTIMIZERS) + "}",
              "Keras optimizer (SGD with Nesterov momentum 0.9).", "training",
              "--optimizer", "optimizer"),
    Parameter("learning_rate", 0.003, (Interval(numbers.Real, 0, None, closed="neither"),), "float",
              "Initial learning rate.", "training", "--learning-rate", "initial learning rate"),
    Parameter("lr_schedule", "cosine", (StrOptions({"cosine", "constant"}),), '{"cosine", "constant"}',
              '``"cosine"`` decays the learning rate to zero over ``epochs``.', "training"),
    Parameter("freeze_epochs", "auto", (_int(0), _AUTO), 'int or "auto"', f"""
        With a backbone: the first epochs of ``epochs`` train the new head
        only, on the frozen backbone; the rest fine-tune the top
        ``fine_tune_fraction`` of the backbone too, at
        ``fine_tune_learning_rate``, each phase with its own cosine schedule.
        {_auto("freeze_epochs")}; a number is capped
        at ``epochs_`` (then nothing is fine-tuned); the number used is
        ``freeze_epochs_``. ``partial_fit`` counts its calls instead: the
        first ``freeze_epochs_`` train the head. Not used without a
        backbone.""", "training"),
    Parameter("fine_tune_fraction", 1.0, (Interval(numbers.Real, 0, 1, closed="both"),), "float", """
        With a backbone: the fraction of the backbone's layers, counted from
        its top, trained after ``freeze_epochs``; ``0`` keeps the backbone
        frozen (features only), ``1`` (as fastai's ``fine_tune`` and Keras'
        fine-tuning guide do) trains all of it. Batch normalisation layers
        stay frozen throughout (in inference mode), as Keras' guide advises,
        unless ``backbone_weights=None`` (random weights have no statistics
        to keep). On small data sets, fine-tuning all layers did better than
        fine-tuning the top few at a lower rate.""", "training"),
    Parameter("fine_tune_learning_rate", "auto", (Interval(numbers.Real, 0, None, closed="neither"), _AUTO),
              'float or "auto"', f"""
        With a backbone: the initial learning rate of the fine-tuning phase.
        {_auto("fine_tune_learning_rate")} (fastai's rate for the top
        layers).
        Lower it for weights learnt on far more images than yours
        (Keras' guide fine-tunes ImageNet weights at 1e-5).""", "training"),
    Parameter("label_smoothing", "auto", (_FRACTION, _AUTO), 'float or "auto"', f"""
        Label smoothing of the cross-entropy loss: the target of the true
        class is ``1 - label_smoothing`` and the rest is shared by the other
        classes, which keeps the network from growing over-confident.
        {_auto("label_smoothing")}.""", "training"),
    Parameter("precision", "auto", (StrOptions({"auto", "float32", "bfloat16"}),), '{"auto", "float32", "bfloat16"}',
              f"""
        The arithmetic of training. ``"bfloat16"`` computes the layers in
        bfloat16 with float32 weights (Keras' ``"mixed_bfloat16"``; the
        output layer stays float32); ``"float32"`` computes everything in
        float32. Prediction and model files are float32 either way.
        {_auto("precision")}; the value used is ``precision_``.""", "training"),
    Parameter("warm_start", False, ("boolean",), "bool", """
        When True and the classifier is fitted, ``fit`` trains the fitted
        network further (``epochs`` more epochs, on a new learning-rate
        schedule from ``learning_rate``) instead of building a new one;
        ``history_`` grows. The images must have the training shape and the
        labels be among ``classes_``. As in scikit-learn, it is how a model
        measured on part of the data can be trained on the rest without
        starting over.""", "training"),
    Parameter("epochs", "auto", (_int(1), _AUTO), 'int or "auto"', f"""
        Maximum number of passes over the training data. {_auto("epochs")}
        (photos need more passes under flips and shifts); the number used is
        ``epochs_``.""", "training",
              "--epochs", "maximum passes over the training images"),
    Parameter("batch_size", "auto", (_int(1), _AUTO), 'int or "auto"', f"""
        Samples per gradient step. {_auto("batch_size")}; the size used
        is ``batch_size_``.""", "training",
              "--batch-size", "images per gradient step"),
    Parameter("validation_split", 0.0, (_FRACTION,), "float", """
        Fraction of the training data held out, stratified and drawn with
        ``random_state``, to monitor validation loss and accuracy (and for
        early stopping). ``0`` trains on everything: with the cosine schedule
        the last epoch is usually the best, and the images held out are
        worth more as training images than as a stopping signal.""", "training"),
    Parameter("early_stopping", True, ("boolean",), "bool", f"""
        Stop when the validation loss has not improved for ``patience`` epochs
        and restore the best weights. It needs ``validation_split > 0``, and
        {EARLY_STOPPING_RULE}, because the "best" epoch would be chance.""", "training"),
    Parameter("patience", 4, (_int(0),), "int", "Epochs without improvement before early stopping.", "training",
              "--patience", "epochs without a lower monitored validation loss before stopping"),
    Parameter("class_weight", None, (dict, StrOptions({"balanced"}), None), 'dict, "balanced" or None',
              "Weights of the classes in the loss, as in scikit-learn.", "training"),
    Parameter("test_time_flip", "auto", ("boolean", StrOptions({"auto"})), 'bool or "auto"', f"""
        Predict each image as the average of its probabilities and those of
        its mirror image (twice the work at prediction).
        {_auto("test_time_flip")}.""", "prediction"),
    # ------------------------------------------------------------ estimator
    Parameter("random_state", None, ("random_state",), "int, RandomState instance or None", """
        Seeds weight initialisation, shuffling, dropout, augmentation and the
        validation split. The same value and data give identical predictions;
        the seed does not leak into later fits.""", "estimator"),
    Parameter("verbose", 1, ("verbose",), "int", """
        ``0`` silent; ``1`` progress bars where a person watches (a terminal
        or a Jupyter notebook; nothing in logs, pipes or CI): one over the
        epochs with the latest metrics, and one over the images when a
        prediction takes more than a second; ``2`` one line per epoch from
        Keras, wherever the output goes (logs included).""", "estimator"),
)

#: Names of the parameters that shape the network (``build_cnn``'s keyword arguments).
NETWORK = tuple(p.name for p in PARAMETERS if p.part == "network")


def defaults(part=None):
    """``{name: default}`` of every parameter, or of one ``part``.

    Parameters
    ----------
    part : {"network", "training", "prediction", "estimator"} or None, default=None
        Which parameters.

    Returns
    -------
    dict
        The defaults, in declaration order.
    """
    return {p.name: p.default for p in PARAMETERS if part is None or p.part == part}


def constraints():
    """``{name: [constraint, ...]}``: scikit-learn's ``_parameter_constraints``.

    Returns
    -------
    dict
        One list of constraints per parameter.
    """
    return {p.name: list(p.constraints) for p in PARAMETERS}


def numpydoc(indent=4):
    """The "Parameters" section entries of the classifier's docstring, one per parameter.

    Parameters
    ----------
    indent : int, default=4
        Indentation of the entries in the docstring.

    Returns
    -------
    str
        ``name : kind, default=value`` lines with their indented descriptions.
    """
    pad = " " * indent
    out = []
    for p in PARAMETERS:
        text = textwrap.fill(" ".join(textwrap.dedent(p.doc).split()), width=79 - indent - 4)
        default = f'"{p.default}"' if isinstance(p.default, str) else repr(p.default)
        out.append(f"{pad}{p.name} : {p.kind}, default={default}")
        out.append(textwrap.indent(text, pad + "    "))
    return "\n".join(out)
