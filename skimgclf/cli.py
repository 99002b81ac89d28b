"""The ``skimgclf`` command line: train, predict, evaluate, search, demo.

A thin layer over the public API: each sub-command reads its files, builds a
``Pipeline(ImageFolderLoader, CNNClassifier)`` from plain options, and calls
``fit`` / ``predict_proba`` / :func:`skimgclf.save` / :func:`skimgclf.load`.
Nothing here is machine learning, and nothing named on the command line is
ever imported: options are numbers and words, grids are JSON or YAML data.

Run ``skimgclf --help`` or ``python -m skimgclf --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import sys
import textwrap
import time
import zipfile
from collections import Counter

import numpy as np

from . import __version__
from ._tables import TableError, count_rows, default_image_dir, iter_table, labels_from_text, read_table

__all__ = ["main"]

PROG = "skimgclf"

#: CNNClassifier parameters exposed as options: (flag, parameter, type, default, help).
#: The defaults are only shown in --help; an option left out is not passed, so
#: the classifier's own default applies (tests check the two agree).
NETWORK_OPTIONS = [
    ("--epochs", "epochs", "positive", 10, "maximum passes over the training images"),
    ("--batch-size", "batch_size", "positive", 64, "images per gradient step"),
    ("--conv-blocks", "conv_blocks", "count", 3, "convolution blocks (each: conv, batch norm, pooling)"),
    ("--filters", "filters", "positive", 32, "filters of the first block, doubled in each later block"),
    ("--hidden-layers", "hidden_layers", "count", 1, "dense hidden layers after the convolutions"),
    ("--units", "units", "positive", 128, "units of each dense hidden layer"),
    ("--activation", "activation", "name", "relu",
     "activation: relu, elu, selu, gelu, silu, swish, tanh, sigmoid, leaky_relu, mish"),
    ("--dropout", "dropout", "fraction", 0.3, "dropout rate after each dense hidden layer"),
    ("--optimizer", "optimizer", "name", "adam", "optimizer: adam, adamw, nadam, rmsprop, sgd"),
    ("--learning-rate", "learning_rate", "rate", 0.002, "initial learning rate (cosine decay to 0)"),
    ("--patience", "patience", "count", 4, "epochs without a lower monitored validation loss before stopping"),
]

#: PIL modes read as one channel by the colour-mode detection.
GRAY_MODES = {"1", "L", "LA", "P;L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
#: Largest side of a detected target size; larger images are shrunk to it.
MAX_DETECTED_SIDE = 128

MODEL_FILES_HELP = """\
model files:
  Models are written with skimgclf.save: JSON parameters plus Keras' own
  network format, checked by SHA-256 and loaded without running any code
  from the file. joblib and pickle files are not accepted: loading one runs
  whatever code it contains. To use a model you pickled yourself, load it in
  Python and re-save it with skimgclf.save(pipeline, "model.skimgclf").
"""


class CLIError(Exception):
    """A user error: reported as one line on standard error."""


class UsageError(CLIError):
    """A command line the parser refuses (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line naming the command's help."""

    def __init__(self, *args, description=None, **kwargs):
        # Descriptions are one paragraph: wrap them here (the formatter keeps
        # the epilog's examples as written, so it does not wrap).
        if description:
            description = textwrap.fill(description, width=79)
        super().__init__(*args, description=description, **kwargs)

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------- output
class _Console:
    """Where messages go: results always, chatter and bars unless --quiet."""

    def __init__(self, quiet):
        self.quiet = bool(quiet)
        self.bars = not self.quiet and sys.stderr.isatty()

    def info(self, message=""):
        if not self.quiet:
            print(message, flush=True)

    def result(self, message=""):
        print(message, flush=True)

    def progress(self, **kwargs):
        from tqdm import tqdm

        return tqdm(disable=not self.bars, file=sys.stderr, leave=False, dynamic_ncols=True, **kwargs)


# ------------------------------------------------------------------- parsing
def _number(cast, accept, requirement):
    """An argparse type: ``cast`` the text, then require ``accept(value)``."""
    noun = "an integer" if cast is int else "a number"

    def parse(text):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{text!r} must be {requirement}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "at least 1")
_count = _number(int, lambda v: v >= 0, "at least 0")
_rate = _number(float, lambda v: v > 0, "positive")
_fraction = _number(float, lambda v: 0 <= v < 1, "in [0, 1)")


def _common_parent():
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars and no progress messages (results are still printed)")
    return parent


