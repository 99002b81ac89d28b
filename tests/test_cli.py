"""The ``skimgclf`` command line, driven in real subprocesses on real files.

One small model is trained once per module (``trained``) and shared; every
other command runs against it. Networks are tiny (1 block of 8 filters, 3
epochs) on scikit-learn's 8x8 digits.
"""

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import skimgclf
from skimgclf import ModelFileError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SMALL_NET = ["--conv-blocks", "1", "--filters", "8", "--units", "16", "--batch-size", "32", "--no-augment"]


def run_cli(*args, cwd=None, timeout=300):
    """Run ``python -m skimgclf ARGS`` and return the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "skimgclf", *(os.fspath(a) for a in args)],
        capture_output=True, text=True, cwd=cwd, timeout=timeout,
    )


def assert_ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr


def assert_one_line_error(result, *fragments):
    """A failed command: non-zero exit, exactly one 'skimgclf: error:' line on stderr."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("skimgclf: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def assert_png(path, min_side=200):
    path = Path(path)
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG" and min(img.size) >= min_side, img.size


def manifest(model_path):
    """The JSON manifest of a skimgclf model file (read without loading the network)."""
    with zipfile.ZipFile(model_path) as zf:
        return json.loads(zf.read("skimgclf.json"))


def step_params(model_path, step):
    steps = dict(manifest(model_path)["estimator"]["steps"])
    return {k: (tuple(v["__tuple__"]) if isinstance(v, dict) and "__tuple__" in v else v)
            for k, v in steps[step]["params"].items()}


# ----------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def trained(digits_layout, tmp_path_factory):
    """`skimgclf train` on the digits with a report: (result, model path, report folder)."""
    out = tmp_path_factory.mktemp("cli-train")
    model, report = out / "models" / "digits.skimgclf", out / "report"
    result = run_cli("train", digits_layout["train_csv"], "--model", model, "--report", report,
                     "--epochs", "3", *SMALL_NET, "--quiet")
    assert_ok(result)
    return result, model, report


@pytest.fixture(scope="module")
def test_predictions(trained, digits_layout, tmp_path_factory):
    """`skimgclf predict` of the digits test CSV with the shared model (image folder by default)."""
    out = tmp_path_factory.mktemp("cli-predict") / "predictions.csv"
    result = run_cli("predict", trained[1], digits_layout["test_csv"], "--out", out, "--quiet")
    assert_ok(result)
    return result, out


@pytest.fixture(scope="module")
def small_train_csv(digits_layout, tmp_path_factory):
    """The first 200 labelled digits, for the grid searches (images stay in train/)."""
    path = tmp_path_factory.mktemp("cli-small") / "small.csv"
    pd.read_csv(digits_layout["train_csv"], dtype=str).head(200).to_csv(path, index=False)
    return path


# ------------------------------------------------------------------ train
def test_train_writes_model_and_prints_validation_accuracy(trained, digits_layout):
    result, model, _ = trained
    n_rows = len(pd.read_csv(digits_layout["train_csv"]))
    match = re.search(r"validation accuracy: (\d\.\d{4}) \((\d+)/(\d+) held-out images, predicted by a model "
                      r"trained on the other (\d+)\)", result.stdout)
    assert match, result.stdout
    accuracy, correct, n_val, n_other = (float(match.group(1)), *map(int, match.groups()[1:]))
    assert n_val == int(np.ceil(0.2 * n_rows)) and n_other == n_rows - n_val
    assert accuracy == pytest.approx(correct / n_val, abs=1e-4)
    assert accuracy > 0.5  # ten classes: chance is 0.1; three epochs learn much more
    # The model written is trained on every labelled row.
    assert f"model (trained on {n_rows} images) written to {model}" in result.stdout
    # A whole pipeline; the loader's settings decided at fit are stored with it.
    steps = dict(manifest(model)["estimator"]["steps"])
    assert list(steps) == ["imagefolderloader", "cnnclassifier"]
    loader = step_params(model, "imagefolderloader")
    assert (loader["suffix"], loader["color_mode"], loader["target_size"]) == (None, "auto", "auto")
    assert steps["imagefolderloader"]["fitted"] == {"color_mode": "grayscale", "target_size": {"__tuple__": [8, 8]}}
    net = step_params(model, "cnnclassifier")
    assert (net["epochs"], net["filters"], net["units"], net["random_shift"]) == (3, 8, 16, 0.0)
    assert net["warm_start"] is False  # the file keeps the recipe; the last epoch on all rows is history
    assert "close to chance" not in result.stdout  # ten classes learnt well: nothing to say


def test_train_report_files(trained, digits_layout):
    result, _, report = trained
    assert sorted(p.name for p in report.iterdir()) == ["confusion_matrix.png", "learning_curves.png",
                                                        "metrics.json"]
    assert_png(report / "learning_curves.png")
    assert_png(report / "confusion_matrix.png")
    metrics = json.loads((report / "metrics.json").read_text())
    printed = float(re.search(r"validation accuracy: (\S+)", result.stdout).group(1))
    assert metrics["validation_accuracy"] == pytest.approx(printed, abs=1e-4)
    # 3 epochs measured on 80 % of the rows, then a quarter more (1) on all of them: one network.
    assert metrics["refit"] == "continue"
    assert metrics["epochs_run"] == len(metrics["history"]["loss"]) == 3 + 1
    assert len(metrics["measuring_model"]["history"]["loss"]) == 3
    # --report watches the held-out rows while the measuring model trains (their curve), nothing more.
    assert len(metrics["history"]["val_loss"]) == len(metrics["measuring_model"]["history"]["val_loss"]) == 3
    # ...the same rows the printed accuracy is measured on (to bfloat16 rounding of training-time evaluation).
    assert metrics["history"]["val_accuracy"][-1] == pytest.approx(metrics["validation_accuracy"], abs=0.02)
    assert metrics["n_train"] == len(pd.read_csv(digits_layout["train_csv"]))
    assert metrics["classes"] == list(range(10))
    assert metrics["classification_report"]["accuracy"] == pytest.approx(metrics["validation_accuracy"])


