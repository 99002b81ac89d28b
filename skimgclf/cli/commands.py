"""The ``skimgclf`` command line: train, predict, evaluate, search, demo.

A thin layer over the public API: each sub-command reads its files, builds a
``Pipeline(ImageFolderLoader, CNNClassifier)`` from plain options, and calls
``fit`` / ``predict_proba`` / :func:`skimgclf.save` / :func:`skimgclf.load`.
Nothing here is machine learning, and nothing named on the command line is
ever imported: options are numbers and words, grids are JSON or YAML data.

Run ``skimgclf --help`` or ``python -m skimgclf --help``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shlex
import sys
import signal
import time

import numpy as np

from .._backend import import_backend
from .._files import atomic_write, check_writable
from .._pipelines import chunk_loader
from .._progress import bar, interactive, lines_when_unwatched
from ..errors import (CLIError, InputError, SkimgclfError, StreamError, TableError, Terminated, UsageError,
                      speaking_cli)
from ..io.tables import RowLines, count_rows, default_image_dir, iter_table, labels_from_text, read_table
from .parser import PROG, build_parser, option_names

__all__ = ["main"]


# --------------------------------------------------------------------- output
class _Console:
    """Where messages go: results always, chatter and bars unless --quiet."""

    def __init__(self, quiet):
        self.quiet = bool(quiet)
        self.bars = not self.quiet and interactive()

    def info(self, message=""):
        if not self.quiet:
            print(message, flush=True)

    def result(self, message=""):
        print(message, flush=True)

    def progress(self, **kwargs):
        return bar(show=self.bars, file=sys.stderr, dynamic_ncols=True, **kwargs)


@contextlib.contextmanager
def _dask_client(args, image_dirs):
    """A Dask client if --dask-scheduler or --dask-local was given, else None."""
    if args.dask_scheduler is None and args.dask_local is None:
        yield None
        return
    from ..cluster import client_for

    # Task failures come back as one-line errors; the workers' own logs are not shown
    # (SKIMGCLF_TRACEBACK=1 shows them).
    quiet = not os.environ.get("SKIMGCLF_TRACEBACK")
    with client_for(args.dask_scheduler, args.dask_local, image_dirs=image_dirs, quiet=quiet) as client:
        yield client


# -------------------------------------------------------------- file helpers
def _check_file_out(path, option):
    """Refuse, before any work, an output path that is a folder, whose folder cannot be, or that cannot be written."""
    if os.path.isdir(path):
        raise CLIError(f"{option} {path} is a folder; give a file name")
    parent = os.path.dirname(os.path.abspath(path))
    probe = parent
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise CLIError(f"{option} {path}: {probe} is a file, not a folder")
    check_writable(path)  # "<path>: cannot write it (Read-only file system); nothing was written"


def _refuse_overwriting_inputs(outputs, files=(), image_dirs=()):
    """Refuse an output that is one of the command's inputs, or lies among its images.

    Parameters
    ----------
    outputs : list of (str or None, str)
        ``(path, option)`` of each file the command would write (None: not written).
    files : list of (str or None, str)
        ``(path, what)`` of each input file: the same file (also through a
        hard or symbolic link) is refused as an output.
    image_dirs : list of str
        Image folders: nothing is written inside them.
    """
    folders = [(d, os.path.realpath(d)) for d in image_dirs if d]
    for out, option in outputs:
        if out is None:
            continue
        real = os.path.realpath(out)
        for shown, folder in folders:
            if real == folder or real.startswith(folder.rstrip(os.sep) + os.sep):
                raise CLIError(f"{out}: {option} is inside the image folder {shown}; outputs are never "
                               "written among the images, choose another place")
        if not os.path.exists(out):
            continue
        for path, what in files:
            if path is not None and os.path.exists(path) and os.path.samefile(out, path):
                raise CLIError(f"{out}: {option} is the {what} {path} (the same file); writing it would "
                               "destroy the input, choose another file")


def _report_files(folder, names):
    """``(path, option)`` of the files a report folder will hold (none without --report)."""
    return [(os.path.join(folder, name), "--report") for name in names] if folder else []


def _check_dir_out(path, option):
    """Refuse, before any work, an output folder that is a file or cannot be written in."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise CLIError(f"{option} {path} exists and is not a folder")
    check_writable(path, folder=True)


