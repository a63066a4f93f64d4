"""The package's structure: each layer imports only the layers below it, and no module
imports itself back through others. Every import statement counts, the ones inside
functions too (a lazy import is still a dependency). The oracle is the source text, read
with the ast module; nothing is imported."""
import ast
import os

from tests.conftest import ROOT

PACKAGE = os.path.join(ROOT, "rsdl_qgis")

#: the layers, lowest first; a module may import its own layer's modules and lower ones
LAYERS = [
    {"rsdl_qgis.errors", "rsdl_qgis.version"},
    {"rsdl_qgis.deps"},
    {"rsdl_qgis.engine"},
    {"rsdl_qgis.models"},
    {"rsdl_qgis.ml"},
    {"rsdl_qgis.api", "rsdl_qgis.cluster_cli"},
    {"rsdl_qgis.algorithms"},
    {"rsdl_qgis.provider"},
    {"rsdl_qgis.plugin"},
    {"rsdl_qgis"},                     # the package: QGIS's classFactory
]


def modules():
    """{module name: path} of every Python file of the package."""
    out = {}
    for folder, _dirs, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                name = os.path.relpath(path[:-3], ROOT).replace(os.sep, ".")
                out[name[:-len(".__init__")] if name.endswith(".__init__") else name] = path
    return out


def imports(name, path, known):
    """The package's modules that the module `name` imports, anywhere in its text."""
    is_package = path.endswith("__init__.py")
    here = name if is_package else name.rpartition(".")[0]
    out = set()
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "rsdl_qgis"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = here.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            if base.split(".")[0] != "rsdl_qgis":
                continue
            for a in node.names:      # `from . import safety` imports a module
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
    return {m for m in out if m != name}


def graph():
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def layer(name):
    for rank, names in enumerate(LAYERS):
        for top in sorted(names, key=len, reverse=True):
            if name == top or (top != "rsdl_qgis" and name.startswith(top + ".")):
                return rank
    raise AssertionError(f"{name} is in no layer: add it to LAYERS")


def cycles(g):
    """The groups of modules that import each other (strongly connected, Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def test_the_walk_sees_lazy_and_relative_imports():
    """The oracle itself: the imports it must find in files whose imports are known."""
    g = graph()
    assert "rsdl_qgis.engine.cluster" in g["rsdl_qgis.engine.serve"]        # in a function
    assert "rsdl_qgis.models.safety" in g["rsdl_qgis.models.adapters"]     # from . import
    assert "rsdl_qgis.engine.output" in g["rsdl_qgis.engine.report"]
    assert "rsdl_qgis.plugin" in g["rsdl_qgis"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_itself_back():
    found = cycles(graph())
    assert not found, f"modules that import each other: {found}"


def test_each_layer_imports_only_the_layers_below():
    upward = sorted(f"{m} imports {d}" for m, deps in graph().items() for d in deps
                    if layer(d) > layer(m))
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def test_no_module_is_imported_by_a_string():
    """Dependencies are imports the walk above sees: only deps.py imports by name, and
    only third-party packages (which it checks are installed)."""
    for name, path in modules().items():
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        if name != "rsdl_qgis.deps":
            assert "import_module(" not in text and "__import__(" not in text, name


def unannotated(source):
    """Public functions and methods (of public classes) of a module's source that lack a
    parameter or return annotation (__init__ needs none for its return)."""
    missing = []

    def visit(node, owner=""):
        for n in ast.iter_child_nodes(node):
            if isinstance(n, ast.ClassDef) and not n.name.startswith("_"):
                visit(n, n.name + ".")
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                    not n.name.startswith("_") or n.name == "__init__"):
                args = [a for a in n.args.posonlyargs + n.args.args + n.args.kwonlyargs
                        if a.arg not in ("self", "cls")]
                args += [a for a in (n.args.vararg, n.args.kwarg) if a is not None]
                if any(a.annotation is None for a in args) or (
                        n.returns is None and n.name != "__init__"):
                    missing.append(f"{owner}{n.name} (line {n.lineno})")
    visit(ast.parse(source))
    return missing


def test_every_public_function_of_the_core_is_annotated():
    """engine/, models/ and ml/ say what each public function takes and gives; mypy
    (make lint) checks the whole package against it."""
    assert unannotated("def f(a, b: int) -> int: ...\nclass C:\n    def g(self) -> None: ...\n"
                       "    def h(self, x): ...\n    def _p(self, y): ...\n") == \
        ["f (line 1)", "C.h (line 4)"]                   # the oracle sees what it must
    missing = []
    for name, path in modules().items():
        if name.split(".")[1:2] in (["engine"], ["models"], ["ml"]):
            with open(path, encoding="utf-8") as fh:
                missing += [f"{name}: {m}" for m in unannotated(fh.read())]
    assert not missing, "public functions without annotations:\n" + "\n".join(missing)
