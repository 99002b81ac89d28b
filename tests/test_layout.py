"""The package's layout: imports run one way (io -> model -> scoring -> cli), with no cycle.

The graph is read from the source (every import statement, also those inside
functions), so a lazy import that would close a cycle counts too.
"""

import ast
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


#: The longest a function of skimgclf may be (lines, from ``def`` to its last line).
MAX_FUNCTION_LINES = 80

#: Functions allowed to be longer, each with its reason. An entry that is no
#: longer needed (the function is short or gone) fails too.
LONG_FUNCTIONS = {
    "skimgclf.model.classifier.CNNClassifier.__init__":
        "an estimator's parameter list: one keyword and one assignment per parameter, no logic "
        "(scikit-learn requires __init__ to store each parameter as given)",
    # Split by part RULES of issue 29 (build_cnn, build_transfer, build_parser); drop on merge.
    "skimgclf.model.network.build_cnn": "being split in the RULES part of issue 29",
    "skimgclf.model.backbones.build_transfer": "being split in the RULES part of issue 29",
    "skimgclf.cli.parser.build_parser": "being split in the RULES part of issue 29",
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
