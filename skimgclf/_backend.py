"""Setting up the deep-learning backend (TensorFlow, through Keras): once, explicitly, here.

:func:`configure` is the one place where skimgclf changes the backend's
process-wide settings (TensorFlow's C++ log level, GPU memory growth); the
classifier calls it before it first imports Keras. :func:`import_backend`
imports the classifier without TensorFlow's start-up noise, for the command
line and Dask workers, which print to a terminal:
TensorFlow's C++ start-up writes lines such as "oneDNN custom operations are
on" straight to file descriptor 2, before ``TF_CPP_MIN_LOG_LEVEL`` applies.
Importing this module imports nothing heavy.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import sys
import tempfile

__all__ = ["configure", "import_backend"]

#: Whether :func:`configure` ran in this process.
_CONFIGURED = False

_NOISE = re.compile(r"All log messages before absl::InitializeLog|oneDNN custom operations are on|"
                    r"Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered|"
                    r"TF-TRT Warning|could not find cuda drivers|failed call to cuInit|"
                    r"This TensorFlow binary is optimized to use|To enable the following instructions:",
                    re.IGNORECASE)


def configure():
    """Set the backend's process-wide settings; the first call imports Keras, later calls do nothing.

    - ``TF_CPP_MIN_LOG_LEVEL`` defaults to 2 (TensorFlow's C++ informational
      lines and warnings are not for users; a value already set wins). It is
      read once, when TensorFlow is imported: hence before Keras is.
    - Memory growth is switched on for every visible GPU
      (:func:`skimgclf.model.devices.configure_gpus`): models fitted one after
      another in a process share a GPU.

    Returns
    -------
    None
    """
    global _CONFIGURED
    if _CONFIGURED:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    if keras.backend.backend() == "tensorflow":
        from .model.devices import configure_gpus

        configure_gpus()
    _CONFIGURED = True


def import_backend():
    """Import skimgclf's classifier (so Keras and TensorFlow) without TensorFlow's start-up log lines.

    The lines are captured during the import; any other line is passed on
    to standard error. Python-side TensorFlow and Keras logging is then set
    to errors only ("... triggered tf.function retracing" is not for users).

    Returns
    -------
    None
    """
    if "skimgclf.model.classifier" not in sys.modules:
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            try:
                importlib.import_module("skimgclf.model.classifier")
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                lines = capture.read().decode("utf-8", "replace").splitlines()
                kept = [line for line in lines if line.strip() and not _NOISE.search(line)]
                if kept:
                    print("\n".join(kept), file=sys.stderr)
    for name in ("tensorflow", "absl", "keras"):
        logging.getLogger(name).setLevel(logging.ERROR)
