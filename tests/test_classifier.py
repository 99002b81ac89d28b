"""CNNClassifier: the scikit-learn contract, with real (short) training."""

import re

import numpy as np
import pandas as pd
import pytest
from conftest import gray_loader, make_blobs_images, small_cnn
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone, is_classifier
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, check_cv, cross_val_score
from sklearn.pipeline import make_pipeline

from skimgclf import CNNClassifier

TINY = dict(conv_blocks=1, filters=4, units=8, epochs=2, batch_size=16,
            random_shift=0.0, random_rotation=0.0, random_zoom=0.0, validation_split=0.0)


#: Enough training for the tiny network to learn the blobs (tests that check learning).
LEARN = dict(epochs=15, learning_rate=0.01)


def tiny(**kw):
    return CNNClassifier(**{**TINY, "random_state": 0, **kw})


@pytest.fixture(scope="module")
def data():
    X, y = make_blobs_images(60, n_classes=3)
    return X.astype(np.float32) / 255, y


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return tiny(epochs=3).fit(X, y)


def test_is_a_classifier_and_cv_is_stratified(data):
    X, y = data
    clf = tiny()
    assert is_classifier(clf)
    assert clf.__sklearn_tags__().estimator_type == "classifier"
    assert isinstance(check_cv(3, y, classifier=is_classifier(clf)), StratifiedKFold)
    scores = cross_val_score(tiny(**LEARN), X, y, cv=2)
    assert scores.shape == (2,) and scores.min() > 0.8  # three learnable classes: chance is 1/3


def test_init_only_stores_params_and_clone_is_unfitted(fitted):
    params = CNNClassifier().get_params()
    assert params["hidden_layers"] == 1 and "model" not in params and "loss" not in params
    twin = clone(fitted)
    assert twin.get_params() == fitted.get_params()
    assert not hasattr(twin, "model_") and not hasattr(twin, "classes_")
    with pytest.raises(NotFittedError):
        twin.predict(np.zeros((1, 8, 8, 1)))
    with pytest.raises(ValueError, match="Invalid parameter 'nope'"):
        tiny().set_params(nope=1)
    assert tiny().set_params(units=32).units == 32
    assert "CNNClassifier(" in repr(tiny()) and "\t" not in repr(tiny())


