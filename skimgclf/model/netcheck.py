"""Checking a saved network against what skimgclf builds, before Keras builds anything from it.

Keras' safe mode refuses Python lambdas, but it still resolves any
importable library function named in a config (an activation set to
``keras.datasets.mnist.load_data`` is called at predict time) and allocates
whatever sizes a config asks for (a ``Dense`` layer of ten million units in a
10 KB file). A network in a model file is therefore read first as JSON and
accepted only if:

- every object it names is one :func:`~skimgclf.model.network.build_cnn`
  creates (its layer types, initializers, optimizers, schedule, loss), from
  the module Keras saves it under; no ``function`` objects at all;
- every activation is one of the classifier's activations, ``softmax`` or
  ``linear``;
- it is one functional model of those layers only (no nested model), each
  named once, built for the shape that reaches it, with none of the
  settings that change what Keras builds (data format, dilation, groups,
  LoRA, quantization, ...);
- its input is an image of 1, 3 or 4 channels no larger than
  :data:`MAX_INPUT_SIDE` on a side, of the shape the file's classifier says
  it was trained on, and its feature maps hold at most
  :data:`MAX_ACTIVATIONS` values per image;
- the number of weights its layers imply fits in the weights file it comes
  with (four bytes each; the file's stored bytes count, not only what its
  header declares), and under :data:`MAX_PARAMETERS`.

Importing this module imports nothing heavier than the standard library.
"""

from __future__ import annotations

import io
import json
import math
import zipfile

from ..errors import ModelFileError
from .params import ACTIVATIONS

__all__ = ["BACKBONE_LAYERS", "LAYERS", "MAX_ACTIVATIONS", "MAX_INPUT_SIDE", "MAX_PARAMETERS", "check_network"]

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
    "keras.src.models.functional": frozenset({"Functional"}),  # the outer model only (_count_weights)
    "skimgclf.model.training": frozenset({"SmoothedSparseCrossentropy"}),
}
#: The registered name each may carry besides its own (or none, or ``">" + name``).
_REGISTERED = {"SmoothedSparseCrossentropy": "skimgclf>SmoothedSparseCrossentropy"}
_ACTIVATIONS = frozenset(ACTIVATIONS) | {"softmax", "linear", "hard_silu"}  # hard_silu: MobileNetV3
_LOSSES = frozenset({"sparse_categorical_crossentropy"})
_METRICS = frozenset({"accuracy", "loss"})
_MEMBERS = frozenset({"config.json", "metadata.json", "model.weights.h5"})
#: Largest side of a network input a model file may declare: the loader's own limit.
MAX_INPUT_SIDE = 16384
#: Most weights a network in a model file may have (about 2 GB of float32).
MAX_PARAMETERS = 500_000_000
_MAX_CONFIG_BYTES = 16 * 1024**2


class _Refused(Exception):
    """A reason to refuse the network (becomes a ModelFileError naming the file)."""


