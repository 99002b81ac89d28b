"""The package's layout: imports run one way (io -> model -> scoring -> cli), with no cycle.

The graph is read from the source (every import statement, also those inside
functions), so a lazy import that would close a cycle counts too.
"""

import ast
import io
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "skimgclf"


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """The modules ``path`` imports: skimgclf modules by name, others by their top-level package."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:  # "from . import save" imports a name or a module
                candidate = f"{target}.{alias.name}"
                out.add(candidate if _exists(candidate) else target)
    return {m for m in out if m}


def _exists(module):
    rel = Path(*module.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").exists() or (PACKAGE.parent / rel / "__init__.py").exists()


GRAPH = {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _internal(module):
    return {m for m in GRAPH[module] if m.startswith("skimgclf.") and m in GRAPH and m != module}


def test_no_import_cycles():
    state, stack = {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for dep in sorted(_internal(module)):
            # A package's __init__ importing its own modules is not a cycle of concepts:
            # a module may import from skimgclf (the lazy public names) only at call time.
            if dep == "skimgclf" or (module.startswith(dep + ".") and dep.count(".") >= 1):
                continue
            if state.get(dep) == "open":
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(dep):] + [dep]))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)


def test_library_modules_never_import_the_command_line():
    offenders = sorted(m for m in GRAPH if not m.startswith("skimgclf.cli") and m != "skimgclf.__main__"
                       and any(d.startswith("skimgclf.cli") for d in GRAPH[m]))
    assert offenders == []


def test_scikeras_has_one_home():
    users = sorted(m for m, deps in GRAPH.items() if any(d.split(".")[0] == "scikeras" for d in deps))
    assert users == ["skimgclf.model.classifier"]


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith(("skimgclf.io", "skimgclf.cli",
                                                                            "skimgclf.plots")) or m in {
    "skimgclf", "skimgclf.errors", "skimgclf._files", "skimgclf._progress", "skimgclf._pipelines",
    "skimgclf.scoring", "skimgclf.model.params", "skimgclf.datasets", "skimgclf.plots"}))
def test_light_modules_never_import_the_backend(module):
    """The loader, the tables, the parser and the declarations work without TensorFlow or Keras."""
    heavy = {d for d in GRAPH[module] if d.split(".")[0] in ("tensorflow", "keras", "scikeras")}
    assert heavy == set()


# ------------------------------------------------------------- tests mirror the package
TESTS = Path(__file__).resolve().parent

#: Modules tested in a test module of another name: {module: (test module, why)}.
TESTED_IN = {
    "skimgclf.io.ids": ("test_tables.py", "ids are the cells of a table: read and written with the tables"),
    "skimgclf.io.watch": ("test_memcache.py", "inotify answers whether the batch cache may be reused"),
}

#: Modules with logic but no test module of their own: {module: why}.
NO_TEST_MODULE = {
    "skimgclf": "the lazy public names: every test imports them",
    "skimgclf._backend": "TensorFlow imported without its start-up lines: test_persistence loads a model quietly "
                         "in a plain script",
    "skimgclf._files": "outputs that appear whole or not at all: test_cli (full disk, closed pipe, Ctrl-C, "
                       "unwritable folders) and test_persistence (killed saves)",
    "skimgclf._pipelines": "a loader first, a classifier last: through test_cli, test_scoring and test_persistence",
    "skimgclf.datasets": "the sample data: conftest's digits_layout, test_docs and test_cli's demo",
    "skimgclf.errors": "the error types: each is raised and matched in the tests of the module that raises it",
}

#: Test modules that mirror no module: end-to-end runs and checks of the whole project.
WHOLE_PROJECT = {
    "test_layout.py": "the package's layout (this file)",
    "test_pipeline.py": "the loader and the classifier together (end to end)",
    "test_notebook.py": "a real notebook run by a real kernel (end to end)",
    "test_readme.py": "the README's example, run",
    "test_docs.py": "what the documentation shows, run",
    "test_packaging.py": "the declared dependency floors",
    "test_sklearn_checks.py": "scikit-learn's estimator checks on both estimators",
    "test_private_names.py": "the private names of other libraries skimgclf uses",
    "test_pickling.py": "pickle, joblib and deepcopy of fitted estimators, in fresh processes",
}


def _has_logic(module):
    """A function, or a class with a method: something a test can exercise."""
    path = PACKAGE.parent / Path(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
               or (isinstance(n, ast.ClassDef) and any(isinstance(m, ast.FunctionDef) for m in n.body))
               for n in ast.parse(path.read_text()).body)


def _test_modules_for(module):
    """``skimgclf.a.b``: tests/test_b.py, or test_a.py (its subpackage's); leading underscores dropped."""
    parts = [p.lstrip("_") for p in module.split(".")[1:]]
    return [f"test_{p}.py" for p in reversed(parts)]


def test_every_module_with_logic_has_a_test_module():
    missing = []
    for module in sorted(m for m in GRAPH if _has_logic(m) and m not in NO_TEST_MODULE):
        names = [TESTED_IN[module][0]] if module in TESTED_IN else _test_modules_for(module)
        if not any((TESTS / name).is_file() for name in names):
            missing.append(f"{module} (no {' or '.join(names)})")
    assert missing == [], "add the test module, or list the module in TESTED_IN or NO_TEST_MODULE with a reason"
    assert set(NO_TEST_MODULE) <= set(GRAPH) and set(TESTED_IN) <= set(GRAPH), "a listed module is gone"


def test_every_test_module_mirrors_a_module_or_the_whole_project():
    """No test file named after a round of work: each is a module's, or checks the project as a whole."""
    mirrored = {name for m in GRAPH for name in _test_modules_for(m)} | {t for t, _ in TESTED_IN.values()}
    strays = sorted(p.name for p in TESTS.glob("test_*.py") if p.name not in mirrored | set(WHOLE_PROJECT))
    assert strays == [], "name a test module after the module it tests, or list it in WHOLE_PROJECT"


# ------------------------------------------------------- numbers out of the code
#: Names of the development data sets: the package must not need them.
DEV_DATA = re.compile(r"cifar|mnist10k|tutorial|seed recipe|clothing photos", re.I)
#: Benchmark figures: accuracies reached, relative costs, percentages of gain or loss.
FIGURES = [
    re.compile(r"\b(reached|scored|fell from|rose from|kept)\s+(about\s+)?0\.\d{2,}", re.I),
    re.compile(r"\d\s?%\s+(less|more|shorter|longer|faster|slower|of (validation|test|the) )", re.I),
    re.compile(r"(?<![\w.])[+-]\d+(\.\d+)?\s?%", re.I),
    re.compile(r"\d(\.\d+)?\s+times\s+as\s+(long|fast|slow)", re.I),
    re.compile(r"\d(\.\d+)?(-\d+(\.\d+)?)?x\s+(as fast|faster|slower|shorter|the speed)", re.I),
    re.compile(r"\b\d+(\.\d+)?(-\d+(\.\d+)?)?\s?(s|ms|seconds)\s+once\b", re.I),
    re.compile(r"(validation|test|held-out)\s+accuracy\s+(of\s+)?0\.\d{2,}", re.I),
]


def _prose(path):
    """``(line, text)`` of every comment and string literal (docstrings included) of ``path``."""
    source = path.read_text()
    out = [(tok.start[0], tok.string) for tok in tokenize.generate_tokens(io.StringIO(source).readline)
           if tok.type == tokenize.COMMENT]
    out += [(node.lineno, node.value) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    return out


def _prose_findings(paths):
    found = []
    for path in paths:
        for line, text in _prose(path):
            flat = " ".join(text.split())
            for pattern in [DEV_DATA, *FIGURES]:
                match = pattern.search(flat)
                if match:
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {match.group(0)!r}")
    return found


def test_no_benchmark_figures_or_development_data_in_the_code():
    """Measurements live in docs/performance.rst and benchmarks/; the code states the rule and one reason."""
    assert _prose_findings(sorted(PACKAGE.rglob("*.py"))) == []


def test_the_figure_check_finds_figures(tmp_path):
    """The patterns above catch the kinds of figures the code once held."""
    sample = tmp_path / "skimgclf" / "sample.py"
    sample.parent.mkdir()
    sample.write_text('"""On cifar10k two blocks reached 0.74."""\n'
                      "# costs 44 % less per epoch; 40 filters took 1.8 times as long\n"
                      "# reflected: +1.5 % against black\n"
                      "x = 1  # the README's example scored 0.44\n")
    found = [p.pattern for _, text in _prose(sample) for p in [DEV_DATA, *FIGURES] if p.search(" ".join(text.split()))]
    assert len(found) >= 6, found


def test_the_classifier_imports_under_python_OO():
    """Under -OO docstrings are None: nothing may format or parse them at import."""
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-OO", "-c", "import skimgclf.model.classifier, skimgclf.cli.parser"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]


#: The longest a function of skimgclf may be (lines, from ``def`` to its last line).
MAX_FUNCTION_LINES = 80

#: Functions allowed to be longer, each with its reason. An entry that is no
#: longer needed (the function is short or gone) fails too.
LONG_FUNCTIONS = {
    "skimgclf.model.classifier.CNNClassifier.__init__":
        "an estimator's parameter list: one keyword and one assignment per parameter, no logic "
        "(scikit-learn requires __init__ to store each parameter as given)",
}


def _functions():
    """``{qualified name: lines}`` of every function and method in skimgclf."""
    found = {}

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}.{child.name}"
                found[name] = child.end_lineno - child.lineno + 1
                walk(child, name)
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}.{child.name}")
            else:
                walk(child, prefix)

    for path in PACKAGE.rglob("*.py"):
        walk(ast.parse(path.read_text()), _module_name(path))
    return found


