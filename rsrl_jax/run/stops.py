"""How a command stops on a signal or on a disk it cannot write: one line, nothing saved lost.

SIGINT (Ctrl-C) and SIGTERM (a scheduler's preemption, `timeout`) set a flag (`install`).
Training polls it at every step boundary (`requested`): the round loop saves the mid-round
state as a `checkpoint.every_steps` save does, so that a resume is identical, and stops with
`Interrupted`. Elsewhere (data preparation, compiling, evaluation, the report) the handler
raises `Interrupted` at once, except inside `deferred()` (a checkpoint or results file being
written), which it lets finish first. The CLI prints `Interrupted` as its one line, exit status
130 (SIGINT) or 143 (SIGTERM). A second signal ends the process at once, from a thread that
does not wait for the main thread to leave XLA or Orbax: checkpoints are written to a
temporary folder and renamed, so what was saved before stays whole. Every stop and every
one-line error leaves through `leave`: the line printed and flushed, the process ends without
the interpreter's cleanup, which could crash (XLA's compile threads still running at
finalisation: a segfault after the line) or print the tracebacks of Orbax's background
threads failing against event loops already closed. Nothing is lost by skipping it: saves
are whole or absent, files are written atomically, TensorBoard writers are closed first
(`on_leave`).

A full disk, a quota, a read-only or forbidden folder (an OSError, or TensorStore's error
text inside Orbax's) becomes one line naming the folder and what it needs (`disk_problem`).

The disk's line is `disk_problems`', what a workdir holds to resume from `saved_state`'.
"""

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time

from rsrl_jax import errors
from rsrl_jax.run import disk_problems
from rsrl_jax.run.saved_state import saved_text as saved_text  # importable from here

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state = {"signal": None, "defer": 0, "workdir": None, "remedy": None, "resent": 0}
_state.update(lost=None, in_hook=False, wakeup=None)  # a signal lost in a gc callback
_state.update(hook=False)  # sys.unraisablehook wrapped (once a process)
_stop_lock = threading.Lock()
_on_leave = []  # callables run by `leave` before the process ends (TensorBoard writers)


class Interrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM; the message says what was saved. A
    KeyboardInterrupt, so that no `except Exception` of a library swallows it."""

    def __init__(self, signum: int, text: str):
        super().__init__(text)
        self.exit_code = 128 + signum


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def install() -> None:
    """Handles SIGINT and SIGTERM for this process (from the main thread; elsewhere, as a
    command run inside a test's thread, Python's own handling stays)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if not _state.get("hook"):  # once: the previous hook stays behind ours
        _state["hook"] = True
        sys.unraisablehook = _quiet_unraisable(sys.unraisablehook)
    for signum in SIGNALS:
        signal.signal(signum, _handle)
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    threading.Thread(target=_watch, args=(reader, writer), daemon=True).start()


def on_leave(callback) -> None:
    """`callback()` runs when `leave` ends the process (closing what buffers its writes)."""
    if callback not in _on_leave:
        _on_leave.append(callback)


def leave(code: int) -> None:
    """Ends the process with exit status `code` once its last line is out: runs the
    `on_leave` callbacks, flushes the log handlers, stdout and stderr, and exits without the
    interpreter's finalisation (see the module's docstring). Outside the main thread (a
    command run inside a test's thread) it raises SystemExit as `sys.exit` does."""
    if threading.current_thread() is not threading.main_thread():
        raise SystemExit(code)
    for callback in list(_on_leave):
        try:
            callback()
        except Exception:  # noqa: BLE001 - a writer on a full disk: its data is lost anyway
            pass
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _quiet_unraisable(hook):
    """`sys.unraisablehook` without the "Event loop is closed" RuntimeErrors of Orbax's
    background writes (TensorStore calling back into an asyncio loop that a failed save has
    closed): the save's own error is raised, and said in one line.

    An `Interrupted` the handler raised inside code whose errors Python ignores (a gc
    callback of JAX's, a __del__) is not printed either: the signal is sent again, to be
    raised where the command can stop with its line (not counted as a second signal)."""

    def unraisable(u):
        if isinstance(u.exc_value, Interrupted) and _state["signal"] is not None:
            _state["defer"] += 1  # a signal meanwhile raises nothing inside this hook
            _state["in_hook"] = True
            try:
                _state["lost"], _state["signal"] = _state["signal"], None
                _state["wakeup"].send(b"\0")  # `_watch` sends it again once this hook ended
            finally:
                _state["defer"] -= 1
                _state["in_hook"] = False
            return
        if isinstance(u.exc_value, RuntimeError) and str(u.exc_value) == "Event loop is closed":
            return
        hook(u)

    return unraisable


