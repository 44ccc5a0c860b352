"""What every command-line entry point shares."""

import logging
import os

from absl import logging as absl_logging


class _QuietLibraries(logging.Filter):
    """Keeps INFO lines of this package; other libraries (Orbax is chatty) speak at WARNING.

    Orbax warns "Given directory is read only" for every read-only checkpoint manager, which
    this package opens on purpose to load finished rounds' networks: that line is dropped.
    """

    def filter(self, record):
        if record.getMessage().startswith("Given directory is read only"):
            return False
        return record.levelno >= logging.WARNING or f"{os.sep}rsrl_jax{os.sep}" in record.pathname


def quiet_libraries() -> None:
    """Call from an absl `main`: library INFO lines would bury the run's own progress."""
    absl_logging.get_absl_handler().addFilter(_QuietLibraries())


CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"


def default_compilation_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "rsrl_jax", "xla")


def enable_compilation_cache() -> str:
    """Keeps compiled steps on disk, so a rerun or a resumed run does not compile again.

    The folder is $JAX_COMPILATION_CACHE_DIR when set (set it empty to turn the cache off),
    else `default_compilation_cache_dir()`. Returns the folder in use ('' = off). Call before
    the first compile.
    """
    import jax

    path = os.environ.get(CACHE_ENV, default_compilation_cache_dir())
    if path:
        os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path or None)
    return path
