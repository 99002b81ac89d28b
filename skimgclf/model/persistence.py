"""A model file format that runs no code when loaded.

``joblib.load`` / ``pickle.load`` execute whatever the file says; a model file
from someone else is a program. ``save`` / ``load`` store instead:

- ``skimgclf.json``: the format version, the estimator structure (a
  ``Pipeline`` of known steps, or a single step), every constructor parameter
  as JSON, and the fitted state of each classifier (classes, image shape,
  training history);
- ``model_<i>.keras``: each network in Keras' own format, read back with
  ``keras.saving.load_model(..., safe_mode=True)``, which refuses Python
  lambdas and unknown classes;
- ``SHA256SUMS``: a digest of each member, checked before anything is used,
  so a truncated or altered file is refused with a clear error.

Only the classes of the registry (:func:`_registry`: each estimator class
with how its fitted state is written and restored) can be named by a file:
nothing is imported by a dotted name read from it. TensorFlow is imported only when the file holds
a network.

The checksums detect accidents (truncation, corruption, a damaged copy); they
are not a signature: someone who edits a file can recompute them. Safety
against a hostile file comes from what loading does, not from the checksums:
JSON only, a fixed list of estimator classes, no pickle, Keras' safe mode.

``save`` writes ``.<name>.<pid>-<random>.partial`` beside the target (the
networks are first saved into a hidden folder of the same kind, there too,
never in the system's temporary folder) and renames it into place when
complete; a save that is killed leaves at most those hidden entries, which
the next save to the same path removes once their process is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
import zlib

import numpy as np

from .._files import atomic_write, partial_dir
from ..errors import ModelFileError, one_line
from ..io.decode import DEFAULT_MAX_PIXELS
from ..io.loader import ImageFolderLoader
from .netcheck import MAX_CLASSES, limits_problem

__all__ = ["ModelFileError", "load", "save"]

FORMAT = "skimgclf-model"
FORMAT_VERSION = 1
_MANIFEST = "skimgclf.json"
_SUMS = "SHA256SUMS"
#: Members larger than this (uncompressed, as declared) are refused: zip bombs.
_MAX_MEMBER_BYTES = int(os.environ.get("SKIMGCLF_MAX_MODEL_BYTES", str(4 * 1024**3)))
_MEMBER_NAME = re.compile(r"(skimgclf\.json|model_[0-9]+\.keras)")
#: Most bytes the description (``skimgclf.json``) may declare: parameters, history and up to
#: netcheck.MAX_CLASSES class labels need far less; it is refused before it is read.
_MAX_MANIFEST_BYTES = 64 * 1024**2
#: The estimators a model file holds, as :func:`save` writes them: one, or a Pipeline of these steps.
_PIPELINES = (("ImageFolderLoader",), ("CNNClassifier",), ("ImageFolderLoader", "CNNClassifier"))
#: The classes a stored Pipeline's steps may name.
_STEPS = frozenset(kind for steps in _PIPELINES for kind in steps)
#: What class labels may be stored as besides ``"str"``: NumPy's booleans, integers and floats.
_CLASS_DTYPES = {np.dtype(t).str: np.dtype(t) for t in (
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64)}
#: Loader settings that touch the file system, safety or resources: a model
#: file never sets them (its values are replaced by these defaults on load).
_FROM_THE_USER = {"cache_dir": None, "max_pixels": DEFAULT_MAX_PIXELS, "n_jobs": None}
#: Most pixels a loader's target size may have in a model file (the loader's own
#: decompression-bomb default): checked when saving and when loading.
_MAX_FILE_PIXELS = DEFAULT_MAX_PIXELS


class _Kind:
    """How a model file stores one estimator class: its saver and its restorer.

    Parameters
    ----------
    cls : type
        The estimator class (exactly: a subclass is another kind).
    save : callable
        ``save(est, where, models) -> dict``: the JSON node of ``est``
        (``{"class", "params"}`` and, if fitted, ``"fitted"``); networks are
        appended to ``models``.
    restore : callable
        ``restore(cls, params, node, members, path) -> est``: the estimator
        built from its decoded ``params`` and its ``node``, fitted as saved.
    stored_params : set of str or None
        The parameters a file may give; None: those of ``cls.get_params``.
    """

    def __init__(self, cls, save, restore, stored_params=None):
        self.cls, self.save, self.restore, self.stored_params = cls, save, restore, stored_params


def _registry():
    """``{class name: _Kind}`` of every class a model file may name (importing the classifier, quietly)."""
    from sklearn.pipeline import Pipeline

    from .._backend import import_backend

    import_backend()  # without TensorFlow's start-up lines: skimgclf.load in a plain script is quiet
    from .classifier import CNNClassifier

    # Only 'verbose' is stored for a Pipeline: 'memory' would make the
    # pipeline unpickle cached results from a folder named by the file.
    kinds = [_Kind(ImageFolderLoader, _save_loader, _restore_loader),
             _Kind(CNNClassifier, _save_classifier, _restore_classifier),
             _Kind(Pipeline, _save_pipeline, _restore_pipeline, stored_params={"verbose"})]
    return {kind.cls.__name__: kind for kind in kinds}


# ------------------------------------------------------------ JSON of parameters
def _encode(value, where):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k, where), _encode(v, where)] for k, v in value.items()]}
    raise ModelFileError(
        f"cannot save {where}={value!r}: only None, bool, int, float, str, lists, tuples "
        "and dicts of those can be stored safely (use an int random_state, not a RandomState)"
    )


def _decode(value, where="a parameter"):
    if isinstance(value, list):
        return [_decode(v, where) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v, where) for v in value["__tuple__"])
        if set(value) == {"__dict__"}:
            return {_decode(k, where): _decode(v, where) for k, v in value["__dict__"]}
        raise ValueError(f"unexpected object in parameters: {_short(value)}")  # load() names the file
    if isinstance(value, str) and "\x00" in value:
        # A parameter may end up in a path (suffix, image_dir) or a column name: never with a NUL byte.
        raise ValueError(f"{where} holds a NUL byte ({_short(value)})")
    return value


def _short(value, limit=60):
    """``repr(value)`` for a message, cut to its start and its length when long."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _encode_array(arr):
    arr = np.asarray(arr)
    if arr.dtype.kind in "OUS":
        if not all(isinstance(v, str) for v in arr.tolist()):
            raise ModelFileError("cannot save class labels that mix strings and other types")
        return {"dtype": "str", "values": [str(v) for v in arr.tolist()]}
    return {"dtype": arr.dtype.str, "values": arr.tolist()}


