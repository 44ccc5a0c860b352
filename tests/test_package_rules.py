"""Choices are arguments: no library module patches another module, reads or defines flags,
or sets a process-wide JAX, logging, warnings, matplotlib or environment setting; commands
(rsrl_jax/X.py for `python -m rsrl_jax.X`, and what they share: commands.py, command_flags.py,
console.py) do. No library module imports a command module, and none imports the clone's
benchmarks."""

import ast
import functools
import pathlib
import subprocess
import sys

from rsrl_jax.__main__ import is_command

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rsrl_jax"
BENCHMARKS = ROOT / "benchmarks"
# What the command modules share: running a main, parsing its command line, its console.
COMMAND_HELPERS = ("rsrl_jax/commands.py", "rsrl_jax/command_flags.py", "rsrl_jax/console.py")
# Known, with who removes it: the data loading that `run_timing.time_run` times inside the
# engine's run; it goes once the engine's `run` takes the data (or a loader) as an argument.
KNOWN_PATCHES: set[tuple[str, str]] = {
    # Hides torch from tensorboardX's import only (restored in the same `finally`): it would
    # load torch into every run for nothing (`recorder.summary_writer`). Set and deleted.
    ("rsrl_jax/run/recorder.py", "sys.modules['torch']"),
    # Commands only (`stops.install`, called by `commands.run`): drops Orbax's "Event loop is
    # closed" reports after a failed save and re-raises a stop lost in a gc callback; every
    # other report goes on to the previous hook.
    ("rsrl_jax/run/stops.py", "sys.unraisablehook"),
    # The package's own class (its own module, not another's): keeps `import rsrl_jax.study`
    # from replacing the API's `rsrl_jax.study` (`_Package.__setattr__`).
    ("rsrl_jax/__init__.py", "sys.modules[__name__].__class__"),
}


@functools.cache
def command_modules() -> set[str]:
    """The package's command modules (`python -m rsrl_jax.X`), as paths."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*.py")
        if is_command(path.read_text())
    }


def commands_layer(path: str) -> bool:
    return path in command_modules() or path in COMMAND_HELPERS


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


def test_flags_are_defined_and_read_in_command_modules_only():
    found = []
    for path, tree in modules():
        if commands_layer(path):
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
        if commands_layer(path):
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
# named here (the commands, what they share, the public names) is at the top.
LAYERS = (
    ("errors", "files", "overrides", "compiler", "workdir_files"),
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
    ("api", "commands", "command_flags", "console", "config_help"),
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
        "rsrl_jax.main": {"rsrl_jax.commands"},
    }
    assert climbs(graph) == {("rsrl_jax.data.a", "rsrl_jax.engine.train")}
    assert cycles(graph) == [["rsrl_jax.data.a", "rsrl_jax.data.b", "rsrl_jax.data.c"]]
    tree = ast.parse("def f():\n    from rsrl_jax.engine import train, rsrl as r\n")
    known = {"rsrl_jax.engine", "rsrl_jax.engine.train", "rsrl_jax.engine.rsrl"}
    assert imports_of("rsrl_jax.data.a", tree, known) == {
        "rsrl_jax.engine.train",
        "rsrl_jax.engine.rsrl",
    }


# `rsrl_jax.compare` and `rsrl_jax.study` are the API's functions (`rsrl_jax/__init__.py`'s
# lazy `__getattr__`) and the commands' modules: importing a command module would replace the
# package's attribute with the module. Commands are run (`python -m`, runpy), never imported.
API_NAMES = ("compare", "study")


def imported_modules(tree: ast.AST) -> set[str]:
    """The dotted names a module's imports load: `import a.b` gives a.b, `from a import b`
    a.b (a module or not: which it is depends on the package)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
    return found


def command_imports(tree: ast.AST, api_names=API_NAMES) -> set[str]:
    """The command modules `tree` imports as modules; `from rsrl_jax import compare` (or
    study) is the API's function, not the module."""
    commands = {module_name(path) for path in command_modules()}
    api = {f"rsrl_jax.{name}" for name in api_names}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            named = {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            named = {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            if node.module == "rsrl_jax":
                named -= api
        else:
            continue
        found |= named & commands
    return found


def python_files():
    for under in ("rsrl_jax", "benchmarks", "tools", "tests"):
        for path in sorted((ROOT / under).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text())


def test_no_file_imports_the_compare_or_study_command_as_a_module():
    api = {f"rsrl_jax.{name}" for name in API_NAMES}
    found = [
        (path, name)
        for path, tree in python_files()
        for name in command_imports(tree)
        if name in api
    ]
    assert found == []


def test_library_code_imports_no_command_module_and_no_benchmark():
    found = [
        (path, name)
        for under in (PACKAGE, BENCHMARKS)
        for path, tree in modules(under)
        if path not in command_modules()
        for name in command_imports(tree)
    ]
    found += [
        (path, name)
        for path, tree in modules()
        for name in imported_modules(tree)
        if name == "benchmarks" or name.startswith("benchmarks.")
    ]
    assert found == []


def test_the_command_scan_finds_command_modules_imported():
    tree = ast.parse(
        "import rsrl_jax.study\nfrom rsrl_jax import compare, main\n"
        "def f():\n    from rsrl_jax.predict import main\n    import benchmarks.steps\n"
    )
    assert command_imports(tree) == {"rsrl_jax.study", "rsrl_jax.main", "rsrl_jax.predict"}
    assert command_imports(tree, api_names=()) >= {"rsrl_jax.compare", "rsrl_jax.study"}
    assert "benchmarks.steps" in imported_modules(tree)
    assert {"rsrl_jax/main.py", "rsrl_jax/study.py", "rsrl_jax/compare.py"} <= command_modules()


def assert_python_runs(code: str) -> None:
    """`code` run by a fresh interpreter in the clone exits 0 (its stderr shown if not)."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_from_rsrl_jax_import_study_gives_the_api_function():
    code = (
        "import types, rsrl_jax\n"
        "from rsrl_jax import compare, study\n"
        "from rsrl_jax import api\n"
        "assert study is api.study and compare is api.compare, (study, compare)\n"
        "assert not isinstance(rsrl_jax.study, types.ModuleType)\n"
    )
    assert_python_runs(code)


def test_importing_a_command_module_leaves_the_api_function_in_place():
    # Python's import system sets the package's attribute to the submodule it imports; the
    # package refuses that for its API names, so `rsrl_jax.study(...)` still works after.
    code = (
        "import sys, types\n"
        "import rsrl_jax.study, rsrl_jax.compare\n"
        "from rsrl_jax import api, compare, study\n"
        "assert study is api.study and compare is api.compare, (study, compare)\n"
        "assert rsrl_jax.study is api.study, rsrl_jax.study\n"
        "assert isinstance(sys.modules['rsrl_jax.study'], types.ModuleType)\n"
        "rsrl_jax.some_name = 1\n"
        "assert rsrl_jax.some_name == 1\n"
    )
    assert_python_runs(code)