@pytest.mark.parametrize("refit, plan, n_train, epochs", [
    ("no", "plan: train 2 epochs on 160 rows, measure accuracy on the 40 held out and write that model", 160, 2),
    ("scratch", "plan: train two models: 2 epochs on 160 rows to measure accuracy on the 40 held out, then 2 "
                "epochs on all 200 rows for the model file", 200, 2),
    ("continue", "plan: train 2 epochs on 160 rows and measure accuracy on the 40 held out, then 1 more epoch on "
                 "all 200 rows", 200, 3),
])
def test_train_says_its_plan_and_writes_the_model_it_announced(small_train_csv, digits_layout, tmp_path, refit,
                                                               plan, n_train, epochs):
    report = tmp_path / "report"
    result = run_cli("train", small_train_csv, "--images", Path(digits_layout["train_csv"]).parent / "train",
                     "--model", tmp_path / "m.skimgclf", "--epochs", "2", "--refit", refit, "--report", report,
                     *SMALL_NET)
    assert_ok(result)
    lines = result.stdout.splitlines()
    assert lines[1].startswith(plan), lines  # said before any training (after the loading settings)
    assert f"model (trained on {n_train} images)" in result.stdout
    metrics = json.loads((report / "metrics.json").read_text())
    assert (metrics["refit"], metrics["n_train"], metrics["epochs_run"]) == (refit, n_train, epochs)
    assert len(metrics["measuring_model"]["history"]["val_loss"]) == 2  # the held-out curve of the first model
    assert {"no": "trained 2 epochs on 160 images", "scratch": "trained 2 epochs on 200 images",
            "continue": "trained 2 epochs on 160 images, then 1 on all 200"}[refit] in result.stdout


def test_no_refit_is_refit_no(small_train_csv, digits_layout, tmp_path):
    result = run_cli("train", small_train_csv, "--images", Path(digits_layout["train_csv"]).parent / "train",
                     "--model", tmp_path / "m.skimgclf", "--epochs", "1", "--no-refit", *SMALL_NET)
    assert_ok(result)
    assert "write that model (the held-out rows are not trained on)" in result.stdout
    assert "model (trained on 160 images)" in result.stdout


def test_train_says_when_held_out_accuracy_is_close_to_chance(tmp_path):
    """Noise in two classes: the held-out accuracy is chance, and train says what usually helps."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "train"
    folder.mkdir()
    for i in range(100):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    pd.DataFrame({"id": range(100), "label": ["ant", "bee"] * 50}).to_csv(tmp_path / "train.csv", index=False)
    result = run_cli("train", tmp_path / "train.csv", "--model", tmp_path / "m.skimgclf", "--epochs", "1",
                     "--quiet", *SMALL_NET)
    assert_ok(result)
    assert re.search(r"note: 0\.\d{4} on 20 held-out images is close to chance: always answering '(ant|bee)' "
                     r"scores 0\.5000 on them, and 20 images measure accuracy only to about \+/-0\.\d\d\.",
                     result.stdout), result.stdout
    assert "--backbone mobilenet_v3_small" in result.stdout and "--backbone-weights FILE" in result.stdout


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=2, max_size=400).filter(lambda v: len(set(v)) > 1))
def test_chance_note_rule(labels):
    """Guessing the commonest class always gets the note; predicting every label right never does (from 30 on)."""
    from argparse import Namespace

    from skimgclf.cli.commands import _chance_note

    y = np.array(labels)
    commonest = np.full_like(y, np.bincount(y).argmax())
    assert _chance_note(Namespace(), y, commonest, 100, None) is not None
    perfect = _chance_note(Namespace(), y, y, 100, None)
    if len(y) >= 30 and np.bincount(y).max() / len(y) <= 0.8:
        assert perfect is None
    elif perfect is not None:
        assert "close to chance" in perfect


@pytest.mark.slow
def test_train_on_colour_photos_with_no_options_then_predict_them(tmp_path):
    """A folder of JPEG photos of many sizes: nothing to say, and the model is far above chance."""
    from skimgclf.datasets import make_sample_photos

    paths = make_sample_photos(tmp_path, n_images=160, max_side=160)
    model = tmp_path / "model.skimgclf"
    result = run_cli("train", paths["train_csv"], "--model", model, "--epochs", "6", cwd=tmp_path)
    assert_ok(result)
    size = re.search(r"images: .*train: rgb, (\d+)x(\d+) \(color mode and target size decided from the images\)",
                     result.stdout)
    assert size and max(map(int, size.groups())) <= 64, result.stdout  # photos up to 160 wide: capped
    accuracy = float(re.search(r"validation accuracy: (\S+)", result.stdout).group(1))
    assert accuracy > 0.7, result.stdout
    assert "model (trained on 120 images)" in result.stdout
    out = tmp_path / "pred.csv"
    assert_ok(run_cli("predict", model, paths["test_csv"], "--out", out, "--quiet"))
    predictions = pd.read_csv(out, dtype=str)
    truth = pd.read_csv(paths["test_labels_csv"], dtype=str)
    assert predictions["id"].tolist() == truth["id"].tolist()
    assert (predictions["label"] == truth["label"]).mean() > 0.7


def test_a_model_trained_on_pngs_predicts_a_folder_of_jpegs(trained, digits_layout, tmp_path):
    test = pd.read_csv(digits_layout["test_csv"], dtype=str).head(30)
    folder = tmp_path / "jpegs"
    folder.mkdir()
    for image_id in test["id"]:
        Image.open(Path(digits_layout["test_dir"]) / f"{image_id}.png").convert("RGB").save(
            folder / f"{image_id}.jpg", quality=95)
    csv = tmp_path / "test.csv"
    test.to_csv(csv, index=False)
    out = tmp_path / "pred.csv"
    result = run_cli("predict", trained[1], csv, "--images", folder, "--out", out, "--quiet")
    assert_ok(result)
    reference = pd.read_csv(run_cli_predictions(trained[1], digits_layout, test, tmp_path), dtype=str)
    agreement = (pd.read_csv(out, dtype=str)["label"] == reference["label"]).mean()
    assert agreement > 0.8  # the same digits, through JPEG compression and a colour round trip
    bad = run_cli("predict", trained[1], csv, "--images", folder, "--suffix", ".png", "--out", out)
    line = assert_one_line_error(bad, ".png does not exist", ".jpg exists: pass --suffix .jpg")
    assert "suffix=" not in line  # the command line's words, not the Python API's


def run_cli_predictions(model, digits_layout, table, tmp_path):
    csv, out = tmp_path / "png.csv", tmp_path / "png-pred.csv"
    table.to_csv(csv, index=False)
    assert_ok(run_cli("predict", model, csv, "--images", digits_layout["test_dir"], "--out", out, "--quiet"))
    return out


@pytest.mark.parametrize("command", ["train", "search", "predict", "evaluate"])
def test_a_folder_where_a_csv_is_expected_is_one_clear_error_before_the_model_is_read(command, tmp_path):
    (tmp_path / "train").mkdir()
    grid = tmp_path / "grid.json"
    grid.write_text('{"units": [8]}')
    argv = {"train": ["train", tmp_path / "train"], "search": ["search", tmp_path / "train", "--grid", grid],
            "predict": ["predict", tmp_path / "missing.skimgclf", tmp_path / "train"],
            "evaluate": ["evaluate", tmp_path / "missing.skimgclf", tmp_path / "train"]}[command]
    result = run_cli(*argv)
    assert_one_line_error(result, f"{tmp_path / 'train'}: a folder, not a CSV file")
    assert result.returncode == 1


def test_loaded_model_and_help_defaults_match_the_api(trained):
    """The file loads with skimgclf.load; --help shows CNNClassifier's real defaults."""
    import skimgclf
    from skimgclf.model.params import PARAMETERS

    pipe = skimgclf.load(trained[1])
    assert list(pipe[-1].classes_) == list(range(10))
    # the parameters as the CLI set them ("auto"), the settings fit decided from the 8x8 digits
    assert (pipe[0].color_mode, pipe[0].target_size) == ("auto", "auto")
    assert (pipe[0].color_mode_, pipe[0].target_size_) == ("grayscale", (8, 8))
    defaults = skimgclf.CNNClassifier().get_params()
    help_text = " ".join(run_cli("train", "--help").stdout.split()).split("network (CNNClassifier):", 1)[1]
    exposed = [p for p in PARAMETERS if p.cli]
    assert {p.name for p in exposed} >= {"epochs", "batch_size", "conv_blocks", "units", "learning_rate"}
    for p in exposed:
        entry = help_text.split(f" {p.cli} ", 1)[1].split(" --", 1)[0]
        assert entry.endswith(f"(default: {defaults[p.name]})"), (p.name, entry)


