"""Where a training epoch's time goes: TensorFlow's profiler on one epoch of the default network on photos.

Three ways of training the same network (the default CNNClassifier's, at the
size the loader decides for the photos) are profiled, one epoch each after
a warm-up epoch:

- ``keras``: plain Keras, float32 (what CNNClassifier did before it trained
  through :func:`skimgclf.model.training.training_kernels`);
- ``fused``: batch normalisation through TensorFlow's fused kernel, float32;
- ``fused_bf16``: the same in bfloat16 arithmetic (``precision="bfloat16"``,
  what ``"auto"`` picks on CPUs with AMX or AVX512-BF16);
- ``xla``: plain Keras compiled with XLA (``jit_compile=True``), augmentation
  layers left out (they cannot be compiled).

For each: the epoch's wall time, images per second, and the share of the
busy thread time of each operation type (the profiler's ``framework_op_stats``).

Usage (needs ``pip install xprof`` for reading the profile)::

    .venv/bin/python benchmarks/profile_epoch.py                   # ../shared/data/clothing, 1,024 photos
    .venv/bin/python benchmarks/profile_epoch.py --data DIR --n 2048 --ways keras,fused_bf16
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DATA = Path(os.environ.get("SKIMGCLF_CLOTHING", HERE.parent.parent / "shared" / "data" / "clothing"))
WAYS = ("keras", "fused", "fused_bf16", "xla")


def op_shares(logdir, top):
    """``{operation type: share of busy thread time}`` of the profile in ``logdir``, the ``top`` largest."""
    from xprof.convert import raw_to_tool_data

    paths = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
    data, _ = raw_to_tool_data.xspace_to_tool_data(paths, "framework_op_stats", {})
    table = json.loads(data)
    table = table[0] if isinstance(table, list) else table
    names = [c["label"] or c["id"] for c in table["cols"]]
    ops = pd.DataFrame([[c.get("v") for c in row["c"]] for row in table["rows"]], columns=names)
    ops = ops[ops["Operation Type"] != "IDLE"]
    busy = ops.groupby("Operation Type")["Total self-time (us)"].sum().sort_values(ascending=False)
    return (busy / busy.sum()).head(top)


def network(X, n_classes, way):
    """The default network for ``X``, compiled as CNNClassifier compiles it."""
    import keras

    from skimgclf.model.network import build_cnn

    augment = {} if way != "xla" else {"random_shift": 0.0, "random_flip": None}
    model = build_cnn(X.shape[1:], n_classes, seed=0, **augment)
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=way == "xla")
    return model


def profile(X, y, way, batch_size, top):
    """(epoch seconds, op shares) of one profiled epoch of ``way`` after a warm-up epoch."""
    import contextlib

    import tensorflow as tf

    from skimgclf.model.training import training_kernels

    model = network(X, int(y.max()) + 1, way)
    policy = "mixed_bfloat16" if way == "fused_bf16" else "float32"
    kernels = training_kernels(model, policy) if way.startswith("fused") else contextlib.nullcontext()
    logdir = tempfile.mkdtemp(prefix="skimgclf-profile-")
    try:
        with kernels:
            model.fit(X, y, batch_size=batch_size, epochs=1, verbose=0)
            start = time.perf_counter()
            tf.profiler.experimental.start(logdir)
            model.fit(X, y, batch_size=batch_size, epochs=1, verbose=0)
            tf.profiler.experimental.stop()
            seconds = time.perf_counter() - start
        return seconds, op_shares(logdir, top)
    finally:
        shutil.rmtree(logdir, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="a folder in the seed layout (train.csv, train/)")
    parser.add_argument("--n", type=int, default=1024, help="photos in the epoch")
    parser.add_argument("--ways", default=",".join(WAYS), help=f"comma-separated, of {', '.join(WAYS)}")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--top", type=int, default=12, help="operation types listed per way")
    args = parser.parse_args(argv)
    from skimgclf import ImageFolderLoader
    from skimgclf.model.netcheck import cost

    table = pd.read_csv(args.data / "train.csv", dtype=str).sample(frac=1, random_state=0).iloc[:args.n]
    X = ImageFolderLoader(args.data / "train", verbose=0).fit_transform(table)
    y = pd.factorize(table["label"])[0].astype(np.int64)
    flops = cost(network(X, int(y.max()) + 1, "keras"))[0]
    print(f"{len(X)} photos at {X.shape[1]}x{X.shape[2]}x{X.shape[3]}, {flops / 1e6:.0f} MFLOP an image forward")
    for way in args.ways.split(","):
        seconds, shares = profile(X, y, way, args.batch_size, args.top)
        rate = 3 * flops * len(X) / seconds
        print(f"\n{way}: {seconds:.2f} s an epoch, {len(X) / seconds:.0f} images/s, {rate / 1e9:.0f} GFLOP/s")
        for op, share in shares.items():
            print(f"  {share:6.1%}  {op}")


if __name__ == "__main__":
    main()
