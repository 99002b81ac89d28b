"""Where users work: a real Jupyter notebook executed by a real kernel (nbclient + ipykernel).

Progress bars are notebook widgets there (loading, training with the latest
metrics, prediction), plots show inline, and TensorFlow's C++ start-up
lines stay out of the cells. Outside a notebook, in a pipe (logs, CI), the
same code draws no bar; ``verbose=2`` prints one line per epoch.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from conftest import make_blobs_images, write_images

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("ipywidgets")

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """60 small colour PNGs of 3 classes with numeric-looking text labels, and their table."""
    root = tmp_path_factory.mktemp("notebook")
    X, k = make_blobs_images(60, size=12, channels=3, n_classes=3, seed=1)
    ids = write_images(root / "imgs", X, ids=[f"{i:03d}" for i in range(60)])
    pd.DataFrame({"id": ids, "label": np.array(["2", "10", "1"])[k]}).to_csv(root / "train.csv", index=False)
    return root


CELLS = [
    # 0: loading; bars appear at once here, not after a second, so that a small job shows them
    """
    import pandas as pd
    import skimgclf._progress
    from skimgclf import CNNClassifier, ImageFolderLoader
    skimgclf._progress.DELAY = 0.0
    train = pd.read_csv("train.csv", dtype=str)
    X = ImageFolderLoader("imgs").fit_transform(train)
    print(X.shape)
    """,
    # 1: training, default verbose
    """
    clf = CNNClassifier(conv_blocks=1, filters=8, units=16, epochs=3, random_state=0)
    clf.fit(X, train["label"])
    """,
    # 2: prediction
    """
    proba = clf.predict_proba(X)
    """,
    # 3: learning curves, inline
    """
    from skimgclf.plots import ConfusionMatrixDisplay, TopLossesDisplay, TrainingHistoryDisplay
    TrainingHistoryDisplay.from_estimator(clf);
    """,
    # 4: the confusion matrix, numeric-looking labels as numbers
    """
    cm = ConfusionMatrixDisplay.from_estimator(clf, X, train["label"])
    print(list(cm.display_labels))
    """,
    # 5: the gallery of mistakes (labels shifted so that there are some)
    """
    shifted = train["label"].map({"1": "2", "2": "10", "10": "1"})
    TopLossesDisplay.from_estimator(clf, X, shifted, n_images=6);
    """,
]


def _run_notebook(folder):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(c).strip()) for c in CELLS])
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(folder)}})
    client.execute()
    return nb


def _widget_texts(nb):
    """The final text of every progress bar: tqdm's HTML widgets (description, then counts and postfix)."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    return [model["state"].get("value", "") for model in state.values() if model["model_name"] == "HTMLModel"]


def _displayed_bars(cell):
    return [o for o in cell.outputs if o.output_type == "display_data" and WIDGET_VIEW in o.get("data", {})]


def _streams(cell, name):
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == name)


@pytest.mark.slow
def test_notebook_shows_widgets_and_inline_plots(photos):
    nb = _run_notebook(photos)
    cells = nb.cells
    assert _streams(cells[0], "stdout").strip() == "(60, 12, 12, 3)"
    # One bar widget per step, each labelled.
    for index, label in ((0, "loading images"), (1, "training"), (2, "predicting")):
        bars = _displayed_bars(cells[index])
        assert len(bars) == 1, (index, cells[index].outputs)
        assert bars[0]["data"]["text/plain"].startswith(label), bars[0]["data"]["text/plain"]
    texts = _widget_texts(nb)
    # The training bar ended at 3/3 epochs with the latest metrics as its postfix.
    assert any("3/3" in t and "loss=" in t and "accuracy=" in t for t in texts), texts
    assert any("loading" in t for t in texts) and any("predicting" in t for t in texts), texts
    # Plots show inline, as PNG images.
    for index in (3, 4, 5):
        images = [o for o in cells[index].outputs if "image/png" in o.get("data", {})]
        assert len(images) == 1, (index, cells[index].outputs)
    assert _streams(cells[4], "stdout").strip() == "['1', '2', '10']"
    # TensorFlow's C++ start-up lines and text bars stay out of every cell.
    for cell in cells:
        err = _streams(cell, "stderr")
        assert "oneDNN" not in err and "absl" not in err and "\r" not in err, err


SCRIPT = """
import sys
import pandas as pd
from skimgclf import CNNClassifier, ImageFolderLoader
train = pd.read_csv("train.csv", dtype=str)
X = ImageFolderLoader("imgs", verbose=1).fit_transform(train)
clf = CNNClassifier(conv_blocks=1, filters=8, units=16, epochs=2, random_state=0, verbose=int(sys.argv[1]))
clf.fit(X, train["label"]).predict_proba(X)
"""


@pytest.mark.parametrize("verbose", [1, 2])
def test_plain_logs_get_no_bars(photos, verbose):
    """Output to a pipe (a log, CI): no bar at all; verbose=2 is one line per epoch."""
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(verbose)], cwd=photos, capture_output=True,
                            text=True, timeout=300, env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr
    both = result.stdout + result.stderr
    assert "\r" not in both and "training" not in both and "loading images" not in both, both
    epochs = [line for line in result.stdout.splitlines() if line.startswith("Epoch ")]
    assert epochs == ([] if verbose == 1 else ["Epoch 1/2", "Epoch 2/2"]), result.stdout
    if verbose == 1:
        assert result.stdout == "", result.stdout


def test_a_training_bar_stopped_early_closes_as_complete(monkeypatch):
    """Early stopping ends before the planned epochs: the bar ends at what ran (a notebook paints short bars red)."""
    import skimgclf._progress as progress
    from skimgclf.model.training import EpochBar

    monkeypatch.setattr(progress, "interactive", lambda: True)
    shown = EpochBar(10)
    for epoch in range(4):
        shown.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1)})
    shown.on_train_end()
    assert (shown.bar.n, shown.bar.total) == (4, 4)
    assert shown.bar.postfix == "loss=0.2500"
    shown.close()  # again, as the classifier's finally does: harmless


@pytest.mark.slow
def test_a_notebook_without_ipywidgets_gets_text_bars_and_no_tqdm_warning(photos):
    """No ipywidgets in the kernel: text bars, and no "TqdmWarning: IProgress not found" in the cell."""
    cells = ["import sys\nsys.modules['ipywidgets'] = None  # as if it were not installed", CELLS[0], CELLS[1]]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(c).strip()) for c in cells])
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(photos)}}).execute()
    err = "".join(_streams(cell, "stderr") for cell in nb.cells)
    assert "IProgress" not in err and "TqdmWarning" not in err, err
    assert "training" in _streams(nb.cells[2], "stderr") and "3/3" in err, err  # tqdm's text bar, in the cell
    assert not any(_displayed_bars(cell) for cell in nb.cells)

