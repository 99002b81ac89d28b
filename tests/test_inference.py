"""predict / predict_proba over the input space: image counts, sizes, channels, networks.

The classifier predicts either eagerly (small work) or through a traced graph
of its own (batch norm folded, cropped convolutions, sub-batches). Both must
give Keras' own ``model.predict`` numbers for every count -- in particular
at the counts where the sub-batches and chunks end (powers of two, multiples
of the sub-batch, and their neighbours) -- and for every image shape and
network the parameters allow.

Chunks are sized by the network's activation memory (``netcheck.cost``), not
by pixels alone: at most ``_CHUNK_ACTIVATION_BYTES`` a call (or one image),
for any image size and activation count (a property test); a model file
whose network makes 54 MB of each 8x8 image predicts 18 images a call, not
32,768; and for any count, from any offset, under budgets of 1 to 12 images
a chunk, the numbers are Keras' own.
"""

import contextlib
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from skimgclf import CNNClassifier
from skimgclf.model import inference as _classifier

RNG = np.random.default_rng(0)
#: The two ways of predicting: traced from the first call, or never traced.
MODES = {"traced": 0, "eager": float("inf")}
#: Powers of two and their neighbours up to 4096.
POWERS = sorted({2**k + d for k in range(13) for d in (-1, 0, 1)} - {0})


@contextlib.contextmanager
def mode(name):
    """Predict ``name``'s way: no network keeps a traced graph from before."""
    _classifier._INFERENCE.clear()
    with mock.patch.object(_classifier, "_TRACE_FROM_PIXELS", MODES[name]):
        yield
    _classifier._INFERENCE.clear()


def boundaries(shape, limit, model=None):
    """Counts where the traced inference's sub-batches and chunks end, and their neighbours."""
    rows, chunk = _classifier._chunking(shape, model and _classifier._activation_bytes(model))
    ends = {k * rows + d for k in range(1, 4) for d in (-1, 0, 1)}
    ends |= {k * chunk + d for k in (1, 2) for d in (-1, 0, 1)}
    return sorted(n for n in ends | set(POWERS) if 1 <= n <= limit)


#: (image shape, largest count): the shapes where a sub-batch once broke predict.
SHAPES = [((8, 8, 1), 4097), ((28, 28, 1), 4097), ((32, 32, 3), 4097), ((64, 64, 3), 2049)]


def keras_numbers(clf, X, batch_size=512):
    """Keras' own predictions of ``clf``'s network; for colour images averaged with their mirror images.

    The defaults (``random_flip="auto"``, ``test_time_flip="auto"``) predict
    images of three channels or more also mirrored left to right.
    """
    ref = clf.model_.predict(X, batch_size=batch_size, verbose=0)
    if X.shape[-1] >= 3:
        ref = (ref + clf.model_.predict(np.ascontiguousarray(X[:, :, ::-1]), batch_size=batch_size, verbose=0)) / 2
    return ref


@pytest.fixture(scope="module")
def networks():
    """Per shape: a trained default-structure network (few filters), a pool of images, Keras' predictions."""
    out = {}
    for shape, limit in SHAPES:
        X = RNG.random((limit,) + shape, dtype=np.float32)
        y = np.arange(24) % 3
        clf = CNNClassifier(filters=4, units=8, epochs=1, random_state=0).fit(X[:24], y)
        out[shape] = clf, X, keras_numbers(clf, X)
    return out


@pytest.mark.parametrize("how", MODES)
@pytest.mark.parametrize("shape", [shape for shape, _ in SHAPES], ids=str)
def test_every_boundary_count_gives_keras_numbers(networks, shape, how):
    """1, every power of two up to 4096 and its neighbours, every sub-batch and chunk end."""
    clf, X, ref = networks[shape]
    with mode(how):
        for n in boundaries(shape, len(X), clf.model_):
            proba = clf.predict_proba(X[:n])
            assert proba.shape == (n, 3), n
            np.testing.assert_allclose(proba, ref[:n], atol=2e-5, err_msg=f"{n} images of {shape}")
            np.testing.assert_array_equal(clf.predict(X[:n]), clf.classes_[ref[:n].argmax(1)])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape_i=st.integers(0, len(SHAPES) - 1), how=st.sampled_from(sorted(MODES)),
       n=st.integers(1, 4097), start=st.integers(0, 64))