def _decode_classes(obj):
    """The classes of a fitted classifier: one to :data:`MAX_CLASSES` distinct values of one dtype, in one
    dimension, each one that dtype holds exactly (raises ValueError; load() names the file)."""
    if not isinstance(obj, dict) or set(obj) != {"dtype", "values"} or not isinstance(obj["values"], list):
        raise ValueError(f"classes stored as {_short(obj)}, not {{'dtype': ..., 'values': [...]}}")
    values, name = obj["values"], obj["dtype"]
    if not 1 <= len(values) <= MAX_CLASSES:
        raise ValueError(f"{len(values):,} classes, not 1 to {MAX_CLASSES:,}")
    if name == "str":
        dtype, fits = object, (lambda v: isinstance(v, str))
    elif isinstance(name, str) and name in _CLASS_DTYPES:
        dtype = _CLASS_DTYPES[name]
        fits = (lambda v: _fits(v, dtype))
    else:
        raise ValueError(f"unexpected dtype {_short(name)} for class labels")
    bad = next((i for i, v in enumerate(values) if not fits(v)), None)
    if bad is not None:
        kind = "string" if name == "str" else f"{np.dtype(dtype).name} value"
        what = {list: "a list", dict: "an object"}.get(type(values[bad]), f"not a {kind}")
        raise ValueError(f"class {_short(values[bad])} is {what}: classes are one-dimensional {name} values")
    classes = np.asarray(values, dtype=dtype)
    if len(set(classes.tolist())) != len(classes):
        raise ValueError("the classes are not distinct")
    return classes