def _table_parent(label_help):
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("table and images")
    group.add_argument("--images", metavar="DIR",
                       help="folder of the images (default: beside the CSV, named after it: "
                            "train.csv -> train/; test_labels.csv -> test/ when there is no test_labels/)")
    group.add_argument("--id-column", default="id", metavar="NAME",
                       help="column of image ids, read as text verbatim (default: id); "
                            "an id names <DIR>/<id><suffix>")
    group.add_argument("--label-column", default="label", metavar="NAME", help=label_help)
    return parent


def _loader_parent():
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("image loading", textwrap.fill(
        "Left out, these are detected from the files: the most common image extension in the "
        "folder; grayscale if 25 sampled images are all 1-channel (PIL modes 1, L, LA, I;16, ...), "
        "rgb otherwise; the size of the sampled images if they all agree (shrunk to 128 pixels on "
        "the longer side if larger), else 28x28 for grayscale and 64x64 for colour.", width=79))
    group.add_argument("--suffix", metavar="EXT", help="image file extension, e.g. .png or .jpg")
    group.add_argument("--color-mode", choices=["grayscale", "rgb", "rgba"],
                       help="colour mode the images are converted to")
    group.add_argument("--target-size", nargs=2, type=_positive_int, metavar=("H", "W"),
                       help="height and width every image is resized to")
    return parent


def _network_parent():
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("network (CNNClassifier)")
    for flag, dest, kind, default, text in NETWORK_OPTIONS:
        kind, metavar = {"positive": (_positive_int, "N"), "count": (_count, "N"), "name": (str, "NAME"),
                         "fraction": (_fraction, "X"), "rate": (_rate, "X")}[kind]
        group.add_argument(flag, dest=f"net_{dest}", type=kind, metavar=metavar,
                           help=f"{text} (default: {default})")
    # The command line always monitors a held-out part of the training rows (the
    # API default trains on all of them): --report draws validation curves.
    group.add_argument("--monitor-split", dest="net_validation_split", type=_fraction, default=0.1,
                       metavar="X",
                       help="fraction of the training images the network watches every epoch "
                            "(early stopping and the validation curves of --report); 0 trains on "
                            "all of them without early stopping (default: 0.1)")
    group.add_argument("--no-augment", action="store_true",
                       help="no random shifts, rotations and zooms while training "
                            "(default: shift 0.1, rotation 0.03 turn, zoom 0.1 for images of at "
                            "least 16 pixels; none for smaller ones)")
    group.add_argument("--flip", choices=["horizontal", "vertical", "horizontal_and_vertical"],
                       help="random flips while training (default: none; digits and text must not be flipped)")
    group.add_argument("--seed", type=int, default=0,
                       help="seed of the splits, weights, shuffling and augmentation (default: 0)")
    return parent