def _makedirs_for(path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def _image_dir(args, csv_path):
    if args.images:
        if not os.path.isdir(args.images):
            raise CLIError(f"image folder not found: {args.images}")
        return args.images
    return default_image_dir(csv_path)


def _image_dir_if_any(args, csv_path):
    """The image folder, or None where it cannot be found yet (reported later, in the command's order)."""
    try:
        return _image_dir(args, csv_path)
    except (CLIError, ValueError, OSError):
        return None


def _network_kwargs(args):
    from ..model.params import PARAMETERS

    kwargs = {p.name: getattr(args, f"net_{p.name}") for p in PARAMETERS
              if p.cli is not None and getattr(args, f"net_{p.name}") is not None}
    kwargs["validation_split"] = args.net_validation_split
    if args.net_backbone_weights is not None and args.net_backbone is None:
        raise CLIError("--backbone-weights needs --backbone (the network it is the weights of)")
    if args.net_backbone is not None:
        kwargs["backbone"] = args.net_backbone
        weights = args.net_backbone_weights
        if weights is not None:
            kwargs["backbone_weights"] = (None if weights.lower() == "none" else
                                          "imagenet" if weights.lower() == "imagenet" else os.path.abspath(weights))
    if args.no_augment:
        kwargs.update(random_shift=0.0, random_rotation=0.0, random_zoom=0.0, random_flip=None)
    if args.flip:
        kwargs["random_flip"] = None if args.flip == "none" else args.flip
    return kwargs


def _loader_overrides(args):
    """The loader settings given on the command line (the others are left to the loader or the model)."""
    out = {}
    if args.suffix is not None:
        out["suffix"] = args.suffix if not args.suffix or args.suffix.startswith(".") else "." + args.suffix
    if args.color_mode is not None:
        out["color_mode"] = args.color_mode
    if args.target_size is not None:
        out["target_size"] = tuple(args.target_size)
    return out


def _make_pipeline(args, image_dir, console):
    from sklearn.pipeline import Pipeline

    import_backend()
    from .. import CNNClassifier, ImageFolderLoader

    loader = ImageFolderLoader(image_dir=os.path.abspath(image_dir), id_column=args.id_column,
                               verbose=int(console.bars), **_loader_overrides(args))
    # verbose=1 also without a terminal: training then writes a line per epoch (lines_when_unwatched).
    clf = CNNClassifier(**_network_kwargs(args), random_state=args.seed, verbose=int(not console.quiet))
    return Pipeline([("imagefolderloader", loader), ("cnnclassifier", clf)])


def _describe_loading(loader, X, image_dir, console):
    """Say how the images are loaded: the loader fitted on ``X`` (decided or given settings)."""
    from sklearn.base import clone

    fitted = loader if hasattr(loader, "color_mode_") else clone(loader).fit(X)
    color_mode, target = fitted.color_mode_, fitted.target_size_
    decided = [name for name in ("color_mode", "target_size") if getattr(loader, name) == "auto"]
    size = "each image's own size" if target is None else f"{target[0]}x{target[1]}"
    how = f" ({' and '.join(n.replace('_', ' ') for n in decided)} decided from the images)" if decided else ""
    console.info(f"images: {image_dir}: {color_mode}, {size}{how}")
    return {"color_mode": color_mode, "target_size": target, "suffix": loader.suffix}


def _check_csv_argument(path, option="CSV"):
    """Refuse a folder or a missing file where a CSV is expected, before anything is loaded."""
    if os.path.isdir(path):
        raise CLIError(f"{path}: a folder, not a CSV file ({option}); give the CSV of ids, and the "
                       "folder of images with --images")
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file ({option})")


def _read_labelled(args, what):
    df = read_table(args.train_csv, id_column=args.id_column, label_column=args.label_column, what=what)
    y = labels_from_text(df[args.label_column], path=args.train_csv, lines=df.index)
    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2:
        raise CLIError(f"{args.train_csv}: every row has the label {classes[0]!r}; a classifier needs "
                       "at least two classes")
    return df, y, classes, counts


def _load_model(path, args=None):
    """Load a pipeline written by skimgclf.save (with the loader settings of ``args``); refuse anything else."""
    if not os.path.exists(path):
        raise CLIError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise CLIError(f"model {path} is a folder, not a model file")
    from .. import load
    from .._pipelines import split_pipeline

    import_backend()
    model = load(path)
    try:
        loader, _ = split_pipeline(model)
    except TypeError as exc:
        raise CLIError(f"{path}: {exc}") from None
    if args is not None:
        loader.set_params(**_loader_overrides(args))
    if "verbose" in model.steps[-1][1].get_params():
        model.steps[-1][1].set_params(verbose=0)  # the command draws its own bar over the whole table
    return model


@contextlib.contextmanager
def _csv_lines(csv, lines):
    """Loading errors about the rows given (``row`` = a position in ``lines``) name the CSV's line."""
    try:
        yield
    except InputError as exc:
        error = TableError.from_input_error(exc, csv, lines)
        if error is exc:
            raise
        raise error from None


def _fmt_seconds(seconds):
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# ----------------------------------------------------------------- commands
def _train_split(args, df, y, classes, counts):
    """The (training, held-out) row numbers of ``train``: a stratified ``--val-size`` split."""
    rows = np.arange(len(df))
    if args.val_size <= 0:
        return rows, rows[:0]
    n_val = int(np.ceil(args.val_size * len(df)))
    if counts.min() < 2:
        raise CLIError(
            f"{args.train_csv}: class {classes[np.argmin(counts)]!r} has a single image; a stratified "
            "validation split needs at least 2 per class (or use --val-size 0)"
        )
    if n_val < classes.size or len(df) - n_val < classes.size:
        raise CLIError(
            f"--val-size {args.val_size} holds out {n_val} of {len(df)} rows; with {classes.size} "
            "classes both parts need at least one image per class"
        )
    from sklearn.model_selection import train_test_split

    return train_test_split(rows, test_size=n_val, stratify=y, random_state=args.seed)


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


class _Plan:
    """What ``train`` will train, said when it starts; the time it expects, said once training has a pace."""

    def __init__(self, args, clf, settings, n_train, n_val, n_rows, console):
        from ..model.training import auto_batch_size, auto_epochs, continue_epochs

        channels = {"grayscale": 1, "rgb": 3, "rgba": 4}[settings["color_mode"]]
        self.mode = args.refit if n_val else "scratch"
        trained = n_train if n_val else n_rows
        self.epochs = auto_epochs(clf.epochs, (*settings["target_size"], channels), clf.backbone,
                                  trained - clf._validation_size(trained))
        self.more = continue_epochs(self.epochs) if self.mode == "continue" else 0
        steps = [(n_train if n_val else n_rows, self.epochs)]
        if self.mode == "scratch" and n_val:
            steps.append((n_rows, self.epochs))
        elif self.mode == "continue":
            steps.append((n_rows, self.more))
        self.steps = sum(int(np.ceil(n / auto_batch_size(clf.batch_size, n))) * e for n, e in steps)
        self.console, self.start, self.first = console, time.perf_counter(), True
        epochs = _plural(self.epochs, "epoch")
        text = {
            "continue": f"train {epochs} on {n_train} rows and measure accuracy on the {n_val} held out, then "
                        f"{_plural(self.more, 'more epoch')} on all {n_rows} rows (--refit scratch trains a new "
                        "model on them instead)",
            "scratch": f"train two models: {epochs} on {n_train} rows to measure accuracy on the {n_val} held "
                       f"out, then {epochs} on all {n_rows} rows for the model file (--refit continue ends the "
                       "first one on all rows instead, in about half the time)",
            "no": f"train {epochs} on {n_train} rows, measure accuracy on the {n_val} held out and write that "
                  "model (the held-out rows are not trained on)",
        }[self.mode] if n_val else f"train {epochs} on all {n_rows} rows (--val-size 0: accuracy is not measured)"
        console.info(f"plan: {text}")

    def pace(self):
        """A Keras callback that says, once, how long the whole command should take."""
        from ..model.training import Pace

        def report(seconds_per_step, steps_done):
            left = (self.steps - steps_done) * seconds_per_step
            spent = time.perf_counter() - self.start
            self.console.info(f"expected: about {_fmt_seconds(spent + left)} in all "
                              f"({_fmt_seconds(left)} of training left, at {seconds_per_step * 1000:.0f} ms a step)")

        return Pace(report) if not self.console.quiet else None


def _fit_classifier(pipe, X, y, csv, rows, plan, **fit_params):
    """Fit the pipeline's loader and network on ``rows`` of ``X``; errors name the CSV's lines."""
    pace = plan.pace() if plan.first else None
    plan.first = False
    with _csv_lines(csv, X.index[rows]):  # the table's index: each row's line in the file
        if not hasattr(pipe[0], "color_mode_"):
            pipe[0].fit(X.iloc[rows])
        images = pipe[0].transform(X.iloc[rows])
    pipe[-1].fit(images, y[rows], **({"callbacks": [pace]} if pace else {}), **fit_params)


def _measure(args, pipe, X, y, train_rows, val_rows, classes, metrics, plan, console):
    """Train on ``train_rows`` and print the accuracy on ``val_rows``; returns their labels and predictions."""
    from sklearn.metrics import classification_report

    from ..plots import sort_labels

    with _csv_lines(args.train_csv, X.index[train_rows]):
        pipe[0].fit(X.iloc[train_rows])
    with _csv_lines(args.train_csv, X.index[val_rows]):
        held_out = pipe[0].transform(X.iloc[val_rows])
    y_val = y[val_rows]
    # With --report the held-out rows are also scored after every epoch, for their curve: watched only.
    watch = {"validation_data": (held_out, y_val)} if args.report and not args.net_validation_split else {}
    start = time.perf_counter()
    _fit_classifier(pipe, X, y, args.train_csv, train_rows, plan, **watch)
    metrics["validation_fit_seconds"] = round(time.perf_counter() - start, 2)
    y_pred = pipe[-1].predict(held_out)
    correct = int(np.sum(y_pred == y_val))
    accuracy = correct / len(val_rows)
    metrics.update(validation_accuracy=accuracy, n_validation=int(len(val_rows)),
                   measuring_model={"n_train": int(len(train_rows)),
                                    "history": {k: list(v) for k, v in pipe[-1].history_.items()}},
                   classification_report=classification_report(y_val, y_pred, labels=sort_labels(classes),
                                                                output_dict=True, zero_division=0))
    console.result(f"validation accuracy: {accuracy:.4f} ({correct}/{len(val_rows)} held-out images, "
                   f"predicted by a model trained on the other {len(train_rows)})")
    note = _chance_note(args, y_val, y_pred, len(train_rows), pipe[-1].backbone)
    if note:
        console.result(note)
    return y_val, y_pred


#: ``train`` says the held-out accuracy is close to chance when a one-sided binomial test cannot tell
#: it from always answering the commonest class at this level, or when it is within this margin of it.
CHANCE_LEVEL, CHANCE_MARGIN = 0.01, 0.1


def _chance_note(args, y_val, y_pred, n_train, backbone):
    """Lines for a held-out accuracy close to chance, with what usually helps; None when it is not."""
    from scipy.stats import binomtest

    n, correct = len(y_val), int(np.sum(y_pred == y_val))
    labels, counts = np.unique(y_val, return_counts=True)
    chance, accuracy = counts.max() / n, correct / n
    if binomtest(correct, n, chance, alternative="greater").pvalue < CHANCE_LEVEL and accuracy >= chance + CHANCE_MARGIN:
        return None
    spread = 1.96 * np.sqrt(max(accuracy * (1 - accuracy), 1 / n) / n)
    lines = [f"note: {accuracy:.4f} on {_plural(n, 'held-out image')} is close to chance: always answering "
             f"{labels[np.argmax(counts)]!r} scores {chance:.4f} on them, and {n} images measure accuracy only "
             f"to about +/-{spread:.2f}. The network learnt little from {n_train} images; what usually helps:",
             "  - more images of each class;"]
    if backbone is None:
        lines += ["  - a network pretrained on ImageNet: add --backbone mobilenet_v3_small (its weights are "
                  "downloaded once; on a machine without a network, --backbone-weights FILE)."]
    else:
        lines += [f"  - more epochs (--epochs), or another backbone than {backbone}."]
    return "\n".join(lines)


def _finish(args, pipe, X, y, rows, plan, metrics, console):
    """The model to write: the measuring one continued on ``rows``, a new one on them, or the measuring one."""
    from sklearn.base import clone

    start = time.perf_counter()
    if plan.mode == "continue":
        clf = pipe[-1]
        recipe = clf.get_params()
        console.info(f"training {_plural(plan.more, 'more epoch')} on all {len(rows)} rows")
        clf.set_params(warm_start=True, epochs=plan.more)
        try:
            _fit_classifier(pipe, X, y, args.train_csv, rows, plan)
        finally:  # the file keeps the recipe; the network keeps what it learnt
            clf.set_params(**{k: recipe[k] for k in ("warm_start", "epochs")})
    elif plan.mode == "scratch":
        if "validation_accuracy" in metrics:
            console.info(f"training a new model on all {len(rows)} rows")
        pipe = clone(pipe)
        _fit_classifier(pipe, X, y, args.train_csv, rows, plan)
    else:
        return pipe, False
    metrics["fit_seconds"] = round(time.perf_counter() - start, 2)
    return pipe, True


def cmd_train(args, console):
    """``skimgclf train``: measure accuracy on held-out rows, then train on every row and save."""
    _check_csv_argument(args.train_csv, "training CSV")
    _check_file_out(args.model, "--model")
    if args.report:
        _check_dir_out(args.report, "--report")
    image_dir = _image_dir(args, args.train_csv)
    report_files = _report_files(args.report, ("learning_curves.png", "confusion_matrix.png", "metrics.json"))
    _refuse_overwriting_inputs([(args.model, "--model"), (args.report, "--report")] + report_files,
                               files=[(args.train_csv, "training CSV")], image_dirs=[image_dir])
    df, y, classes, counts = _read_labelled(args, "training CSV")
    train_rows, val_rows = _train_split(args, df, y, classes, counts)
    pipe = _make_pipeline(args, image_dir, console)
    X = df[[args.id_column]]
    settings = _describe_loading(pipe[0], X.iloc[train_rows], image_dir, console)
    metrics = {"command": "train", "train_csv": args.train_csv, "image_dir": image_dir, **settings,
               "n_rows": int(len(df)), "classes": classes.tolist(), "network": pipe[-1].get_params()}
    plan = _Plan(args, pipe[-1], settings, len(train_rows), len(val_rows), len(df), console)
    metrics["refit"] = plan.mode
    y_val = y_pred = None
    if len(val_rows):
        y_val, y_pred = _measure(args, pipe, X, y, train_rows, val_rows, classes, metrics, plan, console)
    else:
        console.result("validation accuracy: not measured (--val-size 0)")
    pipe, on_all_rows = _finish(args, pipe, X, y, np.arange(len(df)), plan, metrics, console)
    clf = pipe[-1]
    history = clf.history_
    n_train = len(df) if on_all_rows else len(train_rows)
    metrics.update(n_train=int(n_train), epochs_run=len(history.get("loss", [])), history=history)
    if plan.mode == "continue":
        console.info(f"trained {_plural(metrics['epochs_run'] - plan.more, 'epoch')} on {len(train_rows)} images, "
                     f"then {plan.more} on all {n_train}")
    else:
        console.info(f"trained {_plural(metrics['epochs_run'], 'epoch')} on {n_train} images")

    from .. import save

    clf.set_params(verbose=0)
    pipe[0].set_params(verbose=1)
    _makedirs_for(args.model)
    save(pipe, args.model)
    console.result(f"model (trained on {n_train} images) written to {args.model}")
    if args.report:
        _write_train_report(args.report, plan, metrics, y_val, y_pred, classes, clf, console)
    return metrics


def _write_train_report(folder, plan, metrics, y_val, y_pred, classes, clf, console):
    """learning_curves.png, confusion_matrix.png and metrics.json, each saying which model it shows."""
    from .. import plots

    os.makedirs(folder, exist_ok=True)
    marks = plots.phase_marks(clf)
    measuring = metrics.get("measuring_model")
    if measuring is None:  # --val-size 0: one model, on every row
        history, title = metrics["history"], f"The model written: trained on all {metrics['n_train']} rows"
    elif plan.mode == "continue":
        marks[plan.epochs + 1] = "all rows"
        history = metrics["history"]
        title = (f"The model written: {plan.epochs} epochs on {measuring['n_train']} rows, then {plan.more} on all "
                 f"{metrics['n_train']}")
    else:  # the measuring model's curves; a new model on all rows has no held-out rows to draw
        history, title = measuring["history"], f"The measuring model: trained on {measuring['n_train']} rows"
    if "val_loss" in history:
        title += ("; validation: its --monitor-split part" if clf.validation_split else
                  f"; validation: the {metrics['n_validation']} held-out rows")
    written = [plots.write_learning_curves(history, os.path.join(folder, "learning_curves.png"), title=title,
                                           marks=marks)]
    if y_val is not None:
        written.append(plots.write_confusion_matrix(
            y_val, y_pred, os.path.join(folder, "confusion_matrix.png"), labels=plots.sort_labels(classes),
            title=f"Held-out rows, predicted by the measuring model (trained on {measuring['n_train']} rows)"))
    written.append(plots.write_json(metrics, os.path.join(folder, "metrics.json")))
    console.result(f"report written to {folder}: {', '.join(os.path.basename(p) for p in written)}")


def _predict_chunks(model, args, console, label_column=None):
    """Yield (chunk, probabilities) over the CSV, loading chunk by chunk (:mod:`skimgclf.scoring`)."""
    from ..scoring import iter_predict_proba

    chunks = RowLines(iter_table(args.csv, id_column=args.id_column, label_column=label_column,
                                 chunksize=args.chunk_size), args.csv)
    done = 0
    with console.progress(total=count_rows(args.csv), desc="predicting", unit="img") as progress:
        try:
            for chunk, proba in iter_predict_proba(model, chunks, image_dir=_image_dir(args, args.csv),
                                                   id_column=args.id_column):
                progress.update(len(chunk))
                yield chunk, proba
                done += len(chunk)
                chunks.release(done)
        except InputError as exc:
            error = chunks.error(exc)  # the line of the file, not the row
            if error is exc:
                raise
            raise error from None


def cmd_predict(args, console):
    """``skimgclf predict``: write id,label (and probabilities) for a CSV of ids."""
    from ..scoring import predict_csv

    _check_csv_argument(args.csv)
    _check_file_out(args.out, "--out")
    if args.label_column == args.id_column:
        raise CLIError(f"--label-column and --id-column are both {args.id_column!r}")
    image_dir = _image_dir(args, args.csv)
    _refuse_overwriting_inputs([(args.out, "--out")], files=[(args.csv, "input CSV"), (args.model, "model file")],
                               image_dirs=[image_dir])
    model = _load_model(args.model, args)
    start = time.perf_counter()
    _makedirs_for(args.out)
    # Chunk by chunk (bounded memory), here or on Dask workers; the file
    # appears only when complete, and only once its line is printed (a full
    # standard output leaves no file). Errors name the CSV's line.
    def done(n):
        console.result(f"predictions for {n} images written to {args.out} "
                       f"({_fmt_seconds(time.perf_counter() - start)})")

    with _dask_client(args, [image_dir]) as client, \
            console.progress(total=count_rows(args.csv), desc="predicting", unit="img") as bar:
        n = predict_csv(model, args.csv, args.out, image_dir=image_dir, id_column=args.id_column,
                        label_column=args.label_column, proba=args.proba, chunk_size=args.chunk_size,
                        client=client, model_file=args.model, progress=bar.update, before_commit=done)
    return {"n": n, "out": args.out}


#: What ``evaluate --report DIR`` writes, and how many mistakes its gallery shows.
EVALUATE_REPORT = ("confusion_matrix.png", "top_losses.png", "metrics.json")
TOP_LOSSES = 12


def _refuse_unlabelled(args):
    """``evaluate`` scores against true labels: a CSV without them is one for ``predict``, and it says so."""
    first = next(iter_table(args.csv, id_column=args.id_column, chunksize=1), None)
    if first is None or args.label_column in first.columns:
        return
    images = ["--images", args.images] if getattr(args, "images", None) else []
    command = shlex.join([PROG, "predict", args.model, args.csv, *images, "--out", "predictions.csv"])
    raise CLIError(f"{args.csv}: no column {args.label_column!r} of true labels; the columns are "
                   f"{[str(c) for c in first.columns]} (choose one with --label-column). evaluate scores "
                   f"predictions against known labels; to predict the labels of these images, run: {command}")


def cmd_evaluate(args, console):
    """``skimgclf evaluate``: accuracy, classification report, confusion matrix, the worst mistakes."""
    from .. import plots

    _check_csv_argument(args.csv)
    _refuse_unlabelled(args)
    if args.confusion:
        _check_file_out(args.confusion, "--confusion")
    if args.report:
        _check_dir_out(args.report, "--report")
    image_dir = _image_dir(args, args.csv)
    _refuse_overwriting_inputs([(args.confusion, "--confusion"), (args.report, "--report")]
                               + _report_files(args.report, EVALUATE_REPORT),
                               files=[(args.csv, "input CSV"), (args.model, "model file")], image_dirs=[image_dir])
    model = _load_model(args.model, args)
    y_true, y_pred, worst = _score_labelled(model, args, console)
    classes = model.steps[-1][1].classes_
    labels = plots.sort_labels(np.concatenate([y_true, y_pred, classes]).astype(classes.dtype))
    metrics = _print_evaluation(args, y_true, y_pred, labels, console)
    pngs = []
    if args.confusion:
        _makedirs_for(args.confusion)
        pngs.append(args.confusion)
    if args.report:
        os.makedirs(args.report, exist_ok=True)
        pngs.append(os.path.join(args.report, "confusion_matrix.png"))
    for png in pngs:
        plots.write_confusion_matrix(y_true, y_pred, png, labels=labels,
                                     title=f"Confusion matrix, {os.path.basename(args.csv)}")
        console.result(f"confusion matrix drawn in {png}")
    if args.report:
        _write_evaluate_report(args, model, image_dir, worst, metrics, console)
    return metrics


def _score_labelled(model, args, console):
    """Predict the CSV chunk by chunk: ``(true labels, predictions, each chunk's worst mistakes)``.

    The worst mistakes are gathered only with ``--report`` (the table's are
    among those of its chunks).
    """
    from .. import plots

    classes = model.steps[-1][1].classes_
    y_true, y_pred, worst = [], [], []
    for chunk, proba in _predict_chunks(model, args, console, label_column=args.label_column):
        y_true.append(labels_from_text(chunk[args.label_column], like=classes, path=args.csv, lines=chunk.index))
        y_pred.append(classes[np.argmax(proba, axis=1)])
        if args.report:
            table = plots.top_losses(y_true[-1], proba, classes, n=TOP_LOSSES, unseen="include")
            worst.append(table.assign(id=chunk[args.id_column].to_numpy()[table["row"].to_numpy()],
                                      line=chunk.index.to_numpy()[table["row"].to_numpy()]))
    return np.concatenate(y_true), np.concatenate(y_pred), worst


def _print_evaluation(args, y_true, y_pred, labels, console):
    """Print accuracy, the classification report, the confusion table and the most confused pairs; the metrics."""
    import pandas as pd
    from sklearn.metrics import classification_report

    from .. import plots

    correct = int(np.sum(y_true == y_pred))
    accuracy = correct / len(y_true)
    console.result(f"accuracy: {accuracy:.4f} ({correct}/{len(y_true)} images of {args.csv})")
    console.result("")
    console.result(classification_report(y_true, y_pred, labels=labels, digits=4, zero_division=0))
    if len(labels) <= 20:
        table = pd.crosstab(pd.Series(y_true, name="true"), pd.Series(y_pred, name="predicted"))
        table = table.reindex(index=labels, columns=labels, fill_value=0)
        console.result("confusion matrix (rows: true label, columns: predicted):")
        console.result(table.to_string())
    confused = plots.most_confused(y_true, y_pred, n=10)
    if confused:
        console.result("most confused (true -> predicted: count, share of the true class):")
        for pair in confused:
            console.result(f"  {pair['true']} -> {pair['predicted']}: {pair['count']} "
                           f"({pair['fraction']:.1%})")
    return {"command": "evaluate", "model": args.model, "csv": args.csv, "n": int(len(y_true)),
            "accuracy": accuracy,
            "classification_report": classification_report(y_true, y_pred, labels=labels,
                                                           output_dict=True, zero_division=0),
            "most_confused": confused}


def _write_evaluate_report(args, model, image_dir, worst, metrics, console):
    """``--report``: the most confident mistakes drawn in top_losses.png, and metrics.json (with them)."""
    import pandas as pd

    from .. import plots

    worst = pd.concat(worst, ignore_index=True).sort_values(["loss", "line"], ascending=[False, True],
                                                            kind="stable").head(TOP_LOSSES)
    metrics["top_losses"] = worst[["id", "true", "predicted", "probability", "true_probability"]].assign(
        line=worst["line"]).to_dict(orient="records")
    images = chunk_loader(model.steps[0][1], image_dir=image_dir, id_column=args.id_column).transform(
        worst[["id"]].rename(columns={"id": args.id_column})) if len(worst) else None
    png = plots.write_top_losses(images, worst.reset_index(drop=True), os.path.join(args.report, "top_losses.png"),
                                 title=f"Most confident mistakes, {os.path.basename(args.csv)}")
    console.result(f"the {len(worst)} most confident mistakes drawn in {png}")
    path = plots.write_json(metrics, os.path.join(args.report, "metrics.json"))
    console.result(f"metrics written to {path}")


def _read_grid(path):
    """Read a parameter grid (a mapping or a list of mappings) from JSON or YAML."""
    import json

    if not os.path.isfile(path):
        raise CLIError(f"grid file not found: {path}")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError(f"cannot read grid file {path} ({exc})") from None
    if path.lower().endswith((".yml", ".yaml")):
        import yaml

        try:
            grid = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
            raise CLIError(f"grid file {path} is not valid YAML: {problem}{where}") from None
    else:
        try:
            grid = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CLIError(f"grid file {path} is not valid JSON ({exc}); YAML files must end in "
                           ".yaml or .yml") from None
    grids = grid if isinstance(grid, list) else [grid]
    if not grids or not all(isinstance(g, dict) and g for g in grids):
        raise CLIError(f"grid file {path} must hold a mapping of parameter names to lists of values "
                       "(or a list of such mappings)")
    out = []
    for g in grids:
        entry = {}
        for key, values in g.items():
            if not isinstance(key, str):
                raise CLIError(f"grid file {path}: parameter name {key!r} is not text")
            values = values if isinstance(values, list) else [values]
            if not values:
                raise CLIError(f"grid file {path}: parameter {key!r} has an empty list of values")
            entry[key] = values
        out.append(entry)
    return out


def _qualify_grid(grids, pipe, path):
    """Give every grid key its pipeline prefix; refuse unknown names."""
    valid = {k for k in pipe.get_params(deep=True) if "__" in k}
    steps = [name for name, _ in pipe.steps]
    out = []
    for g in grids:
        entry = {}
        for key, values in g.items():
            name = key if key in valid else next(
                (f"{s}__{key}" for s in reversed(steps) if f"{s}__{key}" in valid), None)
            if name is None:
                known = sorted({k.split("__", 1)[1] for k in valid})
                raise CLIError(f"grid file {path}: unknown parameter {key!r}; parameters are "
                               f"{', '.join(known)}")
            entry[name] = [tuple(v) if name.endswith("target_size") and isinstance(v, list) else v
                           for v in values]
        out.append(entry)
    return out


def cmd_search(args, console):
    """``skimgclf search``: GridSearchCV over the pipeline, ranked table, best model."""
    results = args.results or os.path.join(os.path.dirname(args.model), "cv_results.csv")
    grids = _check_search_arguments(args, results)
    df, y, classes, counts = _read_labelled(args, "training CSV")
    if counts.min() < args.cv:
        raise CLIError(f"{args.train_csv}: class {classes[np.argmin(counts)]!r} has {counts.min()} images, "
                       f"fewer than --cv {args.cv} folds")
    image_dir = _image_dir(args, args.train_csv)
    pipe = _make_pipeline(args, image_dir, console)
    _describe_loading(pipe[0], df[[args.id_column]], image_dir, console)
    grids = _qualify_grid(grids, pipe, args.grid)
    n_jobs = _search_jobs(args, pipe, console)
    cv, seconds, failures = _run_search(args, console, pipe, grids, n_jobs, df[[args.id_column]], y, image_dir)
    best_params, best_score = _report_search(args, console, cv, seconds, failures)

    from sklearn.base import clone

    from .. import save

    console.info(f"refitting the best candidate on all {len(df)} rows")
    best_pipe = clone(pipe).set_params(**best_params).fit(df[[args.id_column]], y)
    best_pipe[-1].set_params(verbose=0)
    best_pipe[0].set_params(verbose=1)
    _makedirs_for(args.model)
    save(best_pipe, args.model)
    _makedirs_for(results)
    with atomic_write(results) as tmp:
        cv.to_csv(tmp, index=False)
    console.result(f"best model (refitted on all {len(df)} rows) written to {args.model}")
    console.result(f"cv_results_ written to {results}")
    return {"best_params": best_params, "best_score": best_score}


def _check_search_arguments(args, results):
    """Refuse ``search``'s arguments before any work (outputs, inputs, --cv, --n-jobs); the grids read."""
    _check_file_out(args.model, "--model")
    _check_file_out(results, "--results")
    _check_csv_argument(args.train_csv, "training CSV")
    _refuse_overwriting_inputs([(args.model, "--model"), (results, "--results")],
                               files=[(args.train_csv, "training CSV"), (args.grid, "grid file")],
                               image_dirs=[_image_dir_if_any(args, args.train_csv)])
    grids = _read_grid(args.grid)
    if args.cv < 2:
        raise CLIError("--cv must be at least 2 folds")
    if args.n_jobs == 0:
        raise CLIError("--n-jobs must not be 0 (1 runs in this process, -1 uses every core)")
    return grids


def _search_jobs(args, pipe, console):
    """The ``n_jobs`` of the search: -1 on Dask, 1 with a GPU, else --n-jobs with the cores shared."""
    from ..cluster.threads import share_cores_with_processes

    n_jobs = args.n_jobs
    on_dask = args.dask_scheduler is not None or args.dask_local is not None
    if on_dask and n_jobs != 1:
        raise CLIError("--n-jobs starts processes on this machine; with --dask-scheduler or --dask-local "
                       "the cluster's workers fit the candidates (leave --n-jobs out)")
    if on_dask:
        n_jobs = -1  # as many tasks at once as the cluster has threads
        pipe[-1].set_params(verbose=0)
    elif n_jobs != 1 and _visible_gpus():
        # Each worker process would take its own share of the GPU (its own
        # TensorFlow context, and its models' memory) and they would all run
        # on the first GPU: one candidate at a time uses the device better.
        console.info(f"a GPU is visible: candidates are fitted one at a time on it (--n-jobs {n_jobs} ignored)")
        n_jobs = 1
    elif n_jobs != 1:
        share_cores_with_processes(n_jobs)
        pipe[-1].set_params(verbose=0)
    return n_jobs


def _run_search(args, console, pipe, grids, n_jobs, X, y, image_dir):
    """Run the grid search (on Dask if asked); ``(cv_results_ as a DataFrame, seconds, fit failure messages)``."""
    import warnings

    import joblib
    import pandas as pd
    from sklearn.exceptions import FitFailedWarning
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    # A candidate that fails scores NaN (scikit-learn's error_score) and the
    # search goes on; any NaN is then an error here, naming the candidates,
    # so that a "best" model is never chosen among failures.
    search = GridSearchCV(pipe, grids, cv=StratifiedKFold(args.cv, shuffle=True, random_state=args.seed),
                          scoring=args.scoring, n_jobs=n_jobs, refit=False, error_score=np.nan,
                          verbose=0 if console.quiet else 3)
    with _dask_client(args, [image_dir]) as client:
        backend = joblib.parallel_config(backend="dask") if client is not None else contextlib.nullcontext()
        start = time.perf_counter()
        with backend, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FitFailedWarning)
            try:
                search.fit(X, y)
            except ValueError as exc:
                if "fits failed" not in str(exc):
                    raise
                raise CLIError(f"every candidate failed to fit: {_first_error(str(exc))}") from None
        seconds = time.perf_counter() - start
    failures = [str(w.message) for w in caught if issubclass(w.category, FitFailedWarning)]
    return pd.DataFrame(search.cv_results_), seconds, failures


