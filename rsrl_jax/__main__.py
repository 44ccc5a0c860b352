"""`python -m rsrl_jax`: the package's commands, one line each (`python -m rsrl_jax.COMMAND`).

The commands are found, not listed by hand: every module that forwards `python -m
rsrl_jax.X` to `rsrl_jax/cli/` (a `runpy.run_module("rsrl_jax.cli.…")` line), each described
by its command module's docstring. Read from the sources, so this prints at once (no JAX).
"""

import ast
import os
import re
import sys

PACKAGE = os.path.dirname(os.path.abspath(__file__))
FORWARD = re.compile(r"""runpy\.run_module\(\s*["'](rsrl_jax\.cli\.\w+)["']""")


def commands() -> dict[str, str]:
    """{'main': 'Runs an RSRL experiment.', 'data.benchmark': ...}, sorted by name."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for file in files:
            if not file.endswith(".py") or file == "__main__.py":
                continue
            path = os.path.join(folder, file)
            with open(path) as f:
                forward = FORWARD.search(f.read())
            if forward:
                module = os.path.relpath(path[: -len(".py")], PACKAGE).replace(os.sep, ".")
                found[module] = summary(forward.group(1))
    return dict(sorted(found.items()))


def summary(module: str) -> str:
    """The first paragraph of `module`'s docstring, its own `python -m` usage left out."""
    path = os.path.join(PACKAGE, *module.split(".")[1:]) + ".py"
    with open(path) as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ""
    text = " ".join(doc.split("\n\n")[0].split())
    text = re.sub(r"[:\s]*`python -m [^`]*`\.?$", "", text)
    return text if text.endswith((".", "?")) else text + "."


def main(argv: list[str]) -> int:
    if argv and argv[0] not in ("-h", "--help", "-help", "--helpfull", "-?"):
        print(
            f"error: {argv[0]!r}: run a command as python -m rsrl_jax.COMMAND (python -m "
            "rsrl_jax lists them)",
            file=sys.stderr,
        )
        return 2
    found = commands()
    width = max(map(len, found))
    print(
        "rsrl_jax: repetitive self-revised learning for imbalanced photo-aesthetics "
        "classification.\n\nCommands: python -m rsrl_jax.COMMAND (--help: its flags and config "
        "fields)"
    )
    for name, text in found.items():
        print(f"  {name:<{width}}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
