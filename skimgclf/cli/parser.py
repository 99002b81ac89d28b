"""The ``skimgclf`` command line's parser: commands, options, their types and help.

Network options are made from the classifier's parameter declarations
(:mod:`skimgclf.model.params`): their types, ranges, defaults and help,
and the words of each ``"auto"`` rule (``AUTO_RULES``,
``EARLY_STOPPING_RULE``), are never written twice. Importing this module
imports neither TensorFlow nor the estimators.
"""

from __future__ import annotations

import argparse
import numbers
import textwrap

from .. import __version__
from ..errors import CLIError, UsageError  # re-exported: defined with the others

__all__ = ["CLIError", "PROG", "UsageError", "build_parser", "option_names"]

PROG = "skimgclf"

MODEL_FILES_HELP = """\
model files:
  Models are written with skimgclf.save: JSON parameters plus Keras' own
  network format, checked by SHA-256 and loaded without running any code
  from the file. joblib and pickle files are not accepted: loading one runs
  whatever code it contains. To use a model you pickled yourself, load it in
  Python and re-save it with skimgclf.save(pipeline, "model.skimgclf").
"""



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
                            "an id names <DIR>/<id>.png, <DIR>/<id>.jpg, ...")
    group.add_argument("--label-column", default="label", metavar="NAME", help=label_help)
    return parent


def _loader_parent(for_model=False):
    from ..io.detect import MAX_SIDE, SAMPLE

    parent = argparse.ArgumentParser(add_help=False)
    if for_model:
        text = ("Left out, the model's own settings apply (a model trained on PNG files predicts a folder "
                "of JPEG files: each id's file is found whatever its image extension).")
    else:
        text = (f"Left out, these are decided from up to {SAMPLE} of the training images: each id's file "
                "is found whatever its image extension; grayscale if every sampled image has one channel, "
                "rgb otherwise; the size at least half of them share, else their median size, shrunk to "
                f"{MAX_SIDE} pixels on the longer side if larger.")
    group = parent.add_argument_group("image loading", textwrap.fill(text, width=79))
    group.add_argument("--suffix", metavar="EXT",
                       help="image file extension appended to the ids, e.g. .png or .jpg")
    group.add_argument("--color-mode", choices=["grayscale", "rgb", "rgba"],
                       help="colour mode the images are converted to")
    group.add_argument("--target-size", nargs=2, type=_positive_int, metavar=("H", "W"),
                       help="height and width every image is resized to")
    return parent


def _option_type(parameter):
    """An argparse type for a declared parameter: its first constraint, in scikit-learn's words."""
    from sklearn.utils._param_validation import Interval, StrOptions

    constraint = parameter.constraints[0]
    if isinstance(constraint, StrOptions):
        return str, "NAME", sorted(constraint.options)
    if isinstance(constraint, Interval):
        cast = int if constraint.type is numbers.Integral else float
        return _number(cast, constraint.is_satisfied_by, str(constraint)), "N" if cast is int else "X", None
    raise TypeError(f"no command-line type for {parameter.name}")  # pragma: no cover - declarations


def _plain(text):
    """reStructuredText of the declarations as help text: without the ````literal```` markup."""
    return " ".join(text.replace("``", "").split())


def _default(parameter):
    """The end of a declared parameter's help: its default, after its rule where that is ``"auto"``."""
    from ..model.params import AUTO_RULES

    if parameter.default == "auto" and parameter.name in AUTO_RULES:
        return f"(auto: {_plain(AUTO_RULES[parameter.name])}) (default: auto)"
    return f"(default: {parameter.default})"