def _report_search(args, console, cv, seconds, failures):
    """Print the ranked candidates; refuse failed ones; ``(best params, best mean score)``."""
    import pandas as pd

    table = pd.DataFrame({
        "rank": cv["rank_test_score"],
        f"mean {args.scoring}": cv["mean_test_score"].map(lambda v: f"{v:.4f}"),
        "std": cv["std_test_score"].map(lambda v: f"{v:.4f}"),
        "fit time (s)": cv["mean_fit_time"].map(lambda v: f"{v:.1f}"),
        "params": [", ".join(f"{k.split('__', 1)[-1]}={v!r}" for k, v in p.items()) for p in cv["params"]],
    }).sort_values(["rank", "params"])
    console.result(f"{len(cv)} candidates x {args.cv} folds in {_fmt_seconds(seconds)}, ranked:")
    console.result(table.to_string(index=False))
    _refuse_failed_candidates(cv, args.scoring, failures)
    best_index = int(np.flatnonzero(cv["rank_test_score"].to_numpy() == 1)[0])
    best_params, best_score = cv["params"][best_index], float(cv["mean_test_score"][best_index])
    best = ", ".join(f"{k.split('__', 1)[-1]}={v!r}" for k, v in best_params.items())
    console.result(f"best: {best} (mean {args.scoring} {best_score:.4f})")
    return best_params, best_score


