"""One writer per workdir: the lock a run holds for its whole writing life.

Two writers on one workdir (two terminals, a scheduler retrying a job, a study and a run on
one folder) would interleave rounds and records, so `hold(workdir)` takes `WORKDIR/.lock`, an
OS file lock (`filelock`: flock, released by the kernel when its holder dies, SIGKILL
included), and describes the holder in `WORKDIR/.lock.json` (host, process id, start time,
command), written atomically once the lock is taken and removed when it is released. The
lock file itself stays (created once), unless this hold created the workdir and left it
empty: a refused first run leaves nothing behind.

A second writer is refused at once, never waits (a run takes minutes to days): `DataError`,
one line naming the holder. A holder description found when the lock is free is a run that
ended without releasing it (killed, or its node lost and the file system freed its lock): the
lock is taken over with a warning naming it. On a file system without flock, `filelock` falls
back to a marker file and takes over a marker whose process on this host has ended. Readers
(predict, highlight, report, embed, and a finished run rerun: `resume.finished_run`) never
take the lock; a workdir that cannot be written is refused before any work.

In a multi-process run only process 0 takes the lock; its outcome (held, or the one-line
refusal) is broadcast so that every process goes on, or stops with the same line, together.
"""

import contextlib
import datetime
import json
import os
import shlex
import socket
import sys
import time

import filelock
import jax
import numpy as np
from absl import logging

from rsrl_jax import errors, workdir_files
from rsrl_jax.files import write_atomic

# The workdirs (absolute paths) whose lock this process holds now: the writers of log.txt ask
# (a refused run, or a finished run rerun as a reader, appends nothing to another's files).
HELD: set[str] = set()


def held_here(workdir: str) -> bool:
    """Whether this process holds `workdir`'s lock now."""
    return os.path.abspath(workdir) in HELD


HOLDER_WAIT_S = 2.0  # a new holder writes its description just after taking the lock
MESSAGE_BYTES = 4096  # the refusal broadcast to the other processes of a run


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed: `python -m rsrl_jax.X ...` for this package's commands (runpy
    puts the module's file in argv[0]), else the interpreter and argv."""
    argv = list(sys.argv if argv is None else argv)
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    first = os.path.abspath(argv[0]) if argv and argv[0] else ""
    if first.startswith(package + os.sep) and first.endswith(".py"):
        module = os.path.relpath(first, package)[: -len(".py")].split(os.sep)
        return shlex.join(["python", "-m", ".".join(["rsrl_jax", *module]), *argv[1:]])
    return shlex.join([os.path.basename(sys.executable), *argv])


def this_holder() -> dict:
    """The description of this process as a holder: host, pid, start time (ISO), command."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": command_line(),
    }


def describe(holder: dict | None) -> str:
    """'host h, process 1234, started 2026-12-07T17:02:11, command: python -m ...'."""
    if not holder:
        return "no description of it was found"
    parts = [
        f"host {holder.get('host', '?')}",
        f"process {holder.get('pid', '?')}",
        f"started {holder.get('started', '?')}",
    ]
    return ", ".join(parts) + f", command: {holder.get('command', '?')}"


def read_holder(workdir: str) -> dict | None:
    """The holder description in `workdir`, or None when absent or not whole JSON."""
    try:
        with open(workdir_files.WorkdirFiles(workdir).lock_holder) as f:
            holder = json.load(f)
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _ended_here(holder: dict | None) -> bool:
    """Whether `holder` names a process of this host that no longer runs."""
    if not holder or holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError, TypeError, KeyError):
        return False  # alive (another user's: EPERM), or no usable pid
    return False


def in_use_message(workdir: str, holder: dict | None) -> str:
    """The refusal's one line: who holds `workdir` and what to do."""
    what = "wait for it to end, or use another --workdir"
    if _ended_here(holder):
        lock = workdir_files.WorkdirFiles(workdir).lock
        return (
            f"{workdir} is locked ({lock}), but the run it names "
            f"({describe(holder)}) has ended: a process it started may still hold the lock; "
            f"end that process, or use another --workdir"
        )
    return f"{workdir} is in use by another run ({describe(holder)}): {what}"


