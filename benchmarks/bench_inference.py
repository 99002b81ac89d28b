"""Does skimgclf's own traced inference graph still pay? Measured against plain traced calls.

For the default network at 8x8x1, 28x28x1, 32x32x3 and 64x48x3, the same trained
weights and the same chunks of images, best of ``--repeats`` warm runs:

- ``skimgclf``: the hand-built graph (batch norm folded into the convolution
  right before it, or a scale and shift after a max pooling, convolutions
  cropped to what the pooling reads, sub-batches of
  ~128 Ki pixels through ``tf.map_fn``);
- ``tf.function``: ``model(x, training=False)`` traced as one function;
- ``tf.function + XLA``: the same with ``jit_compile=True``;
- ``eager``: ``model(x, training=False)`` without tracing (what skimgclf does
  for small work);
- ``Model.predict``: Keras' own, batch 256.

Ratios are the other way's time over skimgclf's (above 1: skimgclf is faster).
It also prints the one-time cost of tracing each graph, which is why small
work is done eagerly (``_TRACE_FROM_PIXELS``).

Usage::

    .venv/bin/python benchmarks/bench_inference.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def best(fn, repeats):
    fn()
    out = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from skimgclf import CNNClassifier
    from skimgclf.model import inference

    rng = np.random.default_rng(0)
    print(f"{'shape':<12} {'images':>6} {'way':<20} {'time':>10} {'ratio':>7}   trace+first call")
    for shape, n in [((8, 8, 1), 8000), ((28, 28, 1), 4000), ((32, 32, 3), 4000), ((64, 48, 3), 2000)]:
        X = rng.random((n,) + shape, dtype=np.float32)
        # Trained a little, so that the batch norms hold real statistics.
        clf = CNNClassifier(epochs=1, random_state=0).fit(X[:512], np.arange(512) % 10)
        model = clf.model_
        rows = inference._inference_rows(shape)
        chunk = max(1, 2**21 // (shape[0] * shape[1] * rows)) * rows
        spec = tf.TensorSpec((None,) + shape, tf.float32)

        def chunked(call):
            return lambda: np.concatenate([np.asarray(call(X[s:s + chunk])) for s in range(0, n, chunk)])

        def traced(make):
            t0 = time.perf_counter()
            fn = make()
            fn(X[:chunk])
            return fn, time.perf_counter() - t0

        ours, t_ours = traced(lambda: inference._inference_function(model))
        plain, t_plain = traced(lambda: tf.function(lambda x: model(x, training=False),
                                                    input_signature=[spec]).get_concrete_function())
        xla, t_xla = traced(lambda: tf.function(lambda x: model(x, training=False), input_signature=[spec],
                                                jit_compile=True).get_concrete_function())
        ref = model.predict(X, batch_size=256, verbose=0)
        ways = [
            ("skimgclf", chunked(ours), t_ours),
            ("tf.function", chunked(plain), t_plain),
            ("tf.function + XLA", chunked(xla), t_xla),
            ("eager", chunked(lambda x: keras.ops.convert_to_numpy(model(x, training=False))), 0.0),
            ("Model.predict", lambda: model.predict(X, batch_size=256, verbose=0), None),
        ]
        base = None
        for name, fn, trace in ways:
            diff = float(np.abs(fn() - ref).max())
            seconds = best(fn, args.repeats)
            base = seconds if base is None else base
            trace_text = "-" if trace is None else f"{trace * 1000:.0f} ms"
            print(f"{str(shape):<12} {n:>6} {name:<20} {seconds * 1000:>7.1f} ms {seconds / base:>6.2f}x   "
                  f"{trace_text} (max |diff| vs predict {diff:.1e})", flush=True)


if __name__ == "__main__":
    main()