# ---------------------------------------------------------------- predict
def test_predict_keeps_ids_and_order(test_predictions, digits_layout):
    result, out = test_predictions
    text_in = Path(digits_layout["test_csv"]).read_text().splitlines()
    text_out = out.read_text().splitlines()
    assert text_out[0] == "id,label"
    assert [line.split(",")[0] for line in text_out[1:]] == text_in[1:]
    assert {line.split(",")[1] for line in text_out[1:]} <= {str(d) for d in range(10)}
    assert f"predictions for {len(text_in) - 1} images written to {out}" in result.stdout
    assert os.listdir(out.parent) == ["predictions.csv"]  # no temporary file left


def test_predict_text_ids_verbatim_in_chunks_with_proba(trained, test_predictions, digits_layout, tmp_path):
    """Zero-padded and number-like ids stay as written, in order, across chunks."""
    source = pd.read_csv(test_predictions[1], dtype=str)
    ids = ["007", "0013035", "1e5", "NA", "00", "12.0", "7"]
    picks = source.head(len(ids))
    folder = tmp_path / "imgs"
    folder.mkdir()
    for new_id, old_id in zip(ids, picks["id"]):
        (folder / f"{new_id}.png").write_bytes((Path(digits_layout["test_dir"]) / f"{old_id}.png").read_bytes())
    order = [3, 0, 6, 1, 5, 2, 4]
    csv = tmp_path / "ids.csv"
    csv.write_text("id\n" + "".join(f"{ids[i]}\n" for i in order))
    out = tmp_path / "out" / "pred.csv"
    result = run_cli("predict", trained[1], csv, "--images", folder, "--out", out, "--proba",
                     "--chunk-size", "2", "--quiet")
    assert_ok(result)
    lines = out.read_text().splitlines()
    header = lines[0].split(",")
    assert header == ["id", "label"] + [f"proba_{d}" for d in range(10)]
    rows = [line.split(",") for line in lines[1:]]
    assert [r[0] for r in rows] == [ids[i] for i in order]
    proba = np.array([[float(v) for v in r[2:]] for r in rows])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-4)
    assert [r[1] for r in rows] == [str(int(np.argmax(p))) for p in proba]
    # Same images, same labels as the whole-file prediction without chunks.
    assert [r[1] for r in rows] == [picks["label"].iloc[i] for i in order]


