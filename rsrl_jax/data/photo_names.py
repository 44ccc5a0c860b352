"""The photos a list names, as on disk: one photo whatever path leads to it
(`photo_identity`), its repeats (`ListedPhotos`) and a name spelled otherwise than its file
(`Respeller`: case, Unicode form, spaces, '\\'). Shared by the folder's and AVA's readers.
"""

import os
import re
import unicodedata

from absl import logging


def photo_identity(path: str) -> tuple:
    """What a photo is on disk, whatever path leads to it.

    The (device, inode) of the file `path` resolves to (through symlinks; hard links share
    it, and so do spellings a case-insensitive file system takes as one). Where `path` leads
    to no file, those of its fully resolved path (`sub/../a.jpg` without a `sub/` is `a.jpg`),
    else that path itself (so that a missing photo spelled twice is still one photo).
    One `stat` a photo: cheap enough for AVA's 255,000.
    """
    resolved = None
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # missing, a file used as a folder, a NUL in the name
        resolved = os.path.realpath(path)  # 'sub/../a.jpg' without sub/ resolves to a.jpg
        try:
            st = os.stat(resolved)
        except (OSError, ValueError):
            return ("path", resolved)
    if st.st_ino == 0:  # a file system without inode numbers
        return ("path", resolved or os.path.realpath(path))
    return ("file", st.st_dev, st.st_ino)


class ListedPhotos:
    """The photos of a list seen so far, by identity on disk and by key, to find repeats."""

    def __init__(self):
        self.by_identity: dict[tuple, tuple[int, str]] = {}  # identity -> (line, item)
        self.by_key: dict[str, tuple[int, str]] = {}  # key -> (line, item)

    def repeat(self, item: str, key: str, path: str, line: int, what: str) -> str | None:
        """Why the photo `item` (line `line`, key `key`, at `path`) repeats an earlier one;
        None (and it is recorded) if it is new. `what` names the list's field in messages."""
        identity = photo_identity(path)
        if identity in self.by_identity:
            first_line, first_item = self.by_identity[identity]
            if first_item == item:
                return f"duplicate {what} (first listed on line {first_line})"
            why = f"the same photo as line {first_line} ({first_item!r})"
            if self.by_key.get(key, (None,))[0] != first_line:  # a symlink or hard link
                why += ": both lead to one file on disk"
            return why
        if key in self.by_key:  # e.g. 'sub/../a.jpg' where sub links elsewhere
            first_line, first_item = self.by_key[key]
            return (
                f"another file than line {first_line} ({first_item!r}) under the same name "
                f"{key!r} once resolved (a linked folder on the way); list each photo by a "
                "path without '..'"
            )
        self.by_identity[identity] = (line, item)
        self.by_key[key] = (line, item)
        return None


class Respeller:
    """Finds the file a list means when its name is not on disk as written.

    Lists are often written elsewhere than the photos were saved: macOS stores names in
    Unicode NFD ('Cafe\u0301.jpg' for 'Caf\u00e9.jpg'), a case-insensitive disk lets 'IMG_1.JPG'
    stand for 'img_1.jpg' until the photos move to one that is not, names get stray spaces,
    and Windows writes '\\' between folders. A name not found as written is looked up under
    `images` by its loose spelling (`_loose`): a unique match is used (and logged once for
    the list, `log`), two or more are the row's problem naming them. images/ is walked once,
    and only when a name is not found.
    """

    SHOWN = 3  # examples in the log line

    def __init__(self, images: str, list_name: str):
        self.images, self.list_name = images, list_name
        self.index: dict[str, list[str]] | None = None
        self.respelled: list[tuple[int, str, str]] = []  # (line, as listed, as on disk)

    def find(self, name: str, path: str, line: int) -> tuple[str | None, str | None]:
        """(the file's path under images/ when spelled otherwise, None) or (None, why it is
        ambiguous); (None, None) when `path` is there as written or nothing matches."""
        if os.path.lexists(path) or os.path.lexists(os.path.normpath(path)):
            return None, None  # there, or a missing folder on the way ('sub/../a.jpg')
        if self.index is None:
            self.index = {}
            for relative in _files_under(self.images):
                self.index.setdefault(_loose(relative), []).append(relative)
        matches = sorted(self.index.get(_loose(name), ()))
        if len(matches) == 1:
            self.respelled.append((line, name, matches[0]))
            return matches[0], None
        if matches:
            spelled = " and ".join(repr(m) for m in matches[:4])
            every = "both" if len(matches) == 2 else f"all {len(matches)}"
            return None, (
                f"not in images/ as written, and {spelled} there {every} match it but for "
                "case, Unicode form or spaces: write the name exactly as on disk"
            )
        return None, None

    def log(self) -> None:
        if not self.respelled:
            return
        examples = ", ".join(
            f"line {line}: {listed!r} -> {found!r} ({_how_spelled(listed, found)})"
            for line, listed, found in self.respelled[: self.SHOWN]
        )
        n = len(self.respelled)
        logging.warning(
            "%d name%s in %s matched files spelled differently in %s (e.g. %s); used those",
            n,
            "s" if n > 1 else "",
            self.list_name,
            self.images,
            examples,
        )


def _loose(name: str) -> str:
    """A name as `Respeller` compares it: '\\' read as '/', each part in Unicode NFC,
    casefolded and stripped of spaces, '.' and empty parts dropped."""
    parts = []
    for part in re.split(r"[\\/]+", name):
        part = unicodedata.normalize("NFC", unicodedata.normalize("NFC", part).casefold()).strip()
        if part == os.pardir and parts:
            parts.pop()
        elif part not in ("", os.curdir):
            parts.append(part)
    return "/".join(parts)


def _how_spelled(listed: str, found: str) -> str:
    """How a listed name and the file it matched differ, for the log."""
    ways = []
    if "\\" in listed:
        ways.append("'\\' for '/'")
    nfc = unicodedata.normalize("NFC", listed) != unicodedata.normalize("NFC", found)
    if listed != unicodedata.normalize("NFC", listed) or found != unicodedata.normalize(
        "NFC", found
    ):
        form = "NFD" if found != unicodedata.normalize("NFC", found) else "NFC"
        ways.append(f"Unicode {form} on disk")
    bare = [p.strip() for p in re.split(r"[\\/]+", unicodedata.normalize("NFC", listed))]
    on_disk = [p.strip() for p in re.split(r"[\\/]+", unicodedata.normalize("NFC", found))]
    if nfc and [p.casefold() for p in bare] == [p.casefold() for p in on_disk] and bare != on_disk:
        ways.append("case")
    if any(p != p.strip() for p in re.split(r"[\\/]+", listed + "/" + found)):
        ways.append("spaces")
    return ", ".join(ways) or "spelling"


def _files_under(folder: str, limit: int = 2_000_000):
    """Paths relative to `folder` of the files under it (not through linked folders, which
    may loop), at most `limit` of them."""
    seen = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            yield os.path.relpath(os.path.join(parent, name), folder)
            seen += 1
            if seen >= limit:
                return
