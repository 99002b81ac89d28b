"""Which devices TensorFlow trains on, and GPU memory that grows as models need it.

By default TensorFlow reserves nearly all of a GPU's memory for the first
model of a process. skimgclf switches on *memory growth* for every visible
GPU when the classifier is first imported, so a process takes only what its
models use and models fitted one after the other (a grid search) share the
device. A user's own choice wins: ``TF_FORCE_GPU_ALLOW_GROWTH`` set in the
environment, or GPUs already initialised, are left as they are.

Importing this module imports nothing heavy; its functions import
TensorFlow.
"""

from __future__ import annotations

import os
import platform
import sys

__all__ = ["configure_gpus", "cpu_bfloat16", "describe", "gpus"]

#: CPU flags (Linux ``/proc/cpuinfo``) of native bfloat16 arithmetic: Intel AMX, AVX512-BF16.
BFLOAT16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})

#: Whether :func:`configure_gpus` switched memory growth on (None: not run, or left to the user).
_GROWTH = {}


def gpus():
    """The GPUs TensorFlow sees.

    Returns
    -------
    list of tensorflow.config.PhysicalDevice
        Empty on a machine without a usable GPU, or where TensorFlow was
        installed without CUDA support.
    """
    import tensorflow as tf

    return list(tf.config.list_physical_devices("GPU"))


def cpu_bfloat16(cpuinfo="/proc/cpuinfo"):
    """Whether this machine's CPU computes in bfloat16 natively (Intel AMX or AVX512-BF16).

    oneDNN, which TensorFlow uses on x86 CPUs, runs bfloat16 convolutions
    and matrix products on these instructions; without them it emulates
    bfloat16, which is slower than float32.

    Parameters
    ----------
    cpuinfo : str, default="/proc/cpuinfo"
        Where the kernel lists the CPU's flags (Linux); elsewhere the answer
        is False.

    Returns
    -------
    bool
    """
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return bool(BFLOAT16_FLAGS & set(line.partition(":")[2].split()))
    except OSError:
        pass
    return False


def configure_gpus():
    """Switch on memory growth for every visible GPU (once per process; a user's setting wins).

    Returns
    -------
    dict of str to bool or None
        Per GPU name: True where growth was switched on, None where it was
        left alone (``TF_FORCE_GPU_ALLOW_GROWTH`` set, or the GPU already in
        use, when TensorFlow no longer accepts the setting).
    """
    import tensorflow as tf

    forced = os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH")
    for device in gpus():
        if device.name in _GROWTH:
            continue
        if forced is not None:
            _GROWTH[device.name] = None
            continue
        try:
            tf.config.experimental.set_memory_growth(device, True)
            _GROWTH[device.name] = True
        except (RuntimeError, ValueError):  # initialised already: TensorFlow refuses changes
            _GROWTH[device.name] = None
    return dict(_GROWTH)


def describe():
    """What this installation trains with: versions, devices, threads.

    Returns
    -------
    dict
        ``versions`` (skimgclf, Python, TensorFlow, Keras, scikit-learn,
        scikeras, NumPy), ``tensorflow_build`` (``cuda``: whether this
        TensorFlow can use NVIDIA GPUs at all), ``devices`` (one dict per
        device: ``name``, ``type``, and for GPUs ``description`` and
        ``memory_growth``), ``cpu_threads`` (TensorFlow's intra-op and
        inter-op pools; 0 means "as many as the cores") and ``cores``.
    """
    from importlib.metadata import PackageNotFoundError, version

    import tensorflow as tf

    from .. import __version__

    growth = configure_gpus()
    devices = []
    for device in tf.config.list_physical_devices():
        entry = {"name": device.name, "type": device.device_type}
        if device.device_type == "GPU":
            try:
                details = tf.config.experimental.get_device_details(device)
            except (RuntimeError, ValueError):  # pragma: no cover - a device without details
                details = {}
            entry["description"] = details.get("device_name", "")
            compute = details.get("compute_capability")
            if compute:
                entry["compute_capability"] = ".".join(map(str, compute))
            entry["memory_growth"] = growth.get(device.name)
        devices.append(entry)
    def installed(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    build = tf.sysconfig.get_build_info()
    return {
        "versions": {
            "skimgclf": __version__,
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": installed("keras"),
            "scikit-learn": installed("scikit-learn"),
            "scikeras": installed("scikeras"),
            "numpy": installed("numpy"),
        },
        # The TensorFlow distributions installed: "tensorflow-cpu" beside
        # "tensorflow" means two packages wrote the same module.
        "tensorflow_distributions": [name for name in ("tensorflow", "tensorflow-cpu", "tensorflow-intel")
                                     if installed(name)],
        "platform": f"{platform.system()} {platform.machine()}",
        "executable": sys.executable,
        "tensorflow_build": {"cuda": bool(build.get("is_cuda_build")),
                             "cuda_version": build.get("cuda_version"),
                             "cudnn_version": build.get("cudnn_version")},
        "devices": devices,
        "cpu_threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                        "inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_bfloat16": cpu_bfloat16(),
    }