def _unwritable(workdir: str, error: OSError) -> errors.DataError:
    why = error.strerror or str(error)
    if error.filename:
        why += f": {error.filename}"
    return errors.DataError(
        f"cannot lock {workdir} for this run ({why}): a run writes into its workdir; give a "
        "folder it can write as --workdir (predict, highlight and report --out=DIR only read "
        "a run)"
    )


def _holder_of_refusal(workdir: str) -> dict | None:
    """The current holder's description; waits briefly for one just taking the lock (its
    description is missing or still the previous, ended holder's)."""
    deadline = time.monotonic() + HOLDER_WAIT_S
    while True:
        holder = read_holder(workdir)
        if (holder and not _ended_here(holder)) or time.monotonic() > deadline:
            return holder
        time.sleep(0.05)


class _Held:
    """The lock as taken by this process, and what `release` must undo."""

    def __init__(self, workdir: str, lock: filelock.FileLock, holder: dict, created: bool):
        self.workdir, self.lock, self.holder, self.created = workdir, lock, holder, created

    def release(self) -> None:
        HELD.discard(os.path.abspath(self.workdir))
        holder_file = workdir_files.WorkdirFiles(self.workdir).lock_holder
        try:
            if read_holder(self.workdir) == self.holder:
                os.remove(holder_file)
        except OSError as e:  # the run's work is done; a stale description is taken over later
            logging.warning("could not remove %s: %s", holder_file, e)
        try:
            if self.created and os.listdir(self.workdir) == [workdir_files.LOCK]:
                os.remove(workdir_files.WorkdirFiles(self.workdir).lock)  # a refused first run:
                os.rmdir(self.workdir)  # nothing left behind
        except OSError:
            pass  # another process came in meanwhile: its files stay, and so does the lock file
        finally:
            self.lock.release()


def take(workdir: str) -> _Held:
    """Takes `workdir`'s lock for this process, or raises DataError (one line): another
    holder, or a workdir this process cannot write (read-only, forbidden)."""
    created = not os.path.isdir(workdir)
    files = workdir_files.WorkdirFiles(workdir)
    path = files.lock
    try:
        os.makedirs(workdir, exist_ok=True)
        lock = filelock.FileLock(path, blocking=False)
        lock.acquire()
    except filelock.Timeout:
        raise errors.DataError(in_use_message(workdir, _holder_of_refusal(workdir))) from None
    except OSError as e:  # read-only, forbidden: refused before any work (a finished run,
        raise _unwritable(workdir, e) from e  # which writes nothing, takes no lock: rsrl.run)
    holder, holder_file = this_holder(), files.lock_holder
    previous = read_holder(workdir)
    try:
        write_atomic(holder_file, json.dumps(holder, indent=1) + "\n")
    except OSError as e:
        lock.release()
        raise _unwritable(workdir, OSError(e.errno, e.strerror, holder_file)) from e
    if previous is not None:
        logging.warning(
            "%s: took over the lock left by a run that ended without releasing it (%s)",
            workdir,
            describe(previous),
        )
    HELD.add(os.path.abspath(workdir))
    return _Held(workdir, lock, holder, created)


def _agree(refusal: errors.UserError | None) -> None:
    """Process 0's outcome to every process of the run: all go on, or all raise one line."""
    text = b""
    if refusal is not None:
        text = f"{refusal.exit_code}{refusal}".encode()[: MESSAGE_BYTES - 1]
    buffer = np.zeros(MESSAGE_BYTES, np.uint8)
    buffer[: len(text)] = np.frombuffer(text, np.uint8)
    from jax.experimental import multihost_utils

    shared = bytes(np.asarray(multihost_utils.broadcast_one_to_all(buffer))).rstrip(b"\0")
    if refusal is not None:
        raise refusal
    if shared:
        text = shared.decode(errors="replace")
        error = errors.ConfigError if text[0] == "2" else errors.DataError
        raise error(text[1:])


@contextlib.contextmanager
def hold(workdir: str):
    """Holds `workdir`'s lock around the body (process 0 of a multi-process run takes it for
    all); raises DataError, one line naming the holder, when another run holds it."""
    workdir = os.fspath(workdir)
    if jax.process_count() == 1:
        held = take(workdir)
    else:
        held, refusal = None, None
        if jax.process_index() == 0:
            try:
                held = take(workdir)
            except errors.UserError as e:
                refusal = e
        _agree(refusal)
    try:
        yield
    finally:
        if held is not None:
            held.release()
