"""Choices are arguments: no library module patches another module, reads or defines flags,
or sets a process-wide JAX, logging, warnings, matplotlib or environment setting; commands
(cli/) do."""

import ast
import functools
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rsrl_jax"
# Known, with who removes it: the data loading that `run_timing.time_run` times inside the
# engine's run; it goes once the engine's `run` takes the data (or a loader) as an argument.
KNOWN_PATCHES: set[tuple[str, str]] = {
    # Hides torch from tensorboardX's import only (restored in the same `finally`): it would
    # load torch into every run for nothing (`recorder.summary_writer`). Set and deleted.
    ("rsrl_jax/run/recorder.py", "sys.modules['torch']"),
    # Commands only (`stops.install`, called by `cli.run`): drops Orbax's "Event loop is
    # closed" reports after a failed save and re-raises a stop lost in a gc callback; every
    # other report goes on to the previous hook.
    ("rsrl_jax/run/stops.py", "sys.unraisablehook"),
}
# Calls that change a setting of the whole process.
PROCESS_SETTINGS = {
    "jax.config.update",
    "os.environ.update",
    "os.environ.setdefault",
    "os.environ.pop",
    "os.environ.clear",
    "os.putenv",
    "os.unsetenv",
    "logging.set_verbosity",  # absl's
    "warnings.filterwarnings",
    "warnings.simplefilter",
    "matplotlib.use",
}


def modules(under: pathlib.Path = PACKAGE):
    for path in sorted(under.rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text())


def imported_names(tree: ast.AST) -> set[str]:
    """Every name an import binds anywhere in the module (functions' own imports too)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.asname or a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {a.asname or a.name for a in node.names}
    return names


def root_name(node: ast.AST) -> str | None:
    """`x` of `x.a.b`, `x.a[k]`, ...; None when the chain starts elsewhere (a call, self)."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def assigned(tree: ast.AST):
    """Every assignment or deletion target, tuples unpacked."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.Delete):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        while targets:
            target, *targets = targets
            if isinstance(target, ast.Tuple | ast.List):
                targets += target.elts
            else:
                yield target


def patches(tree: ast.AST) -> list[str]:
    """What the module changes in objects it imported: `m.attr = v`, `m.d[k] = v`, `del m.a`,
    `setattr(m, ...)`, and any use of unittest.mock."""
    imported = imported_names(tree)
    found = [
        ast.unparse(t)
        for t in assigned(tree)
        if isinstance(t, ast.Attribute | ast.Subscript) and root_name(t) in imported
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("setattr", "delattr"):
            if node.args and root_name(node.args[0]) in imported:
                found.append(ast.unparse(node))
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [getattr(node, "module", None) or ""] + [a.name for a in node.names]
            found += [f"imports {n}" for n in names if n.startswith("unittest.mock") or n == "mock"]
    return found


def test_no_module_patches_another_modules_globals():
    found = [
        (path, what)
        for path, tree in modules()
        for what in patches(tree)
        if (path, what) not in KNOWN_PATCHES
    ]
    assert found == []


def test_the_scan_finds_the_patches_it_forbids():
    tree = ast.parse(
        "from rsrl_jax.engine import train\nfrom PIL import Image\nimport os\n"
        "def f(self):\n"
        "    from rsrl_jax.data import datasets\n"
        "    train.CPU_TRAIN_OPTIONS = train.CPU_FORWARD_OPTIONS = None\n"
        "    Image.MAX_IMAGE_PIXELS, x = 10, 1\n"
        "    datasets.load = lambda *a: None\n"
        "    os.environ['X'] = '1'\n"
        "    setattr(train, 'make_model', None)\n"
        "    self.model = train.make_model\n"  # its own attribute: fine
    )
    assert patches(tree) == [
        "train.CPU_TRAIN_OPTIONS",
        "train.CPU_FORWARD_OPTIONS",
        "Image.MAX_IMAGE_PIXELS",
        "datasets.load",
        "os.environ['X']",
        "setattr(train, 'make_model', None)",
    ]


def test_flags_are_defined_and_read_in_cli_modules_only():
    found = []
    for path, tree in modules():
        if path.startswith("rsrl_jax/cli/"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in ("absl", "ml_collections"):
                found += [(path, a.name) for a in node.names if a.name in ("flags", "config_flags")]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").endswith("config_flags"):
                found.append((path, node.module))
            elif isinstance(node, ast.Import):
                found += [(path, a.name) for a in node.names if a.name.endswith("flags")]
    assert found == []


def test_process_wide_settings_are_made_by_the_commands():
    found = []
    for path, tree in modules():
        if path.startswith("rsrl_jax/cli/"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in PROCESS_SETTINGS:
                found.append((path, ast.unparse(node)))
        environ = [ast.unparse(t) for t in assigned(tree)]
        found += [(path, t) for t in environ if t.startswith("os.environ")]
    assert found == []


def test_the_model_and_the_method_read_no_backend_while_traced():
    found = [
        (path, ast.unparse(node))
        for under in ("models", "method")
        for path, tree in modules(PACKAGE / under)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("default_backend")
    ]
    assert found == []


# Imports go downhill: a module imports only its own layer or those below, and no modules
# import each other, even through others (ARCHITECTURE.md, "Layers"). A top-level module not
# named here (`python -m rsrl_jax.X`'s forwarders, the public names) is a command's: the top.
LAYERS = (
    ("errors", "files", "overrides", "compiler"),
    ("method", "models"),
    ("data",),
    (
        "config",
        "config_checks",
        "config_data_checks",
        "config_model_checks",
        "config_method_checks",
        "configs",
    ),
    ("metrics",),
    ("run",),
    ("analysis",),
    ("engine",),
    ("experiments",),
    ("api", "bench", "cli"),
)


def module_name(path: str) -> str:
    """`rsrl_jax.data.inputs` of rsrl_jax/data/inputs.py, `rsrl_jax.data` of its __init__."""
    name = path.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


def layer(module: str) -> int:
    """The index in LAYERS of a module's room: its package, or its own name at the top."""
    parts = module.split(".")
    room = parts[1] if len(parts) > 1 else ""
    for i, rooms in enumerate(LAYERS):
        if room in rooms:
            return i
    assert len(parts) <= 2, f"{module}: its package is in no layer of LAYERS"
    return len(LAYERS) - 1


