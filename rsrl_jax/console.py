"""How a command's log reads: plain lines on the console, the whole absl log in a file.

The console (absl's stderr handler) shows each line's message alone (a warning starts with
"warning: "), this package's INFO lines and other libraries' warnings only; TFDS's, Orbax's
and etils' chatter (their INFO lines, absl logging and Python warnings) is left out, and a
warning that comes again with other numbers (every round, every fold) is shown once and
counted, the count said when the command ends. `log_to_file` keeps everything, with absl's
prefixes (level, time, thread, file:line), in WORKDIR/log.txt, appended on resume.
"""

import atexit
import contextlib
import logging
import os
import re
import sys

from absl import logging as absl_logging

from rsrl_jax import workdir_files

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
            f"warning: (repeated {n} more time{'s' if n > 1 else ''}, all in {workdir_files.LOG}) "
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
    """Appends every record, absl-prefixed, to WORKDIR/log.txt once this process holds the
    workdir's lock (a command refused before that leaves no folder and no line behind; a
    finished run rerun, a reader, writes nothing); the records before it are held and
    written first. Once begun it goes on to the command's end (its last lines, after the
    lock's release, are its own)."""

    def __init__(self, workdir: str):
        super().__init__(logging.DEBUG)
        self.path = workdir_files.WorkdirFiles(workdir).log
        self.setFormatter(absl_logging.PythonFormatter())
        self.held: list[str] = []
        self.stream = None

    def emit(self, record):
        try:
            self.held.append(self.format(record) + "\n")
            if self.stream is None:
                if not self._writer():
                    return
                self.stream = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
            self.stream.writelines(self.held)
            self.stream.flush()
            self.held.clear()
        except OSError:  # a folder that cannot be written: the command's own checks say so
            self.held.clear()
        except Exception:  # noqa: BLE001 - logging must not raise
            self.handleError(record)

    def _writer(self) -> bool:
        """Whether this process holds the workdir's lock (`workdir_lock.held_here`): only the
        run that writes the workdir writes its log; a refused run or a finished run rerun
        (a reader) appends nothing."""
        lock = sys.modules.get("rsrl_jax.run.workdir_lock")  # not imported: nothing is held
        return lock is not None and lock.held_here(os.path.dirname(self.path))

    def close(self):
        if self.stream is not None:
            self.stream.close()
        super().close()


def log_to_file(workdir: str) -> str:
    """Every log line from now on (and the held ones), absl-prefixed and unfiltered, appended
    to WORKDIR/log.txt (`WorkdirLog`). Returns its path."""
    root = logging.getLogger()
    path = workdir_files.WorkdirFiles(workdir).log
    if not any(getattr(h, "path", None) == path for h in root.handlers):
        root.addHandler(WorkdirLog(workdir))
    return path


class ReadOnlyNotice(logging.Filter):
    """Drops Orbax's "Given directory is read only" (`QuietLibraries`), for every handler:
    a reader opens finished rounds read-only on purpose."""

    def filter(self, record):
        return not record.getMessage().startswith("Given directory is read only")


def for_python() -> None:
    """The Python API's console (`rsrl_jax.api`): Orbax's read-only notice dropped, and,
    where the caller has set up no logging (absl would fall back on `logging.basicConfig`'s
    `WARNING:absl:` lines), this package's lines as the commands print them (`Plain`,
    `QuietLibraries`) on stderr. A caller's own logging set-up is left as it is."""
    absl_logger = logging.getLogger("absl")
    if not any(isinstance(f, ReadOnlyNotice) for f in absl_logger.filters):
        absl_logger.addFilter(ReadOnlyNotice())
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(Plain("%(message)s"))
        handler.addFilter(QuietLibraries())
        root.addHandler(handler)


@contextlib.contextmanager
def python_run(workdir: str):
    """A run started from Python (`rsrl_jax.train`, `compare`, `study`) logs as the command
    does: `for_python`'s console, INFO lines (progress, rate, ETA) while it runs, and the
    whole log appended to WORKDIR/log.txt by `log_to_file`, closed when it returns."""
    for_python()
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    if absl_logger.getEffectiveLevel() > logging.INFO:
        absl_logger.setLevel(logging.INFO)
    path = log_to_file(workdir)
    try:
        yield path
    finally:
        absl_logger.setLevel(level)
        root = logging.getLogger()
        for handler in [h for h in root.handlers if getattr(h, "path", None) == path]:
            root.removeHandler(handler)
            handler.close()