def test_any_count_from_any_offset_gives_keras_numbers(networks, shape_i, how, n, start):
    shape, _ = SHAPES[shape_i]
    clf, X, ref = networks[shape]
    n = min(n, len(X) - start)
    with mode(how):
        proba = clf.predict_proba(X[start:start + n])
    assert proba.shape == (n, 3)
    np.testing.assert_allclose(proba, ref[start:start + n], atol=2e-5)


networks_and_shapes = st.fixed_dictionaries({
    "height": st.integers(1, 40),
    "width": st.integers(1, 40),
    "channels": st.sampled_from([1, 2, 3, 4]),
    "conv_blocks": st.integers(0, 3),
    "convs_per_block": st.integers(1, 2),
    "pool_after": st.sampled_from(["auto", 1, 2]),
    "kernel_size": st.integers(1, 5),
    "padding": st.sampled_from(["auto", "same", "valid"]),
    "pooling": st.sampled_from(["max", "avg", None]),
    "batch_norm": st.booleans(),
    "global_pooling": st.sampled_from(["auto", "flatten", "avg", "max"]),
    "hidden_layers": st.integers(0, 2),
    "n_classes": st.integers(2, 5),
})


@pytest.mark.slow
@settings(max_examples=10, deadline=None)
@given(case=networks_and_shapes)
@example(case=dict(height=64, width=64, channels=3, conv_blocks=3, convs_per_block=1, kernel_size=3,
                   padding="auto", pool_after="auto", pooling="max", batch_norm=True, global_pooling="auto",
                   hidden_layers=1, n_classes=2))
@example(case=dict(height=1, width=1, channels=1, conv_blocks=3, convs_per_block=2, kernel_size=5,
                   padding="valid", pool_after=1, pooling="avg", batch_norm=True, global_pooling="flatten",
                   hidden_layers=2, n_classes=3))
@example(case=dict(height=40, width=36, channels=3, conv_blocks=3, convs_per_block=2, kernel_size=3,
                   padding="auto", pool_after="auto", pooling="max", batch_norm=True, global_pooling="auto",
                   hidden_layers=1, n_classes=2, filters="auto"))  # photo blocks that widen after pooling
def test_any_image_shape_and_network_gives_keras_numbers(case):
    """Height, width, channels and the architecture parameters: shapes and numbers as Keras'."""
    case = dict(case)
    shape = (case.pop("height"), case.pop("width"), case.pop("channels"))
    k = case.pop("n_classes")
    X = RNG.random((3 * k,) + shape, dtype=np.float32)
    y = np.arange(3 * k) % k
    case.setdefault("filters", 3)
    clf = CNNClassifier(units=5, epochs=1, batch_size=4, random_state=0, **case).fit(X, y)
    rows, _ = _classifier._chunking(shape, _classifier._activation_bytes(clf.model_))
    pool = RNG.random((2 * rows + 1,) + shape, dtype=np.float32)
    ref = keras_numbers(clf, pool, batch_size=len(pool))
    for how in MODES:
        with mode(how):
            for n in sorted({1, rows - 1, rows, rows + 1, 2 * rows} - {0}):
                proba = clf.predict_proba(pool[:n])
                assert proba.shape == (n, k)
                np.testing.assert_allclose(proba, ref[:n], atol=2e-5, err_msg=f"{how}, {n} images of {shape}, {case}")
                np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_a_model_is_traced_once_enough_work_was_asked_of_it(monkeypatch):
    """Small work runs eagerly; past the threshold the traced graph is built once and kept."""
    X = RNG.random((40, 16, 16, 1), dtype=np.float32)
    clf = CNNClassifier(filters=4, units=8, epochs=1, random_state=0).fit(X, np.arange(40) % 2)
    built = []
    real = _classifier._inference_function
    monkeypatch.setattr(_classifier, "_inference_function", lambda m: built.append(m) or real(m))
    monkeypatch.setattr(_classifier, "_TRACE_FROM_PIXELS", 3 * 40 * 16 * 16)
    eager = [clf.predict_proba(X) for _ in range(2)]
    assert built == []
    traced = [clf.predict_proba(X) for _ in range(3)]
    assert built == [clf.model_]  # once, on the call that crossed the threshold
    np.testing.assert_allclose(traced[0], eager[0], atol=2e-5)
    clf.partial_fit(X, np.arange(40) % 2)  # new weights: the count starts again
    clf.predict_proba(X)
    assert len(built) == 1