def _network_parent():
    from ..model.params import AUTO_RULES, BACKBONES, EARLY_STOPPING_RULE, PARAMETERS

    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("network (CNNClassifier)")
    for p in PARAMETERS:
        if p.cli is None:
            continue
        kind, metavar, choices = _option_type(p)
        text = p.cli_help + (f": {', '.join(choices)}" if choices else "")
        group.add_argument(p.cli, dest=f"net_{p.name}", type=kind, metavar=metavar, choices=choices,
                           help=f"{text} {_default(p)}")
    augment = "; ".join(f"{name.removeprefix('random_')} {_plain(AUTO_RULES[name])}"
                        for name in ("random_shift", "random_rotation", "random_zoom", "random_flip"))

    group.add_argument("--backbone", dest="net_backbone", choices=BACKBONES, metavar="NAME",
                       help="fine-tune a pretrained keras.applications network instead of training the "
                            f"convolutions from scratch: {', '.join(BACKBONES)} (default: none)")
    group.add_argument("--backbone-weights", dest="net_backbone_weights", metavar="imagenet|none|PATH",
                       help="the backbone's weights: imagenet (downloaded once into Keras' cache), none "
                            "(random), or a file saved with save_weights from the same application without "
                            "its top, for machines without a network (default: imagenet)")
    group.add_argument("--monitor-split", dest="net_validation_split", type=_fraction, default=0.0,
                       metavar="X",
                       help="fraction of the training images the network watches every epoch (early "
                            f"stopping, and the validation curves of --report); early stopping: "
                            f"{_plain(EARLY_STOPPING_RULE)} (default: 0, every image trains)")
    group.add_argument("--no-augment", action="store_true",
                       help=f"no random shifts, rotations, zooms and flips while training (default: {augment})")
    group.add_argument("--flip", choices=["auto", "none", "horizontal", "vertical", "horizontal_and_vertical"],
                       help=f"random flips while training (default: auto, {_plain(AUTO_RULES['random_flip'])}: "
                            "digits and text must not be flipped)")
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
  skimgclf info                      # versions, and the devices TensorFlow trains on

Run 'skimgclf COMMAND --help' for the options of a command.
""",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    common = _common_parent()
    commands = {
        "train": _add_train(sub, common),
        "predict": _add_predict(sub, common),
        "evaluate": _add_evaluate(sub, common),
        "search": _add_search(sub, common),
        "demo": _add_demo(sub, common),
        "info": _add_info(sub),
    }
    for name, command in commands.items():
        command.set_defaults(command=name)
    return parser


#: The help of the label column of the commands that train.
_LABELS = "column of labels (default: label); labels are text, or integers when all are plain integers"


def _add_train(sub, common):
    """The ``train`` command: train a model on a labelled CSV of image ids."""
    train = sub.add_parser(
        "train", parents=[common, _table_parent(_LABELS), _loader_parent(), _network_parent()],
        formatter_class=_formatter, help="train a model on a labelled CSV of image ids",
        description="Train a CNN on a labelled CSV (id,label) and a folder of images, print the accuracy "
                    "on a stratified validation split, and write the model (the loader and the network "
                    "as one pipeline), trained on every labelled row.",
        epilog="""\
examples:
  skimgclf train train.csv --model model.skimgclf
  skimgclf train data/train.csv --images data/png --target-size 32 32 --color-mode rgb \\
      --epochs 30 --conv-blocks 3 --report report/

A model is trained on (1 - val-size) of the rows; the held-out rows give the
printed validation accuracy and the confusion matrix of --report. It then
trains a quarter more epochs on all the rows, held-out ones included, and that
is the model written (--refit scratch trains a new model on all the rows
instead, in about twice the time; --refit no writes the first model as it is).