def _fits(value, dtype):
    """Whether the JSON value ``value`` is exactly a value of the NumPy ``dtype`` (bool, integer or float)."""
    if dtype.kind == "b":
        return isinstance(value, bool)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return isinstance(value, int) and info.min <= value <= info.max
    return abs(value) <= float(np.finfo(dtype).max)  # False for inf and nan too


# --------------------------------------------------------------------------- save
def _describe(est, where, models):
    """The JSON node of ``est``, by the saver its class has in the registry."""
    kind = _registry().get(type(est).__name__)
    if kind is None or kind.cls is not type(est):
        raise ModelFileError(
            f"cannot save {where} of type {type(est).__name__}: skimgclf.save stores ImageFolderLoader, "
            "CNNClassifier and Pipelines of them (use joblib for anything else)"
        )
    return kind.save(est, where, models)


def _params_node(est):
    name = type(est).__name__
    return {"class": name, "params": {k: _encode(v, f"{name}.{k}") for k, v in est.get_params(deep=False).items()}}


def _save_pipeline(est, where, models):
    kinds = tuple(type(step).__name__ for _, step in est.steps)
    if kinds not in _PIPELINES:
        raise ModelFileError(
            f"cannot save {where}: a Pipeline of {list(kinds)}; skimgclf.save stores a Pipeline of an "
            "ImageFolderLoader then a CNNClassifier (or of one of them), the order predict needs")
    # Pipeline(memory=...) is a cache location of this machine: not stored.
    params = {"verbose": bool(est.verbose)}
    trained = any(hasattr(step, "model_") for _, step in est.steps)
    for step_name, step in est.steps:
        if trained and type(step) is ImageFolderLoader and not hasattr(step, "color_mode_") \
                and "auto" in (step.color_mode, step.target_size):
            raise ModelFileError(
                f"cannot save {where}: its classifier is trained but its ImageFolderLoader "
                f"{step_name!r} was never fitted, so the colour mode and size it would load with "
                "(\"auto\") are unknown; fit the pipeline, or fit the loader on the training ids")
    steps = [[step_name, _describe(step, f"{where}[{step_name!r}]", models)]
             for step_name, step in est.steps]
    return {"class": type(est).__name__, "params": params, "steps": steps}


def _save_loader(est, where, models):
    node = _params_node(est)
    for size in (est.target_size, getattr(est, "target_size_", None)):
        _check_target_size(size, f"cannot save {where}", "it could not be loaded back")
    if hasattr(est, "color_mode_"):
        node["fitted"] = {"color_mode": est.color_mode_, "target_size": _encode(est.target_size_, "target_size_")}
    return node


def _save_classifier(est, where, models):
    node = _params_node(est)
    if hasattr(est, "model_"):
        _check_savable_network(est, where)
        node["fitted"] = {
            "model": f"model_{len(models)}.keras",
            "classes": _encode_array(est.classes_),
            "image_shape": list(est.image_shape_),
            "history": {k: [float(v) for v in vals] for k, vals in est.history_.items()},
            "epochs": int(est.epochs_),
        }
        models.append(est.model_)
    return node


def _check_savable_network(clf, where):
    """Refuse to save a network :func:`load` would refuse for its size, cost or number of classes."""
    try:
        problem = limits_problem(clf.model_)
    except ValueError as exc:
        problem = str(exc)
    if problem is None and len(clf.classes_) > MAX_CLASSES:
        problem = f"{len(clf.classes_):,} classes, more than {MAX_CLASSES:,}"
    if problem:
        raise ModelFileError(f"cannot save {where}: skimgclf.load would refuse its network ({problem})")