# ------------------------------------------------------------ chunks sized by activation memory
@settings(max_examples=300, deadline=None)
@given(height=st.integers(1, 4096), width=st.integers(1, 4096),
       activation_bytes=st.one_of(st.none(), st.integers(4, 2**31)))
@example(height=345, width=380, activation_bytes=67108865)  # fewer rows a sub-batch, more sub-batches (found in CI)
def test_chunks_hold_at_most_the_activation_budget(height, width, activation_bytes):
    """A chunk holds at most ``_CHUNK_ACTIVATION_BYTES`` of activations (a sub-batch half of it), or one image;
    it is a whole number of sub-batches, never larger than by pixels alone, and the same where memory allows."""
    shape = (height, width, 3)
    rows, chunk = _classifier._chunking(shape, activation_bytes)
    by_pixels = _classifier._chunking(shape, None)
    budget = _classifier._CHUNK_ACTIVATION_BYTES
    assert 1 <= rows <= chunk and chunk % rows == 0 and chunk <= by_pixels[1]
    if activation_bytes is None or activation_bytes * by_pixels[1] <= budget // 2:
        assert (rows, chunk) == by_pixels
    else:
        assert chunk * activation_bytes <= budget or chunk == 1
        assert rows * activation_bytes <= budget // 2 or rows == 1


def test_small_images_are_no_longer_chunked_by_the_ten_thousand_whatever_the_network():
    """8x8 images: 32,768 a call by pixels; a network that makes 50 MB of each gets a few a call."""
    assert _classifier._chunking((8, 8, 3))[1] == 32768
    assert _classifier._chunking((8, 8, 3), 50 * 2**20) == (10, 20)


@pytest.fixture(scope="module")
def wide():
    """A trained network of 64 filters on 16x16 images (about 300 KB of activations an image), a pool of
    images, Keras' numbers for them."""
    X = RNG.random((160, 16, 16, 1), dtype=np.float32)
    clf = CNNClassifier(conv_blocks=1, filters=64, units=8, epochs=1, random_state=0).fit(X[:24], np.arange(24) % 3)
    return clf, X, keras_numbers(clf, X)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(how=st.sampled_from(sorted(MODES)), n=st.integers(1, 100), start=st.integers(0, 60),
       images_per_chunk=st.integers(1, 12))
def test_any_count_in_chunks_sized_by_activations_gives_keras_numbers(wide, monkeypatch, how, n, start,
                                                                       images_per_chunk):
    """Budgets of 1 to 12 images a chunk: every chunk within it, every image once, Keras' numbers."""
    clf, X, ref = wide
    per_image = _classifier._activation_bytes(clf.model_)
    assert per_image == 4 * sum(int(np.prod(op.output.shape[1:])) for op in clf.model_.operations)
    monkeypatch.setattr(_classifier, "_CHUNK_ACTIVATION_BYTES", images_per_chunk * per_image)
    x = X[start:start + n]
    sizes = []
    with mode(how):
        proba = _classifier._predict_chunks(clf.model_, x, sizes.append)
    assert sum(sizes) == len(x) and max(sizes) <= images_per_chunk, sizes
    np.testing.assert_allclose(proba, ref[start:start + n], atol=2e-5)


