"""`python -m rsrl_jax`: the package's commands, one line each (`python -m rsrl_jax.COMMAND`).

The commands are found, not listed by hand: every module of the package that, run as a
program, runs a `main` through `commands.run` (rsrl_jax/X.py for `python -m rsrl_jax.X`), each
described by its docstring. Read from the sources, so this prints at once (no JAX).
"""

import ast
import os
import re
import sys

PACKAGE = os.path.dirname(os.path.abspath(__file__))
MAIN = '\nif __name__ == "__main__":\n'


def is_command(source: str) -> bool:
    """Whether a module's source, run as a program, runs a command (`commands.run(main`)."""
    return MAIN in source and "commands.run(main" in source.split(MAIN, 1)[1]


def commands() -> dict[str, str]:
    """{'main': 'Runs an RSRL experiment.', 'predict': ...}, sorted by name."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for file in files:
            if not file.endswith(".py") or file == "__main__.py":
                continue
            path = os.path.join(folder, file)
            with open(path) as f:
                source = f.read()
            if is_command(source):
                module = os.path.relpath(path[: -len(".py")], PACKAGE).replace(os.sep, ".")
                found[module] = summary(source)
    return dict(sorted(found.items()))


def summary(source: str) -> str:
    """The first paragraph of a command module's docstring, its own `python -m` usage left
    out."""
    doc = ast.get_docstring(ast.parse(source)) or ""
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
