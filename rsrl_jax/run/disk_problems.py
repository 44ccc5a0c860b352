"""A full disk, a quota, a read-only or forbidden folder as one line: an OSError, or
TensorStore's error text inside Orbax's, anywhere in an exception's chain, named by the
folder and what it needs (`one_line`); `stops.disk_problem` gives it the workdir being written.
"""

import errno
import os
import re

from rsrl_jax import errors

# errno -> what is wrong with the folder
_DISK_ERRNOS = {
    errno.ENOSPC: "no space left on the device of {folder}",
    errno.EDQUOT: "the disk quota of {folder} is exceeded",
    errno.EROFS: "{folder} is read-only",
    errno.EACCES: "{folder} cannot be written by this user (permission denied)",
    errno.EPERM: "{folder} cannot be written by this user (operation not permitted)",
}
_NEEDS = {
    errno.ENOSPC: "free space",
    errno.EDQUOT: "free space",
    errno.EROFS: "make it writable",
    errno.EACCES: "make it writable",
    errno.EPERM: "make it writable",
}
# TensorStore's text inside Orbax's errors: ... Failed writing: "PATH": ... [os_error_code='28']
_TS_CODE = re.compile(r"os_error_code='?(\d+)")
_TS_PATH = re.compile(r'"(/[^"]*)"')  # the last quoted absolute path: the file itself


def one_line(exc: BaseException, workdir: str | None, remedy: str | None):
    """A one-line DataError for a full disk, a quota, or a folder that cannot be written,
    anywhere in `exc`'s chain (an OSError, or TensorStore's code in Orbax's error); None for
    any other error. `workdir`: the folder the command writes (`stops.writing`), named with
    `remedy` when the file is in it."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in _DISK_ERRNOS:
            return _disk_error(e.errno, e.filename2 or e.filename, workdir, remedy)
        code = _TS_CODE.search(str(e))
        if code and int(code.group(1)) in _DISK_ERRNOS:
            paths = _TS_PATH.findall(str(e))
            return _disk_error(int(code.group(1)), paths[-1] if paths else None, workdir, remedy)
    return None


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _disk_error(code: int, path, workdir: str | None, remedy: str | None) -> errors.DataError:
    path = _what_was_written(os.fsdecode(path)) if path is not None else None
    inside = path is not None and workdir is not None and _is_under(path, workdir)
    if inside or (path is None and workdir is not None):
        folder, what = workdir, os.path.relpath(path, workdir) if path else None
        remedy = f"{_NEEDS[code]}, or {remedy}"
    else:
        folder = os.path.dirname(path) if path else "the folder written"
        what, remedy = path, f"{_NEEDS[code]}, or write elsewhere"
    problem = _DISK_ERRNOS[code].format(folder=folder)
    if what:
        problem += f" (writing {what})"
    return errors.DataError(f"{problem}: {remedy}; what was saved before is intact")


def _what_was_written(path: str) -> str:
    """The file or checkpoint a temporary name stands for: `fold_0/round_02` for Orbax's
    `fold_0/round_02.orbax-checkpoint-tmp/params...`, `config.json` for `config.json.123.tmp`
    (files.write_atomic)."""
    path = re.sub(r"\.orbax-checkpoint-tmp.*$", "", path)
    return re.sub(r"\.\d+\.tmp$", "", path)


def _is_under(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)