def test_predict_proba_shape_and_classes_order(fitted, data):
    X, y = data
    assert list(fitted.classes_) == [0, 1, 2]
    proba = fitted.predict_proba(X[:1])
    assert proba.shape == (1, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    full = fitted.predict_proba(X)
    assert full.shape == (60, 3)
    np.testing.assert_array_equal(fitted.predict(X), fitted.classes_[full.argmax(axis=1)])
    assert fitted.predict(X[:1]).shape == (1,)


@pytest.mark.parametrize("labels", [
    np.array(["cat", "dog"]),
    np.array(["b", "a", "c", "d"]),
    np.array([10, -3]),
])
def test_string_and_integer_labels(labels):
    X, y = make_blobs_images(64, n_classes=len(labels))
    y_lab = labels[y]
    clf = tiny(**LEARN).fit(X, y_lab)
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    proba = clf.predict_proba(X)
    assert proba.shape == (64, len(labels))
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    # Learned, in the labels' own terms: each image gets its own label back.
    assert clf.score(X, y_lab) > 0.9
    assert clf.predict(X).dtype == clf.classes_.dtype


def test_same_random_state_gives_identical_predictions_and_does_not_leak(data):
    from tensorflow.python.framework import config as tf_config

    X, y = data
    kw = dict(dropout=0.5, random_shift=0.1, validation_split=0.2, epochs=2)
    a = tiny(**kw).fit(X, y).predict_proba(X)
    b = tiny(**kw).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not tf_config.is_op_determinism_enabled()
    # After a seeded fit, unseeded fits with dropout still work and differ.
    u1 = CNNClassifier(**{**TINY, "dropout": 0.5}).fit(X, y)
    u2 = CNNClassifier(**{**TINY, "dropout": 0.5}).fit(X, y)
    w1, w2 = u1.model_.get_weights()[0], u2.model_.get_weights()[0]
    assert not np.array_equal(w1, w2)
    # The global Python and NumPy streams are given back untouched.
    import random

    np_state, py_state = np.random.get_state(), random.getstate()
    tiny().fit(X, y)
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert np.array_equal(after[1], np_state[1]) and after[2] == np_state[2]


def test_random_state_holds_while_other_threads_draw_from_pythons_random(data):
    """Seeds come from random_state alone, not from Python's global random (a Dask worker's event
    loop draws from it while a task builds its network)."""
    import random
    import threading

    X, y = data
    stop = threading.Event()

    def draw():
        while not stop.wait(0.0002):  # thousands of draws a second, without hogging the interpreter
            random.random()

    thread = threading.Thread(target=draw, daemon=True)
    thread.start()
    try:
        a = tiny(dropout=0.5, random_shift=0.1).fit(X, y).predict_proba(X)
        b = tiny(dropout=0.5, random_shift=0.1).fit(X, y).predict_proba(X)
    finally:
        stop.set()
        thread.join()
    np.testing.assert_array_equal(a, b)


def test_validation_split_is_stratified_random_and_restores_best_weights():
    X, y = make_blobs_images(420, n_classes=3)
    order = np.argsort(y, kind="stable")  # sorted labels: a "last rows" split would be one class
    Xs, ys = X[order], y[order]
    clf = tiny(validation_split=0.25, epochs=6, early_stopping=True, patience=1, learning_rate=0.05,
               lr_schedule="constant", batch_size=64)
    train, val = clf._validation_indices(ys, 0)
    assert sorted(np.bincount(ys[val]).tolist()) == [35, 35, 35]
    assert not np.array_equal(np.sort(val), np.arange(315, 420))
    clf.fit(Xs, ys)
    hist = clf.history_
    assert set(hist) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(hist["loss"]) == len(hist["val_loss"]) <= 6
    loss, _ = clf.model_.evaluate(Xs[val].astype(np.float32) / 255, ys[val], verbose=0)  # labels are 0, 1, 2
    assert loss == pytest.approx(min(hist["val_loss"]), rel=1e-3, abs=1e-4)


def test_early_stopping_never_acts_on_a_handful_of_images(data):
    """A monitor set too small to tell epochs apart: a warning, and the last epoch is kept."""
    X, y = data
    clf = tiny(validation_split=0.25, epochs=4, early_stopping=True, patience=0, learning_rate=0.05)
    with pytest.warns(UserWarning, match=r"validation_split=0.25 holds out only 15 images, too few to tell "
                                         r"one epoch from the next \(at least 100 are needed\): early stopping "
                                         r"is off") as caught:
        clf.fit(X, y)
    assert [w.filename for w in caught] == [__file__]  # the warning names the caller's line, not scikeras'
    assert len(clf.history_["loss"]) == 4  # never stopped early, whatever the validation loss did
    assert len(clf.history_["val_loss"]) == 4  # still monitored, for the curves


def test_colour_images_are_flipped_and_predicted_with_their_mirror_images():
    """random_flip="auto": horizontal flips for colour images only; test_time_flip averages mirror images."""
    X, y = make_blobs_images(48, channels=3, size=12)
    clf = tiny(epochs=2).fit(X, y)
    layers = [type(layer).__name__ for layer in clf.model_.layers]
    assert "RandomFlip" in layers and clf.model_.get_layer(index=1).mode == "horizontal"
    Xf = X.astype(np.float32) / 255
    direct = clf.model_.predict(Xf, verbose=0)
    mirrored = clf.model_.predict(Xf[:, :, ::-1], verbose=0)
    np.testing.assert_allclose(clf.predict_proba(X), (direct + mirrored) / 2, atol=2e-5)
    np.testing.assert_allclose(clf.set_params(test_time_flip=False).predict_proba(X), direct, atol=2e-5)
    gray = tiny(epochs=1).fit(*make_blobs_images(24, size=12))
    assert "RandomFlip" not in [type(layer).__name__ for layer in gray.model_.layers]
    assert gray._flips_at_prediction() is False


def test_label_smoothing_is_the_loss_of_the_network(data):
    X, y = data
    plain = tiny(epochs=1).fit(X, y)
    smooth = tiny(epochs=1, label_smoothing=0.2).fit(X, y)
    assert smooth.model_.loss.get_config()["label_smoothing"] == pytest.approx(0.2)
    assert smooth.history_["loss"][0] > plain.history_["loss"][0]  # smoothed targets cost more


def test_history_without_validation(fitted):
    assert set(fitted.history_) == {"loss", "accuracy"}
    assert len(fitted.history_["loss"]) == 3


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float64, np.float32, np.int64, np.int8])
def test_any_numeric_dtype_at_predict(fitted, data, dtype):
    """uint8 and uint16 are scaled (as the loader does); other dtypes are used as they are."""
    X, _ = data
    raw = np.rint(X[:8] * 255)
    if dtype == np.uint8:
        Xd, ref = raw.astype(np.uint8), raw / 255
    elif dtype == np.uint16:
        Xd, ref = (raw * 257).astype(np.uint16), raw * 257 / 65535
    elif np.dtype(dtype).kind == "i":
        Xd = (raw > 127).astype(dtype)  # 0/1 integer images, taken as the values they are
        ref = Xd.astype(np.float32)
    else:
        Xd, ref = (raw / 255).astype(dtype), raw / 255
    expected = fitted.predict_proba(ref.astype(np.float32))
    np.testing.assert_allclose(fitted.predict_proba(Xd), expected, atol=1e-5)
    assert not np.allclose(expected, expected[:1])  # the images differ, so do their probabilities


