"""Any folder name works for a checkpoint: Orbax and TensorStore get a path that none of them
parses (`orbax_path`), never the user's own when it holds other characters than letters,
digits and `._-+/`: a link with a plain name, in this user's private temporary folder.
"""

import hashlib
import os
import re
import tempfile
import uuid

from rsrl_jax.errors import DataError

# The POSIX portable file name characters and `/`: a path of these reaches every library
# unchanged. Others are parsed by some: Orbax lists a checkpoint's per-process folders with
# etils' `Path.glob`, which joins the folder's own path into the pattern, so `[v1]`, `*` and `?`
# in it are glob syntax (the save then skips merging its parts and the checkpoint cannot be
# restored); TensorStore's file driver reads `\` as a folder separator on every system.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9._+/-]*")


def orbax_path(directory: str) -> str:
    """A path to `directory` that Orbax and TensorStore read literally.

    `directory` itself (made absolute) when that path is plain (`_PLAIN_PATH`). Otherwise a
    symbolic link to it with a plain name, in this user's private folder under the temporary
    folder: no escaping lets TensorStore address a folder whose name holds a backslash, and
    Orbax's globs take no escaped path. Files are still written in `directory`: the link
    holds nothing. It is named by a digest of the absolute path (one link for every process
    and call) and replaced atomically if it points elsewhere; links to removed folders are dropped.
    Raises DataError if the private folder is not private.
    """
    target = os.path.abspath(directory)
    if _PLAIN_PATH.fullmatch(target):
        return target
    link = os.path.join(_alias_folder(), hashlib.sha256(os.fsencode(target)).hexdigest()[:32])
    try:
        if os.readlink(link) == target:
            return link
    except OSError:  # no link yet
        pass
    _remove_dangling_links(os.path.dirname(link))
    fresh = f"{link}.{uuid.uuid4().hex}"
    os.symlink(target, fresh)
    os.replace(fresh, link)  # atomic: processes making the same link at once all succeed
    return link


def _remove_dangling_links(folder: str) -> None:
    """Drops the links of `folder` whose folder is gone, so links do not pile up."""
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.islink(path) and not os.path.exists(path):
            try:
                os.remove(path)
            except FileNotFoundError:  # another process removed it first
                pass


def _alias_folder() -> str:
    """This user's folder of links (`orbax_path`), created with mode 0700 if missing."""
    base = tempfile.gettempdir()
    folder = os.path.join(base, f"rsrl_jax-{os.getuid()}-paths")
    if not _PLAIN_PATH.fullmatch(folder):
        raise DataError(
            f"the temporary folder {base!r} holds characters that checkpoint libraries parse; "
            "set TMPDIR to a folder named with letters, digits and ._-+ only"
        )
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError as e:
        raise DataError(
            f"cannot create {folder} ({e.strerror}), where checkpoints of a folder named with "
            "characters that Orbax or TensorStore parse get a plainly named link: set TMPDIR "
            "to a writable folder"
        ) from e
    info = os.lstat(folder)
    if not os.path.isdir(folder) or os.path.islink(folder) or info.st_uid != os.getuid():
        raise DataError(f"{folder} is not a folder of this user: remove it, then run again")
    if info.st_mode & 0o077:  # another user could point our links elsewhere
        raise DataError(f"{folder} is open to other users: remove it, then run again")
    return folder