def check_network(data, path, image_shape):
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

    Returns
    -------
    int
        The number of weights the network has.

    Raises
    ------
    ModelFileError
        ``"<path>: the network cannot be loaded safely (...)"``, saying why.
    """
    try:
        return _check(data, tuple(int(v) for v in image_shape))
    except _Refused as exc:
        raise ModelFileError(f"{path}: the network cannot be loaded safely ({exc}); refused") from None
    except (zipfile.BadZipFile, KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError,
            UnicodeDecodeError, OverflowError) as exc:
        raise ModelFileError(
            f"{path}: the network cannot be loaded safely (malformed network config: "
            f"{type(exc).__name__}: {exc}); refused") from None


def _check(data, image_shape):
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
    n_weights = _count_weights(config, image_shape)
    if n_weights > MAX_PARAMETERS:
        raise _Refused(f"its layers imply {n_weights:,} weights, more than {MAX_PARAMETERS:,}")
    if 4 * n_weights > weights_bytes:
        raise _Refused(f"its layers imply {n_weights:,} weights ({4 * n_weights:,} bytes), but its weights "
                       f"file holds {weights_bytes:,} bytes")
    return n_weights


def _check_objects(node, key=None):
    """Every serialized object in ``node`` is one skimgclf builds; every activation is allowed."""
    if isinstance(node, list):
        for item in node:
            _check_objects(item, key)
        return
    if not isinstance(node, dict):
        if key == "activation" and node not in _ACTIVATIONS:
            raise _Refused(f"activation {node!r} is not one skimgclf builds")
        if key == "loss" and isinstance(node, str) and node not in _LOSSES:
            raise _Refused(f"loss {node!r} is not one skimgclf trains with")
        return
    if "class_name" in node:
        name, module = node.get("class_name"), node.get("module")
        if name == "__keras_tensor__" and module is None:
            pass
        elif name == "function" or module not in _OBJECTS or name not in _OBJECTS[module]:
            raise _Refused(f"it names {module}.{name}, which is not something skimgclf builds")
        elif node.get("registered_name") not in (None, name, f">{name}", _REGISTERED.get(name)):
            raise _Refused(f"{name} is registered as {node.get('registered_name')!r}")
        elif name == "DTypePolicy" and (node.get("config") or {}).get("name") != "float32":
            # The weights are counted at four bytes each; float64 would double what Keras allocates.
            raise _Refused(f"a dtype policy of {(node.get('config') or {}).get('name')!r}, not float32")
    for k, v in node.items():
        if k == "metrics" and isinstance(v, list):
            bad = [m for m in v if isinstance(m, str) and m not in _METRICS]
            if bad:
                raise _Refused(f"metric {bad[0]!r} is not one skimgclf computes")
        _check_objects(v, k)
        if k == "activation" and isinstance(v, dict):
            raise _Refused("an activation given as an object, not by name")


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
}
#: Most values (floats) all the feature maps of one image may hold at prediction (1 GiB).
MAX_ACTIVATIONS = 256 * 1024**2


def _count_weights(config, image_shape):
    """Weights the layers of a functional config imply, their shapes propagated from the input.

    Every layer must be one :data:`LAYERS` names (a nested model is not),
    named once and alike at both places Keras reads its name, with a
    ``build_config`` of the shape propagated to it (Keras builds each layer
    from that before connecting it), and none of the settings that would
    make Keras build other shapes or more weights (:data:`_FIXED`).
    """
    if config.get("class_name") != "Functional":
        raise _Refused(f"a {config.get('class_name')!r} model, not a functional one")
    layers = config["config"]["layers"]
    shapes, total, activations = {}, 0, 0
    for layer in layers:
        kind, cfg, name = layer["class_name"], layer["config"], layer["name"]
        module = layer.get("module")
        operation = module == "keras.src.ops.numpy" and kind in _OPERATIONS
        if not operation and (kind not in LAYERS | BACKBONE_LAYERS or module != "keras.layers"):
            raise _Refused(f"layer {name!r} is a {module}.{kind}, not a layer skimgclf builds")
        if cfg.get("name") != name or name in shapes:
            raise _Refused(f"layer {name!r} is named twice or two ways ({cfg.get('name')!r})")
        for key, allowed in _FIXED.items():
            if cfg.get(key) not in allowed:
                raise _Refused(f"layer {name!r} sets {key}={cfg.get(key)!r}")
        if kind in ("Conv2D", "DepthwiseConv2D", "MaxPooling2D", "AveragePooling2D") and \
                cfg.get("padding") not in ("same", "valid"):
            raise _Refused(f"layer {name!r} has padding {cfg.get('padding')!r}")
        if kind == "InputLayer":
            shape = tuple(cfg["batch_shape"][1:])
            if len(shape) != 3 or not all(isinstance(v, int) and 1 <= v for v in shape) or shape[2] not in (1, 3, 4):
                raise _Refused(f"an input of shape {shape}, not (height, width, 1, 3 or 4 channels)")
            if max(shape[:2]) > MAX_INPUT_SIDE:
                raise _Refused(f"an input of {shape[0]}x{shape[1]} pixels (at most {MAX_INPUT_SIDE} a side)")
            if shape != image_shape:
                raise _Refused(f"an input of shape {shape}, but the classifier says {image_shape}")
            shapes[name] = shape
            activations += math.prod(shape)
            continue
        if operation:
            # x + 3.0, x * (1 / 6): tensors and plain numbers only (a constant array
            # would broadcast the output to any size).
            for node in layer.get("inbound_nodes", []):
                plain = [a for a in node.get("args", []) if not (isinstance(a, dict)
                                                                 and a.get("class_name") == "__keras_tensor__")]
                if node.get("kwargs") or not all(isinstance(a, (int, float)) and not isinstance(a, bool)
                                                 for a in plain):
                    raise _Refused(f"operation {name!r} takes {repr(plain or node.get('kwargs'))[:40]}..., "
                                   "not a number")
        sources = [shapes[source] for source in _inputs(layer)]  # KeyError: an unknown or later layer
        merging = operation or kind in ("Add", "Multiply")
        if not (len(sources) == 1 or (merging and 1 <= len(sources) <= 2)):
            raise _Refused(f"layer {name!r} takes {len(sources)} inputs")
        shape = sources[0] if len(sources) == 1 else _broadcast(name, sources)
        built = layer.get("build_config")
        expected = [None, *sources[0]] if len(sources) == 1 else [[None, *source] for source in sources]
        if built is not None and (set(built) != {"input_shape"} or _as_lists(built["input_shape"]) != expected):
            raise _Refused(f"layer {name!r} is built for {built}, but its input has shape {shape}")
        if kind == "DepthwiseConv2D" and not operation:
            (kh, kw), (sh, sw) = _pair(cfg["kernel_size"]), _pair(cfg.get("strides", 1))
            if kh < 1 or kw < 1 or sh < 1 or sw < 1 or len(shape) != 3:
                raise _Refused(f"layer {name!r} has kernel {kh}x{kw}, strides {sh}x{sw}")
            total += kh * kw * shape[2] + (shape[2] if cfg.get("use_bias", True) else 0)
            shape = (_conv_size(shape[0], kh, sh, cfg["padding"]), _conv_size(shape[1], kw, sw, cfg["padding"]),
                     shape[2])
        elif kind == "ZeroPadding2D":
            (top, bottom), (left, right) = (_pair(v) for v in cfg["padding"])
            if min(top, bottom, left, right) < 0 or len(shape) != 3:
                raise _Refused(f"layer {name!r} pads by {cfg['padding']}")
            shape = (shape[0] + top + bottom, shape[1] + left + right, shape[2])
        elif kind == "Resizing":
            height, width = int(cfg["height"]), int(cfg["width"])
            if not (1 <= height <= MAX_INPUT_SIDE and 1 <= width <= MAX_INPUT_SIDE) or len(shape) != 3:
                raise _Refused(f"layer {name!r} resizes to {height}x{width}")
            shape = (height, width, shape[2])
        elif kind == "Reshape":
            target = tuple(int(v) for v in cfg["target_shape"])
            if not target or any(v < 1 for v in target) or math.prod(target) != math.prod(shape):
                raise _Refused(f"layer {name!r} reshapes {shape} to {target}")
            shape = target
        elif kind == "Normalization" and not operation:
            total += 2 * shape[-1] + 1  # mean, variance, count
        elif kind in ("Rescaling",):
            for key in ("scale", "offset"):
                value = cfg.get(key)
                if not isinstance(value, (int, float)) and not (
                        isinstance(value, list) and len(value) == shape[-1]
                        and all(isinstance(v, (int, float)) for v in value)):
                    raise _Refused(f"layer {name!r} has {key} {value!r}")
        elif kind == "Conv2D":
            (kh, kw), (sh, sw) = _pair(cfg["kernel_size"]), _pair(cfg.get("strides", 1))
            filters = int(cfg["filters"])
            if filters < 1 or kh < 1 or kw < 1 or sh < 1 or sw < 1 or len(shape) != 3:
                raise _Refused(f"layer {name!r} has filters={filters}, kernel {kh}x{kw}, strides {sh}x{sw}")
            total += kh * kw * shape[2] * filters + (filters if cfg.get("use_bias", True) else 0)
            shape = (_conv_size(shape[0], kh, sh, cfg["padding"]), _conv_size(shape[1], kw, sw, cfg["padding"]),
                     filters)
        elif kind == "Dense":
            units = int(cfg["units"])
            if units < 1 or len(shape) != 1:
                raise _Refused(f"layer {name!r} has {units} units on an input of shape {shape}")
            total += shape[0] * units + (units if cfg.get("use_bias", True) else 0)
            shape = (units,)
        elif kind == "BatchNormalization":
            total += shape[-1] * (2 + bool(cfg.get("center", True)) + bool(cfg.get("scale", True)))
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            (ph, pw) = _pair(cfg["pool_size"])
            (sh, sw) = _pair(cfg.get("strides") or cfg["pool_size"])
            if ph < 1 or pw < 1 or sh < 1 or sw < 1 or len(shape) != 3:
                raise _Refused(f"layer {name!r} pools {ph}x{pw} with strides {sh}x{sw}")
            shape = (_conv_size(shape[0], ph, sh, cfg["padding"]), _conv_size(shape[1], pw, sw, cfg["padding"]),
                     shape[2])
        elif kind == "Flatten":
            shape = (math.prod(shape),)
        elif kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            if len(shape) != 3:
                raise _Refused(f"layer {name!r} pools an input of shape {shape}")
            shape = (1, 1, shape[-1]) if cfg.get("keepdims") else (shape[-1],)
        if any(v < 1 for v in shape):
            raise _Refused(f"layer {name!r} outputs an empty shape {shape}")
        activations += math.prod(shape)
        if activations > MAX_ACTIVATIONS:
            raise _Refused(f"its feature maps hold more than {MAX_ACTIVATIONS:,} values per image")
        shapes[name] = shape
    return total