def test_fit_on_uint8_images(data):
    X, y = data
    clf = tiny(epochs=1).fit(np.rint(X * 255).astype(np.uint8), y)
    np.testing.assert_allclose(clf.predict_proba(X), clf.predict_proba(np.rint(X * 255).astype(np.uint8)),
                               atol=1e-5)


def test_single_3d_image_gets_a_clear_error(fitted, data):
    X, _ = data
    with pytest.raises(ValueError, match=r"X\[np.newaxis\]"):
        fitted.predict(X[0])


@pytest.mark.slow
def test_sklearn_meta_estimators(data):
    X, y = data
    cal = CalibratedClassifierCV(tiny(**LEARN), cv=2).fit(X, y)
    proba = cal.predict_proba(X)
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert (cal.predict(X) == y).mean() > 0.8
    a, b = tiny(**LEARN), tiny(**LEARN, random_state=1)
    vote = VotingClassifier([("a", a), ("b", b)], voting="soft").fit(X, y)
    # Soft voting averages the members' probabilities: the CNN's must be real ones.
    members = [est.predict_proba(X) for est in vote.estimators_]
    np.testing.assert_allclose(vote.predict_proba(X), np.mean(members, axis=0), rtol=1e-5, atol=1e-6)
    assert (vote.predict(X) == y).mean() > 0.8
    # Stacking's final estimator learns from the CNN's out-of-fold probabilities.
    stack = StackingClassifier([("cnn", tiny(**LEARN))], final_estimator=LogisticRegression(), cv=2)
    stack.fit(X, y)
    assert stack.transform(X[:5]).shape == (5, 3)
    assert (stack.predict(X) == y).mean() > 0.8


def test_architecture_parameters_shape_the_network(data):
    X, y = data
    clf = tiny(conv_blocks=2, filters=[4, 6], hidden_layers=2, units=[12, 10], activation="tanh",
               batch_norm=False, epochs=1).fit(X, y)
    kinds = [type(layer).__name__ for layer in clf.model_.layers]
    assert kinds.count("Conv2D") == 2 and kinds.count("Dense") == 3
    assert "BatchNormalization" not in kinds
    dense = [layer for layer in clf.model_.layers if type(layer).__name__ == "Dense"]
    assert [d.units for d in dense] == [12, 10, 3]
    acts = [layer.activation.__name__ for layer in clf.model_.layers if type(layer).__name__ == "Activation"]
    assert set(acts) == {"tanh"}


def test_augmentation_only_while_training(data):
    X, y = data
    clf = tiny(random_shift=0.2, random_zoom=0.2, random_rotation=0.1, random_flip="horizontal",
               epochs=1).fit(X, y)
    kinds = {type(layer).__name__ for layer in clf.model_.layers}
    assert {"RandomTranslation", "RandomZoom", "RandomRotation", "RandomFlip"} <= kinds
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(X))
    train_out = np.asarray(clf.model_(X[:8], training=True))
    assert not np.allclose(train_out, clf.predict_proba(X[:8]))


def test_class_weight_changes_training_and_balanced_means_inverse_frequency():
    """On imbalanced data: weights change the loss; "balanced" is n / (k * count) per class."""
    X, y = make_blobs_images(60, n_classes=3)
    keep = np.r_[np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:10], np.flatnonzero(y == 2)[:5]]
    X, y = X[keep], y[keep]  # 20, 10 and 5 images
    plain = tiny(epochs=2).fit(X, y)
    balanced = tiny(epochs=2, class_weight="balanced").fit(X, y)
    counts = np.bincount(y)
    explicit = {k: len(y) / (3 * c) for k, c in enumerate(counts)}
    same = tiny(epochs=2, class_weight=explicit).fit(X, y)
    assert balanced.history_["loss"][0] != pytest.approx(plain.history_["loss"][0], rel=1e-3)
    np.testing.assert_allclose(balanced.history_["loss"], same.history_["loss"], rtol=1e-5)
    np.testing.assert_allclose(balanced.predict_proba(X), same.predict_proba(X), atol=1e-6)