def test_a_model_file_whose_network_makes_much_of_small_images_predicts_in_small_chunks(tmp_path):
    """8x8 photos resized to 1024x1024 and convolved (a model file as anyone may write): 18 images a call
    (32,768 by pixels), as the same images one by one."""
    import keras
    from conftest import network_file

    import skimgclf

    inputs = keras.Input((8, 8, 3), name="images")
    x = keras.layers.Resizing(1024, 1024, name="resize")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", name="convolution")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="average")(x)
    network = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="probabilities")(x))
    clf = skimgclf.load(network_file(tmp_path / "m.skimgclf", network))
    X = RNG.random((24, 8, 8, 3), dtype=np.float32)
    per_image = _classifier._activation_bytes(clf.model_)
    assert 50 * 2**20 < per_image < 60 * 2**20
    sizes = []
    with mode("eager"):
        proba = _classifier._predict_chunks(clf.model_, X, sizes.append)
    assert sizes == [18, 6] and max(sizes) * per_image <= _classifier._CHUNK_ACTIVATION_BYTES
    one_by_one = np.concatenate([clf.model_.predict(X[i:i + 1], verbose=0) for i in range(len(X))])
    np.testing.assert_allclose(proba, one_by_one, atol=2e-5)


@pytest.mark.compat
def test_folded_inference_matches_keras_and_follows_new_weights(monkeypatch):
    """predict folds batch norm into the layer before it: same numbers as Keras' own predict.

    A batch norm after a max pooling is not folded into the convolution
    before the pooling (max commutes only with an increasing scale): it is
    applied on the pooled map, right also where its scale is negative.
    """
    from skimgclf import CNNClassifier
    from skimgclf.model import inference as _classifier
    from skimgclf.model.inference import _inference_steps

    monkeypatch.setattr(_classifier, "_TRACE_FROM_PIXELS", 0)  # the traced graph from the first call
    X = RNG.random((120, 8, 8, 1), dtype=np.float32)
    y = np.arange(120) % 3
    clf = CNNClassifier(conv_blocks=2, filters=4, units=8, epochs=1, random_state=0).fit(X, y)
    kinds = [step[0] for step in _inference_steps(clf.model_)]
    # 8x8: conv, pool, its batch norm alone, activation; 4x4 -> 2x2 (not pooled): conv with its batch
    # norm folded in, activation; the hidden dense layer with its batch norm folded in
    assert kinds[:6] == ["conv", "layer", "affine", "layer", "conv", "layer"]
    assert kinds.count("conv") == 2 and kinds.count("affine") == 1 and kinds.count("dense") == 1
    np.testing.assert_allclose(clf.predict_proba(X), clf.model_.predict(X, verbose=0), atol=1e-5)
    bns = [layer for layer in clf.model_.layers if type(layer).__name__ == "BatchNormalization"]
    bns[0].moving_mean.assign(bns[0].moving_mean + 0.5)  # the weights change: no stale folded copy
    np.testing.assert_allclose(clf.predict_proba(X), clf.model_.predict(X, verbose=0), atol=1e-5)
    for bn in bns:  # half the channels' scales negative: max(-x) is not -max(x)
        bn.gamma.assign(bn.gamma * np.where(np.arange(bn.gamma.shape[0]) % 2, -1.0, 1.0).astype(np.float32))
    np.testing.assert_allclose(clf.predict_proba(X), clf.model_.predict(X, verbose=0), atol=1e-5)