def imports_of(module: str, tree: ast.AST, known: set[str]) -> set[str]:
    """The package's modules `module` imports anywhere (functions' own imports too): for
    `from P import x`, P.x when it is a module, else P."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            named = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level]
                base = ".".join(package + ([base] if base else []))
            named = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        for name in named:
            while name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in known and name != module:
                found.add(name)
    return found


@functools.cache  # parsed once for both tests
def import_graph(under: pathlib.Path = PACKAGE) -> dict[str, set[str]]:
    trees = {module_name(path): tree for path, tree in modules(under)}
    return {m: imports_of(m, tree, set(trees)) for m, tree in trees.items()}


def climbs(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(m, d) for m, deps in graph.items() for d in deps if layer(d) > layer(m)}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(m):
        index[m] = low[m] = len(index)
        stack.append(m)
        on_stack.add(m)
        for d in sorted(graph.get(m, ())):
            if d not in index:
                visit(d)
                low[m] = min(low[m], low[d])
            elif d in on_stack:
                low[m] = min(low[m], index[d])
        if low[m] == index[m]:
            group = []
            while not group or group[-1] != m:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                found.append(sorted(group))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    return found


def test_imports_go_downhill():
    assert sorted(climbs(import_graph())) == []


def test_no_modules_import_each_other():
    assert cycles(import_graph()) == []


def test_the_scan_finds_climbs_and_cycles():
    graph = {
        "rsrl_jax.data.a": {"rsrl_jax.engine.train", "rsrl_jax.data.b"},
        "rsrl_jax.data.b": {"rsrl_jax.data.c", "rsrl_jax.errors"},
        "rsrl_jax.data.c": {"rsrl_jax.data.a"},
        "rsrl_jax.engine.train": {"rsrl_jax.models.alexnet"},
        "rsrl_jax.main": {"rsrl_jax.cli"},
    }
    assert climbs(graph) == {("rsrl_jax.data.a", "rsrl_jax.engine.train")}
    assert cycles(graph) == [["rsrl_jax.data.a", "rsrl_jax.data.b", "rsrl_jax.data.c"]]
    tree = ast.parse("def f():\n    from rsrl_jax.engine import train, rsrl as r\n")
    known = {"rsrl_jax.engine", "rsrl_jax.engine.train", "rsrl_jax.engine.rsrl"}
    assert imports_of("rsrl_jax.data.a", tree, known) == {
        "rsrl_jax.engine.train",
        "rsrl_jax.engine.rsrl",
    }
