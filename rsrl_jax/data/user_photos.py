"""What predict and highlight share: the files a user names, and each photo as the run saw it.

Paths. A file named on the command line is always tried. A folder stands for every file
under it, subfolders included (`recursive=False`, the CLIs' `--norecursive`: its own files
only), in sorted order, a folder's files before its subfolders'; a link to a folder is
followed once. Every file found there is opened by its content, whatever its name (`.jfif`,
`.jpe`, `.JPEG` are photos too), and gets one JSON line: a result, `{"path", "error"}` (a
photo that cannot be used: broken, too large, or in a format we do not read, such as HEIC),
or `{"path", "skipped"}` (a file that is no image at all and has no photo extension, such as
notes.txt; a hidden file or folder, whose name starts with "."; a subfolder when not
recursive; anything but a regular file). Nothing under a folder is passed over without a line.

Photos. `read_photo` turns each into the view the network was evaluated on
(`data.preprocess.network_photo`: decoded with the run's recorded `data.stored_size`,
`data.image_size` and `data.max_pixels`, then centre-cropped), or into the line saying why
not; so a photo that trained fine is never refused, and one the run would have refused is
refused here too.
"""

import dataclasses
import os
import stat

import numpy as np
from PIL import Image, ImageOps

from rsrl_jax import errors
from rsrl_jax.data import photos
from rsrl_jax.data.preprocess import PhotoOptions, network_photo, square_view

# Names whose failure to open is an error (the file claims to be a photo), not a skip.
HEIF_EXTENSIONS = (".heic", ".heif", ".hif")


@dataclasses.dataclass(frozen=True)
class Found:
    """One path to report on: tried unless `skipped` or `error` says why not.

    `in_folder`: found under a folder rather than named by the user (a file there that is
    no image at all is skipped, not an error).
    """

    path: str
    in_folder: bool = False
    skipped: str = ""
    error: str = ""


def expand_paths(args: list[str], recursive: bool = True) -> list[Found]:
    """Every path the user named, and every file under each named folder (module docstring)."""
    found = []
    for arg in args:
        if os.path.isdir(arg):
            before = len(found)
            _walk(arg, recursive, {os.path.realpath(arg)}, found)
            if len(found) == before:
                found.append(Found(arg, skipped="empty folder: no files in it"))
        else:
            found.append(Found(arg))
    return found


def _walk(folder: str, recursive: bool, seen: set[str], found: list[Found]) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        found.append(Found(folder, error=f"{folder}: cannot list this folder ({e.strerror})"))
        return
    subfolders = []
    for entry in entries:
        hidden = entry.name.startswith(".")
        if _is_dir(entry):
            if hidden:
                found.append(Found(entry.path, skipped="hidden folder, not searched"))
            elif not recursive:
                found.append(Found(entry.path, skipped="subfolder, not searched (--norecursive)"))
            else:
                subfolders.append(entry.path)
        elif hidden:
            found.append(Found(entry.path, skipped="hidden file"))
        elif _is_other(entry):
            found.append(Found(entry.path, skipped="not a regular file"))
        else:  # a regular file, or a broken link (its line will say the file is missing)
            found.append(Found(entry.path, in_folder=True))
    for sub in subfolders:  # searched after every entry of this folder
        real = os.path.realpath(sub)
        if real in seen:
            found.append(Found(sub, skipped=f"a link to {real}, already searched"))
            continue
        seen.add(real)
        before = len(found)
        _walk(sub, recursive, seen, found)
        if len(found) == before:
            found.append(Found(sub, skipped="empty folder: no files in it"))


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows links
    except OSError:
        return False


def _is_other(entry: os.DirEntry) -> bool:
    """A FIFO, socket or device: opening one could block or read forever."""
    try:
        return not stat.S_ISREG(entry.stat().st_mode)
    except OSError:
        return False


def photo_extensions() -> tuple[str, ...]:
    """File name endings of the formats we read (as Pillow registers them) and of HEIC."""
    Image.init()
    formats = set(photos.PHOTO_FORMATS) | {"MPO"}
    names = [ext for ext, fmt in Image.registered_extensions().items() if fmt in formats]
    return tuple(sorted(set(names) | set(HEIF_EXTENSIONS)))


def read_photo(found: Found, options: PhotoOptions) -> tuple[np.ndarray | None, dict | None]:
    """(the network's view of the photo, None), or (None, the JSON line saying why not)."""
    if found.skipped:
        return None, {"path": found.path, "skipped": found.skipped}
    if found.error:
        return None, {"path": found.path, "error": found.error}
    try:
        return network_photo(found.path, options), None
    except photos.NotAPhoto as e:
        if found.in_folder and not found.path.lower().endswith(photo_extensions()):
            return None, {"path": found.path, "skipped": "not a photo (no image format found)"}
        return None, {"path": found.path, "error": str(e)}
    except photos.BadPhoto as e:
        return None, {"path": found.path, "error": str(e)}


def network_view(photo, options: PhotoOptions, name: str = "photo") -> np.ndarray:
    """One photo as the run's network sees it, uint8 [S, S, 3] (S = data.image_size): a path
    (decoded whole, `preprocess.network_photo`), a PIL image or a uint8 array [H, W, 3]
    (made upright by its EXIF, RGB): all three cut by `preprocess.square_view`, so one photo
    gives the same pixels whichever way it comes. errors.DataError naming `name` (a path:
    the path) when it cannot be one."""
    if isinstance(photo, str | os.PathLike) and os.path.isdir(photo):
        raise errors.DataError(
            f"{name}: a folder, not a photo; pass its photos as a list (e.g. "
            f"sorted(pathlib.Path({os.fspath(photo)!r}).glob('*.jpg'))), or run python -m "
            "rsrl_jax.predict on the folder (one line per photo, its path included)"
        )
    if isinstance(photo, str | os.PathLike):
        return network_photo(os.fspath(photo), options)
    if isinstance(photo, np.ndarray):
        if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[-1] != 3:
            raise errors.DataError(
                f"{name}: an array of {photo.dtype} {list(photo.shape)}; a photo is uint8 "
                "[height, width, 3] (RGB), or a batch uint8 [N, height, width, 3]"
            )
        if min(photo.shape[:2]) == 0:
            raise errors.DataError(f"{name}: an empty photo {list(photo.shape)}")
        photo = Image.fromarray(photo, "RGB")
    if not isinstance(photo, Image.Image):
        raise errors.DataError(
            f"{name}: {_a(type(photo).__name__)}; give a path, a PIL image or a uint8 array "
            "[height, width, 3]"
        )
    if photo.width * photo.height > options.max_pixels:
        raise photos.BadPhoto(
            f"{name}: {photo.width}x{photo.height} pixels, above the run's "
            f"data.max_pixels={options.max_pixels}"
        )
    try:
        rgb = photos.to_rgb(ImageOps.exif_transpose(photo), name)
    except OSError as e:  # a lazily loaded image whose file is truncated
        raise photos.BadPhoto(f"{name}: truncated or corrupt image ({e})") from e
    return square_view(np.asarray(rgb, np.uint8), options)


def _a(word: str) -> str:
    """'an int', 'a float': the word with its article."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"