def save(estimator, path):
    """Save a fitted pipeline or estimator to a file that is safe to load.

    The file holds JSON parameters and Keras' own model format; loading it
    with :func:`load` runs no code from the file. It is written to a hidden
    temporary file beside ``path`` (``.<name>.<pid>-<random>.partial``) and
    renamed into place only when complete, so an interrupted or killed save
    never leaves a partial file at ``path``; the next save to the same path
    removes temporary files left by processes that no longer run.

    .. warning::
       ``joblib.load`` and ``pickle.load`` execute code stored in the file:
       a pickled model from someone else is a program. Share models as files
       written by this function and read them with :func:`load`.

    Parameters
    ----------
    estimator : Pipeline, CNNClassifier or ImageFolderLoader
        What to save: a :class:`~sklearn.pipeline.Pipeline` whose steps are
        skimgclf estimators, or one of them.
    path : str or path-like
        The file to write (conventionally ``*.skimgclf``).

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ModelFileError
        If the estimator holds something that cannot be stored safely, is
        a Pipeline other than an ImageFolderLoader then a CNNClassifier (or
        one of them), or holds a network :func:`load` would refuse for what
        it costs (see the security page).

    Examples
    --------
    >>> import skimgclf  # doctest: +SKIP
    >>> skimgclf.save(pipe, "model.skimgclf")  # doctest: +SKIP
    >>> pipe = skimgclf.load("model.skimgclf")  # doctest: +SKIP
    """
    path = os.fspath(path)
    models = []
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "estimator": _describe(estimator, "estimator", models)}
    from .. import __version__

    manifest["skimgclf_version"] = __version__
    members = {_MANIFEST: json.dumps(manifest, indent=1, sort_keys=True).encode()}
    with partial_dir(path) as tmp:  # beside the target, never in the system's temporary folder
        for i, model in enumerate(models):
            file = os.path.join(tmp, f"model_{i}.keras")
            model.save(file)
            with open(file, "rb") as fh:
                members[f"model_{i}.keras"] = fh.read()
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in members.items())
    with atomic_write(path) as tmp_path:
        with open(tmp_path, "wb") as fh:
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(_SUMS, sums)
                for name, data in members.items():
                    zf.writestr(name, data)
    return path