# --------------------------------------------------------------- evaluate
def test_evaluate_prints_report_and_draws_confusion(trained, test_predictions, digits_layout, tmp_path):
    report = tmp_path / "eval"
    confusion = tmp_path / "cm" / "test.png"
    # test_labels.csv finds test/ by itself (the seed layout).
    result = run_cli("evaluate", trained[1], digits_layout["test_labels_csv"], "--report", report,
                     "--confusion", confusion, "--quiet")
    assert_ok(result)
    truth = pd.read_csv(digits_layout["test_labels_csv"], dtype=str)
    predicted = pd.read_csv(test_predictions[1], dtype=str)
    expected = float(np.mean(truth["label"].to_numpy() == predicted["label"].to_numpy()))
    match = re.search(r"accuracy: (\d\.\d{4}) \((\d+)/(\d+) images", result.stdout)
    assert match and int(match.group(3)) == len(truth), result.stdout
    assert float(match.group(1)) == pytest.approx(expected, abs=1e-4)
    assert "precision" in result.stdout and "macro avg" in result.stdout
    assert "confusion matrix (rows: true label, columns: predicted)" in result.stdout
    assert_png(confusion)
    assert_png(report / "confusion_matrix.png")
    assert sorted(p.name for p in report.iterdir()) == ["confusion_matrix.png", "metrics.json", "top_losses.png"]
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(expected)
    assert metrics["n"] == len(truth)
    # The most confused pairs: every mistake of the predictions, counted.
    from collections import Counter

    wrong = truth["label"].to_numpy() != predicted["label"].to_numpy()
    assert wrong.sum() >= 3  # three epochs of a tiny network: some mistakes to show
    pairs = Counter(zip(truth["label"][wrong].astype(int), predicted["label"][wrong].astype(int)))
    listed = {(p["true"], p["predicted"]): p["count"] for p in metrics["most_confused"]}
    # the largest counts, each counted right (pairs tied at the cut-off in any order)
    assert all(pairs[pair] == count for pair, count in listed.items())
    assert [p["count"] for p in metrics["most_confused"]] == sorted(pairs.values(), reverse=True)[:len(listed)]
    first = metrics["most_confused"][0]
    assert f"  {first['true']} -> {first['predicted']}: {first['count']}" in result.stdout
    # The gallery's rows: mistakes of this CSV, named by id and line, most confident first.
    top = metrics["top_losses"]
    assert len(top) == min(12, int(wrong.sum()))
    for entry in top:
        row = entry["line"] - 2
        assert truth["id"][row] == entry["id"] and wrong[row]
        assert (entry["true"], entry["predicted"]) == (int(truth["label"][row]), int(predicted["label"][row]))
        assert entry["probability"] > entry["true_probability"]
    losses = [-np.log(e["true_probability"]) for e in top]
    assert losses == sorted(losses, reverse=True)
    assert_png(report / "top_losses.png", min_side=150)
    assert f"the {len(top)} most confident mistakes drawn in" in result.stdout


# ----------------------------------------------------------------- search
def _cv_results(path):
    return pd.read_csv(path)


@pytest.mark.slow
def test_search_with_json_grid(small_train_csv, digits_layout, tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"units": [8, 16], "cnnclassifier__conv_blocks": [1]}))
    model = tmp_path / "best.skimgclf"
    result = run_cli("search", small_train_csv, "--images", digits_layout["train_dir"], "--grid", grid,
                     "--cv", "2", "--epochs", "1", "--filters", "4", "--no-augment", "--model", model, "--quiet")
    assert_ok(result)
    assert "2 candidates x 2 folds" in result.stdout
    table = [line for line in result.stdout.splitlines() if "conv_blocks=1, units=" in line]
    assert len(table) == 3  # two ranked rows and the "best:" line
    ranks = [int(line.split()[0]) for line in table[:2]]
    assert ranks == sorted(ranks) and ranks[0] == 1
    cv = _cv_results(tmp_path / "cv_results.csv")
    assert sorted(cv["param_cnnclassifier__units"]) == [8, 16]
    assert {"mean_test_score", "std_test_score", "mean_fit_time", "rank_test_score"} <= set(cv.columns)
    best_units = int(cv.loc[cv["rank_test_score"].idxmin(), "param_cnnclassifier__units"])
    assert step_params(model, "cnnclassifier")["units"] == best_units
    assert f"best: conv_blocks=1, units={best_units}" in result.stdout


@pytest.mark.slow
def test_search_with_yaml_grid(small_train_csv, digits_layout, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("# one candidate\ncnnclassifier__dropout: [0.05]\nactivation: [elu]\n"
                    "imagefolderloader__target_size: [[6, 6]]\n")
    model, results = tmp_path / "m" / "best.skimgclf", tmp_path / "r" / "cv.csv"
    result = run_cli("search", small_train_csv, "--images", digits_layout["train_dir"], "--grid", grid,
                     "--cv", "2", "--epochs", "1", "--filters", "4", "--model", model, "--results", results,
                     "--quiet")
    assert_ok(result)
    assert len(_cv_results(results)) == 1
    net = step_params(model, "cnnclassifier")
    assert (net["dropout"], net["activation"], net["filters"]) == (0.05, "elu", 4)
    assert step_params(model, "imagefolderloader")["target_size"] == (6, 6)


@pytest.mark.slow
def test_search_refuses_to_choose_among_failed_candidates(small_train_csv, digits_layout, tmp_path):
    """A candidate that fails (here: training diverges) is an error naming it, never a NaN "best"."""
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"optimizer": ["sgd"], "learning_rate": [0.01, 1e9]}))
    model = tmp_path / "best.skimgclf"
    result = run_cli("search", small_train_csv, "--images", digits_layout["train_dir"], "--grid", grid,
                     "--cv", "2", "--epochs", "2", "--filters", "4", "--no-augment", "--model", model, "--quiet")
    line = assert_one_line_error(result, "1 of 2 candidates failed (", "learning_rate=1000000000.0",
                                 "diverged", "no model written")
    assert "learning_rate=0.01" not in line
    assert "nan" in result.stdout  # the ranked table shows the failed candidate's score
    assert not model.exists() and not (tmp_path / "cv_results.csv").exists()


