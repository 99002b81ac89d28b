"""Checking a saved network against what skimgclf builds, before Keras builds or reads anything of it.

Keras' safe mode refuses Python lambdas, but it still resolves any
importable library function named in a config (an activation set to
``keras.datasets.mnist.load_data`` is called at predict time), allocates
whatever sizes a config asks for (a ``Dense`` layer of ten million units in a
10 KB file), reads whatever its weights file declares (a never-written
dataset of a gigabyte stores nothing), and runs whatever a network costs per
image (a ``Resizing`` to 4096x4096 in a 4 KB file). A network in a model file
is therefore read first as JSON, and its weights file as HDF5 metadata, and
accepted only if:

- every object it names is one :func:`~skimgclf.model.network.build_cnn`
  creates (its layer types, initializers, optimizers, schedule, loss), from
  the module Keras saves it under; no ``function`` objects at all; every
  number is a finite float32; every dtype, however spelled, is float32;
- every activation is one of the classifier's activations, ``softmax`` or
  ``linear``;
- it is one functional model of those layers only (no nested model), each
  named once, built for the shape that reaches it, each one's output used,
  with none of the settings that change what Keras builds (data format,
  dilation, groups, LoRA, quantization, ...);
- its input is an image of 1, 3 or 4 channels no larger than
  :data:`MAX_INPUT_SIDE` on a side, of the shape the file's classifier says
  it was trained on, and its one output is a softmax ``Dense`` layer of one
  unit per class (at most :data:`MAX_CLASSES`);
- one image costs at most :data:`MAX_FLOPS` floating-point operations and
  :data:`MAX_ACTIVATION_BYTES` of activations (:func:`cost`);
- the number of weights its layers imply is at most :data:`MAX_PARAMETERS`
  and fits in the weights file it comes with (four bytes each);
- every dataset of its weights file is one those weights (or the optimizer
  state of the trainable ones) imply, of their shape and dtype, stored as
  plain contiguous bytes that lie inside the file; nothing else is in it.

All the limits are the module constants below. Importing this module
imports nothing heavier than the standard library (``h5py`` is imported
when a weights file is checked).
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile

from ..errors import ModelFileError, one_line
from ..errors import RefusedNetwork as _Refused
from .params import ACTIVATIONS

__all__ = ["BACKBONE_LAYERS", "LAYERS", "MAX_ACTIVATION_BYTES", "MAX_CLASSES", "MAX_FLOPS", "MAX_INPUT_SIDE",
           "MAX_PARAMETERS", "check_network", "cost", "limits_problem"]

# ------------------------------------------------------------------ limits
#: Largest side of a network input a model file may declare: the loader's own limit.
MAX_INPUT_SIDE = 16384
#: Most weights a network in a model file may have (about 2 GB of float32).
MAX_PARAMETERS = 500_000_000
#: Most floating-point operations (two per multiply-add, :func:`cost`) one image may cost at
#: prediction. This and the next limit hold everything skimgclf builds at the sizes
#: docs/security.rst lists, with the margins given there (a test computes them).
MAX_FLOPS = 64 * 10**9
#: Most bytes the activations of one image may take at prediction (every layer's output, the
#: input included, four bytes a value, :func:`cost`).
MAX_ACTIVATION_BYTES = 1024**3
#: Most classes a model file may hold (ImageNet-21k has 21,841).
MAX_CLASSES = 100_000

#: Layer classes that :func:`~skimgclf.model.network.build_cnn` creates
#: (a test keeps this list and the builder in step).
LAYERS = frozenset({
    "InputLayer", "Conv2D", "BatchNormalization", "Activation", "MaxPooling2D", "AveragePooling2D",
    "Dropout", "Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Dense",
    "RandomTranslation", "RandomRotation", "RandomZoom", "RandomFlip",
})
#: Layer classes the supported backbones (``keras.applications`` without their top) add, and the
#: resizing and channel mapping in front of them (a test keeps this list and the backbones in step).
BACKBONE_LAYERS = frozenset({
    "DepthwiseConv2D", "ZeroPadding2D", "ReLU", "Add", "Multiply", "Rescaling", "Normalization", "Reshape",
    "Resizing",
})
#: Operations (not layers) the backbones apply to tensors: MobileNetV3's hard sigmoid is
#: ``relu6(x + 3) * (1 / 6)``, recorded by Keras as these two NumPy operations.
_OPERATIONS = frozenset({"Add", "Multiply"})
#: Every other object a saved skimgclf network holds, by the module Keras records.
_OBJECTS = {
    "keras.layers": LAYERS | BACKBONE_LAYERS,
    "keras.src.ops.numpy": _OPERATIONS,
    "keras.initializers": frozenset({"GlorotUniform", "HeNormal", "Zeros", "Ones", "VarianceScaling"}),
    "keras.optimizers": frozenset({"Adam", "AdamW", "Nadam", "RMSprop", "SGD"}),
    "keras.optimizers.schedules": frozenset({"CosineDecay"}),
    "keras": frozenset({"DTypePolicy"}),
    "keras.src.models.functional": frozenset({"Functional"}),  # the outer model only (_propagate)
    "skimgclf.model.training": frozenset({"SmoothedSparseCrossentropy"}),
}
#: The registered name each may carry besides its own (or none, or ``">" + name``).
_REGISTERED = {"SmoothedSparseCrossentropy": "skimgclf>SmoothedSparseCrossentropy"}
_ACTIVATIONS = frozenset(ACTIVATIONS) | {"softmax", "linear", "hard_silu"}  # hard_silu: MobileNetV3
_LOSSES = frozenset({"sparse_categorical_crossentropy"})
_METRICS = frozenset({"accuracy", "loss"})
_MEMBERS = frozenset({"config.json", "metadata.json", "model.weights.h5"})
_MAX_CONFIG_BYTES = 16 * 1024**2
#: Largest finite float32: every number of a config must be a float32 Keras can hold.
_FLOAT32_MAX = 3.4028234663852886e38
#: Floating-point operations per output value of the element-wise layers (at inference).
_ELEMENTWISE_FLOPS = {"BatchNormalization": 2, "Normalization": 2, "Rescaling": 2, "Activation": 1, "ReLU": 1,
                      "Add": 1, "Multiply": 1}
#: Bilinear resizing: four multiply-adds per output value.
_RESIZE_FLOPS = 8
#: Optimizer state a weights file may hold per trainable weight (SGD/RMSprop 1, Adam/Nadam 2, AMSGrad 3),
#: and scalars besides (iterations, a constant learning rate, Nadam's momentum product).
_MAX_SLOTS, _MAX_SCALARS = 3, 3


def check_network(data, path, image_shape, n_classes=None):
    """Refuse a saved Keras network (``.keras`` bytes) that skimgclf would not have built.

    Parameters
    ----------
    data : bytes
        The ``model_<i>.keras`` member of a model file.
    path : str
        The model file, for messages.
    image_shape : tuple of int
        ``(height, width, channels)`` the file's classifier says it was
        trained on; the network's input must be that shape.
    n_classes : int or None, default=None
        The number of classes the file's classifier holds; the network's
        output must have that many units. ``None`` checks only that there
        are at most :data:`MAX_CLASSES`.

    Returns
    -------
    int
        The number of weights the network has.

    Raises
    ------
    ModelFileError
        ``"<path>: the network cannot be loaded safely (...); refused"``,
        saying why (and naming the layer or the weights dataset concerned).
    """
    try:
        return _check(data, tuple(int(v) for v in image_shape), n_classes)
    except _Refused as exc:
        raise ModelFileError(f"{path}: the network cannot be loaded safely ({exc}); refused") from None
    except (zipfile.BadZipFile, KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError,
            UnicodeDecodeError, OverflowError, OSError, RuntimeError) as exc:
        raise ModelFileError(
            f"{path}: the network cannot be loaded safely (malformed network: "
            f"{type(exc).__name__}: {one_line(exc)}); refused") from None


def cost(config):
    """Floating-point operations and activation memory of one image through a network skimgclf builds.

    Both come from the shapes propagated through the network's layers, as
    :func:`check_network` propagates them (nothing is built or run), and are
    what :data:`MAX_FLOPS` and :data:`MAX_ACTIVATION_BYTES` bound.

    Parameters
    ----------
    config : dict, str or keras.Model
        The network's Keras config: the ``config.json`` of a ``.keras`` file
        (as a dict or JSON text), or a Keras model (its ``to_json()`` is read).

    Returns
    -------
    flops : int
        Floating-point operations to predict one image, counting two per
        multiply-add (convolutions, dense layers), two per value for batch
        normalisation and rescaling, one per value for activations and
        additions, one per value read by a pooling and eight per value a
        bilinear resizing writes. Layers that only train (augmentation,
        dropout) cost nothing.
    activation_bytes : int
        Bytes of every layer's output for one image, the input included, at
        four bytes a value: what a call of the Keras model holds when it
        returns (it keeps each layer's output until then), and so an upper
        bound on the peak of any inference of it.

    Raises
    ------
    ValueError
        If the config is not a functional network of the layers skimgclf
        builds.

    Examples
    --------
    >>> from skimgclf.model.netcheck import cost
    >>> from skimgclf.model.network import build_cnn  # doctest: +SKIP
    >>> flops, activation_bytes = cost(build_cnn((32, 32, 3), 10))  # doctest: +SKIP
    """
    try:
        network = _propagate(_as_config(config))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
        raise ValueError(f"not a network skimgclf builds ({type(exc).__name__}: {one_line(exc)})") from None
    return network.flops, 4 * network.activations


def limits_problem(config):
    """What a network (a config, or a Keras model) asks for beyond the limits of a model file, or None.

    :func:`skimgclf.save` refuses to write a network :func:`check_network`
    would refuse for its size or cost.

    Parameters
    ----------
    config : dict, str or keras.Model
        As for :func:`cost`.

    Returns
    -------
    str or None
        ``"one image costs ... floating-point operations, more than ..."``
        (or its activations, weights or classes), naming the layer; None
        when the network is within every limit.

    Raises
    ------
    ValueError
        If the config is not a functional network of the layers skimgclf builds.
    """
    try:
        return _over_limits(_propagate(_as_config(config)))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
        raise ValueError(f"not a network skimgclf builds ({type(exc).__name__}: {one_line(exc)})") from None


def _as_config(config):
    if hasattr(config, "to_json"):
        config = config.to_json()
    return json.loads(config) if isinstance(config, (str, bytes)) else config


def _over_limits(network):
    """The first limit ``network`` exceeds, as a message naming the layer that weighs most; or None."""
    if network.flops > MAX_FLOPS:
        return (f"one image costs {network.flops:,} floating-point operations, more than {MAX_FLOPS:,} "
                f"(layer {network.costliest[1]!r} alone {network.costliest[0]:,})")
    if 4 * network.activations > MAX_ACTIVATION_BYTES:
        return (f"one image's activations take {4 * network.activations:,} bytes, more than "
                f"{MAX_ACTIVATION_BYTES:,} (layer {network.largest[1]!r} alone {4 * network.largest[0]:,})")
    if network.n_weights > MAX_PARAMETERS:
        return f"its layers imply {network.n_weights:,} weights, more than {MAX_PARAMETERS:,}"
    return None


def _check(data, image_shape, n_classes=None):
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = {info.filename: info for info in zf.infolist()}
        unexpected = sorted(set(infos) - _MEMBERS)
        if unexpected or "config.json" not in infos or "model.weights.h5" not in infos:
            raise _Refused(f"a .keras archive of {sorted(infos)}, expected {sorted(_MEMBERS)}")
        if infos["config.json"].file_size > _MAX_CONFIG_BYTES:
            raise _Refused(f"its config declares {infos['config.json'].file_size} bytes")
        config = json.loads(zf.read("config.json").decode("utf-8"))
        # What the archive really holds: a declared size is only a header (a
        # deflated run of zeros can declare gigabytes), so the stored bytes bound it too.
        weights = infos["model.weights.h5"]
        weights_bytes = min(weights.file_size, 4 * weights.compress_size)
        _check_objects(config)
        network = _propagate(config, image_shape)
        _check_ends(network, config, n_classes)
        problem = _over_limits(network)
        if problem:
            raise _Refused(problem)
        if 4 * network.n_weights > weights_bytes:
            raise _Refused(f"its layers imply {network.n_weights:,} weights ({4 * network.n_weights:,} bytes), but "
                           f"its weights file holds {weights_bytes:,} bytes")
        _check_weights_file(_member_bytes(data, zf, weights), network)
    return network.n_weights


def _member_bytes(data, zf, info):
    """The bytes of the archive member ``info``: a view into ``data`` when it is stored uncompressed (as Keras
    stores it), so that hundreds of megabytes of weights are not copied to read their metadata."""
    start = info.header_offset
    header = data[start:start + 30]
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 1 or header[:4] != b"PK\x03\x04":
        if info.file_size > 4 * info.compress_size:  # weights do not compress this much; zeros do
            raise _Refused(f"its weights file declares {info.file_size:,} bytes, stored in {info.compress_size:,}")
        return zf.read(info.filename)
    # Where zipfile itself finds the data: after the local header, its name and its extra field.
    start += 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
    return memoryview(data)[start:start + info.compress_size]


class _ReadOnly(io.RawIOBase):
    """A read-only file over bytes or a memoryview, without copying them (h5py reads its metadata)."""

    def __init__(self, data):
        super().__init__()
        self.data, self.position = memoryview(data).cast("B"), 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def readinto(self, buffer):
        chunk = self.data[self.position:self.position + len(buffer)]
        memoryview(buffer).cast("B")[:len(chunk)] = chunk
        self.position += len(chunk)
        return len(chunk)

    def seek(self, offset, whence=io.SEEK_SET):
        self.position = max(0, offset + (0, self.position, len(self.data))[whence])
        return self.position

    def tell(self):
        return self.position


# ----------------------------------------------------------- objects, numbers, dtypes
def _dtype_name(value):
    """The dtype a config's ``dtype`` value stands for, however spelled (a name, a policy, a nested policy)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("class_name") == "DTypePolicy" and isinstance(value.get("config"), dict) \
            and set(value["config"]) == {"name"}:
        return _dtype_name(value["config"]["name"])
    return repr(value)[:60]


def _short(value):
    """A number for a message: its start and its length when long."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:40]}... ({len(text):,} characters)"


def _check_objects(node, key=None, layer=None):
    """Every serialized object in ``node`` is one skimgclf builds; every activation, number and dtype is allowed."""
    if isinstance(node, list):
        for item in node:
            _check_objects(item, key, layer)
        return
    if not isinstance(node, dict):
        if key == "activation" and node not in _ACTIVATIONS:
            raise _Refused(f"activation {node!r} is not one skimgclf builds")
        if key == "loss" and isinstance(node, str) and node not in _LOSSES:
            raise _Refused(f"loss {node!r} is not one skimgclf trains with")
        if isinstance(node, (int, float)) and not isinstance(node, bool) and not abs(node) <= _FLOAT32_MAX:
            where = f" in layer {layer!r}" if layer else ""
            raise _Refused(f"{key} is {_short(node)}{where}, not a finite float32")
        return
    if "class_name" in node:
        name, module = node.get("class_name"), node.get("module")
        if name == "__keras_tensor__" and module is None:
            pass
        elif name == "function" or module not in _OBJECTS or name not in _OBJECTS[module]:
            raise _Refused(f"it names {module}.{name}, which is not something skimgclf builds")
        elif node.get("registered_name") not in (None, name, f">{name}", _REGISTERED.get(name)):
            raise _Refused(f"{name} is registered as {node.get('registered_name')!r}")
        elif name == "DTypePolicy" and _dtype_name(node) != "float32":
            raise _Refused(f"a dtype policy of {_dtype_name(node)!r}, not float32")
        if module in ("keras.layers", "keras.src.ops.numpy") and isinstance(node.get("name"), str):
            layer = node["name"]
    for k, v in node.items():
        if k == "metrics" and isinstance(v, list):
            bad = [m for m in v if isinstance(m, str) and m not in _METRICS]
            if bad:
                raise _Refused(f"metric {bad[0]!r} is not one skimgclf computes")
        if "dtype" in str(k).lower() and _dtype_name(v) != "float32":
            # The weights are counted at four bytes each; float64 would double what Keras allocates.
            where = f"layer {layer!r} has " if layer else ""
            raise _Refused(f"{where}a dtype policy of {_dtype_name(v)!r}, not float32")
        _check_objects(v, k, layer)
        if k == "activation" and isinstance(v, dict):
            raise _Refused("an activation given as an object, not by name")


# ------------------------------------------------------------------ shapes
def _inputs(layer):
    """Names of the layers whose outputs ``layer`` takes (from its ``inbound_nodes``)."""
    names = []

    def walk(node):
        if isinstance(node, dict):
            history = node.get("config", {}).get("keras_history") if node.get("class_name") == "__keras_tensor__" \
                else None
            if history:
                names.append(history[0])
                return
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(layer.get("inbound_nodes", []))
    return names


def _pair(value):
    return (int(value), int(value)) if isinstance(value, (int, float)) else (int(value[0]), int(value[1]))


def _conv_size(size, kernel, stride, padding):
    if padding == "same":
        return math.ceil(size / stride)
    return (size - kernel) // stride + 1


def _as_lists(value):
    return [_as_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


def _broadcast(name, shapes):
    """The shape two inputs of an element-wise layer broadcast to (refused unless NumPy's rules allow it)."""
    a, b = shapes
    if len(a) != len(b) or any(x != y and 1 not in (x, y) for x, y in zip(a, b)):
        raise _Refused(f"layer {name!r} combines shapes {a} and {b}")
    return tuple(max(x, y) for x, y in zip(a, b))


def _snake(class_name):
    """The name Keras files a layer's weights under (``keras.src.utils.naming.to_snake_case``)."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


#: Values a layer's config must have (or leave out) for the shapes and weights counted here to be
#: the ones Keras builds: what build_cnn always writes.
_FIXED = {
    "data_format": ("channels_last", None),
    "dilation_rate": ([1, 1], (1, 1), 1, None),
    "groups": (1, None),
    "lora_rank": (None,),
    "lora_alpha": (None,),
    "quantization_config": (None,),
    "renorm": (False, None),
    "synchronized": (False, None),
    "axis": (-1, 3, [-1], [3], None),
    "keepdims": (False, True, None),
    "depth_multiplier": (1, None),
    "invert": (False, None),
    "mean": (None,),
    "variance": (None,),
    "crop_to_aspect_ratio": (False, None),
    "pad_to_aspect_ratio": (False, None),
    "interpolation": ("bilinear", None),
    "antialias": (False, None),
    "trainable": (True, False, None),
}


class _Network:
    """What a functional config implies, its shapes propagated from its input."""

    def __init__(self):
        self.shapes = {}  # layer name -> output shape (one image)
        self.kinds = {}  # layer name -> (class name, config)
        self.used = set()  # layers whose output another layer takes
        self.input = None  # the input layer's name
        #: Per layer with weights: (weights file group, layer name, [(shape, dtype, trainable), ...]).
        self.weights = []
        self.groups = []  # the weights file group of every layer
        self.n_weights = self.flops = self.activations = 0
        self.costliest = self.largest = (0, "")  # (flops, layer), (output values, layer)


def _conv(name, cfg, shape, depthwise=False):
    (kh, kw), (sh, sw) = _pair(cfg["kernel_size"]), _pair(cfg.get("strides", 1))
    filters = shape[-1] if depthwise else int(cfg["filters"])
    if filters < 1 or kh < 1 or kw < 1 or sh < 1 or sw < 1 or len(shape) != 3:
        raise _Refused(f"layer {name!r} has {filters} filters, kernel {kh}x{kw}, strides {sh}x{sw}")
    out = (_conv_size(shape[0], kh, sh, cfg["padding"]), _conv_size(shape[1], kw, sw, cfg["padding"]), filters)
    kernel = (kh, kw, shape[2], 1) if depthwise else (kh, kw, shape[2], filters)
    per_output = kh * kw * (1 if depthwise else shape[2])
    weights = [kernel] + ([(filters,)] if cfg.get("use_bias", True) else [])
    return out, [(w, "float32", True) for w in weights], 2 * per_output * math.prod(out)


def _depthwise(name, cfg, shape):
    return _conv(name, cfg, shape, depthwise=True)


def _dense(name, cfg, shape):
    units = int(cfg["units"])
    if units < 1 or len(shape) != 1:
        raise _Refused(f"layer {name!r} has {units} units on an input of shape {shape}")
    weights = [(shape[0], units)] + ([(units,)] if cfg.get("use_bias", True) else [])
    return (units,), [(w, "float32", True) for w in weights], 2 * shape[0] * units


def _batch_norm(name, cfg, shape):
    own = [((shape[-1],), "float32", True)] * (bool(cfg.get("scale", True)) + bool(cfg.get("center", True)))
    return shape, own + [((shape[-1],), "float32", False)] * 2, 0  # moving mean, moving variance


def _normalization(name, cfg, shape):
    return shape, [((shape[-1],), "float32", False)] * 2 + [((), "int64", False)], 0  # mean, variance, count


def _pooling(name, cfg, shape):
    (ph, pw) = _pair(cfg["pool_size"])
    (sh, sw) = _pair(cfg.get("strides") or cfg["pool_size"])
    if ph < 1 or pw < 1 or sh < 1 or sw < 1 or len(shape) != 3:
        raise _Refused(f"layer {name!r} pools {ph}x{pw} with strides {sh}x{sw}")
    out = (_conv_size(shape[0], ph, sh, cfg["padding"]), _conv_size(shape[1], pw, sw, cfg["padding"]), shape[2])
    return out, [], ph * pw * math.prod(out)


def _global_pooling(name, cfg, shape):
    if len(shape) != 3:
        raise _Refused(f"layer {name!r} pools an input of shape {shape}")
    return ((1, 1, shape[-1]) if cfg.get("keepdims") else (shape[-1],)), [], math.prod(shape)


def _zero_padding(name, cfg, shape):
    (top, bottom), (left, right) = (_pair(v) for v in cfg["padding"])
    if min(top, bottom, left, right) < 0 or len(shape) != 3:
        raise _Refused(f"layer {name!r} pads by {cfg['padding']}")
    return (shape[0] + top + bottom, shape[1] + left + right, shape[2]), [], 0


def _resizing(name, cfg, shape):
    height, width = int(cfg["height"]), int(cfg["width"])
    if not (1 <= height <= MAX_INPUT_SIDE and 1 <= width <= MAX_INPUT_SIDE) or len(shape) != 3:
        raise _Refused(f"layer {name!r} resizes to {height}x{width}")
    return (height, width, shape[2]), [], _RESIZE_FLOPS * height * width * shape[2]


def _reshape(name, cfg, shape):
    target = tuple(int(v) for v in cfg["target_shape"])
    if not target or any(v < 1 for v in target) or math.prod(target) != math.prod(shape):
        raise _Refused(f"layer {name!r} reshapes {shape} to {target}")
    return target, [], 0


def _rescaling(name, cfg, shape):
    for key in ("scale", "offset"):
        value = cfg.get(key)
        numbers = value if isinstance(value, list) and len(value) == shape[-1] else [value]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
            raise _Refused(f"layer {name!r} has {key} {_short(value)}")
    return shape, [], 0


def _flatten(name, cfg, shape):
    return (math.prod(shape),), [], 0


#: Per layer class: ``rule(name, config, input shape) -> (output shape, weights, flops)``;
#: a class not named keeps the shape of its input and has no weights.
_RULES = {
    "Conv2D": _conv, "DepthwiseConv2D": _depthwise, "Dense": _dense, "BatchNormalization": _batch_norm,
    "Normalization": _normalization, "MaxPooling2D": _pooling, "AveragePooling2D": _pooling,
    "GlobalAveragePooling2D": _global_pooling, "GlobalMaxPooling2D": _global_pooling,
    "ZeroPadding2D": _zero_padding, "Resizing": _resizing, "Reshape": _reshape, "Rescaling": _rescaling,
    "Flatten": _flatten,
}


def _propagate(config, image_shape=None):
    """The :class:`_Network` a functional config implies, its shapes propagated from the input.

    Every layer must be one :data:`LAYERS` names (a nested model is not),
    named once and alike at both places Keras reads its name, with a
    ``build_config`` of the shape propagated to it (Keras builds each layer
    from that before connecting it), and none of the settings that would
    make Keras build other shapes or more weights (:data:`_FIXED`). The
    limits are checked afterwards (:func:`_over_limits`).
    """
    if config.get("class_name") != "Functional":
        raise _Refused(f"a {config.get('class_name')!r} model, not a functional one")
    network, groups = _Network(), {}
    for layer in config["config"]["layers"]:
        name = layer["name"]
        if layer.get("module") == "keras.layers":
            # Keras files each layer's weights under its class name, numbered in order (conv2d, conv2d_1, ...).
            base = _snake(layer["class_name"])
            groups[base] = groups.get(base, -1) + 1
            group = f"layers/{base}" + (f"_{groups[base]}" if groups[base] else "")
            network.groups.append(group)
        else:
            group = None
        shape, weights, flops = _layer(network, layer, image_shape)
        if weights:
            network.weights.append((group, name, weights))
            network.n_weights += sum(math.prod(w[0]) for w in weights)
        if any(v < 1 for v in shape):
            raise _Refused(f"layer {name!r} outputs an empty shape {shape}")
        flops += _ELEMENTWISE_FLOPS.get(layer["class_name"], 0) * math.prod(shape)
        network.flops += flops
        network.activations += math.prod(shape)
        network.costliest = max(network.costliest, (flops, name))
        network.largest = max(network.largest, (math.prod(shape), name))
        network.shapes[name] = shape
        network.kinds[name] = (layer["class_name"], layer["config"])
    return network


def _layer(network, layer, image_shape=None):
    """``(output shape, weights, flops)`` of one layer of a functional config, its inputs known."""
    kind, cfg, name = layer["class_name"], layer["config"], layer["name"]
    module = layer.get("module")
    operation = module == "keras.src.ops.numpy" and kind in _OPERATIONS
    if not operation and (kind not in LAYERS | BACKBONE_LAYERS or module != "keras.layers"):
        raise _Refused(f"layer {name!r} is a {module}.{kind}, not a layer skimgclf builds")
    if cfg.get("name") != name or name in network.shapes:
        raise _Refused(f"layer {name!r} is named twice or two ways ({cfg.get('name')!r})")
    for key, allowed in _FIXED.items():
        if cfg.get(key) not in allowed:
            raise _Refused(f"layer {name!r} sets {key}={_short(cfg.get(key))}")
    if kind in ("Conv2D", "DepthwiseConv2D", "MaxPooling2D", "AveragePooling2D") and \
            cfg.get("padding") not in ("same", "valid"):
        raise _Refused(f"layer {name!r} has padding {cfg.get('padding')!r}")
    if kind == "InputLayer":
        shape = tuple(cfg["batch_shape"][1:])
        if len(shape) != 3 or not all(isinstance(v, int) and 1 <= v for v in shape) or shape[2] not in (1, 3, 4):
            raise _Refused(f"an input of shape {shape}, not (height, width, 1, 3 or 4 channels)")
        if max(shape[:2]) > MAX_INPUT_SIDE:
            raise _Refused(f"an input of {shape[0]}x{shape[1]} pixels (at most {MAX_INPUT_SIDE} a side)")
        if image_shape is not None and shape != image_shape:
            raise _Refused(f"an input of shape {shape}, but the classifier says {image_shape}")
        if network.input is not None:
            raise _Refused(f"two inputs, {network.input!r} and {name!r}")
        network.input = name
        return shape, [], 0
    if operation:
        # x + 3.0, x * (1 / 6): tensors and plain numbers only (a constant array
        # would broadcast the output to any size).
        for node in layer.get("inbound_nodes", []):
            plain = [a for a in node.get("args", []) if not (isinstance(a, dict)
                                                             and a.get("class_name") == "__keras_tensor__")]
            if node.get("kwargs") or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in plain):
                raise _Refused(f"operation {name!r} takes {repr(plain or node.get('kwargs'))[:40]}..., not a number")
    inputs = _inputs(layer)
    sources = [network.shapes[source] for source in inputs]  # KeyError: an unknown or later layer
    network.used.update(inputs)
    if not (len(sources) == 1 or ((operation or kind in ("Add", "Multiply")) and 1 <= len(sources) <= 2)):
        raise _Refused(f"layer {name!r} takes {len(sources)} inputs")
    shape = sources[0] if len(sources) == 1 else _broadcast(name, sources)
    built = layer.get("build_config")
    expected = [None, *sources[0]] if len(sources) == 1 else [[None, *source] for source in sources]
    if built is not None and (set(built) != {"input_shape"} or _as_lists(built["input_shape"]) != expected):
        raise _Refused(f"layer {name!r} is built for {built}, but its input has shape {shape}")
    rule = None if operation else _RULES.get(kind)
    if rule is None:
        return shape, [], 0
    out, weights, flops = rule(name, cfg, shape)
    if not cfg.get("trainable", True):
        weights = [(w, dtype, False) for w, dtype, _ in weights]
    return out, weights, flops


def _check_ends(network, config, n_classes):
    """The one input is the input layer; the one output a softmax over the classes; every other layer used."""
    inputs, outputs = config["config"]["input_layers"], config["config"]["output_layers"]
    if inputs != [network.input, 0, 0] and inputs != [[network.input, 0, 0]]:
        raise _Refused(f"its inputs are {_short(inputs)}, not its input layer {network.input!r}")
    if isinstance(outputs, list) and len(outputs) == 1:
        outputs = outputs[0]  # [[name, 0, 0]]: one output, as older Keras writes it
    if not (isinstance(outputs, list) and len(outputs) == 3 and outputs[1:] == [0, 0]
            and outputs[0] in network.kinds):
        raise _Refused(f"its outputs are {_short(outputs)}, not one layer")
    name = outputs[0]
    kind, cfg = network.kinds[name]
    if kind != "Dense" or cfg.get("activation") != "softmax":
        raise _Refused(f"its output {name!r} is a {kind} with activation {cfg.get('activation')!r}, "
                       "not a softmax Dense layer")
    width = network.shapes[name][0]
    if width > MAX_CLASSES:
        raise _Refused(f"its output {name!r} has {width:,} units, more than {MAX_CLASSES:,} classes")
    if n_classes is not None and width != n_classes:
        raise _Refused(f"its output {name!r} has {width} units, but the classifier has {n_classes} classes")
    unused = [layer for layer in network.shapes if layer != name and layer not in network.used]
    if unused:
        raise _Refused(f"the output of layer {unused[0]!r} is never used")


# ------------------------------------------------------------ the weights file
def _check_weights_file(data, network):
    """Every dataset of ``model.weights.h5`` is one the network's weights imply, stored as Keras writes it.

    Only HDF5 metadata is read (names, shapes, dtypes, layouts), never the
    data: a dataset that declares a gigabyte but stores nothing, is
    compressed, chunked, external or virtual, has another shape or dtype, or
    is not named by the network is refused before Keras reads it.
    """
    import h5py

    try:
        with h5py.File(_ReadOnly(data), "r") as h5:
            _WeightsFile(network, len(data)).check(h5.id)
    except OSError as exc:
        raise _Refused(f"its weights file is not readable HDF5 ({one_line(exc, 200)})") from None


class _WeightsFile:
    """What a weights file may hold: the groups and datasets of ``network``'s layers, and optimizer state.

    The file is walked once through HDF5's own link iteration (h5py's
    low-level API: a few microseconds a link), stopping at the first link
    that is not what Keras writes.
    """

    def __init__(self, network, size):
        self.size, self.expected, self.seen, self.state = size, {}, set(), {}
        self.groups = {"layers", "optimizer", "optimizer/vars", "vars"}
        for group in network.groups:
            self.groups |= {group, f"{group}/vars"}
        for group, layer, variables in network.weights:
            for i, (shape, dtype, _) in enumerate(variables):
                self.expected[f"{group}/vars/{i}"] = (shape, dtype, f"weights of layer {layer!r}")
        self.trainable = [shape for _, _, variables in network.weights for shape, _, train in variables if train]

    def check(self, fid):
        import h5py

        if h5py.h5o.get_info(fid).num_attrs:
            raise _Refused("its weights file has attributes")
        self.fid = fid
        problem = fid.links.visit(self.visit, info=True)
        if problem is not None:
            raise _Refused(problem)
        missing = sorted(set(self.expected) - self.seen)
        if missing:
            raise _Refused(f"dataset {missing[0]} ({self.expected[missing[0]][2]}) is missing from its weights file")
        self.check_optimizer()

    def visit(self, name, link):
        """One link (``name`` its path): a problem (which stops the walk), or None."""
        import h5py

        path = name.decode("utf-8", "backslashreplace")
        if link.type != h5py.h5l.TYPE_HARD:
            kind = {h5py.h5l.TYPE_SOFT: "SoftLink", h5py.h5l.TYPE_EXTERNAL: "ExternalLink"}.get(link.type, "link")
            return f"{path} in its weights file is a link ({kind}), not a group or dataset of its own"
        info = h5py.h5o.get_info(self.fid, name)
        parent, _, key = path.rpartition("/")
        if info.type == h5py.h5o.TYPE_GROUP and path in self.groups and path not in self.seen:
            self.seen.add(path)
            named = path.endswith("vars") and info.num_attrs == 1 and h5py.h5a.exists(self.fid, b"name", obj_name=name)
            if info.num_attrs and not named:
                return f"group /{path}/ of its weights file has attributes {_attributes(self.fid, name)}"
            return None
        if info.type == h5py.h5o.TYPE_DATASET and path in self.expected and path not in self.seen:
            self.seen.add(path)
            shape, dtype, what = self.expected[path]
            return _dataset_problem(h5py.h5d.open(self.fid, name), info.num_attrs, path, shape, dtype, what,
                                    self.size, lambda: _attributes(self.fid, name))
        if info.type == h5py.h5o.TYPE_DATASET and parent == "optimizer/vars" and \
                re.fullmatch(r"0|[1-9][0-9]{0,8}", key) and path not in self.seen and \
                len(self.state) < _MAX_SLOTS * len(self.trainable) + _MAX_SCALARS:
            self.seen.add(path)
            self.state[int(key)] = (h5py.h5d.open(self.fid, name), info.num_attrs)
            return None
        what = {h5py.h5o.TYPE_GROUP: "group", h5py.h5o.TYPE_DATASET: "dataset"}.get(info.type, "datatype")
        return f"its weights file holds {what} {path}, which the network does not imply"

    def check_optimizer(self):
        """Its iteration count, a few scalars, and as many copies of each trainable weight as the optimizer
        keeps (in order): nothing else."""
        state, trainable = self.state, self.trainable
        if sorted(state) != list(range(len(state))):
            raise _Refused(f"its optimizer state is numbered {sorted(state)[:8]}..., not 0, 1, 2, ...")
        if not state:
            return
        scalars = {i for i in range(1, len(state)) if state[i][0].shape == ()}
        copies, extra = divmod(len(state) - 1 - len(scalars), max(1, len(trainable)))
        if len(scalars) >= _MAX_SCALARS or extra or copies > _MAX_SLOTS or (copies and not trainable):
            raise _Refused(f"its optimizer state holds {len(state)} datasets, not the state of its "
                           f"{len(trainable)} trainable weights")
        shapes = iter([shape for shape in trainable for _ in range(copies)])
        for i, (dataset, n_attrs) in sorted(state.items()):
            shape, dtype = ((), "int64") if i == 0 else ((), "float32") if i in scalars else (next(shapes), "float32")
            name = f"optimizer/vars/{i}"
            problem = _dataset_problem(dataset, n_attrs, name, shape, dtype, "optimizer state", self.size,
                                       lambda: _attributes(self.fid, name.encode()))
            if problem:
                raise _Refused(problem)


def _attributes(fid, name):
    """The first few attribute names of object ``name`` (for a message)."""
    import h5py

    names = []
    h5py.h5a.iterate(h5py.h5o.open(fid, name), lambda key: names.append(key.decode("utf-8", "replace")))
    return sorted(names)[:5]


def _dataset_problem(dataset, n_attrs, path, shape, dtype, what, size, attributes):
    """What is wrong with one dataset (an h5py ``DatasetID``), or None: it must be of ``shape`` and ``dtype``,
    without attributes, plain contiguous bytes inside the file of ``size`` bytes."""
    import h5py

    if dataset.shape != tuple(shape) or dataset.dtype.str != {"float32": "<f4", "int64": "<i8"}[dtype]:
        kind = f"{dataset.dtype.name}{' big-endian' if dataset.dtype.byteorder == '>' else ''}"
        return f"dataset {path} ({what}) is {kind} of shape {dataset.shape}, not {dtype} of shape {tuple(shape)}"
    plist = dataset.get_create_plist()
    layout = plist.get_layout()
    if layout != h5py.h5d.CONTIGUOUS or plist.get_nfilters() or plist.get_external_count():
        how = {h5py.h5d.CHUNKED: "chunked", h5py.h5d.COMPACT: "compact", h5py.h5d.VIRTUAL: "virtual"}.get(layout)
        how = how or ("compressed" if plist.get_nfilters() else "in an external file")
        return f"dataset {path} ({what}) is stored {how}, not as the plain bytes Keras writes"
    nbytes = math.prod(shape) * dataset.dtype.itemsize
    offset, stored = dataset.get_offset(), dataset.get_storage_size()
    if stored != nbytes or offset is None or offset + nbytes > size:
        inside = stored if offset is not None and offset + stored <= size else 0
        return f"dataset {path} ({what}) declares {nbytes:,} bytes, but its weights file holds {inside:,} of them"
    if n_attrs:
        return f"dataset {path} ({what}) has attributes {attributes()}"
    return None