# --------------------------------------------------------------------------- load
def _sniff(path):
    """A hint about what a file that is not a zip archive probably is."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return ""
    zlib_header = len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0
    # pickle, or joblib's compressors: zlib, gzip, bz2, lzma, xz, lz4.
    if head[:1] == b"\x80" or zlib_header or head[:2] == b"\x1f\x8b" or head[:3] in (b"BZh", b"]\x00\x00") \
            or head[:6] == b"\xfd7zXZ\x00" or head[:4] == b"\x04\x22\x4d\x18":
        return ("; it looks like a pickle or joblib file, which skimgclf.load never opens because "
                "loading a pickle (joblib.load) runs code from the file: use joblib.load only on "
                "files you trust, or re-save the model with skimgclf.save")
    if head[:4] == b"\x89HDF":
        return "; it looks like an HDF5 (.h5) file, not a skimgclf model"
    return ""


def _referenced(node):
    """The ``model_<i>.keras`` members an estimator description names."""
    if isinstance(node, dict):
        found = set()
        fitted = node.get("fitted")
        if isinstance(fitted, dict) and isinstance(fitted.get("model"), str):
            if not re.fullmatch(r"model_[0-9]+\.keras", fitted["model"]):
                raise ValueError(f"a network member named {fitted['model']!r}")  # load() names the file
            found.add(fitted["model"])
        for step in node.get("steps") or []:
            if isinstance(step, list) and len(step) == 2:
                found |= _referenced(step[1])
        return found
    return set()


def _read_members(path):
    """``(manifest, members)`` of a model file, every size and checksum checked before use.

    Only what the manifest names is read: a member it does not name is
    refused before it is decompressed, and so is an archive that declares
    more than :data:`_MAX_MEMBER_BYTES` in all.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            names = [info.filename for info in infos]
            if _SUMS not in names or _MANIFEST not in names:
                raise ModelFileError(
                    f"{path}: not a skimgclf model file (a zip archive without {_MANIFEST} "
                    f"and {_SUMS}; a bare Keras .keras file is not a skimgclf model)"
                )
            if len(set(names)) != len(names):
                raise ModelFileError(f"{path}: the archive names a member twice; refused")
            total = 0
            for info in infos:
                if info.filename != _SUMS and not _MEMBER_NAME.fullmatch(info.filename):
                    raise ModelFileError(f"{path}: unexpected member {info.filename!r}; refused")
                if info.file_size > _MAX_MEMBER_BYTES:
                    raise ModelFileError(
                        f"{path}: member {info.filename} declares {info.file_size} bytes, more than "
                        f"{_MAX_MEMBER_BYTES} (SKIMGCLF_MAX_MODEL_BYTES); refused"
                    )
                total += info.file_size
            if total > _MAX_MEMBER_BYTES:
                raise ModelFileError(
                    f"{path}: its members declare {total} bytes in all, more than {_MAX_MEMBER_BYTES} "
                    "(SKIMGCLF_MAX_MODEL_BYTES); refused")
            declared = zf.getinfo(_MANIFEST).file_size
            if declared > _MAX_MANIFEST_BYTES:
                raise ModelFileError(f"{path}: its description {_MANIFEST} declares {declared:,} bytes, more than "
                                     f"{_MAX_MANIFEST_BYTES:,}; refused")
            sums = zf.read(_SUMS)
            manifest_bytes = zf.read(_MANIFEST)
            expected = _checksums(path, sums)
            if set(expected) != set(names) - {_SUMS}:
                raise ModelFileError(f"{path}: the file's members do not match its checksum list; refused")
            _verify(path, _MANIFEST, manifest_bytes, expected)
            manifest = _parse_manifest(path, manifest_bytes)
            wanted = _referenced(manifest.get("estimator"))
            extra = sorted(set(names) - {_SUMS, _MANIFEST} - wanted)
            if extra:
                raise ModelFileError(f"{path}: member {extra[0]} is not named by the model description; refused")
            members = {}
            for name in sorted(wanted & set(names)):
                members[name] = zf.read(name)
                _verify(path, name, members[name], expected)
    except ModelFileError:
        raise
    except MemoryError as exc:
        raise ModelFileError(f"{path}: too large to load in this process's memory ({one_line(exc)}); refused") from None
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(
            f"{path}: not a skimgclf model file, or truncated or corrupt ({one_line(exc)}){_sniff(path)}"
        ) from exc
    except (zlib.error, RuntimeError, NotImplementedError, ValueError, zipfile.LargeZipFile) as exc:
        raise ModelFileError(f"{path}: corrupt model file ({type(exc).__name__}: {one_line(exc)}); refused") from exc
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ModelFileError(f"{path}: cannot read model file ({one_line(exc)})") from exc
    return manifest, members


def _checksums(path, sums):
    """``{member: digest}`` from the ``SHA256SUMS`` member."""
    expected = {}
    for line in sums.decode("ascii", "replace").splitlines():
        digest, _, name = line.partition("  ")
        if name in expected:
            raise ModelFileError(f"{path}: the checksum list names {name!r} twice; refused")
        expected[name] = digest
    return expected


def _verify(path, name, data, expected):
    if hashlib.sha256(data).hexdigest() != expected[name]:
        raise ModelFileError(f"{path}: checksum mismatch in {name} (file altered or corrupt); refused")


def _parse_manifest(path, data):
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{path}: unreadable manifest ({one_line(exc)})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a skimgclf model file")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {manifest.get('format_version')} is not supported "
            f"by this skimgclf (reads version {FORMAT_VERSION})"
        )
    return manifest


@contextlib.contextmanager
def _forced_safe_mode():
    """Keras' safe mode, even if ``keras.config.enable_unsafe_deserialization()`` was called.

    That call sets a process-wide flag that overrides ``safe_mode=True``
    (Keras 3), so any library in the process could switch it off for us.
    """
    try:
        from keras.src.saving.serialization_lib import SafeModeScope
    except ImportError:  # pragma: no cover - another Keras layout: the argument still applies
        yield
        return
    with SafeModeScope(True):
        yield