def _visible_gpus():
    """The GPUs TensorFlow sees (none where TensorFlow has no CUDA support)."""
    from ..model.devices import gpus

    return gpus()


def _first_error(text):
    """The first ``SomeError: message`` line of a traceback text, else its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception): ", line)]
    return (found or lines or ["unknown error"])[0]


def _refuse_failed_candidates(cv_results, scoring, warnings_text):
    """Raise CLIError if any candidate scored NaN (it failed to fit or score), naming them."""
    scores = np.asarray(cv_results["mean_test_score"], dtype=float)
    failed = np.flatnonzero(np.isnan(scores))
    if not failed.size:
        return
    names = ["; ".join(", ".join(f"{k.split('__', 1)[-1]}={v!r}" for k, v in cv_results["params"][i].items())
                       for i in failed[:3])]
    cause = _first_error("\n".join(warnings_text)) if warnings_text else f"its {scoring} score is NaN"
    raise CLIError(f"{len(failed)} of {len(scores)} candidates failed ({names[0]}"
                   f"{', ...' if len(failed) > 3 else ''}): {cause}; no model written")


def cmd_demo(args, console):
    """``skimgclf demo``: the sample data set through train, predict and evaluate."""
    from ..datasets import make_sample_dataset

    d = args.dir
    _check_dir_out(d, "DIR")
    paths = make_sample_dataset(d)
    console.result(f"wrote the sample data set (scikit-learn's digits, 8x8 grayscale PNG) to {d}/: "
                   "train.csv + train/, test.csv + test/, test_labels.csv")
    model = os.path.join(d, "model.skimgclf")
    pred = os.path.join(d, "predictions.csv")
    quiet = ["--quiet"] if args.quiet else []
    # The network's defaults, as for any data set (on these 8x8 digits they
    # mean no augmentation and no border trimming after the first convolution).
    commands = [
        ["train", paths["train_csv"], "--model", model, "--report", os.path.join(d, "report"),
         "--epochs", str(args.epochs)],
        ["predict", model, paths["test_csv"], "--out", pred],
        ["evaluate", model, paths["test_labels_csv"], "--images", paths["test_dir"],
         "--confusion", os.path.join(d, "report", "test_confusion_matrix.png")],
    ]
    results = []
    start = time.perf_counter()
    for command in commands:
        console.result("")
        console.result(f"$ skimgclf {shlex.join(command + quiet)}")
        sub_args = build_parser().parse_args(command + quiet)
        results.append(COMMANDS[sub_args.command](sub_args, _Console(sub_args.quiet)))
    console.result("")
    console.result(f"demo done in {_fmt_seconds(time.perf_counter() - start)}: test accuracy "
                   f"{results[-1]['accuracy']:.4f}; predictions in {pred}")
    return results[-1]


def cmd_info(args, console):
    """``skimgclf info``: versions, TensorFlow's build and devices, CPU threads."""
    import json

    import_backend()
    from ..model.devices import describe

    info = describe()
    if args.json:
        console.result(json.dumps(info, indent=2))
        return info
    v = info["versions"]
    build = info["tensorflow_build"]
    cuda = (f"CUDA {build['cuda_version']}, cuDNN {build['cudnn_version']}" if build["cuda"]
            else "no CUDA: CPU only")
    console.result(f"skimgclf {v['skimgclf']} (Python {v['python']}, {info['platform']}; {info['executable']})")
    console.result(f"TensorFlow {v['tensorflow']} ({cuda}), Keras {v['keras']}, scikit-learn {v['scikit-learn']}, "
                   f"scikeras {v['scikeras']}, NumPy {v['numpy']}")
    console.result("devices TensorFlow sees:")
    for device in info["devices"]:
        line = f"  {device['name'].replace('/physical_device:', '')}"
        if device["type"] == "GPU":
            growth = {True: "on", None: "left to TensorFlow (TF_FORCE_GPU_ALLOW_GROWTH or set before)"}[
                device["memory_growth"]]
            extra = f", compute capability {device['compute_capability']}" if "compute_capability" in device else ""
            line += f"  {device['description'] or 'GPU'}{extra}; memory growth {growth}"
        console.result(line)
    threads = info["cpu_threads"]
    pools = ", ".join(f"{name.replace('_', '-')} {n or 'automatic'}" for name, n in threads.items())
    console.result(f"CPU: {info['cores']} cores; TensorFlow threads: {pools}")
    if len(info["tensorflow_distributions"]) > 1:
        console.result(f"warning: {' and '.join(info['tensorflow_distributions'])} are both installed and "
                       "write the same 'tensorflow' module; uninstall both and install one")
    if not any(d["type"] == "GPU" for d in info["devices"]):
        console.result("no GPU: training runs on the CPU. On a machine with an NVIDIA GPU and its driver, "
                       "pip install 'skimgclf[gpu]' adds the CUDA libraries TensorFlow needs")
    return info


