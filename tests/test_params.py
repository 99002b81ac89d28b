"""The classifier's parameters are declared once (skimgclf.model.params); everything else follows.

These tests fail when the constructor, the constraints, the docstring, the
network builder or the command line drift from the declarations.
"""

import inspect
import os
import subprocess
import sys

import pytest
from numpydoc.docscrape import ClassDoc
from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

from skimgclf import CNNClassifier
from skimgclf.model import params
from skimgclf.model.network import build_cnn


def test_constructor_lists_the_declared_parameters_in_order_with_their_defaults():
    signature = inspect.signature(CNNClassifier.__init__)
    names = [n for n in signature.parameters if n != "self"]
    assert names == [p.name for p in params.PARAMETERS]
    for p in params.PARAMETERS:
        assert signature.parameters[p.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert signature.parameters[p.name].default == p.default, p.name
    assert CNNClassifier().get_params() == params.defaults()


def test_constraints_are_the_declared_ones():
    # What scikit-learn checks at fit is each row of the table (not whatever constraints() returns) ...
    assert CNNClassifier._parameter_constraints == {p.name: list(p.constraints) for p in params.PARAMETERS}
    # ... and it really checks every parameter: its default passes, an object of no declared type is refused.
    for p in params.PARAMETERS:
        validate_parameter_constraints(CNNClassifier._parameter_constraints, {p.name: p.default}, "CNNClassifier")
        with pytest.raises(InvalidParameterError, match=f"The '{p.name}' parameter of CNNClassifier must be"):
            validate_parameter_constraints(CNNClassifier._parameter_constraints, {p.name: object()}, "CNNClassifier")


def test_docstring_documents_every_parameter_with_its_default():
    doc = ClassDoc(CNNClassifier)
    documented = {p.name: p for p in doc["Parameters"]}
    assert list(documented) == [p.name for p in params.PARAMETERS]
    for p in params.PARAMETERS:
        default = f'"{p.default}"' if isinstance(p.default, str) else repr(p.default)
        assert documented[p.name].type == f"{p.kind}, default={default}", p.name
        assert " ".join(documented[p.name].desc), p.name


def test_the_network_builder_takes_exactly_the_network_parameters():
    model = build_cnn((8, 8, 1), 3, **params.defaults("network"))
    assert model.output_shape == (None, 3)
    with pytest.raises(TypeError, match="unexpected network parameters \\['epochs'\\]"):
        build_cnn((8, 8, 1), 3, epochs=3)
    assert set(params.NETWORK) <= set(params.defaults())


@pytest.mark.parametrize("command", ["train", "search"])
def test_command_line_options_follow_the_declarations(command):
    out = subprocess.run([sys.executable, "-m", "skimgclf", command, "--help"], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split()).split("network (CNNClassifier):", 1)[1]
    for p in params.PARAMETERS:
        if p.cli:
            entry = text.split(f" {p.cli} ", 1)[1].split(" --", 1)[0]
            assert entry.startswith(("N ", "X ", "NAME ")) and entry.endswith(f"(default: {p.default})"), entry


def test_command_line_refuses_values_outside_the_declared_range(tmp_path):
    out = subprocess.run([sys.executable, "-m", "skimgclf", "train", "x.csv", "--epochs", "0"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 2
    assert "argument --epochs: '0' must be an int in the range [1, inf)" in out.stderr
    out = subprocess.run([sys.executable, "-m", "skimgclf", "train", "x.csv", "--activation", "nope"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 2 and "invalid choice: 'nope'" in out.stderr
