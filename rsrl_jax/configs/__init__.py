"""The shipped configs, the package's own: `--config=demo` (or `configs/demo.py` in a clone).

Each module here has `get_config()`; the repository's top-level `configs/NAME.py` only
re-exports it, so a clone's documented paths keep working and the text lives once, here.
"""

import os

HOME = os.path.dirname(os.path.abspath(__file__))


def names() -> list[str]:
    """The shipped configs' names, sorted: ['ava', 'demo', 'embeddings', ...]."""
    return sorted(f[:-3] for f in os.listdir(HOME) if f.endswith(".py") and f != "__init__.py")


def path(name: str) -> str | None:
    """The file of the shipped config `name` ('demo' or 'demo.py'), or None if none has it."""
    stem = name[:-3] if name.endswith(".py") else name
    return os.path.join(HOME, f"{stem}.py") if stem in names() else None


def resolve(given: str) -> str:
    """A --config value as a file: `given` itself when it names a file (or a folder: the
    caller says what is wrong with it), else the shipped config of that name, else `given`."""
    file, colon, arg = given.partition(":")  # ml_collections' `FILE:ARG`
    if os.path.exists(file) or os.sep in file:
        return given
    shipped = path(file)
    return shipped + colon + arg if shipped else given


def load(given: str):
    """The ConfigDict of a shipped config's name ('demo') or a config file's path (its
    `get_config()`); errors.ConfigError naming `given` when it is neither."""
    import runpy

    from rsrl_jax import errors

    file = resolve(given)
    if not os.path.isfile(file):
        raise errors.ConfigError(
            f"config {given!r}: no such config file, and no shipped config of that name "
            f"(shipped: {', '.join(names())})"
        )
    return runpy.run_path(file)["get_config"]()