def test_zero_sample_weights_leave_rows_out_also_with_a_validation_split(data):
    """Weight 0 means "not trained on": the split is drawn among the rows that train."""
    import keras

    X, y = data
    w = np.ones(len(y), np.float32)
    w[::4] = 0  # 15 of 60 rows
    steps = []

    class Steps(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            steps.append(self.params["steps"])

    kw = dict(validation_split=0.25, batch_size=1, epochs=1)
    clf = tiny(**kw).fit(X, y, sample_weight=w, callbacks=[Steps()])
    assert steps == [33]  # 45 rows of weight > 0, a quarter of them (12) held out
    assert len(clf.history_["val_loss"]) == 1
    assert w[0] == 0 and w[1] == 1  # the caller's weights are not changed
    # The same as training on the weighted rows only.
    alone = tiny(**kw).fit(X[w > 0], y[w > 0])
    np.testing.assert_allclose(clf.predict_proba(X), alone.predict_proba(X), atol=1e-6)


def test_a_diverged_fit_is_an_error_and_grid_search_scores_it_nan(data):
    """A network whose training diverged is never returned as fitted, or scored as a candidate."""
    from sklearn.exceptions import FitFailedWarning
    from sklearn.model_selection import GridSearchCV

    X, y = data
    with pytest.raises(ValueError, match="training diverged|not a finite number"):
        tiny(optimizer="sgd", learning_rate=1e9).fit(X, y).predict(X)
    search = GridSearchCV(tiny(**LEARN, optimizer="sgd"), {"learning_rate": [0.01, 1e9]}, cv=2)
    with pytest.warns(FitFailedWarning):
        search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores[0]) and np.isnan(scores[1])
    assert search.best_params_ == {"learning_rate": 0.01}


def test_many_fits_do_not_keep_models_alive(data):
    import gc
    import weakref

    X, y = data
    refs = []
    for i in range(3):
        clf = tiny(epochs=1, random_state=i).fit(X, y)
        refs.append(weakref.ref(clf.model_))
        del clf
    gc.collect()
    assert sum(r() is not None for r in refs) == 0


def test_partial_fit_trains_one_epoch_at_a_time_and_history_grows(data):
    X, y = data
    clf = tiny(validation_split=0.2)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    first = clf.model_
    clf.partial_fit(X, y)
    clf.partial_fit(X, y)
    assert clf.model_ is first  # the same network, trained further
    assert clf.current_epoch == 3
    assert len(clf.history_["loss"]) == len(clf.history_["val_loss"]) == 3
    assert clf.history_["loss"][-1] < clf.history_["loss"][0]
    assert clf.predict_proba(X[:2]).shape == (2, 3)
    clf.fit(X, y)  # a new fit starts a new history
    assert len(clf.history_["loss"]) == clf.epochs and clf.model_ is not first


def test_auto_defaults_train_on_tiny_and_larger_images():
    """The "auto" defaults build and train end to end on 8x8 and 28x28 images."""
    for size in (8, 28):
        X, y = make_blobs_images(40, n_classes=2, size=size)
        clf = CNNClassifier(filters=4, units=8, epochs=1, random_state=0).fit(X, y)
        assert clf.predict_proba(X).shape == (40, 2)
        assert clf.get_params()["padding"] == "auto" and clf.get_params()["random_shift"] == "auto"


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 100_000))
def test_auto_batch_size_gives_every_epoch_sixteen_steps_where_it_can(n):
    from skimgclf.model.training import auto_batch_size

    b = auto_batch_size("auto", n)
    assert 8 <= b <= 64 and b & (b - 1) == 0  # a power of two
    assert n // b >= 16 or b == 8  # at least 16 steps an epoch, where batches of 8 allow it
    assert b == 64 or n // (2 * b) < 16  # and no smaller than that needs
    assert n < 1024 or b == 64  # large data sets keep 64
    assert auto_batch_size(5, n) == 5  # a number is kept


