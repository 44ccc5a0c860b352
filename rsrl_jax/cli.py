"""What every command-line entry point shares."""

import logging
import os

from absl import logging as absl_logging


class _QuietLibraries(logging.Filter):
    """Keeps INFO lines of this package; other libraries (Orbax is chatty) speak at WARNING."""

    def filter(self, record):
        return record.levelno >= logging.WARNING or f"{os.sep}rsrl_jax{os.sep}" in record.pathname


def quiet_libraries() -> None:
    """Call from an absl `main`: library INFO lines would bury the run's own progress."""
    absl_logging.get_absl_handler().addFilter(_QuietLibraries())