@pytest.mark.compat
@pytest.mark.parametrize("n", [1, 7, 16, 17, 40])
def test_inference_in_sub_batches_gives_every_row(monkeypatch, n):
    """Sub-batches of the traced inference: fewer rows than one, exactly some, and a remainder."""
    from skimgclf import CNNClassifier
    from skimgclf.model import inference as _classifier

    monkeypatch.setattr(_classifier, "_inference_rows", lambda shape: 8)
    monkeypatch.setattr(_classifier, "_TRACE_FROM_PIXELS", 0)
    X = RNG.random((n, 12, 12, 1), dtype=np.float32)
    y = np.arange(n) % 2 if n > 1 else np.array([0])
    clf = CNNClassifier(conv_blocks=1, filters=4, units=8, epochs=1, random_state=0).fit(
        np.concatenate([X, X]), np.concatenate([y, 1 - y]))
    proba = clf.predict_proba(X)
    assert proba.shape == (n, 2)
    np.testing.assert_allclose(proba, clf.model_.predict(X, verbose=0), atol=1e-5)
    np.testing.assert_allclose(proba[-1:], clf.predict_proba(X[-1:]), atol=1e-6)  # a row alone, the same


@pytest.mark.compat
@pytest.mark.parametrize("shape, params, windows", [
    # 14 -> pool -> 7 -> the second convolution computes only the 6x6 the pooling reads
    ((14, 14, 1), dict(conv_blocks=2, padding="same"), [None, (7, 7, [[0, 0], [1, 0], [1, 0], [0, 0]])]),
    # an even kernel pads 1 before and 2 after; odd sizes drop the last row/column
    ((15, 13, 3), dict(conv_blocks=2, convs_per_block=1, kernel_size=4, padding="same"),
     [(15, 13, [[0, 0], [1, 1], [1, 1], [0, 0]]), (7, 6, [[0, 0], [1, 1], [1, 2], [0, 0]])]),
    # a 5x5 kernel before average pooling of a 9x11 map: one row is never needed at all
    ((9, 11, 1), dict(conv_blocks=1, kernel_size=5, pooling="avg", padding="same"),
     [(9, 11, [[0, 0], [2, 1], [2, 1], [0, 0]])]),
    # the default on 28x28: 26 pools evenly; 13 -> 11 pooled to 5 reads 10, so 12 input rows;
    # 5 -> 3 is not pooled
    ((28, 28, 1), dict(), [None, (12, 12, [[0, 0], [0, 0], [0, 0], [0, 0]]), None]),
])
def test_inference_skips_outputs_the_pooling_drops(monkeypatch, shape, params, windows):
    """Odd-sized maps before "valid" pooling: only the used outputs are computed, same numbers."""
    from skimgclf import CNNClassifier
    from skimgclf.model import inference as _classifier
    from skimgclf.model.inference import _conv_window, _inference_steps

    monkeypatch.setattr(_classifier, "_TRACE_FROM_PIXELS", 0)
    X = RNG.random((90,) + shape, dtype=np.float32)
    y = np.arange(90) % 3
    clf = CNNClassifier(filters=4, units=8, epochs=1, test_time_flip=False, random_state=0, **params).fit(X, y)
    steps = _inference_steps(clf.model_)
    convs = [i for i, step in enumerate(steps) if step[0] == "conv"]
    sizes = [tuple(steps[i][3].input.shape[1:3]) for i in convs]
    assert [_conv_window(steps, i, *hw) for i, hw in zip(convs, sizes)] == windows
    np.testing.assert_allclose(clf.predict_proba(X), clf.model_.predict(X, verbose=0), atol=1e-5)


@pytest.mark.compat
@pytest.mark.slow
def test_predicting_with_many_networks_does_not_warn_of_retracing(caplog, monkeypatch):
    """One traced inference graph per network (a grid search fits many): no TensorFlow warning."""
    import logging

    from skimgclf import CNNClassifier
    from skimgclf.model import inference as _classifier

    monkeypatch.setattr(_classifier, "_TRACE_FROM_PIXELS", 0)
    X = RNG.random((40, 8, 8, 1), dtype=np.float32)
    y = np.arange(40) % 2
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for seed in range(7):
            CNNClassifier(conv_blocks=1, filters=4, units=8, epochs=1, random_state=seed).fit(X, y).predict(X)
    assert not [r for r in caplog.records if "run_in_rows" in r.getMessage()]