def test_fit_records_the_batch_size_it_used():
    X, y = make_blobs_images(160, n_classes=2)
    clf = tiny(epochs=1, batch_size="auto").fit(X, y)
    assert clf.batch_size_ == 8 and clf.n_train_steps_ == 20  # 160 images: 20 steps of 8, not 3 of 64
    assert tiny(epochs=1, batch_size=32).fit(X, y).batch_size_ == 32


@pytest.mark.parametrize("channels", [1, 3])
def test_auto_defaults_follow_the_images(channels):
    """Colour: pooling between a block's two convolutions, label smoothing 0.1, 22 epochs;
    grayscale: the digit network, 10 epochs, plain cross-entropy."""
    X, y = make_blobs_images(24, size=8, channels=channels)
    clf = CNNClassifier(conv_blocks=2, units=8, random_state=0).fit(X, y)
    colour = channels == 3
    assert clf.epochs_ == len(clf.history_["loss"]) == (22 if colour else 10)
    kinds = [type(layer).__name__ for layer in clf.model_.layers
             if type(layer).__name__ in ("Conv2D", "MaxPooling2D")]
    convs = [layer.filters for layer in clf.model_.layers if type(layer).__name__ == "Conv2D"]
    if colour:
        assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D", "Conv2D", "MaxPooling2D", "Conv2D"]
        assert convs == [32, 32, 64, 64]
        assert clf.model_.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    else:
        assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D"]  # an 8x8 map trimmed to 6, pooled to 3: no more
        assert convs == [32, 64]
        assert clf.model_.loss == "sparse_categorical_crossentropy"
    explicit = CNNClassifier(conv_blocks=1, units=8, epochs=2, filters=8, pool_after=2, label_smoothing=0.0,
                             random_state=0).fit(X, y)
    assert explicit.epochs_ == len(explicit.history_["loss"]) == 2
    assert [type(layer).__name__ for layer in explicit.model_.layers if type(layer).__name__ in
            ("Conv2D", "MaxPooling2D")] == ["Conv2D"] * (2 if colour else 1) + ["MaxPooling2D"]


# ---------------------------------------- labels, and shapes at prediction time
def test_csv_single_class(tmp_path, images):
    path = tmp_path / "train.csv"
    path.write_text("id,label\n0,cat\n1,cat\n2,cat\n")
    df = pd.read_csv(path)
    with pytest.raises(ValueError, match=re.escape("y has only 1 class ('cat'); a classifier needs at least 2")):
        make_pipeline(gray_loader(images), small_cnn()).fit(df, df["label"])


def test_labels_mixing_text_and_numbers(images):
    with pytest.raises(ValueError, match=re.escape(
            "y mixes text labels and labels of type int (row 1: 1); use one type for all labels")):
        make_pipeline(gray_loader(images), small_cnn()).fit(["0", "1", "2"], np.array(["a", 1, "b"], dtype=object))


@pytest.mark.parametrize("shape", [(2, 9, 8, 1), (2, 8, 8, 3)])
def test_classifier_wrong_shape_names_both_shapes(blobs_pipeline, shape):
    clf = blobs_pipeline[0][-1]
    with pytest.raises(ValueError, match=re.escape(
            f"X has images of shape {shape[1:]} (height, width, channels), but CNNClassifier's network "
            "was trained on images of shape (8, 8, 1); load them with the same target_size and color_mode")):
        clf.predict(np.zeros(shape, np.float32))


@pytest.mark.parametrize("shape", [(3, 0, 8, 1), (3, 8, 0, 1), (3, 8, 8, 0), (3, 0, 0, 0)])
@pytest.mark.parametrize("method", ["fit", "predict", "predict_proba"])
def test_classifier_empty_image_dimension_is_a_clear_error(blobs_pipeline, shape, method):
    """Images with no rows, columns or channels never reach TensorFlow."""
    clf = blobs_pipeline[0][-1]
    X = np.zeros(shape, np.float32)
    call = (lambda: clone(clf).fit(X, [0, 1, 0])) if method == "fit" else (lambda: getattr(clf, method)(X))
    with pytest.raises(ValueError, match=re.escape(
            f"X has images of shape {shape[1:]} (height, width, channels), but every dimension must be "
            "at least 1")):
        call()


def test_classifier_3d_array_gets_a_hint(blobs_pipeline):
    with pytest.raises(ValueError, match=re.escape(
            "X must be a 4-D array (n_samples, height, width, channels); got 3-D shape (8, 8, 1). "
            "Reshape your data to (n_samples, height, width, channels). For a single image use "
            "X[np.newaxis]")):
        blobs_pipeline[0][-1].predict(np.zeros((8, 8, 1), np.float32))
