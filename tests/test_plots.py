"""The displays of skimgclf.plots on a real pipeline fitted on real PNG files, and their tables.

Labels are numeric-looking text ("0", "5", "10", "15"), as a CSV read with
``dtype=str`` gives them: every display orders them as numbers.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay as SklearnConfusionMatrixDisplay  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from conftest import make_blobs_images, write_images  # noqa: E402
from skimgclf import CNNClassifier, ImageFolderLoader  # noqa: E402
from skimgclf.plots import (  # noqa: E402
    ConfusionMatrixDisplay, TopLossesDisplay, TrainingHistoryDisplay, most_confused, sort_labels, top_losses)

NAMES = np.array(["0", "5", "10", "15"])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A pipeline fitted on 96 8x8 PNGs of 4 classes; the table of ids has 8 deliberately wrong labels."""
    root = tmp_path_factory.mktemp("plots")
    X, k = make_blobs_images(96, n_classes=4, seed=3)
    ids = [f"{i:03d}" for i in range(len(X))]
    write_images(root / "imgs", X[..., 0], ids=ids)
    df = pd.DataFrame({"id": ids, "label": NAMES[k]})
    pipe = make_pipeline(ImageFolderLoader(root / "imgs"),
                         CNNClassifier(conv_blocks=1, filters=8, units=16, epochs=6, validation_split=0.25,
                                       early_stopping=False, random_state=0, verbose=0))
    pipe.fit(df, df["label"])
    wrong = df.copy()
    flipped = np.arange(0, 96, 12)  # 8 rows labelled as the next class
    wrong.loc[flipped, "label"] = NAMES[(k[flipped] + 1) % 4]
    yield pipe, df, wrong, flipped
    plt.close("all")


def test_sort_labels_examples():
    assert sort_labels(["10", "2", "1", "2", "0"]).tolist() == ["0", "1", "2", "10"]
    assert sort_labels(["007", "10", "8"]).tolist() == ["007", "8", "10"]
    assert sort_labels(["-1.5", "2", "1e1"]).tolist() == ["-1.5", "2", "1e1"]
    assert sort_labels(["b10", "b2", "a"]).tolist() == ["a", "b10", "b2"]  # not all numbers: as text
    assert sort_labels(["nan", "1"]).tolist() == ["1", "nan"]  # "nan" is no number to sort by
    assert sort_labels(np.array([10, 2, 1])).tolist() == [1, 2, 10]
    assert sort_labels(np.array([10, 2, 1])).dtype.kind == "i"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-10**6, 10**6), min_size=1, max_size=40),
       st.lists(st.integers(0, 3), min_size=40, max_size=40))
def test_sort_labels_orders_numeric_text_as_numbers(values, zeros):
    """Any integers written as text, with or without leading zeros, come back in numeric order."""
    text = [("-" if v < 0 else "") + "0" * z + str(abs(v)) for v, z in zip(values, zeros)]
    out = sort_labels(text).tolist()
    assert sorted(out) == sorted(set(text))  # each distinct label once, unchanged
    keys = [(int(t), t) for t in out]
    assert keys == sorted(keys)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 60), st.integers(2, 6), st.integers(0, 20), st.integers(0, 2**32 - 1))
def test_top_losses_lists_the_mistakes_by_loss(n, n_classes, limit, seed):
    rng = np.random.default_rng(seed)
    classes = np.array([f"c{i}" for i in range(n_classes)], dtype=object)
    proba = rng.dirichlet(np.ones(n_classes), size=n)
    y = classes[rng.integers(0, n_classes, n)]
    table = top_losses(y, proba, classes, n=limit)
    pred = classes[proba.argmax(axis=1)]
    wrong = np.flatnonzero(pred != y)
    assert len(table) == min(limit, len(wrong))
    assert set(table["row"]) <= set(wrong)
    p_true = proba[np.arange(n), [list(classes).index(v) for v in y]]
    np.testing.assert_allclose(table["true_probability"], p_true[table["row"]])
    np.testing.assert_allclose(table["probability"], proba.max(axis=1)[table["row"]])
    assert (np.diff(table["loss"].to_numpy()) <= 0).all()
    if len(table) and len(table) < len(wrong):  # nothing left out is worse than what is listed
        rest = np.setdiff1d(wrong, table["row"])
        assert p_true[rest].min() >= table["true_probability"].max() - 1e-12
    assert (table["true"].to_numpy() == y[table["row"]]).all()
    assert (table["predicted"].to_numpy() == pred[table["row"]]).all()