# ------------------------------------------------------------------- demo
@pytest.mark.slow
def test_demo_runs_the_whole_flow(tmp_path):
    folder = tmp_path / "demo"
    # The default (15 epochs) reaches about 0.99; 4 epochs keep this test short
    # and still clear the bar by a wide margin.
    result = run_cli("demo", folder, "--quiet", "--epochs", "4")
    assert_ok(result)
    for command in ("train", "predict", "evaluate"):
        assert f"$ skimgclf {command} " in result.stdout
    accuracy = float(re.search(r"test accuracy (\d\.\d+)", result.stdout).group(1))
    assert accuracy > 0.9, result.stdout
    for name in ("train.csv", "test.csv", "test_labels.csv", "model.skimgclf", "predictions.csv"):
        assert (folder / name).is_file(), name
    for name in ("learning_curves.png", "confusion_matrix.png", "test_confusion_matrix.png"):
        assert_png(folder / "report" / name)
    test_ids = (folder / "test.csv").read_text().splitlines()[1:]
    assert [line.split(",")[0] for line in (folder / "predictions.csv").read_text().splitlines()[1:]] == test_ids


# ----------------------------------------------------------------- errors
def test_error_missing_csv(tmp_path):
    model = tmp_path / "m.skimgclf"
    result = run_cli("train", tmp_path / "nope.csv", "--model", model)
    assert_one_line_error(result, "nope.csv: no such file (training CSV)")
    assert result.returncode == 1
    assert list(tmp_path.iterdir()) == []


def test_error_missing_image_leaves_no_output(trained, digits_layout, tmp_path):
    test_ids = pd.read_csv(digits_layout["test_csv"], dtype=str)["id"].head(7).tolist()
    test_ids[5] = "999999"  # line 7 of the CSV, in the third chunk of two rows
    csv = tmp_path / "test.csv"
    csv.write_text("id\n" + "\n".join(test_ids) + "\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = run_cli("predict", trained[1], csv, "--images", digits_layout["test_dir"],
                     "--out", out_dir / "pred.csv", "--chunk-size", "2")
    line = assert_one_line_error(result, "no image for id '999999': no file 999999 or 999999.<image extension>")
    assert f"{csv} line 7:" in line
    assert list(out_dir.iterdir()) == []  # neither the output nor a temporary file


def test_error_bad_grid_file(small_train_csv, tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text('{"units": [8, 16}')
    result = run_cli("search", small_train_csv, "--grid", grid, "--model", tmp_path / "best.skimgclf")
    assert_one_line_error(result, "grid.json is not valid JSON")
    grid_yaml = tmp_path / "grid.yaml"
    grid_yaml.write_text("units: [8, 16\n")
    result = run_cli("search", small_train_csv, "--grid", grid_yaml, "--model", tmp_path / "best.skimgclf")
    assert_one_line_error(result, "grid.yaml is not valid YAML", "line 2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.json", "grid.yaml"]


def test_error_pickle_model_is_refused(digits_layout, tmp_path):
    import joblib

    model = tmp_path / "model.joblib"
    joblib.dump({"not": "a model"}, model)
    out = tmp_path / "pred.csv"
    result = run_cli("predict", model, digits_layout["test_csv"], "--out", out)
    assert_one_line_error(result, f"{model}: not a skimgclf model file", "looks like a pickle or joblib file",
                          "runs code from the file")
    assert not out.exists()


def test_error_usage_is_one_line(tmp_path):
    result = run_cli("train", "train.csv", "--epochs", "zero")
    assert_one_line_error(result, "--epochs", "skimgclf train --help")
    assert result.returncode == 2


# ------------------------------------------------------------------- help
@pytest.mark.parametrize("command", ["train", "predict", "evaluate", "search", "demo"])
def test_help_of_each_command_has_an_example(command):
    result = run_cli(command, "--help")
    assert_ok(result)
    assert result.stdout.startswith(f"usage: skimgclf {command}")
    assert re.search(rf"^examples:\n  skimgclf {command}", result.stdout, re.MULTILINE), result.stdout
    if command in ("train", "predict", "evaluate", "search"):
        assert "joblib and pickle files are not accepted" in result.stdout


def test_console_script_and_top_level_help():
    script = Path(sys.executable).with_name("skimgclf")
    if not script.exists():
        pytest.skip("the skimgclf console script is not installed in this environment")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert_ok(result)
    for command in ("train", "predict", "evaluate", "search", "demo"):
        assert command in result.stdout


# ------------------------------------------------------------------ for command-line users
def test_train_in_a_pipe_writes_a_line_per_epoch_with_the_time_left(small_train_csv, digits_layout, tmp_path):
    """Nobody watches a file or a pipe: no bar, a line per epoch (at most every few seconds) instead."""
    common = ["train", small_train_csv, "--images", digits_layout["train_dir"], "--epochs", "3", "--val-size",
              "0", *SMALL_NET]
    result = run_cli(*common, "--model", tmp_path / "m.skimgclf")
    assert_ok(result)
    lines = [line for line in result.stderr.splitlines() if line.startswith("training: ")]
    pattern = r"training: epoch ([123])/3, accuracy=\d\.\d{4}, loss=\d+\.\d{4}, (about .+ left|done in .+ s)"
    assert lines and all(re.fullmatch(pattern, line) for line in lines), result.stderr
    epochs = [int(re.fullmatch(pattern, line).group(1)) for line in lines]
    assert epochs[0] == 1 and epochs[-1] == 3 and epochs == sorted(set(epochs)), lines  # first and last always
    assert "left" in lines[0] and "done in" in lines[-1]
    assert "\r" not in result.stdout + result.stderr
    quiet = run_cli(*common, "--model", tmp_path / "q.skimgclf", "--quiet")
    assert_ok(quiet)
    assert "training: " not in quiet.stdout + quiet.stderr


def test_leading_zeros_lost_in_the_csv_are_told_in_the_command_lines_words(tmp_path):
    """The CLI reads ids as text: the CSV itself lost the zeros, and pandas advice would not help."""
    (tmp_path / "train").mkdir()
    for i in range(1, 5):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / "train" / f"00{i}.png")
    (tmp_path / "train.csv").write_text("id,label\n1,a\n2,b\n3,a\n4,b\n")
    result = run_cli("train", tmp_path / "train.csv", "--val-size", "0", "--model", tmp_path / "m.skimgclf")
    line = assert_one_line_error(result, "no image for id '1'", "the folder holds 001.png: the CSV itself lists "
                                 "the id without its leading zeros")
    assert "pandas" not in line and "dtype" not in line
    assert not (tmp_path / "m.skimgclf").exists()


