"""A parsed list of scored photos: its `Example`s (photos to decode), its `Problem`s (rows
or photos not used) and the `SourceList` of both, as `data.sources` reads them and
`data.list_problems` words them; `BadSource`, a list that cannot be read at all.
"""

import dataclasses

from rsrl_jax import errors

AVA_FIELDS = 15  # AVA.txt: index, image id, 10 vote counts, 2 tags, challenge id
# Delimiters a spreadsheet may have written instead of the comma (or the space, in AVA.txt).
OTHER_DELIMITERS = {";": "';'", "\t": "a tab", "|": "'|'", ",": "','"}


@dataclasses.dataclass(frozen=True)
class Example:
    """One photo to decode: `key` names it, `where` is its list line.

    `key` identifies the photo in a run, the same whatever the list's spelling: for a folder
    the normalised path relative to `images/` (`./a.jpg`, `sub/../a.jpg` -> `a.jpg`), for
    AVA the image id.
    """

    key: str
    path: str
    score: int
    where: str


@dataclasses.dataclass(frozen=True)
class Problem:
    """Why an item (a list line or a photo) was not used."""

    item: str
    where: str
    reason: str
    # What went wrong, the same for items bad the same way ('fields:1', 'range:50',
    # 'integer:5.5', 'missing file', ...): a problem of the whole file is told as one.
    kind: str = ""

    def message(self) -> str:
        return f"{self.where}: {self.item!r}: {self.reason}"

    def to_json(self) -> dict:
        return {"item": self.item, "where": self.where, "reason": self.reason}


@dataclasses.dataclass
class SourceList:
    """The usable examples by split ('train', and 'test' for AVA's official split)."""

    splits: dict[str, list[Example]]
    problems: list[Problem]
    listed_files: list[str]  # every list file read, for the cache fingerprint


class BadSource(errors.DataError):
    """A data set whose lists cannot be read at all (missing file, wrong header)."""