def test_top_losses_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"y_proba has shape \(2, 3\); expected"):
        top_losses(["a", "b"], np.ones((2, 3)) / 3, ["a", "b"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["1", "2", "10"]), st.sampled_from(["1", "2", "10"])),
                min_size=1, max_size=60))
def test_most_confused_counts_every_mistake(pairs):
    y_true, y_pred = zip(*pairs)
    listed = most_confused(y_true, y_pred, n=100)
    n_wrong = sum(t != p for t, p in pairs)
    assert sum(p["count"] for p in listed) == n_wrong
    counts = [p["count"] for p in listed]
    assert counts == sorted(counts, reverse=True)
    for p in listed:
        assert p["true"] != p["predicted"]
        assert p["fraction"] == pytest.approx(p["count"] / y_true.count(p["true"]))


def test_confusion_matrix_display_orders_numeric_labels(fitted):
    pipe, df, _, _ = fitted
    display = ConfusionMatrixDisplay.from_estimator(pipe, df, df["label"])
    assert list(display.display_labels) == ["0", "5", "10", "15"]
    expected = confusion_matrix(df["label"], pipe.predict(df), labels=["0", "5", "10", "15"])
    np.testing.assert_array_equal(display.confusion_matrix, expected)
    assert [t.get_text() for t in display.ax_.get_xticklabels()] == ["0", "5", "10", "15"]
    # scikit-learn's own orders the same text labels as text.
    theirs = SklearnConfusionMatrixDisplay.from_estimator(pipe, df, df["label"])
    assert list(theirs.display_labels) == ["0", "10", "15", "5"]
    # Labels given by the user win.
    mine = ConfusionMatrixDisplay.from_predictions(df["label"], df["label"], labels=["15", "0", "5", "10"])
    assert list(mine.display_labels) == ["15", "0", "5", "10"]


def test_history_display_from_estimator(fitted):
    pipe, _, _, _ = fitted
    history = pipe[-1].history_
    display = TrainingHistoryDisplay.from_estimator(pipe)
    assert set(display.lines_) == {"loss", "val_loss", "accuracy", "val_accuracy"}
    for key, line in display.lines_.items():
        np.testing.assert_allclose(line.get_ydata(), history[key])
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, len(history[key]) + 1))
    assert [ax.get_title() for ax in display.axes_] == ["loss", "accuracy"]
    assert display.figure_ is display.ax_.figure
    # Into the user's own axes; one metric.
    fig, ax = plt.subplots()
    one = TrainingHistoryDisplay.from_estimator(pipe[-1], metrics="val_accuracy", ax=ax)
    assert one.ax_ is ax and one.figure_ is fig and set(one.lines_) == {"val_accuracy"}
    with pytest.raises(ValueError, match="ax holds 1 Axes for 2 metrics"):
        TrainingHistoryDisplay.from_estimator(pipe, ax=ax)
    with pytest.raises(ValueError, match="holds no 'auc'"):
        TrainingHistoryDisplay.from_estimator(pipe, metrics=["auc"])
    with pytest.raises(ValueError, match="no history_: fit it first"):
        TrainingHistoryDisplay.from_estimator(CNNClassifier())