def _watch(reader, writer) -> None:
    """Counts the signals as the OS delivers them (the wakeup fd is written even while the
    main thread is inside XLA or Orbax): the second ends the process at once."""
    _state["wakeup"] = writer  # held so that the wakeup fd stays open
    count = 0
    while True:
        for signum in reader.recv(64):
            if signum == 0:  # an `Interrupted` lost in a gc callback: sent again, from here
                time.sleep(0.01)
                while _state["in_hook"]:
                    time.sleep(0.01)
                _state["resent"] += 1
                signal.pthread_kill(threading.main_thread().ident, _state["lost"])  # wakes it
            elif signum in SIGNALS and _state["resent"]:
                _state["resent"] -= 1  # an `Interrupted` lost in a gc callback, sent again
            elif signum in SIGNALS:
                count += 1
                if count >= 2:
                    _stop_now(signum)


def _handle(signum, frame) -> None:
    del frame
    if _state["signal"] is not None:
        _stop_now(signum)
    _state["signal"] = signum
    if not _state["defer"]:
        raise Interrupted(signum, stopped_line(signum))


def _stop_now(signum: int) -> None:
    with _stop_lock:  # one line, whichever of the thread and the handler comes first
        print(
            f"interrupted again ({signal_name(signum)}): stopped at once; what was saved "
            "before is intact; run the same command to resume",
            file=sys.stderr,
            flush=True,
        )
        os._exit(128 + signum)


def requested() -> int | None:
    """The signal received (SIGINT or SIGTERM) or None: polled by the training loop."""
    return _state["signal"]


@contextlib.contextmanager
def deferred(active: bool = True):
    """A signal inside waits for the block to end (a save finishes whole); leaving the
    outermost block with a signal pending raises `Interrupted`. `active=False`: no deferral
    (a multi-process run, whose processes could not agree where to stop)."""
    if not active:
        yield
        return
    _state["defer"] += 1
    try:
        yield
    finally:
        _state["defer"] -= 1
    if not _state["defer"] and _state["signal"] is not None:
        raise Interrupted(_state["signal"], stopped_line(_state["signal"]))


def writing(workdir: str | None, elsewhere: str = "use another --workdir") -> None:
    """The folder this command writes (named by `stopped_line` and `disk_problem`);
    `elsewhere`: the way out besides freeing space or permission there."""
    _state["workdir"], _state["remedy"] = workdir, elsewhere


def reset() -> None:
    """Forgets a received signal and the workdir (tests)."""
    _state.update(signal=None, defer=0, workdir=None, remedy=None, resent=0)


def stopped_line(signum: int, where: str = "", saved: str = "") -> str:
    """`interrupted (SIGTERM) in WHERE: SAVED; run the same command to resume`; SAVED
    defaults to what the workdir holds (`saved_text`)."""
    head = f"interrupted ({signal_name(signum)})" + (f" in {where}" if where else "")
    workdir = _state["workdir"]
    if not saved and workdir is None:
        return f"{head}: stopped before finishing; run the same command again"
    return f"{head}: {saved or saved_text(workdir)}; run the same command to resume"


def disk_problem(exc: BaseException) -> errors.DataError | None:
    """`disk_problems.one_line` for the workdir this command writes (`writing`)."""
    return disk_problems.one_line(exc, _state["workdir"], _state["remedy"])