#: The function of each command.
COMMANDS = {"train": cmd_train, "predict": cmd_predict, "evaluate": cmd_evaluate, "search": cmd_search,
            "demo": cmd_demo, "info": cmd_info}


def _terminate_like_interrupt():
    """Make SIGTERM unwind like SIGINT while the command runs; returns what puts the old handler back."""
    def on_term(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second one must not cut the clean-up short
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread (main() called from a thread): leave signals alone
        return lambda: None
    # None: the handler was set outside Python; the default is the closest to it.
    return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


class _NamedStream:
    """``sys.stdout`` while a command runs: a failed write raises :class:`StreamError` naming the stream."""

    def __init__(self, stream, name):
        self._stream, self._name = stream, name

    def write(self, text):
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise StreamError(self._name, exc) from None

    def flush(self):
        try:
            self._stream.flush()
        except OSError as exc:
            raise StreamError(self._name, exc) from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _silence_stdout():
    """Point file descriptor 1 at the null device, so that Python's flush at exit does not fail again.

    What the ``signal`` module's documentation recommends for a broken pipe,
    instead of ``SIGPIPE``'s default action (which would also kill the
    process when a Dask connection breaks).
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())
        os.close(devnull)


def _one_line(exc):
    text = " ".join(str(exc).split())
    return text or exc.__class__.__name__


def main(argv=None):
    """Run the ``skimgclf`` command line.

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments (``sys.argv[1:]`` when ``None``).

    Returns
    -------
    int
        The exit status: 0 on success, 1 on an error (one line on standard
        error), 2 on a usage error, 130 when interrupted (Ctrl-C), 143 when
        terminated (SIGTERM), 141 without a word when standard output is a
        pipe closed by its reader (as a tool killed by ``SIGPIPE``); an
        interrupted or terminated command leaves no half-written output and
        no temporary file behind (outputs already complete, such as the
        model before its report, stay). A standard output that cannot be
        written (a full disk) is an error naming it
        (``skimgclf: error: standard output: No space left on device``).
    """
    # Quiet TensorFlow's C++ start-up logs and draw figures without a display;
    # both only when the user has not chosen otherwise.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MPLBACKEND", "Agg")
    parser = build_parser()
    restore = _terminate_like_interrupt()
    stdout = sys.stdout
    if stdout is not None and stdout is sys.__stdout__:  # the process's own (not a notebook's or pytest's)
        sys.stdout = _NamedStream(stdout, "standard output")
    # Errors raised under the command line give advice in its words (options, not parameters).
    with speaking_cli(option_names(parser)):
        try:
            return _run(parser, argv, stdout)
        finally:
            restore()
            if isinstance(sys.stdout, _NamedStream):
                sys.stdout = stdout


def _run(parser, argv, stdout):
    """Parse ``argv`` and run its command; the exit status, errors told in one line."""
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        import warnings

        quiet = getattr(args, "quiet", False)
        with warnings.catch_warnings(), lines_when_unwatched(None if quiet else sys.stderr):
            if not os.environ.get("SKIMGCLF_WARNINGS"):
                for module in ("keras", "tensorflow", "scikeras", "absl"):
                    warnings.filterwarnings("ignore", module=module)
            COMMANDS[args.command](args, _Console(quiet))
        return 0
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    except StreamError as exc:
        if sys.stdout is not stdout:
            sys.stdout = stdout
        _silence_stdout()
        if exc.errno == errno.EPIPE:  # the reader is gone: nothing to say, and nobody to say it to
            return 128 + signal.SIGPIPE
        with contextlib.suppress(OSError):
            print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except Terminated:
        print(f"{PROG}: terminated (SIGTERM); no output file left half-written", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; no output file left half-written", file=sys.stderr)
        return 130
    except CLIError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except (ValueError, OSError, SkimgclfError) as exc:
        # Bad input from the files (the API's errors name the row, id and path), or a setup error.
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - no traceback for users, one line
        if os.environ.get("SKIMGCLF_TRACEBACK"):
            raise
        print(f"{PROG}: error: {exc.__class__.__name__}: {_one_line(exc)} "
              "(set SKIMGCLF_TRACEBACK=1 to see where)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