def test_no_function_is_longer_than_80_lines():
    functions = _functions()
    long = {name: n for name, n in functions.items() if n > MAX_FUNCTION_LINES and name not in LONG_FUNCTIONS}
    assert long == {}, f"split these along their jobs (at most {MAX_FUNCTION_LINES} lines each)"
    stale = sorted(name for name in LONG_FUNCTIONS if functions.get(name, 0) <= MAX_FUNCTION_LINES)
    assert stale == [], "no longer long (or gone): remove from LONG_FUNCTIONS"


_EXCEPTION_BASES = {"BaseException", "Exception", "ValueError", "TypeError", "OSError", "RuntimeError",
                    "KeyError", "IndexError", "LookupError", "ArithmeticError", "KeyboardInterrupt", "SystemExit",
                    "Warning", "UserWarning", "IOError", "EnvironmentError", "NotImplementedError"}


def _exception_classes():
    """``{module: [class names]}`` of the exception classes defined in skimgclf (read from the source).

    A class is an exception class if a base is a built-in exception, a name
    ending in Error/Exception/Warning, or (transitively) another such class.
    """
    classes = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases}
                classes.append((_module_name(path), node.name, bases))
    known = set(_EXCEPTION_BASES)
    while True:
        more = {name for _, name, bases in classes if name not in known and bases & known
                or any(b.endswith(("Error", "Exception", "Warning")) for b in bases)}
        if more <= known:
            break
        known |= more
    found = {}
    for module, name, bases in classes:
        if bases & known or any(b.endswith(("Error", "Exception", "Warning")) for b in bases):
            found.setdefault(module, []).append(name)
    return found


