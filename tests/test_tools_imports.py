"""Every script in tools/ finds what it imports when run as `python tools/X.py` from a clone:
its own folder first on sys.path (as Python puts it), then what its module code adds."""

import ast
import pathlib
import subprocess
import sys

import pytest

TOOLS = sorted((pathlib.Path(__file__).parents[1] / "tools").glob("*.py"))

CHECK = """
import importlib, runpy, sys
tool, names = sys.argv[1], sys.argv[2:]
sys.path[0] = str(__import__("pathlib").Path(tool).parent)  # as `python tools/X.py` has it
runpy.run_path(tool, run_name="imports_check")  # module code only: main() is not run
missing = []
for name in names:
    try:
        importlib.import_module(name)
    except ImportError as e:
        missing.append(f"{name}: {e}")
print("\\n".join(missing))
sys.exit(1 if missing else 0)
"""


def imported_modules(path: pathlib.Path) -> list[str]:
    """Every module the file imports, at module level or inside a function (absolute only)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return sorted(names)


@pytest.mark.parametrize("tool", TOOLS, ids=lambda p: p.name)
def test_a_tool_run_as_a_script_finds_every_module_it_imports(tool, tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", CHECK, str(tool), *imported_modules(tool)],
        cwd=tmp_path,  # not the clone: only what the script itself puts on sys.path
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"{tool.name} cannot import: {run.stdout}{run.stderr[-2000:]}"
