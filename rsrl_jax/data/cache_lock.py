"""A file lock on a shared cache folder, held while one process writes there: others wait
for it, told in the log every minute; a folder where no lock can be made (read-only) is
used without one, with a warning.
"""

import contextlib
import os

import filelock
from absl import logging

LOCK_LOG_EVERY_S = 60.0  # while waiting for another process's preparation


@contextlib.contextmanager
def file_lock(path: str, what: str):
    """Holds the file lock at `path` (`what` says what for); yields whether it was taken.

    A lock file that cannot be created (a read-only cache folder) gives a warning and no
    lock: reading prepared data needs none, and a build there fails on its own writes.
    The OS releases the lock of a killed process, so a kill never leaves others waiting.
    """
    lock = filelock.FileLock(path)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            logging.info("waiting for another process %s (lock %s)", what, path)
            while True:
                try:
                    lock.acquire(timeout=LOCK_LOG_EVERY_S)
                    break
                except filelock.Timeout:
                    logging.info("still waiting for another process %s (lock %s)", what, path)
    except OSError as e:
        logging.warning("cannot take the lock %s (%s): %s without it", path, e, what)
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