def test_exception_classes_are_defined_only_in_errors():
    found = _exception_classes()
    assert set(found) == {"skimgclf.errors"}, {m: v for m, v in found.items() if m != "skimgclf.errors"}
    assert {"SkimgclfError", "OutputError", "CLIError", "UsageError", "RefusedNetwork"} <= set(found["skimgclf.errors"])


def test_moved_errors_are_still_importable_from_their_old_homes():
    from skimgclf import _files, errors
    from skimgclf.cli import parser

    assert _files.OutputError is errors.OutputError
    assert parser.CLIError is errors.CLIError and parser.UsageError is errors.UsageError
    assert issubclass(errors.DaskSetupError, RuntimeError) and issubclass(errors.BackboneWeightsError, RuntimeError)


def test_fitted_state_has_one_protocol():
    """Every ``_set_fitted`` of skimgclf takes one dict of fitted state: ``_set_fitted(self, state)``."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "_set_fitted":
                found[_module_name(path)] = [a.arg for a in node.args.args + node.args.kwonlyargs]
    assert set(found) >= {"skimgclf.io.loader", "skimgclf.model.classifier"}
    assert {m: args for m, args in found.items() if args != ["self", "state"]} == {}


def test_persistence_restores_by_registry_not_by_class_names():
    """No ``node["class"] == ...``, ``type(x).__name__ == ...`` or isinstance ladder on estimator classes."""
    tree = ast.parse((PACKAGE / "model" / "persistence.py").read_text())
    estimators = {"ImageFolderLoader", "CNNClassifier", "Pipeline"}

    def names_a_class(expr):
        return any((isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant) and n.slice.value == "class")
                   or (isinstance(n, ast.Attribute) and n.attr == "__name__")
                   or (isinstance(n, ast.Constant) and n.value in estimators) for n in ast.walk(expr))

    ladders = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Compare)
               and isinstance(n.ops[0], (ast.Eq, ast.NotEq)) and names_a_class(n)]
    ladders += [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") ==
                "isinstance" and any(isinstance(a, ast.Name) and a.id in estimators for a in ast.walk(n.args[1]))]
    assert ladders == []