def test_top_losses_display_shows_the_worst_mistakes(fitted):
    pipe, _, wrong, flipped = fitted
    display = TopLossesDisplay.from_estimator(pipe, wrong, wrong["label"], n_images=5, ncols=3)
    proba = pipe.predict_proba(wrong)
    expected = top_losses(wrong["label"], proba, pipe.classes_, n=5)
    pd.testing.assert_frame_equal(display.table_, expected)
    assert len(expected) == 5 and set(expected["row"]) <= set(flipped)  # the deliberately wrong labels
    # Each tile shows the loader's image of its row, titled true -> predicted and both probabilities.
    images = pipe[0].transform(wrong.iloc[expected["row"]])
    assert display.axes_.size == 6 and not display.axes_[5].get_images()
    for tile, image, row in zip(display.axes_, images, expected.itertuples()):
        np.testing.assert_allclose(tile.get_images()[0].get_array(), image[..., 0], atol=1e-6)
        assert tile.get_title() == (f"{row.true} → {row.predicted}\n"
                                    f"true {row.true_probability:.0%} · pred {row.probability:.0%}")
    # The same from the probabilities and the images.
    X = pipe[0].transform(wrong)
    again = TopLossesDisplay.from_predictions(wrong["label"], proba, X, classes=pipe.classes_, n_images=5)
    pd.testing.assert_frame_equal(again.table_, expected)
    # The classifier alone takes the images.
    alone = TopLossesDisplay.from_estimator(pipe[-1], X, wrong["label"], n_images=5)
    pd.testing.assert_frame_equal(alone.table_, expected)


def test_top_losses_tiles_show_the_number_their_order_follows():
    """A 28 % guess against a 5 % true label is worse than a 90 % one against 10 %: the tiles say why."""
    classes = [f"c{i}" for i in range(10)]
    sure = np.array([0.10, 0.90] + [0.0] * 8)  # true c0 at 10 %, c1 predicted at 90 %
    unsure = np.array([0.05, 0.28] + [0.67 / 8] * 8)  # true c0 at 5 %, c1 predicted at 28 %
    display = TopLossesDisplay.from_predictions(["c0", "c0"], np.stack([sure, unsure]), np.zeros((2, 4, 4, 1)),
                                                classes=classes)
    assert display.table_["row"].tolist() == [1, 0]  # the lower probability of the true label first
    titles = [tile.get_title().split("\n")[1] for tile in display.axes_[:2]]
    assert titles == ["true 5% · pred 28%", "true 10% · pred 90%"]
    assert "lowest probability of the true label first" in display.legend()
    plt.close("all")


def test_top_losses_display_with_no_mistakes(fitted):
    pipe, df, _, _ = fitted
    y = pipe.predict(df)  # the model's own answers: nothing is wrong
    display = TopLossesDisplay.from_estimator(pipe, df, y)
    assert len(display.table_) == 0
    assert display.ax_.texts[0].get_text() == "no misclassified images"


def test_displayable_scales():
    """Images of the loader's three scales all show as 0..1."""
    from skimgclf.plots import _displayable

    unit = np.linspace(0, 1, 16, dtype=np.float32).reshape(1, 4, 4, 1)
    np.testing.assert_allclose(_displayable(unit), unit)
    np.testing.assert_allclose(_displayable(unit * 2 - 1), unit, atol=1e-6)
    np.testing.assert_allclose(_displayable(unit * 255), unit, atol=1e-6)


def test_top_losses_refuses_labels_of_another_type():
    proba = np.array([[0.9, 0.1], [0.1, 0.9]])
    with pytest.raises(ValueError, match=r"not among the classes \['0', '1'\]: \[0, 1\]"):
        top_losses([0, 1], proba, ["0", "1"])
    # In a report, a class the model never saw is a mistake like any other.
    table = top_losses(["0", "2"], proba, ["0", "1"], unseen="include")
    assert table["row"].tolist() == [1] and table["true_probability"].tolist() == [0.0]


def test_top_losses_display_checks_image_shapes():
    proba = np.array([[0.2, 0.8]])
    display = TopLossesDisplay.from_predictions(["a"], proba, np.zeros((1, 6, 6)), classes=["a", "b"])
    assert display.ax_.get_images()[0].get_array().shape == (6, 6)
    with pytest.raises(ValueError, match=r"images must have shape .* got \(1, 6, 6, 2\)"):
        TopLossesDisplay.from_predictions(["a"], proba, np.zeros((1, 6, 6, 2)), classes=["a", "b"])
    plt.close("all")