""" + MODEL_FILES_HELP,
    )
    train.add_argument("train_csv", metavar="TRAIN_CSV", help="CSV with an id and a label column")
    train.add_argument("--model", default="model.skimgclf", metavar="FILE",
                       help="model file to write (default: model.skimgclf)")
    train.add_argument("--val-size", type=_fraction, default=0.2, metavar="X",
                       help="fraction of the rows held out, stratified, to measure accuracy "
                            "(default: 0.2; 0 trains on all rows)")
    train.add_argument("--refit", choices=("continue", "scratch", "no"), default="continue",
                       help="how the model written learns from the held-out rows too: continue (train the "
                            "measured model a quarter more epochs on all rows), scratch (train a new model "
                            "on all rows: twice the time) or no (write the measured model) (default: continue)")
    train.add_argument("--no-refit", dest="refit", action="store_const", const="no",
                       help="the same as --refit no")
    train.add_argument("--report", metavar="DIR",
                       help="write learning_curves.png, confusion_matrix.png (validation rows) and "
                            "metrics.json into DIR")
    return train


def _add_predict(sub, common):
    """The ``predict`` command: write predictions for a CSV of image ids."""
    predict = sub.add_parser(
        "predict", parents=[common, _table_parent("name of the label column written (default: label)"),
                            _loader_parent(for_model=True)],
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
    return predict


def _add_evaluate(sub, common):
    """The ``evaluate`` command: score a model on a labelled CSV."""
    evaluate = sub.add_parser(
        "evaluate", parents=[common, _table_parent("column of true labels (default: label)"),
                             _loader_parent(for_model=True)],
        formatter_class=_formatter, help="score a model on a labelled CSV",
        description="Predict a labelled CSV and print the accuracy, scikit-learn's classification "
                    "report, the confusion matrix and the classes most often mistaken for each other; "
                    "optionally draw the matrix and the most confident mistakes as PNGs.",
        epilog="""\
examples:
  skimgclf evaluate model.skimgclf test_labels.csv --images test/
  skimgclf evaluate model.skimgclf valid.csv --confusion confusion.png
  skimgclf evaluate model.skimgclf valid.csv --report report/   # + top_losses.png, metrics.json

""" + MODEL_FILES_HELP,
    )
    evaluate.add_argument("model", metavar="MODEL", help="model file written by 'skimgclf train' or 'search'")
    evaluate.add_argument("csv", metavar="CSV", help="CSV with an id and a label column")
    evaluate.add_argument("--confusion", metavar="PNG", help="draw the confusion matrix into this PNG file")
    evaluate.add_argument("--report", metavar="DIR",
                          help="write confusion_matrix.png, top_losses.png (the 12 images the model got "
                               "most confidently wrong, with true and predicted labels and the probability) "
                               "and metrics.json (accuracy, per-class report, most confused pairs, those "
                               "mistakes) into DIR")
    evaluate.add_argument("--chunk-size", type=_positive_int, default=4096, metavar="N",
                          help="rows loaded and predicted at a time (default: 4096)")
    return evaluate


def _add_search(sub, common):
    """The ``search`` command: grid-search network settings by cross-validation."""
    search = sub.add_parser(
        "search", parents=[common, _table_parent(_LABELS), _loader_parent(), _network_parent()],
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
    return search


def _add_demo(sub, common):
    """The ``demo`` command: train, predict and evaluate on an embedded sample data set."""
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
    return demo


def _add_info(sub):
    """The ``info`` command: versions and the devices TensorFlow trains on."""
    info = sub.add_parser(
        "info", formatter_class=_formatter,
        help="show versions and the devices TensorFlow trains on (CPU, GPUs)",
        description="Print skimgclf's, Python's and the libraries' versions, whether this TensorFlow "
                    "can use NVIDIA GPUs, the devices it sees (with GPU memory growth, which lets "
                    "models fitted one after another share a GPU) and its CPU threads.",
        epilog="""\
examples:
  skimgclf info
  skimgclf info --json > environment.json
""",
    )
    info.add_argument("--json", action="store_true", help="print the same as one JSON object")
    return info


def option_names(parser):
    """The option of each parameter the command line sets, from the parser itself.

    Messages raised under the command line name these options instead of
    the Python parameters (:func:`skimgclf.errors.speaking_cli`): the
    network's ``net_<parameter>`` destinations and the loader's own names.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        What :func:`build_parser` made.

    Returns
    -------
    dict of str to str
        ``{"backbone_weights": "--backbone-weights", "suffix": "--suffix", ...}``.
    """
    names, parsers = {}, [parser]
    while parsers:
        # argparse keeps its actions in _actions: it has no public way to list them.
        for action in parsers.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
            long = [o for o in action.option_strings if o.startswith("--")]
            if long:
                names.setdefault(action.dest.removeprefix("net_"), long[0])
    return names
