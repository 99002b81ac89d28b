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

``CNNClassifier.__init__`` lists the same names and defaults explicitly, as
scikit-learn requires; a test fails if it drifts from this list.

Importing this module imports scikit-learn's validation helpers only: the
command line reads it without TensorFlow.
"""

from __future__ import annotations

import numbers
import os
import textwrap
from dataclasses import dataclass

from sklearn.utils._param_validation import Interval, StrOptions

__all__ = ["ACTIVATIONS", "BACKBONES", "NETWORK", "OPTIMIZERS", "PARAMETERS", "Parameter", "constraints", "defaults",
           "numpydoc"]

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
    Parameter("filters", 32, (_int(1), list, tuple), "int or list of (int or list of int)", """
        Filters of the first block, doubled in each later block; or one value
        per block; or, per block, a list of values, one per convolution of
        that block (``[[32, 64]]`` is the seed tutorial's block;
        ``[[32], [64, 64]]`` has one convolution, then two). Multiples of 16
        run fastest on CPUs (40 filters took 1.8 times as long per epoch as
        32 on cifar10k).""", "network",
              "--filters", "filters of the first block, doubled in each later block"),
    Parameter("convs_per_block", "auto", (_int(1), _AUTO), 'int or "auto"', """
        Convolution layers in each block. ``"auto"`` is 2 for colour images
        (3 channels or more) and 1 for grayscale ones: on validation splits
        of cifar10k's photos two convolutions per block (with ``"same"``
        padding) reached 0.74 where one reached 0.58-0.61, while one is as
        accurate on digits at a third of the cost.""", "network"),
    Parameter("pool_after", "auto", (_int(1), _AUTO), 'int or "auto"', """
        Where each block pools: after this many of its convolutions (the
        rest then run on the pooled, four times smaller map); a value at
        least ``convs_per_block`` pools after the last. ``"auto"`` pools
        colour blocks after their first convolution and grayscale ones after
        the last. On a validation split of cifar10k, blocks pooling after both
        convolutions reached 0.741 in 13 epochs; blocks pooling between them
        cost 44 % less per epoch and reached 0.746 in 22 epochs, in less
        time.""", "network"),
    Parameter("kernel_size", 3, (_int(1),), "int",
              "Side of the square convolution kernels (reduced for tiny maps).", "network"),
    Parameter("padding", "auto", (StrOptions({"auto", "same", "valid"}),), '{"auto", "same", "valid"}', """
        ``"same"`` keeps the size of the feature maps through a convolution;
        ``"valid"`` trims ``kernel_size - 1`` pixels (Keras' own default).
        ``"auto"`` is ``"same"`` for colour images (trimming cost cifar10k
        photos 4 % of validation accuracy); for grayscale ones it trims while
        the output of the convolution is still at least ``kernel_size`` wide
        and keeps the size of smaller maps: on 28x28
        digits every convolution trims (as accurate as ``"same"`` on a
        validation split of MNIST, with 40 % less computation), while 8x8
        images are not convolved into nothing.""", "network"),
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
              '{"auto", "flatten", "avg", "max"}', """
        How the last feature map becomes a vector. ``"auto"`` flattens maps of
        at most 64 positions and averages larger ones.""", "network"),
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
    Parameter("random_shift", "auto", (Interval(numbers.Real, 0, 1, closed="both"), _AUTO), 'float or "auto"', """
        Training-time random translation, as a fraction of height and width.
        ``"auto"`` is 0.1 for images of at least 16 pixels on their shorter
        side and 0 (off) for smaller ones, where a fraction of the image is a
        sub-pixel shift that only blurs it. What a shift (or rotation, or
        zoom) brings into the frame is the image's border reflected for
        colour images and black for grayscale ones (a digit's
        background).""", "network"),
    Parameter("random_rotation", "auto", (Interval(numbers.Real, 0, 1, closed="both"), _AUTO),
              'float or "auto"', """
        Training-time random rotation, as a fraction of a full turn; ``"auto"``
        is 0.03 (about 11 degrees) for grayscale images, off below 16 pixels
        and for colour images (with rotation and zoom, cifar10k's validation
        accuracy fell from 0.74 to 0.67: photos get flips and shifts).""", "network"),
    Parameter("random_zoom", "auto", (_FRACTION, _AUTO), 'float or "auto"', """
        Training-time random zoom, as a fraction; ``"auto"`` is 0.1 for
        grayscale images, off below 16 pixels and for colour images.""", "network"),
    Parameter("random_flip", "auto",
              (StrOptions({"auto", "horizontal", "vertical", "horizontal_and_vertical"}), None),
              '{"auto", "horizontal", "vertical", "horizontal_and_vertical"} or None', """
        Training-time random flips. ``"auto"`` flips colour images
        horizontally (a photo's mirror image shows the same thing) and
        grayscale ones not at all (digits and text must not be flipped).""", "network"),
    # ------------------------------------------------------------- training
    Parameter("optimizer", "adam", (StrOptions(set(OPTIMIZERS)),), "{" + ", ".join(f'"{o}"' for o in OPTIMIZERS) + "}",
              "Keras optimizer (SGD with Nesterov momentum 0.9).", "training",
              "--optimizer", "optimizer"),
    Parameter("learning_rate", 0.003, (Interval(numbers.Real, 0, None, closed="neither"),), "float",
              "Initial learning rate.", "training", "--learning-rate", "initial learning rate"),
    Parameter("lr_schedule", "cosine", (StrOptions({"cosine", "constant"}),), '{"cosine", "constant"}',
              '``"cosine"`` decays the learning rate to zero over ``epochs``.', "training"),
    Parameter("freeze_epochs", "auto", (_int(0), _AUTO), 'int or "auto"', """
        With a backbone: the first epochs of ``epochs`` train the new head
        only, on the frozen backbone; the rest fine-tune the top
        ``fine_tune_fraction`` of the backbone too, at
        ``fine_tune_learning_rate``, each phase with its own cosine schedule.
        ``"auto"`` is a third of ``epochs_`` (at least 1); a number is capped
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
        to keep). On the transfer-learning example's digits (50 images),
        fine-tuning all layers at half the rate reached 0.81 test accuracy,
        the top 30 % at a tenth of the rate 0.49.""", "training"),
    Parameter("fine_tune_learning_rate", "auto", (Interval(numbers.Real, 0, None, closed="neither"), _AUTO),
              'float or "auto"', """
        With a backbone: the initial learning rate of the fine-tuning phase;
        ``"auto"`` is half of ``learning_rate`` (fastai's rate for the top
        layers; on the example's digits, fine-tuning all layers reached 0.81
        at half the rate against 0.71 at a tenth).
        Lower it for weights learnt on far more images than yours
        (Keras' guide fine-tunes ImageNet weights at 1e-5).""", "training"),
    Parameter("label_smoothing", "auto", (_FRACTION, _AUTO), 'float or "auto"', """
        Label smoothing of the cross-entropy loss: the target of the true
        class is ``1 - label_smoothing`` and the rest is shared by the other
        classes, which keeps the network from growing over-confident.
        ``"auto"`` is 0.1 for colour images and 0 for grayscale ones.""", "training"),
    Parameter("precision", "auto", (StrOptions({"auto", "float32", "bfloat16"}),), '{"auto", "float32", "bfloat16"}',
              """
        The arithmetic of training. ``"bfloat16"`` computes the layers in
        bfloat16 with float32 weights (Keras' ``"mixed_bfloat16"``; the
        output layer stays float32); ``"float32"`` computes everything in
        float32. Prediction and model files are float32 either way.
        ``"auto"`` is ``"bfloat16"`` when training on a CPU with native
        bfloat16 instructions (Intel AMX or AVX512-BF16) and no GPU is
        visible, else ``"float32"``; the value used is ``precision_``.""", "training"),
    Parameter("warm_start", False, ("boolean",), "bool", """
        When True and the classifier is fitted, ``fit`` trains the fitted
        network further (``epochs`` more epochs, on a new learning-rate
        schedule from ``learning_rate``) instead of building a new one;
        ``history_`` grows. The images must have the training shape and the
        labels be among ``classes_``. As in scikit-learn, it is how a model
        measured on part of the data can be trained on the rest without
        starting over.""", "training"),
    Parameter("epochs", "auto", (_int(1), _AUTO), 'int or "auto"', """
        Maximum number of passes over the training data. ``"auto"`` is 10
        for grayscale images and 22 for colour ones (photos need more passes
        under flips and shifts; see "How the defaults were chosen"), and 12
        with a pretrained ``backbone``; the number used is ``epochs_``.""", "training",
              "--epochs", "maximum passes over the training images (auto: 10 for grayscale, 22 for colour, "
                          "12 with a backbone)"),
    Parameter("batch_size", "auto", (_int(1), _AUTO), 'int or "auto"', """
        Samples per gradient step. ``"auto"`` is 64, lowered on data sets of
        fewer than 1,024 images so that an epoch has at least 16 steps (never
        below 8); the size used is ``batch_size_``.""", "training",
              "--batch-size", "images per gradient step"),
    Parameter("validation_split", 0.0, (_FRACTION,), "float", """
        Fraction of the training data held out, stratified and drawn with
        ``random_state``, to monitor validation loss and accuracy (and for
        early stopping). ``0`` trains on everything: with the cosine schedule
        the last epoch is usually the best, and on mnist10k the 10 % more
        training images beat early stopping on a held-out tenth.""", "training"),
    Parameter("early_stopping", True, ("boolean",), "bool", """
        Stop when the validation loss has not improved for ``patience`` epochs
        and restore the best weights. It needs ``validation_split > 0`` and
        acts only when at least 100 images are held out; on fewer it is off,
        with a warning, because the "best" epoch would be chance.""", "training"),
    Parameter("patience", 4, (_int(0),), "int", "Epochs without improvement before early stopping.", "training",
              "--patience", "epochs without a lower monitored validation loss before stopping"),
    Parameter("class_weight", None, (dict, StrOptions({"balanced"}), None), 'dict, "balanced" or None',
              "Weights of the classes in the loss, as in scikit-learn.", "training"),
    Parameter("test_time_flip", "auto", ("boolean", StrOptions({"auto"})), 'bool or "auto"', """
        Predict each image as the average of its probabilities and those of
        its mirror image (twice the work at prediction). ``"auto"``: when the
        network is trained with horizontal flips.""", "prediction"),
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
