"""A listed photo decoded in the builder's thread pool: its stored square, its content
fingerprints (file bytes, decoded pixels, pHash), and a copy of a photo scored otherwise.
"""

import hashlib

from rsrl_jax.data import photo_decode, photos
from rsrl_jax.data.listing import Example, Problem

FINGERPRINT_HEX = 16  # hex digits of SHA-256 kept as a photo's content fingerprint (64 bits)


class Copies:
    """The photos decoded so far by content: a later copy (same file bytes or decoded
    pixels) with another score is a bad example; the copy decoded first is kept."""

    def __init__(self):
        self.by_bytes: dict[str, Example] = {}
        self.by_pixels: dict[str, Example] = {}

    def conflict(self, example: Example, digest: str, pixels: str):
        """The Problem of `example` if it copies a photo of another score, else None."""
        for seen, value, how in (
            (self.by_bytes, digest, "file bytes"),
            (self.by_pixels, pixels, "decoded pixels"),
        ):
            first = seen.get(value)
            if first is not None and first.score != example.score:
                return Problem(
                    example.key,
                    example.where,
                    f"the same photo (same {how}) as {first.key!r} ({first.where}) scored "
                    f"{first.score}, but scored {example.score} here: give both copies one "
                    "score, or remove one (skip mode keeps the first listed)",
                    "conflicting copy",
                )
        self.by_bytes.setdefault(digest, example)
        self.by_pixels.setdefault(pixels, example)
        return None


class Decoder:
    """photo -> (array, content fingerprint, pixel fingerprint, pHash), or the BadPhoto
    (returned, not raised, so the pool keeps going). The fingerprint hashes the file just
    read, so it comes from the page cache: one pass over the photos' bytes, not a second
    read from disk."""

    def __init__(self, size: int, max_pixels: int):
        self.size, self.max_pixels = size, max_pixels

    def __call__(self, example: Example):
        try:
            image, pixels, phash = photo_decode.decode_photo_and_hashes(
                example.path, self.size, self.max_pixels
            )
            return image, file_fingerprint(example.path), pixels, phash
        except photos.BadPhoto as e:
            return e
        except OSError as e:  # the file went away between decoding and hashing
            return photos.BadPhoto(f"{example.path}: unreadable ({e})")


def content_fingerprint(data: bytes) -> str:
    """A photo's content fingerprint: the first FINGERPRINT_HEX hex digits of SHA-256."""
    return hashlib.sha256(data).hexdigest()[:FINGERPRINT_HEX]


def file_fingerprint(path: str) -> str:
    """`content_fingerprint` of a file's bytes, read in chunks (hashlib drops the GIL)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:FINGERPRINT_HEX]


def problem_kind(reason: str, path: str) -> str:
    """'photo:missing file' from BadPhoto's "PATH: missing file (detail)": one kind a cause."""
    return "photo:" + reason.removeprefix(f"{path}: ").split(" (")[0]
