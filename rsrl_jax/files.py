"""Writing a file whole or not at all."""

import os


def write_atomic(path: str, text: str) -> None:
    """Writes `text` to `path` through a temporary file renamed over it: a kill mid-write
    leaves the old file, and processes writing at once each rename a whole file. A failed
    write (a full disk) removes its temporary file. A file that already holds `text` is left
    untouched: a rerun that changes nothing writes nothing (also into a read-only folder)."""
    try:
        with open(path) as f:
            if f.read() == text:
                return
    except (OSError, UnicodeDecodeError):  # missing or unreadable: written below
        pass
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.remove(temporary)
        except OSError:  # never created
            pass
        raise