def _formatter(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _add_dask_options(parser, what):
    group = parser.add_argument_group(
        "Dask cluster (needs: pip install 'skimgclf[dask]')",
        textwrap.fill(f"Run on a Dask cluster: {what}. The workers read the images themselves, so the "
                      "image folder must be at the same path on every worker (a shared file system).",
                      width=79))
    where = group.add_mutually_exclusive_group()
    where.add_argument("--dask-scheduler", metavar="ADDRESS",
                       help="address of a running scheduler, e.g. tcp://10.0.0.5:8786")
    where.add_argument("--dask-local", type=_positive_int, metavar="N",
                       help="start a local cluster of N worker processes sharing this machine's cores")


@contextlib.contextmanager
def _dask_client(args, image_dirs):
    """A Dask client if --dask-scheduler or --dask-local was given, else None."""
    if args.dask_scheduler is None and args.dask_local is None:
        yield None
        return
    from ._dask import client_for

    with client_for(args.dask_scheduler, args.dask_local, image_dirs=image_dirs) as client:
        yield client


def build_parser():
    """Build the argument parser of the ``skimgclf`` command.

    Returns
    -------
    argparse.ArgumentParser
        The parser, with one sub-parser per command.
    """
    parser = _Parser(
        prog=PROG, formatter_class=_formatter,
        description="Image classification from a CSV of image ids and a folder of images.",
        epilog="""\
commands in the seed layout (train.csv + train/, test.csv + test/):
  skimgclf train train.csv --model model.skimgclf
  skimgclf predict model.skimgclf test.csv --out predictions.csv
  skimgclf demo                      # the whole flow on a small embedded data set

Run 'skimgclf COMMAND --help' for the options of a command.
""",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    common = _common_parent()
    labels = "column of labels (default: label); labels are text, or integers when all are plain integers"

    train = sub.add_parser(
        "train", parents=[common, _table_parent(labels), _loader_parent(), _network_parent()],
        formatter_class=_formatter, help="train a model on a labelled CSV of image ids",
        description="Train a CNN on a labelled CSV (id,label) and a folder of images, print the accuracy "
                    "on a stratified validation split, and write the model (the loader and the network "
                    "as one pipeline).",
        epilog="""\
examples:
  skimgclf train train.csv --model model.skimgclf
  skimgclf train data/train.csv --images data/png --target-size 32 32 --color-mode rgb \\
      --epochs 30 --conv-blocks 3 --report report/

The model is trained on (1 - val-size) of the rows; the held-out rows give the
printed validation accuracy and the confusion matrix of --report.

""" + MODEL_FILES_HELP,
    )
    train.add_argument("train_csv", metavar="TRAIN_CSV", help="CSV with an id and a label column")
    train.add_argument("--model", default="model.skimgclf", metavar="FILE",
                       help="model file to write (default: model.skimgclf)")
    train.add_argument("--val-size", type=_fraction, default=0.2, metavar="X",
                       help="fraction of the rows held out, stratified, to measure accuracy "
                            "(default: 0.2; 0 trains on all rows)")
    train.add_argument("--report", metavar="DIR",
                       help="write learning_curves.png, confusion_matrix.png (validation rows) and "
                            "metrics.json into DIR")

    predict = sub.add_parser(
        "predict", parents=[common, _table_parent("name of the label column written (default: label)")],
        formatter_class=_formatter, help="write predictions for a CSV of image ids",
        description="Predict the label of every image of a CSV, writing id,label in the CSV's order, "
                    "with the ids exactly as written in it. The CSV is read in chunks, so memory stays "
                    "bounded; the output file appears only when it is complete.",
        epilog="""\
examples:
  skimgclf predict model.skimgclf test.csv
  skimgclf predict model.skimgclf test.csv --images test_png/ --out out/pred.csv --proba

""" + MODEL_FILES_HELP,
    )
    predict.add_argument("model", metavar="MODEL", help="model file written by 'skimgclf train' or 'search'")
    predict.add_argument("csv", metavar="CSV", help="CSV with an id column (other columns are ignored)")
    predict.add_argument("--out", default="predictions.csv", metavar="FILE",
                         help="predictions CSV to write (default: predictions.csv)")
    predict.add_argument("--proba", action="store_true",
                         help="add one probability column per class, named proba_<class>")
    predict.add_argument("--chunk-size", type=_positive_int, default=4096, metavar="N",
                         help="rows loaded and predicted at a time (default: 4096)")
    _add_dask_options(predict, "each chunk is scored on a worker")

    evaluate = sub.add_parser(
        "evaluate", parents=[common, _table_parent("column of true labels (default: label)")],
        formatter_class=_formatter, help="score a model on a labelled CSV",
        description="Predict a labelled CSV and print the accuracy, scikit-learn's classification "
                    "report and the confusion matrix; optionally draw the matrix as a PNG.",
        epilog="""\
examples:
  skimgclf evaluate model.skimgclf test_labels.csv --images test/
  skimgclf evaluate model.skimgclf valid.csv --confusion confusion.png
  skimgclf evaluate model.skimgclf valid.csv --report report/   # + metrics.json

""" + MODEL_FILES_HELP,
    )
    evaluate.add_argument("model", metavar="MODEL", help="model file written by 'skimgclf train' or 'search'")
    evaluate.add_argument("csv", metavar="CSV", help="CSV with an id and a label column")
    evaluate.add_argument("--confusion", metavar="PNG", help="draw the confusion matrix into this PNG file")
    evaluate.add_argument("--report", metavar="DIR",
                          help="write confusion_matrix.png and metrics.json into DIR")
    evaluate.add_argument("--chunk-size", type=_positive_int, default=4096, metavar="N",
                          help="rows loaded and predicted at a time (default: 4096)")

    search = sub.add_parser(
        "search", parents=[common, _table_parent(labels), _loader_parent(), _network_parent()],
        formatter_class=_formatter, help="grid-search network settings by cross-validation",
        description="Cross-validate every combination of a parameter grid (scikit-learn's GridSearchCV "
                    "over the loader + network pipeline), print them ranked, save the best model "
                    "(refitted on all rows) and the cv_results_ table as CSV. Options given on the "
                    "command line set the starting pipeline; the grid varies it.",
        epilog="""\
grid file (JSON or YAML, by extension; .yml/.yaml is YAML, anything else JSON):
  Keys are CNNClassifier or ImageFolderLoader parameter names, with or without
  the pipeline prefix (units or cnnclassifier__units; target_size or
  imagefolderloader__target_size); each value is a list of values to try (a
  single value is used as is). A list of such mappings searches each in turn.
  Only data is read (yaml.safe_load): nothing in the file is ever imported.

  {"conv_blocks": [1, 2], "units": [64, 128], "activation": ["relu", "elu"]}

  # grid.yaml
  cnnclassifier__dropout: [0.2, 0.4]
  learning_rate: [0.001, 0.003]

examples:
  skimgclf search train.csv --grid grid.json --cv 3 --epochs 10
  skimgclf search train.csv --grid grid.yaml --model best.skimgclf --results cv.csv

""" + MODEL_FILES_HELP,
    )
    search.add_argument("train_csv", metavar="TRAIN_CSV", help="CSV with an id and a label column")
    search.add_argument("--grid", required=True, metavar="FILE", help="parameter grid, JSON or YAML")
    search.add_argument("--model", default="best.skimgclf", metavar="FILE",
                        help="where to write the best model, refitted on all rows (default: best.skimgclf)")
    search.add_argument("--results", metavar="CSV",
                        help="where to write cv_results_ (default: cv_results.csv beside the model)")
    search.add_argument("--cv", type=_positive_int, default=3, metavar="N",
                        help="stratified cross-validation folds (default: 3)")
    search.add_argument("--scoring", default="accuracy", metavar="NAME",
                        help="scikit-learn scorer name (default: accuracy)")
    search.add_argument("--n-jobs", type=int, default=1, metavar="N",
                        help="candidates fitted in parallel processes (default: 1). TensorFlow already "
                             "uses every core in one process, so more jobs rarely help on a small "
                             "machine; with N > 1 each process gets cores/N TensorFlow threads and its "
                             "own copy of the images in memory")
    _add_dask_options(search, "every fold of every candidate is fitted on a worker")

    demo = sub.add_parser(
        "demo", parents=[common], formatter_class=_formatter,
        help="run train -> predict -> evaluate on an embedded sample data set",
        description="Write scikit-learn's 1,797 handwritten digits (8x8 PNG files, no download) in the "
                    "seed layout into DIR, then train a model, predict the test CSV and evaluate it, "
                    "printing each equivalent command. Takes well under a minute on two cores.",
        epilog="""\
examples:
  skimgclf demo
  skimgclf demo /tmp/digits --quiet
""",
    )
    demo.add_argument("dir", nargs="?", default="skimgclf-demo", metavar="DIR",
                      help="folder to write into (default: skimgclf-demo)")
    demo.add_argument("--epochs", type=_positive_int, default=15, metavar="N",
                      help="training epochs (default: 15)")
    for name, command in (("train", train), ("predict", predict), ("evaluate", evaluate),
                          ("search", search), ("demo", demo)):
        command.set_defaults(func=globals()[f"cmd_{name}"])
    return parser


# -------------------------------------------------------------- file helpers
def _check_file_out(path, option):
    """Refuse an output path that is a folder, or whose folder cannot be."""
    if os.path.isdir(path):
        raise CLIError(f"{option} {path} is a folder; give a file name")
    parent = os.path.dirname(os.path.abspath(path))
    probe = parent
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise CLIError(f"{option} {path}: {probe} is a file, not a folder")


def _check_dir_out(path, option):
    if os.path.exists(path) and not os.path.isdir(path):
        raise CLIError(f"{option} {path} exists and is not a folder")


def _makedirs_for(path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def _image_dir(args, csv_path):
    if args.images:
        if not os.path.isdir(args.images):
            raise CLIError(f"image folder not found: {args.images}")
        return args.images
    return default_image_dir(csv_path)


def _detect(image_dir, args, console):
    """Fill in the suffix, colour mode and target size not given (see --help)."""
    suffix, color_mode = args.suffix, args.color_mode
    target = tuple(args.target_size) if args.target_size else None
    notes = []
    if suffix is not None and suffix and not suffix.startswith("."):
        suffix = "." + suffix
    if suffix is None or color_mode is None or target is None:
        from itertools import islice

        from PIL import Image

        Image.init()
        known = set(Image.registered_extensions())
        with os.scandir(image_dir) as entries:
            names = [e.name for e in islice(entries, 50_000)
                     if not e.name.startswith(".") and e.is_file()]
        images = [n for n in names if os.path.splitext(n)[1].lower() in known]
        if suffix is None:
            counts = Counter(os.path.splitext(n)[1] for n in images)
            if not counts:
                raise CLIError(f"no image files in {image_dir} (looked for {', '.join(sorted(known)[:8])}, ...)")
            suffix = counts.most_common(1)[0][0]
            notes.append(f"suffix {suffix}")
        pool = sorted(n for n in images if not suffix or n.endswith(suffix)) or sorted(images)
        if not pool:
            raise CLIError(f"no {suffix or 'image'} files in {image_dir}")
        picks = [pool[i] for i in np.unique(np.linspace(0, len(pool) - 1, min(25, len(pool))).astype(int))]
        modes, sizes = set(), set()
        for name in picks:
            path = os.path.join(image_dir, name)
            try:
                with Image.open(path) as img:
                    modes.add(img.mode)
                    sizes.add((img.height, img.width))
            except Exception as exc:  # noqa: BLE001 - any decoder error is the file's
                raise CLIError(f"cannot read image {path} ({exc.__class__.__name__}: {exc})") from None
        if color_mode is None:
            color_mode = "grayscale" if modes <= GRAY_MODES else "rgb"
            notes.append(f"{color_mode} (modes {', '.join(sorted(modes))})")
        if target is None:
            if len(sizes) == 1:
                h, w = next(iter(sizes))
                if max(h, w) > MAX_DETECTED_SIDE:
                    scale = MAX_DETECTED_SIDE / max(h, w)
                    h, w = max(1, round(h * scale)), max(1, round(w * scale))
                target = (h, w)
                notes.append(f"target size {h}x{w}")
            else:
                target = (28, 28) if color_mode == "grayscale" else (64, 64)
                notes.append(f"target size {target[0]}x{target[1]} (sampled sizes differ)")
        console.info(f"images: {image_dir} - detected from {len(picks)} files: {'; '.join(notes)}")
    return {"suffix": suffix, "color_mode": color_mode, "target_size": tuple(target)}


_NOISE = re.compile(r"All log messages before absl::InitializeLog|oneDNN custom operations are on|"
                    r"Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered|"
                    r"TF-TRT Warning|could not find cuda drivers|failed call to cuInit|"
                    r"This TensorFlow binary is optimized to use")


def _import_backend():
    """Import TensorFlow (through skimgclf's classifier) without its start-up log lines.

    TensorFlow's C++ start-up writes lines such as "oneDNN custom operations
    are on" straight to file descriptor 2, before TF_CPP_MIN_LOG_LEVEL
    applies. They are captured during the import; any other line is passed on.
    """
    import importlib
    import logging
    import tempfile

    if "skimgclf._classifier" not in sys.modules:
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            try:
                importlib.import_module("skimgclf._classifier")
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                lines = capture.read().decode("utf-8", "replace").splitlines()
                kept = [line for line in lines if line.strip() and not _NOISE.search(line)]
                if kept:
                    print("\n".join(kept), file=sys.stderr)
    # Python-side chatter ("... triggered tf.function retracing") is not for users.
    for name in ("tensorflow", "absl", "keras"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _network_kwargs(args):
    kwargs = {dest: getattr(args, f"net_{dest}") for _, dest, *_ in NETWORK_OPTIONS
              if getattr(args, f"net_{dest}") is not None}
    kwargs["validation_split"] = args.net_validation_split
    if args.no_augment:
        kwargs.update(random_shift=0.0, random_rotation=0.0, random_zoom=0.0)
    if args.flip:
        kwargs["random_flip"] = args.flip
    return kwargs


def _make_pipeline(args, image_dir, settings, console):
    from sklearn.pipeline import Pipeline

    _import_backend()
    from . import CNNClassifier, ImageFolderLoader

    loader = ImageFolderLoader(
        image_dir=os.path.abspath(image_dir), id_column=args.id_column, suffix=settings["suffix"],
        target_size=settings["target_size"], color_mode=settings["color_mode"],
        verbose=int(console.bars),
    )
    clf = CNNClassifier(**_network_kwargs(args), random_state=args.seed, verbose=int(console.bars))
    return Pipeline([("imagefolderloader", loader), ("cnnclassifier", clf)])


def _read_labelled(args, what):
    df = read_table(args.train_csv, id_column=args.id_column, label_column=args.label_column, what=what)
    y = labels_from_text(df[args.label_column], path=args.train_csv)
    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2:
        raise CLIError(f"{args.train_csv}: every row has the label {classes[0]!r}; a classifier needs "
                       "at least two classes")
    return df, y, classes, counts


def _load_model(path):
    """Load a pipeline written by skimgclf.save; refuse anything else."""
    if not os.path.exists(path):
        raise CLIError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise CLIError(f"model {path} is a folder, not a model file")
    if not zipfile.is_zipfile(path):
        raise CLIError(
            f"{path} is not a skimgclf model file (only files written by skimgclf train/search or "
            "skimgclf.save are read; joblib and pickle files are refused because loading them runs code)"
        )
    from sklearn.pipeline import Pipeline

    from . import ImageFolderLoader, load

    _import_backend()
    model = load(path)
    if not (isinstance(model, Pipeline) and isinstance(model.steps[0][1], ImageFolderLoader)
            and hasattr(model.steps[-1][1], "classes_")):
        raise CLIError(
            f"{path} holds a {type(model).__name__}, not a fitted pipeline that starts with an "
            "ImageFolderLoader; save Pipeline([('imagefolderloader', ...), ('cnnclassifier', ...)])"
        )
    return model


_ROW = re.compile(r"^row (\d+): ")


@contextlib.contextmanager
def _csv_lines(csv, rows):
    """Turn the loader's "row N: ..." (a position in what it was given) into the CSV's line."""
    try:
        yield
    except ValueError as exc:
        match = _ROW.match(str(exc))
        if match is None or int(match.group(1)) >= len(rows):
            raise
        line = int(rows[int(match.group(1))]) + 2
        raise CLIError(f"{csv} line {line}: {str(exc)[match.end():]}") from None


def _fmt_seconds(seconds):
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# ----------------------------------------------------------------- commands
def cmd_train(args, console):
    """``skimgclf train``: fit on a labelled CSV, report validation accuracy, save."""
    _check_file_out(args.model, "--model")
    if args.report:
        _check_dir_out(args.report, "--report")
    df, y, classes, counts = _read_labelled(args, "training CSV")
    image_dir = _image_dir(args, args.train_csv)
    settings = _detect(image_dir, args, console)
    rows = np.arange(len(df))
    if args.val_size > 0:
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

        train_rows, val_rows = train_test_split(rows, test_size=n_val, stratify=y, random_state=args.seed)
    else:
        train_rows, val_rows = rows, rows[:0]

    pipe = _make_pipeline(args, image_dir, settings, console)
    X = df[[args.id_column]]
    console.info(f"training on {len(train_rows)} images ({classes.size} classes), validating on "
                 f"{len(val_rows)} held out (stratified, seed {args.seed})")
    start = time.perf_counter()
    with _csv_lines(args.train_csv, train_rows):
        pipe.fit(X.iloc[train_rows], y[train_rows])
    fit_seconds = time.perf_counter() - start
    clf = pipe[-1]
    history = clf.history_
    console.info(f"trained {len(history.get('loss', []))} epochs in {_fmt_seconds(fit_seconds)}")

    metrics = {"command": "train", "train_csv": args.train_csv, "image_dir": image_dir, **settings,
               "n_train": int(len(train_rows)), "n_validation": int(len(val_rows)),
               "classes": classes.tolist(), "epochs_run": len(history.get("loss", [])),
               "fit_seconds": round(fit_seconds, 2), "network": clf.get_params(), "history": history}
    y_val = y_pred = None
    if len(val_rows):
        y_val = y[val_rows]
        with _csv_lines(args.train_csv, val_rows):
            y_pred = pipe.predict(X.iloc[val_rows])
        correct = int(np.sum(y_pred == y_val))
        accuracy = correct / len(val_rows)
        metrics["validation_accuracy"] = accuracy
        from sklearn.metrics import classification_report

        metrics["classification_report"] = classification_report(
            y_val, y_pred, labels=classes, output_dict=True, zero_division=0)
        console.result(f"validation accuracy: {accuracy:.4f} ({correct}/{len(val_rows)} held-out images)")
    else:
        console.result("validation accuracy: not measured (--val-size 0)")

    from . import save

    clf.set_params(verbose=0)
    pipe[0].set_params(verbose=1)
    _makedirs_for(args.model)
    save(pipe, args.model)
    console.result(f"model written to {args.model}")
    if args.report:
        _write_train_report(args.report, history, y_val, y_pred, classes, metrics, console)
    return metrics


def _write_train_report(folder, history, y_val, y_pred, classes, metrics, console):
    from . import _report

    os.makedirs(folder, exist_ok=True)
    written = [_report.plot_learning_curves(
        history, os.path.join(folder, "learning_curves.png"),
        title="Learning curves (validation: the --monitor-split part of the training rows)")]
    if y_val is not None:
        written.append(_report.plot_confusion_matrix(
            y_val, y_pred, os.path.join(folder, "confusion_matrix.png"), labels=classes,
            title="Confusion matrix, held-out validation rows"))
    written.append(_report.write_json(metrics, os.path.join(folder, "metrics.json")))
    console.result(f"report written to {folder}: {', '.join(os.path.basename(p) for p in written)}")


def _predict_chunks(model, args, console, label_column=None):
    """Yield (chunk, probabilities) over the CSV, loading chunk by chunk."""
    loader = model.steps[0][1]
    # cache=False: every chunk is loaded once, and keeping the chunks in the
    # loader's cache would make memory grow with the length of the CSV.
    loader.set_params(image_dir=_image_dir(args, args.csv), id_column=args.id_column, verbose=0, cache=False)
    total = count_rows(args.csv)
    done = 0
    with console.progress(total=total, desc="predicting", unit="img") as bar:
        for chunk in iter_table(args.csv, id_column=args.id_column, label_column=label_column,
                                chunksize=args.chunk_size):
            with _csv_lines(args.csv, range(done, done + len(chunk))):
                proba = model.predict_proba(chunk[[args.id_column]])
            done += len(chunk)
            bar.update(len(chunk))
            yield chunk, proba


def cmd_predict(args, console):
    """``skimgclf predict``: write id,label (and probabilities) for a CSV of ids."""
    from ._scoring import predict_csv

    _check_file_out(args.out, "--out")
    if os.path.exists(args.csv) and os.path.exists(args.out) and os.path.samefile(args.csv, args.out):
        raise CLIError(f"--out {args.out} is the input CSV; choose another file")
    if args.label_column == args.id_column:
        raise CLIError(f"--label-column and --id-column are both {args.id_column!r}")
    model = _load_model(args.model)
    image_dir = _image_dir(args, args.csv)
    start = time.perf_counter()
    _makedirs_for(args.out)
    # Chunk by chunk (bounded memory), here or on Dask workers; the file
    # appears only when complete. Errors name the CSV's line.
    with _dask_client(args, [image_dir]) as client, \
            console.progress(total=count_rows(args.csv), desc="predicting", unit="img") as bar:
        n = predict_csv(model, args.csv, args.out, image_dir=image_dir, id_column=args.id_column,
                        label_column=args.label_column, proba=args.proba, chunk_size=args.chunk_size,
                        client=client, model_file=args.model, progress=bar.update)
    seconds = time.perf_counter() - start
    console.result(f"predictions for {n} images written to {args.out} ({_fmt_seconds(seconds)})")
    return {"n": n, "out": args.out}


def cmd_evaluate(args, console):
    """``skimgclf evaluate``: accuracy, classification report, confusion matrix."""
    import pandas as pd
    from sklearn.metrics import classification_report

    if args.confusion:
        _check_file_out(args.confusion, "--confusion")
    if args.report:
        _check_dir_out(args.report, "--report")
    model = _load_model(args.model)
    classes = model.steps[-1][1].classes_
    y_true, y_pred = [], []
    line = 2
    for chunk, proba in _predict_chunks(model, args, console, label_column=args.label_column):
        y_true.append(labels_from_text(chunk[args.label_column], like=classes, path=args.csv, first_line=line))
        y_pred.append(classes[np.argmax(proba, axis=1)])
        line += len(chunk)
    y_true, y_pred = np.concatenate(y_true), np.concatenate(y_pred)
    labels = np.unique(np.concatenate([y_true, y_pred, classes]).astype(classes.dtype))
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
    metrics = {"command": "evaluate", "model": args.model, "csv": args.csv, "n": int(len(y_true)),
               "accuracy": accuracy,
               "classification_report": classification_report(y_true, y_pred, labels=labels,
                                                              output_dict=True, zero_division=0)}
    from . import _report

    pngs = []
    if args.confusion:
        _makedirs_for(args.confusion)
        pngs.append(args.confusion)
    if args.report:
        os.makedirs(args.report, exist_ok=True)
        pngs.append(os.path.join(args.report, "confusion_matrix.png"))
    for png in pngs:
        _report.plot_confusion_matrix(y_true, y_pred, png, labels=labels,
                                      title=f"Confusion matrix, {os.path.basename(args.csv)}")
        console.result(f"confusion matrix drawn in {png}")
    if args.report:
        path = _report.write_json(metrics, os.path.join(args.report, "metrics.json"))
        console.result(f"metrics written to {path}")
    return metrics


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
    import pandas as pd
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    _check_file_out(args.model, "--model")
    results = args.results or os.path.join(os.path.dirname(args.model), "cv_results.csv")
    _check_file_out(results, "--results")
    grids = _read_grid(args.grid)
    if args.cv < 2:
        raise CLIError("--cv must be at least 2 folds")
    if args.n_jobs == 0:
        raise CLIError("--n-jobs must not be 0 (1 runs in this process, -1 uses every core)")
    df, y, classes, counts = _read_labelled(args, "training CSV")
    if counts.min() < args.cv:
        raise CLIError(f"{args.train_csv}: class {classes[np.argmin(counts)]!r} has {counts.min()} images, "
                       f"fewer than --cv {args.cv} folds")
    image_dir = _image_dir(args, args.train_csv)
    settings = _detect(image_dir, args, console)
    pipe = _make_pipeline(args, image_dir, settings, console)
    grids = _qualify_grid(grids, pipe, args.grid)
    n_jobs = args.n_jobs
    on_dask = args.dask_scheduler is not None or args.dask_local is not None
    if on_dask and n_jobs != 1:
        raise CLIError("--n-jobs starts processes on this machine; with --dask-scheduler or --dask-local "
                       "the cluster's workers fit the candidates (leave --n-jobs out)")
    if on_dask:
        n_jobs = -1  # as many tasks at once as the cluster has threads
        pipe[-1].set_params(verbose=0)
    elif n_jobs != 1:
        n_proc = os.cpu_count() or 1
        workers = n_proc if n_jobs < 0 else min(n_jobs, n_proc)
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(max(1, n_proc // workers)))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
        pipe[-1].set_params(verbose=0)
    # A candidate that fails scores NaN (scikit-learn's error_score) and the
    # search goes on; any NaN is then an error here, naming the candidates,
    # so that a "best" model is never chosen among failures.
    search = GridSearchCV(pipe, grids, cv=StratifiedKFold(args.cv, shuffle=True, random_state=args.seed),
                          scoring=args.scoring, n_jobs=n_jobs, refit=False, error_score=np.nan,
                          verbose=0 if console.quiet else 3)
    with _dask_client(args, [image_dir]) as client:
        import warnings

        import joblib
        from sklearn.exceptions import FitFailedWarning

        backend = joblib.parallel_config(backend="dask") if client is not None else contextlib.nullcontext()
        start = time.perf_counter()
        with backend, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FitFailedWarning)
            try:
                search.fit(df[[args.id_column]], y)
            except ValueError as exc:
                if "fits failed" not in str(exc):
                    raise
                raise CLIError(f"every candidate failed to fit: {_first_error(str(exc))}") from None
        seconds = time.perf_counter() - start

    cv = pd.DataFrame(search.cv_results_)
    table = pd.DataFrame({
        "rank": cv["rank_test_score"],
        f"mean {args.scoring}": cv["mean_test_score"].map(lambda v: f"{v:.4f}"),
        "std": cv["std_test_score"].map(lambda v: f"{v:.4f}"),
        "fit time (s)": cv["mean_fit_time"].map(lambda v: f"{v:.1f}"),
        "params": [", ".join(f"{k.split('__', 1)[-1]}={v!r}" for k, v in p.items()) for p in cv["params"]],
    }).sort_values(["rank", "params"])
    console.result(f"{len(cv)} candidates x {args.cv} folds in {_fmt_seconds(seconds)}, ranked:")
    console.result(table.to_string(index=False))
    _refuse_failed_candidates(search.cv_results_, args.scoring,
                              [str(w.message) for w in caught if issubclass(w.category, FitFailedWarning)])
    best_index = int(np.flatnonzero(cv["rank_test_score"].to_numpy() == 1)[0])
    best_params, best_score = cv["params"][best_index], float(cv["mean_test_score"][best_index])
    best = ", ".join(f"{k.split('__', 1)[-1]}={v!r}" for k, v in best_params.items())
    console.result(f"best: {best} (mean {args.scoring} {best_score:.4f})")

    from sklearn.base import clone

    from . import _report, save

    console.info(f"refitting the best candidate on all {len(df)} rows")
    best_pipe = clone(pipe).set_params(**best_params).fit(df[[args.id_column]], y)
    best_pipe[-1].set_params(verbose=0)
    best_pipe[0].set_params(verbose=1)
    _makedirs_for(args.model)
    save(best_pipe, args.model)
    _makedirs_for(results)
    with _report.atomic_write(results, suffix=".csv") as tmp:
        cv.to_csv(tmp, index=False)
    console.result(f"best model (refitted on all {len(df)} rows) written to {args.model}")
    console.result(f"cv_results_ written to {results}")
    return {"best_params": best_params, "best_score": best_score}


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
    from .datasets import make_sample_dataset

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
        results.append(sub_args.func(sub_args, _Console(sub_args.quiet)))
    console.result("")
    console.result(f"demo done in {_fmt_seconds(time.perf_counter() - start)}: test accuracy "
                   f"{results[-1]['accuracy']:.4f}; predictions in {pred}")
    return results[-1]


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
        error), 2 on a usage error, 130 when interrupted.
    """
    # Quiet TensorFlow's C++ start-up logs and draw figures without a display;
    # both only when the user has not chosen otherwise.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MPLBACKEND", "Agg")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        import warnings

        with warnings.catch_warnings():
            if not os.environ.get("SKIMGCLF_WARNINGS"):
                for module in ("keras", "tensorflow", "scikeras", "absl"):
                    warnings.filterwarnings("ignore", module=module)
            args.func(args, _Console(args.quiet))
        return 0
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; no output written", file=sys.stderr)
        return 130
    except CLIError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except (ValueError, OSError, TableError) as exc:
        # Bad input from the files: the API's errors name the row, id and path.
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