def test_evaluate_on_a_csv_without_labels_points_to_predict(trained, digits_layout):
    result = run_cli("evaluate", trained[1], digits_layout["test_csv"])
    line = assert_one_line_error(result, "no column 'label' of true labels; the columns are ['id']",
                                 "to predict the labels of these images, run: skimgclf predict")
    assert str(trained[1]) in line and str(digits_layout["test_csv"]) in line


# ------------------------------------------------ tables: one reader everywhere
def _two_test_images(digits_layout):
    """Two test ids of different labels (the images differ)."""
    labels = pd.read_csv(digits_layout["test_labels_csv"], dtype=str)
    first = labels.iloc[0]
    other = labels[labels["label"] != first["label"]].iloc[0]
    return first["id"], other["id"]


@pytest.mark.parametrize("command", ["train", "search", "predict", "evaluate"])
def test_a_ragged_csv_is_refused_by_every_command_naming_its_line(command, trained, digits_layout, tmp_path):
    a, b = _two_test_images(digits_layout)
    csv = tmp_path / "t.csv"
    # pandas turned the first field into the index and went on with the wrong ids.
    csv.write_text(f"id,label\n{a},1\n\n{b},2\n{a},{b},3\n")
    out = tmp_path / "out"
    grid = tmp_path / "grid.json"
    grid.write_text('{"units": [8]}')
    args = {"train": ["train", csv, "--model", out / "m.skimgclf"],
            "search": ["search", csv, "--grid", grid, "--model", out / "m.skimgclf", "--cv", "2"],
            "predict": ["predict", trained[1], csv, "--out", out / "p.csv"],
            "evaluate": ["evaluate", trained[1], csv, "--report", out / "rep"]}[command]
    result = run_cli(*args, "--images", digits_layout["test_dir"])
    assert_one_line_error(result, f"{csv} line 5: 3 fields, but the header (line 1) has 2; a value that holds a "
                                  "comma must be quoted")
    assert not out.exists() or list(out.iterdir()) == []  # predict makes the --out folder first: left empty


def test_ids_are_read_verbatim_by_predict(trained, digits_layout, tmp_path):
    a, b = _two_test_images(digits_layout)
    images = tmp_path / "images"
    images.mkdir()
    source = Path(digits_layout["test_dir"])
    (images / " 7.png").write_bytes((source / f"{a}.png").read_bytes())
    (images / "7.png").write_bytes((source / f"{b}.png").read_bytes())
    (images / "copy.png").write_bytes((source / f"{a}.png").read_bytes())
    csv = tmp_path / "ids.csv"
    csv.write_text('id\n" 7.png"\n\n7.png\ncopy.png\n 7.png\n')
    out = tmp_path / "pred.csv"
    assert_ok(run_cli("predict", trained[1], csv, "--images", images, "--out", out, "--proba", "--quiet"))
    pred = pd.read_csv(out, dtype={"id": str}, keep_default_na=False)
    assert pred["id"].tolist() == [" 7.png", "7.png", "copy.png", " 7.png"]  # as read, spaces kept
    proba = pred.filter(like="proba_").to_numpy()
    np.testing.assert_array_equal(proba[0], proba[2])  # " 7.png" is its own file (a copy of it scores the same)
    np.testing.assert_array_equal(proba[0], proba[3])
    assert not np.array_equal(proba[0], proba[1])  # not 7.png, another image


def test_line_numbers_count_blank_lines_in_predict_and_evaluate(trained, digits_layout, tmp_path):
    a, b = _two_test_images(digits_layout)
    csv = tmp_path / "t.csv"
    csv.write_text(f"id\n{a}\n\n\n{b}\nmissing\n")
    out = tmp_path / "p.csv"
    result = run_cli("predict", trained[1], csv, "--images", digits_layout["test_dir"], "--out", out,
                     "--chunk-size", "2")
    assert_one_line_error(result, f"{csv} line 6: no image for id 'missing'")
    assert not out.exists()
    csv.write_text(f'id,label\n{a},1\n\n"{b}",\n', encoding="utf-8-sig")
    result = run_cli("evaluate", trained[1], csv, "--images", digits_layout["test_dir"])
    assert_one_line_error(result, f"{csv} line 4: the label is empty")
    csv.write_text(f"id,label\r\n{a},1\r\n\r\n{b},seven\r\n")
    result = run_cli("evaluate", trained[1], csv, "--images", digits_layout["test_dir"])
    assert_one_line_error(result, f"{csv} line 4: label 'seven' is not a number")


# ------------------------------------------------------------- writing
def _immutable(path, on):
    """Make a folder unwritable also for root (chattr +i), or writable again; False if chattr cannot."""
    result = subprocess.run(["chattr", "+i" if on else "-i", os.fspath(path)], capture_output=True)
    return result.returncode == 0


