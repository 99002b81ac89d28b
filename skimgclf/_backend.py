"""Importing the deep-learning backend (TensorFlow, through Keras) without its start-up noise.

Used by the command line and by Dask workers, which print to a terminal:
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

__all__ = ["import_backend"]

_NOISE = re.compile(r"All log messages before absl::InitializeLog|oneDNN custom operations are on|"
                    r"Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered|"
                    r"TF-TRT Warning|could not find cuda drivers|failed call to cuInit|"
                    r"This TensorFlow binary is optimized to use|To enable the following instructions:",
                    re.IGNORECASE)


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
