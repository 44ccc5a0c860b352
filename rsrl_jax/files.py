"""Writing a file whole or not at all."""

import os


def write_atomic(path: str, text: str) -> None:
    """Writes `text` to `path` through a temporary file renamed over it: a kill mid-write
    leaves the old file, and processes writing at once each rename a whole file."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