@pytest.fixture(params=["permissions", "read-only mount"])
def unwritable(request, tmp_path):
    """``(folder, run)``: a folder nobody may write in, and run_cli with it so.

    "permissions": ``chmod 555`` for an ordinary user; root ignores that, so
    for root the folder is made immutable (``chattr +i``: EPERM). "read-only
    mount": a read-only tmpfs mounted on it in a private mount namespace of
    the command (EROFS, the case reported), where ``unshare`` may.
    """
    folder = tmp_path / "locked"
    folder.mkdir()
    if request.param == "permissions":
        if os.geteuid() != 0:
            folder.chmod(0o555)
            request.addfinalizer(lambda: folder.chmod(0o755))
        elif _immutable(folder, True):
            request.addfinalizer(lambda: _immutable(folder, False))
        else:
            pytest.skip("running as root, and chattr +i is not permitted here: no folder is unwritable for root")
        return folder, run_cli
    wrap = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs -o ro tmpfs "$0" && exec "$@"', os.fspath(folder)]
    try:
        probe = subprocess.run(wrap + ["touch", os.fspath(folder / "x")], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        probe = None
    if probe is None or "Read-only file system" not in probe.stderr:
        pytest.skip("no private read-only mount here (unshare/mount not permitted)")

    def run(*args, timeout=300):
        return subprocess.run(wrap + [sys.executable, "-m", "skimgclf", *(os.fspath(a) for a in args)],
                              capture_output=True, text=True, timeout=timeout)

    return folder, run


@pytest.mark.parametrize("case", ["train --model", "train --report", "predict --out", "evaluate --report",
                                  "evaluate --confusion", "search --model", "search --results", "demo"])
def test_an_unwritable_output_fails_before_any_work_naming_it(case, unwritable, trained, digits_layout,
                                                             small_train_csv, tmp_path):
    folder, run = unwritable
    command, option = (case.split() + [None])[:2]
    target = folder / {"--model": "sub/m.skimgclf", "--report": "rep", "--out": "p.csv",
                       "--confusion": "c.png", "--results": "cv.csv", None: "demo"}[option]
    # Inputs that would fail later, had the output not been checked first: the check comes before any work
    # (train and demo would print before working: their standard output stays empty).
    grid = tmp_path / "grid.json"
    grid.write_text('{"units": [8, 16')
    junk = tmp_path / "junk.skimgclf"
    junk.write_bytes(b"not a model file")
    defaults = {"--model": tmp_path / "m.skimgclf", "--report": None, "--out": tmp_path / "p.csv",
                "--results": tmp_path / "cv.csv"}
    args = {"train": ["train", digits_layout["train_csv"], *SMALL_NET, "--epochs", "1"],
            "search": ["search", small_train_csv, "--grid", grid, "--images", digits_layout["train_dir"]],
            "predict": ["predict", junk, digits_layout["test_csv"]],
            "evaluate": ["evaluate", junk, digits_layout["test_labels_csv"], "--images",
                         digits_layout["test_dir"]],
            "demo": ["demo"]}[command]
    for name, value in defaults.items():
        if value is not None and name != option and name in {"train": ("--model",), "search": ("--model", "--results"),
                                                              "predict": ("--out",)}.get(command, ()):
            args += [name, value]
    args += [target] if option is None else [option, target]
    result = run(*args)
    assert_one_line_error(result, f"skimgclf: error: {target}: cannot write it (")
    assert result.returncode == 1
    assert result.stdout == ""  # nothing done: no "images: ..." line, no training, no model loaded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.json", "junk.skimgclf", "locked"]
    assert list(folder.iterdir()) == []


def _predict_to(stdout, trained, digits_layout, out, *extra):
    return subprocess.run([sys.executable, "-m", "skimgclf", "predict", os.fspath(trained[1]),
                           os.fspath(digits_layout["test_csv"]), "--out", os.fspath(out), *extra],
                          stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
@pytest.mark.parametrize("quiet", [[], ["--quiet"]])
def test_a_full_standard_output_is_named_and_leaves_no_predictions(quiet, trained, digits_layout, tmp_path):
    out = tmp_path / "pred.csv"
    with open("/dev/full", "w") as full:
        result = _predict_to(full, trained, digits_layout, out, *quiet)
    assert result.returncode == 1
    assert result.stderr == "skimgclf: error: standard output: No space left on device\n"
    assert list(tmp_path.iterdir()) == []  # neither the predictions nor a temporary file


def test_a_closed_pipe_on_standard_output_is_quiet(trained, digits_layout, tmp_path):
    read, write = os.pipe()
    os.close(read)  # the reader is gone, as in `skimgclf info --json | true`
    try:
        for args in (["info", "--json"], ["--help"], ["predict", "--help"]):
            result = subprocess.run([sys.executable, "-m", "skimgclf", *args], stdout=write,
                                    stderr=subprocess.PIPE, text=True, timeout=300)
            assert (result.returncode, result.stderr) == (141, ""), (args, result.stderr)
        out = tmp_path / "pred.csv"
        result = _predict_to(write, trained, digits_layout, out)
        assert (result.returncode, result.stderr) == (141, "")
        assert list(tmp_path.iterdir()) == []
    finally:
        os.close(write)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_info_to_a_full_standard_output_is_named():
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "skimgclf", "info"], stdout=full, stderr=subprocess.PIPE,
                                text=True, timeout=300)
    assert (result.returncode, result.stderr) == (1, "skimgclf: error: standard output: No space left on device\n")


def test_an_output_that_is_an_input_through_a_symbolic_link_is_refused(trained, digits_layout, tmp_path):
    link = tmp_path / "link.csv"
    link.symlink_to(digits_layout["test_csv"])
    before = Path(digits_layout["test_csv"]).read_bytes()
    result = run_cli("predict", trained[1], digits_layout["test_csv"], "--out", link)
    assert_one_line_error(result, f"{link}: --out is the input CSV {digits_layout['test_csv']} (the same file)")
    assert Path(digits_layout["test_csv"]).read_bytes() == before and link.is_symlink()


