"""skimgclf.model.training: the training kernels (fused batch norm, bfloat16), warm starts, the pace callback."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from skimgclf import CNNClassifier
from skimgclf.model import devices, training
from skimgclf.model.network import build_cnn

from conftest import make_blobs_images


def _pair(shape, momentum, center, scale, seed):
    """A Keras batch norm and a copy of it with the same weights."""
    rng = np.random.default_rng(seed)
    layers = [keras.layers.BatchNormalization(momentum=momentum, center=center, scale=scale) for _ in range(2)]
    for layer in layers:
        layer.build(shape)
    weights = [rng.normal(1, 0.3, w.shape).astype(np.float32) for w in layers[0].get_weights()]
    weights[-1] = np.abs(weights[-1])  # the moving variance
    for layer in layers:
        layer.set_weights(weights)
    return layers


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 9), height=st.integers(1, 9), width=st.integers(1, 9), channels=st.integers(1, 40),
       momentum=st.floats(0.0, 0.999), center=st.booleans(), scale=st.booleans(), seed=st.integers(0, 2**16))
def test_fused_batch_norm_gives_keras_numbers(batch, height, width, channels, momentum, center, scale, seed):
    """Outputs, gradients and moving statistics of the fused kernel are Keras' own, for any map and batch."""
    shape = (batch, height, width, channels)
    keras_bn, fused_bn = _pair(shape, momentum, center, scale, seed)
    x = tf.constant(np.random.default_rng(seed).normal(2, 3, shape).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        expected = keras_bn(x, training=True)
        got = training._fused_batch_norm(fused_bn, x, training=True)
        losses = [tf.reduce_sum(y * tf.cos(y)) for y in (expected, got)]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    for a, b in zip(tape.gradient(losses[0], [x] + keras_bn.trainable_weights),
                    tape.gradient(losses[1], [x] + fused_bn.trainable_weights)):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-3 * float(tf.reduce_max(tf.abs(a))) + 1e-5)
    for a, b in zip(keras_bn.non_trainable_weights, fused_bn.non_trainable_weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5)
    # At inference, and where the map is not 4-D, it is Keras' own call.
    np.testing.assert_allclose(training._fused_batch_norm(fused_bn, x, training=False),
                               keras_bn(x, training=False), rtol=1e-5, atol=1e-5)


