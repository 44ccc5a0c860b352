"""How a command's log reads: plain lines on the console, the whole absl log in a file.

The console (absl's stderr handler) shows each line's message alone (a warning starts with
"warning: "), this package's INFO lines and other libraries' warnings only; TFDS's, Orbax's
and etils' chatter (their INFO lines, absl logging and Python warnings) is left out, and a
warning that comes again with other numbers (every round, every fold) is shown once and
counted, the count said when the command ends. `log_to_file` keeps everything, with absl's
prefixes (level, time, thread, file:line), in WORKDIR/log.txt, appended on resume.
"""

import atexit
import logging
import os
import re

from absl import logging as absl_logging

LOG_FILE = "log.txt"
# Libraries whose lines are chatter to a person at the console (kept in the log file).
CHATTY = ("tensorflow_datasets", "orbax", "etils", "array_record")
_PACKAGE = f"{os.sep}rsrl_jax{os.sep}"


def _in_library(path: str) -> bool:
    return any(f"{os.sep}{lib}{os.sep}" in path for lib in CHATTY)


class QuietLibraries(logging.Filter):
    """Keeps INFO lines of this package; other libraries speak at WARNING, the chatty ones
    (CHATTY) not at all.

    Orbax warns "Given directory is read only" for every read-only checkpoint manager, which
    this package opens on purpose to load finished rounds' networks: that line is dropped. So
    is the traceback Orbax logs when a save's thread fails: the save raises the same error.
    """

    def filter(self, record):
        message = record.getMessage()
        if message.startswith("Given directory is read only"):
            return False
        if "_SignalingThread.run() raised an exception" in message:
            return False  # Orbax's thread's error with its traceback: the caller raises it too
        if _in_library(record.pathname):
            return False
        if record.name == "py.warnings":  # a Python warning: the file that raised it leads
            return not _in_library(message.split(":", 1)[0])
        return record.levelno >= logging.WARNING or _PACKAGE in record.pathname


class Repeats(logging.Filter):
    """Lets a warning through the first time; the same warning again (its numbers aside: the
    round, the fold) is counted, not shown. `summary()` says what came again, how often."""

    def __init__(self):
        super().__init__()
        self.seen: dict[str, list] = {}  # key -> [first message, repeats]

    def filter(self, record):
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        if record.name == "py.warnings":  # said by its message (`Plain`), not its location
            message = warning_message(message)
        key = re.sub(r"\d+(\.\d+)?", "#", message)
        if key in self.seen:
            self.seen[key][1] += 1
            return False
        self.seen[key] = [message, 0]
        return True

    def summary(self) -> list[str]:
        return [
            f"warning: (repeated {n} more time{'s' if n > 1 else ''}, all in {LOG_FILE}) "
            f"{_shortened(first)}"
            for first, n in self.seen.values()
            if n
        ]


def _shortened(message: str, width: int = 100) -> str:
    line = message.splitlines()[0] if message else ""
    return line if len(line) <= width else line[: width - 3] + "..."


# warnings.formatwarning's form: "FILE:LINE: Category: message\n  source line\n".
_PY_WARNING = re.compile(r"^.*?:\d+: \w+: (?P<message>.*)$", re.DOTALL)


def warning_message(logged: str) -> str:
    """A captured Python warning's message alone, on one line: its file, line, category and
    source line (formatwarning's other three lines) stay in log.txt."""
    match = _PY_WARNING.match(logged.strip())
    message = match["message"] if match else logged
    return message.strip().splitlines()[0] if message.strip() else message


class Plain(logging.Formatter):
    """The message alone, on one line for a Python warning; a warning or error says which
    it is."""

    def format(self, record):
        text = super().format(record)
        if record.name == "py.warnings":
            text = warning_message(text)
        if record.levelno >= logging.ERROR:
            return f"logged error: {text}"  # not the command's one `error:` line
        return f"warning: {text}" if record.levelno >= logging.WARNING else text


_REPEATS = Repeats()


def setup() -> None:
    """The console's form and filters (call from an absl `main`, before any work). Python
    warnings are logged (so a library's go to the file, not the console)."""
    handler = absl_logging.get_absl_handler()
    if any(isinstance(f, QuietLibraries) for f in handler.filters):
        return
    handler.setFormatter(Plain("%(message)s"))
    handler.addFilter(QuietLibraries())
    handler.addFilter(_REPEATS)
    logging.captureWarnings(True)
    atexit.register(_say_repeats)


def _say_repeats() -> None:
    stream = absl_logging.get_absl_handler().python_handler.stream
    for line in _REPEATS.summary():
        print(line, file=stream, flush=True)


class WorkdirLog(logging.Handler):
    """Appends every record, absl-prefixed, to WORKDIR/log.txt once the workdir exists (the
    command makes it: a command refused before that leaves no folder behind); the records
    before it are held and written first."""

    def __init__(self, workdir: str):
        super().__init__(logging.DEBUG)
        self.path = os.path.abspath(os.path.join(workdir, LOG_FILE))
        self.setFormatter(absl_logging.PythonFormatter())
        self.held: list[str] = []
        self.stream = None

    def emit(self, record):
        try:
            self.held.append(self.format(record) + "\n")
            if self.stream is None:
                if not os.path.isdir(os.path.dirname(self.path)):
                    return
                self.stream = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
            self.stream.writelines(self.held)
            self.stream.flush()
            self.held.clear()
        except OSError:  # a folder that cannot be written: the command's own checks say so
            self.held.clear()
        except Exception:  # noqa: BLE001 - logging must not raise
            self.handleError(record)

    def close(self):
        if self.stream is not None:
            self.stream.close()
        super().close()


def log_to_file(workdir: str) -> str:
    """Every log line from now on (and the held ones), absl-prefixed and unfiltered, appended
    to WORKDIR/log.txt (`WorkdirLog`). Returns its path."""
    root = logging.getLogger()
    path = os.path.abspath(os.path.join(workdir, LOG_FILE))
    if not any(getattr(h, "path", None) == path for h in root.handlers):
        root.addHandler(WorkdirLog(workdir))
    return path
