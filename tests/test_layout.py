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


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith(("skimgclf.io", "skimgclf.cli")) or m in {
    "skimgclf", "skimgclf.errors", "skimgclf._files", "skimgclf._progress", "skimgclf._pipelines",
    "skimgclf.scoring", "skimgclf.model.params", "skimgclf.datasets", "skimgclf.plots"}))
def test_light_modules_never_import_the_backend(module):
    """The loader, the tables, the parser and the declarations work without TensorFlow or Keras."""
    heavy = {d for d in GRAPH[module] if d.split(".")[0] in ("tensorflow", "keras", "scikeras")}
    assert heavy == set()