def test_ctrl_c_during_predict_exits_130_and_leaves_nothing(trained, digits_layout, tmp_path):
    import signal
    import time

    big = tmp_path / "big.csv"
    ids = pd.read_csv(digits_layout["test_csv"], dtype=str)["id"]
    pd.DataFrame({"id": np.tile(ids.to_numpy(), 200)}).to_csv(big, index=False)
    out = tmp_path / "out" / "pred.csv"
    out.parent.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "skimgclf", "predict", os.fspath(trained[1]), os.fspath(big),
                             "--images", os.fspath(digits_layout["test_dir"]), "--out", os.fspath(out),
                             "--chunk-size", "64", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not any(out.parent.iterdir()) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)  # until the temporary output exists: writing has begun
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "skimgclf: interrupted; no output file left half-written"
    assert list(out.parent.iterdir()) == []


# -------------------------------------------------------------- command line
def _cli(*args, timeout=300, **kwargs):
    return subprocess.run([sys.executable, "-m", "skimgclf", *(os.fspath(a) for a in args)],
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def _error_line(result):
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skimgclf: error: "), result.stderr
    return lines[0][len("skimgclf: error: "):]


@pytest.fixture
def scored(pipeline_file, tmp_path):
    """A CSV of ids beside a copy of the model: (csv, model file, image folder)."""
    csv = tmp_path / "test.csv"
    pd.DataFrame({"id": pipeline_file[2]}).to_csv(csv, index=False)
    copy = tmp_path / "model.skimgclf"
    copy.write_bytes(Path(pipeline_file[0]).read_bytes())
    return csv, copy, pipeline_file[1]


def test_outputs_that_are_inputs_are_refused(scored, tmp_path):
    csv, model_file, images = scored
    kept = {p: p.read_bytes() for p in (csv, model_file)}
    link = tmp_path / "hard-link-to-model"
    os.link(model_file, link)
    for out, what in ((model_file, "model file"), (link, "model file"), (csv, "input CSV")):
        message = _error_line(_cli("predict", model_file, csv, "--images", images, "--out", out))
        assert message.startswith(f"{out}: --out is the {what}") and "choose another file" in message
    image = images / "0.png"
    before = image.read_bytes()
    message = _error_line(_cli("predict", model_file, csv, "--images", images, "--out", image))
    assert message.startswith(f"{image}: --out is inside the image folder {images}")
    message = _error_line(_cli("train", csv, "--images", images, "--model", csv))
    assert message.startswith(f"{csv}: --model is the training CSV")
    assert {p: p.read_bytes() for p in kept} == kept and image.read_bytes() == before


def test_sigterm_during_predict_leaves_nothing(scored, tmp_path):
    csv, model_file, images = scored
    big = tmp_path / "big.csv"
    pd.DataFrame({"id": np.tile(np.asarray(pd.read_csv(csv, dtype=str)["id"]), 2000)}).to_csv(big, index=False)
    out = tmp_path / "out" / "pred.csv"
    out.parent.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "skimgclf", "predict", model_file, big, "--images", images,
                             "--out", out, "--chunk-size", "64", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not any(out.parent.iterdir()) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)  # until the temporary output exists: writing has begun
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM); no output file left half-written" in err
    assert list(out.parent.iterdir()) == []


def test_a_full_disk_names_the_output_file(scored, tmp_path):
    csv, model_file, images = scored
    big = tmp_path / "big.csv"
    pd.DataFrame({"id": np.tile(np.asarray(pd.read_csv(csv, dtype=str)["id"]), 500)}).to_csv(big, index=False)
    out = tmp_path / "pred.csv"

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))

    message = _error_line(_cli("predict", model_file, big, "--images", images, "--out", out,
                               preexec_fn=small_disk))
    assert message.startswith(f"{out}: cannot write it (File too large); nothing was written"), message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv", "model.skimgclf", "test.csv"]


def test_a_truncated_model_file_gets_the_same_message_from_the_cli_and_the_api(scored, tmp_path):
    csv, model_file, images = scored
    cut = tmp_path / "cut.skimgclf"
    cut.write_bytes(model_file.read_bytes()[:1000])
    with pytest.raises(ModelFileError) as info:
        skimgclf.load(cut)
    assert _error_line(_cli("predict", cut, csv, "--images", images, "--out", tmp_path / "p.csv")) == str(info.value)


def test_models_and_predictions_get_the_same_permissions(scored, tmp_path):
    csv, model_file, images = scored
    out = tmp_path / "p.csv"
    result = _cli("predict", model_file, csv, "--images", images, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    saved = skimgclf.save(skimgclf.load(model_file), tmp_path / "again.skimgclf")
    umask = os.umask(0)
    os.umask(umask)
    assert (out.stat().st_mode & 0o777) == (Path(saved).stat().st_mode & 0o777) == 0o666 & ~umask


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_csv_with_only_a_header_is_named(scored, tmp_path, command):
    _, model_file, images = scored
    csv = tmp_path / "header-only.csv"
    csv.write_text("id,label\n")
    extra = ["--out", tmp_path / "p.csv"] if command == "predict" else []
    assert _error_line(_cli(command, model_file, csv, "--images", images, *extra)) == \
        f"{csv}: the table has a header but no rows"


def test_cli_help_warns_that_joblib_files_run_code(capsys):
    cli = pytest.importorskip("skimgclf.cli")
    from skimgclf.cli.parser import MODEL_FILES_HELP

    # The warning's meaning (docs/security.rst): joblib and pickle files are refused, for loading one runs
    # code; a model of one's own is re-saved with skimgclf.save. Its wording is the parser's to choose.
    warning = " ".join(MODEL_FILES_HELP.split())
    for phrase in ("joblib", "pickle", "not accepted", "code", "skimgclf.save"):
        assert phrase in warning, phrase
    for name in ("train", "predict", "evaluate"):  # the help each command prints, as a user asks for it
        with pytest.raises(SystemExit) as exited:
            cli.build_parser().parse_args([name, "--help"])
        assert exited.value.code == 0
        assert warning in " ".join(capsys.readouterr().out.split()), name