def _check_target_size(size, where, what):
    """Refuse a loader target size of more than :data:`_MAX_FILE_PIXELS` pixels (saving and loading alike)."""
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) for v in size) \
            and size[0] * size[1] > _MAX_FILE_PIXELS:
        raise ModelFileError(f"{where}: the loader's target_size {tuple(size)} has more pixels than a model file "
                             f"may ask for ({_MAX_FILE_PIXELS:,}); {what}")


def _load_network(data):
    """A Keras network from the bytes of a ``.keras`` file, in safe mode, with no file written.

    Keras' public ``load_model`` takes only paths; its saving library reads
    file objects, so nothing is left in the system's temporary folder by a
    load that is killed. Where that library is laid out otherwise, the bytes
    go through a temporary file.
    """
    import keras

    try:
        from keras.src.saving import saving_lib
    except ImportError:  # pragma: no cover - another Keras layout
        saving_lib = None
    if saving_lib is not None and hasattr(saving_lib, "_load_model_from_fileobj"):
        return saving_lib.load_model(io.BytesIO(data), safe_mode=True)
    with tempfile.TemporaryDirectory(prefix="skimgclf-load-") as tmp:  # pragma: no cover
        file = os.path.join(tmp, "model.keras")
        with open(file, "wb") as fh:
            fh.write(data)
        return keras.saving.load_model(file, safe_mode=True)


def _build(node, members, path):
    """The estimator a JSON node describes, by the restorer its class has in the registry."""
    registry = _registry()
    kind = registry.get(node.get("class")) if isinstance(node, dict) else None
    if kind is None:
        name = node.get("class") if isinstance(node, dict) else node
        raise ModelFileError(
            f"{path}: unknown estimator {_short(name)}; a skimgclf model file may only name "
            f"{sorted(registry)}; refused"
        )
    params = {k: _decode(v, f"parameter {node['class']}.{k}") for k, v in node.get("params", {}).items()}
    allowed = kind.stored_params if kind.stored_params is not None else set(kind.cls._get_param_names())
    unknown = set(params) - allowed
    if unknown:
        raise ModelFileError(f"{path}: unknown parameters {sorted(unknown)} for {node['class']}; refused")
    return kind.restore(kind.cls, params, node, members, path)


def _restore_pipeline(cls, params, node, members, path):
    return cls(_pipeline_steps(node["steps"], members, path), **params)


def _construct(cls, params, path):
    """``cls(**params)``, each parameter of a type and range the estimator accepts (now, not at predict)."""
    try:
        est = cls(**params)
        est._validate_params()
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: parameters do not fit {cls.__name__} ({one_line(exc)}); refused") from None
    return est


def _restore_loader(cls, params, node, members, path):
    est = _construct(cls, {**params, **_FROM_THE_USER}, path)
    fitted = node.get("fitted")
    for size in [params.get("target_size")] + ([_decode(fitted["target_size"])] if fitted else []):
        _check_target_size(size, path, "refused")
    if fitted:
        est._set_fitted({"color_mode": fitted["color_mode"], "target_size": _decode(fitted["target_size"])})
    return est


def _restore_classifier(cls, params, node, members, path):
    est = _construct(cls, params, path)
    if node.get("fitted"):
        _set_network(est, node["fitted"], members, path)
    return est