def test_training_kernels_leave_the_plain_float32_network_behind():
    model = build_cnn((16, 16, 3), 3, seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    seen = {}
    with training.training_kernels(model, "mixed_bfloat16"):
        seen["policies"] = {layer.dtype_policy.name for layer in model.layers[1:-1]}
        seen["output"] = model.layers[-1].dtype_policy.name
        seen["fused"] = all("call" in vars(layer) for layer in norms)
        model.fit(np.random.rand(8, 16, 16, 3), np.arange(8) % 3, epochs=1, verbose=0)
    assert seen == {"policies": {"mixed_bfloat16"}, "output": "float32", "fused": True}
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert not any("call" in vars(layer) for layer in norms)
    assert "bfloat16" not in json.dumps(model.get_config())  # what is saved is float32
    # ... also when training fails inside the block.
    with pytest.raises(RuntimeError), training.training_kernels(model, "mixed_bfloat16"):
        raise RuntimeError("interrupted")
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert not any("call" in vars(layer) for layer in norms)


def test_cpu_bfloat16_reads_the_cpu_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f amx_bf16 amx_tile\n")
    assert devices.cpu_bfloat16(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert not devices.cpu_bfloat16(info)
    info.write_text("flags : avx512_bf16\n")
    assert devices.cpu_bfloat16(info)
    assert not devices.cpu_bfloat16(tmp_path / "missing")


def test_precision_auto_follows_the_cpu(monkeypatch):
    monkeypatch.setattr(devices, "cpu_bfloat16", lambda: True)
    assert training.resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(devices, "gpus", lambda: ["a GPU"])
    assert training.resolve_precision("auto") == "float32"  # a GPU is left to float32
    monkeypatch.setattr(devices, "cpu_bfloat16", lambda: False)
    monkeypatch.setattr(devices, "gpus", lambda: [])
    assert training.resolve_precision("auto") == "float32"  # emulated bfloat16 would be slower
    assert training.resolve_precision("bfloat16") == "mixed_bfloat16"
    assert training.resolve_precision("float32") == "float32"


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_both_precisions_learn_and_predict_in_float32(precision, tmp_path):
    import skimgclf

    X, y = make_blobs_images(96, size=12, channels=3, n_classes=3)
    clf = CNNClassifier(conv_blocks=1, filters=8, units=16, epochs=12, learning_rate=0.01, precision=precision,
                        random_flip=None, random_shift=0.0,
                        random_state=0, verbose=0).fit(X, y)
    assert clf.precision_ == {"float32": "float32", "bfloat16": "mixed_bfloat16"}[precision]
    assert clf.score(X, y) > 0.9
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float32
    skimgclf.save(clf, tmp_path / "m.skimgclf")
    again = skimgclf.load(tmp_path / "m.skimgclf")
    np.testing.assert_allclose(again.predict_proba(X), proba, atol=1e-6)


def test_warm_start_continues_the_network_on_a_new_schedule():
    X, y = make_blobs_images(80, n_classes=3)
    clf = CNNClassifier(conv_blocks=1, filters=4, units=8, epochs=3, random_state=0, verbose=0).fit(X[:40], y[:40])
    network, first = clf.model_, [w.copy() for w in clf.model_.get_weights()]
    clf.set_params(warm_start=True, epochs=2).fit(X, y)
    assert clf.model_ is network and len(clf.history_["loss"]) == 5 and clf.epochs_ == 2
    assert float(clf.model_.optimizer.learning_rate) == 0.0  # its new cosine schedule ran to its end
    assert not all(np.array_equal(a, b) for a, b in zip(first, clf.model_.get_weights()))
    with pytest.raises(ValueError, match=r"continues a network trained on the classes \[0, 1, 2\]; y has others: "
                                         r"\[7\]"):
        clf.fit(X[:10], np.full(10, 7))
    fresh = clf.set_params(warm_start=False).fit(X, y)
    assert len(fresh.history_["loss"]) == 2 and fresh.model_ is not network


def test_validation_data_is_watched_not_learnt_from():
    X, y = make_blobs_images(90, n_classes=3)
    labels = np.array(["a", "b", "c"])[y]
    params = dict(conv_blocks=1, filters=4, units=8, epochs=3, random_state=0, verbose=0, early_stopping=True)
    watched = CNNClassifier(**params).fit(X[:60], labels[:60], validation_data=(X[60:], labels[60:]))
    plain = CNNClassifier(**params).fit(X[:60], labels[:60])
    assert len(watched.history_["val_accuracy"]) == 3  # every epoch, never stopped early
    np.testing.assert_array_equal(watched.predict_proba(X), plain.predict_proba(X))  # nothing learnt from it
    assert watched.history_["val_accuracy"][-1] == pytest.approx(plain.score(X[60:], labels[60:]), abs=0.04)
    with pytest.raises(ValueError, match="not among the training classes"):
        CNNClassifier(**params).fit(X[:60], labels[:60], validation_data=(X[60:], np.full(30, "z")))
    with pytest.raises(ValueError, match="both hold out images"):
        CNNClassifier(**params, validation_split=0.2).fit(X[:60], labels[:60], validation_data=(X[60:], labels[60:]))


def test_pace_reports_once_with_the_steps_taken():
    reports = []
    model = build_cnn((8, 8, 1), 2, seed=0, random_shift=0.0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(np.random.rand(64, 8, 8, 1), np.arange(64) % 2, batch_size=8, epochs=2, verbose=0,
              callbacks=[training.Pace(lambda s, n: reports.append((s, n)), after=0.0)])
    assert len(reports) == 1
    seconds, taken = reports[0]
    assert seconds > 0 and taken == 2  # the first step (tracing) untimed, reported after the second


@pytest.mark.parametrize("epochs, more", [(1, 1), (4, 1), (5, 2), (16, 4), (22, 6), (100, 25)])
def test_continue_epochs_is_a_quarter(epochs, more):
    assert training.continue_epochs(epochs) == more


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 200), batch=st.integers(1, 70), weights=st.booleans(), seed=st.integers(0, 2**16))
def test_array_batches_visit_every_row_once_an_epoch_in_a_new_order(n, batch, weights, seed):
    """Every epoch: all rows once, images, labels and weights still aligned, full batches then the rest;
    a new order each epoch, the same orders for the same seed; tf.data's autotuning off."""
    X = np.arange(n, dtype=np.float32).reshape(n, 1, 1, 1) * np.ones((1, 2, 3, 1), np.float32)
    y, w = np.arange(n) * 10, np.arange(n) / 2
    ds = training.array_batches(X, y, w if weights else None, batch, seed=seed)
    assert ds.options().autotune.enabled is False  # its tuning thread stalls every epoch's end
    assert int(ds.cardinality()) == -(-n // batch)

    def epochs(ds, count):
        it_orders = []
        for _ in range(count):
            rows, sizes = [], []
            for b in ds:
                assert len(b) == (3 if weights else 2)
                r = b[0].numpy()[:, 0, 0, 0].astype(int)
                assert (b[0].numpy() == r[:, None, None, None]).all()
                assert (b[1].numpy() == r * 10).all()
                if weights:
                    assert np.allclose(b[2].numpy(), r / 2)
                rows.extend(r)
                sizes.append(len(r))
            assert sorted(rows) == list(range(n))
            assert sizes == [batch] * (n // batch) + ([n % batch] if n % batch else [])
            it_orders.append(rows)
        return it_orders

    first = epochs(ds, 3)
    if n >= 8:  # 8! orders: three equal shuffles in a row would be a fixed order
        assert not first[0] == first[1] == first[2]
    again = training.array_batches(X, y, w if weights else None, batch, seed=seed)
    assert epochs(again, 3) == first  # a new fit with the same seed: the same orders


def test_the_classifier_trains_on_array_batches_without_autotuning(monkeypatch):
    """In-memory images reach Keras as array_batches' dataset (not as arrays Keras would autotune)."""
    seen = []
    original = keras.Model.fit

    def spy(self, *args, **kwargs):
        seen.append((args[0], kwargs.get("shuffle")))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    X, y = make_blobs_images(n=40, size=8, seed=0)
    CNNClassifier(epochs=1, conv_blocks=1, filters=4, units=8, random_state=0).fit(X, y)
    [(data, shuffle)] = seen
    assert isinstance(data, tf.data.Dataset) and data.options().autotune.enabled is False
    assert shuffle is False  # the dataset shuffles itself