def _pipeline_steps(steps, members, path):
    """The steps of a stored Pipeline, built: exactly what :func:`save` writes (:data:`_PIPELINES`)."""
    if not isinstance(steps, list) or not all(isinstance(step, list) and len(step) == 2 and isinstance(step[0], str)
                                              and isinstance(step[1], dict) for step in steps):
        raise ValueError(f"pipeline steps {_short(steps)}, not a list of [name, estimator] pairs")
    kinds = tuple(child.get("class") for _, child in steps)
    strangers = [kind for kind in kinds if kind not in _STEPS]
    if strangers:
        raise ModelFileError(f"{path}: unknown estimator {_short(strangers[0])} in a Pipeline; a skimgclf model file "
                             "may only name ['CNNClassifier', 'ImageFolderLoader'] as its steps; refused")
    if kinds not in _PIPELINES:
        raise ModelFileError(f"{path}: a Pipeline of {list(kinds)}; skimgclf.save writes an ImageFolderLoader then "
                             "a CNNClassifier (or one of them), the order predict needs; refused")
    names = [name for name, _ in steps]
    if len(set(names)) != len(names) or any(not name or "__" in name for name in names):
        raise ModelFileError(f"{path}: Pipeline step names {_short(names)} are not distinct names without '__'; "
                             "refused")
    return [(name, _build(child, members, path)) for name, child in steps]


def _set_network(clf, fitted, members, path):
    """Make ``clf`` fitted with the network and classes ``fitted`` describes, every one checked first."""
    from .netcheck import check_network

    data = members.get(fitted["model"])
    if data is None:
        raise ModelFileError(f"{path}: missing member {fitted['model']}")
    classes = _decode_classes(fitted["classes"])
    image_shape = fitted["image_shape"]
    if not (isinstance(image_shape, list) and len(image_shape) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) for v in image_shape)):
        raise ValueError(f"image_shape {_short(image_shape)}, not three integers")
    epochs = fitted.get("epochs")  # absent from files written before skimgclf saved it
    if epochs is not None and not (isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1):
        raise ModelFileError(f"{path}: epochs {_short(epochs)}, not a positive integer; refused")
    check_network(data, path, image_shape, len(classes))
    try:
        with _forced_safe_mode():
            network = _load_network(data)
    except MemoryError as exc:
        raise ModelFileError(f"{path}: the network is too large to load ({one_line(exc)}); refused") from None
    except Exception as exc:
        raise ModelFileError(f"{path}: the network cannot be loaded safely ({one_line(exc)})") from exc
    clf._set_fitted({"model": network, "classes": classes, "image_shape": tuple(image_shape),
                     "history": {k: list(v) for k, v in fitted["history"].items()}, "epochs": epochs})


def load(path):
    """Load a model saved by :func:`save`, running no code from the file.

    The file is read as JSON parameters (only skimgclf estimators and
    scikit-learn's ``Pipeline`` can be named) and Keras networks loaded with
    ``safe_mode=True``, which refuses Python lambdas and unknown classes.
    Nothing is unpickled. Every member is checked against the file's SHA-256
    list first, so a truncated or damaged file is refused.

    .. warning::
       ``joblib.load`` and ``pickle.load`` execute code stored in the file;
       never use them on a model file you do not trust. This function refuses
       pickle and joblib files instead of opening them.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.

    Returns
    -------
    estimator : Pipeline, CNNClassifier or ImageFolderLoader
        The estimator, fitted as it was saved.

    Raises
    ------
    ModelFileError
        If the file is not a skimgclf model (a pickle or joblib file, say), is
        truncated or altered (checksum mismatch), names anything other than
        skimgclf estimators, holds values, a structure or a network skimgclf
        would not have written (see the security page: classes, parameters,
        the weights file, the cost of one image), or holds a network Keras'
        safe mode refuses. The message is one line starting with the path.
    FileNotFoundError
        If there is no such file.
    """
    path = os.fspath(path)
    manifest, members = _read_members(path)
    try:
        return _build(manifest["estimator"], members, path)
    except ModelFileError:
        raise
    except MemoryError as exc:
        raise ModelFileError(f"{path}: too large to load in this process's memory ({one_line(exc)}); refused") from None
    except (KeyError, TypeError, AttributeError, IndexError, ValueError, RecursionError, OverflowError) as exc:
        raise ModelFileError(
            f"{path}: malformed model description ({type(exc).__name__}: {one_line(exc)}); refused"
        ) from exc
