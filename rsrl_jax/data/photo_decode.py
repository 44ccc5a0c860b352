"""One photo file decoded as the pipeline stores it: the whole photo resized to an upright
RGB uint8 square (`decode_photo`), with the fingerprints copies are found by
(`decode_photo_and_hashes`), or at full resolution (`decode_upright`).

Whatever goes wrong (missing, empty, truncated, a folder, no photo) raises `photos.BadPhoto`
naming the file; the formats, modes and bit depths read are `data.photos`'.
"""

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from rsrl_jax.data import duplicates, photos


def decode_photo(path: str, size: int, max_pixels: int = photos.DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Reads `path` as an upright RGB uint8 array [size, size, 3].

    The whole photo is resized to the square (not cropped), as MATLAB's
    augmentedImageDatastore did, so the composition the rater judged stays in the frame.
    Photos of more than `max_pixels` pixels are refused before their pixels are decoded.
    """
    return _decode(path, size, max_pixels)[0]


def decode_photo_and_hashes(
    path: str, size: int, max_pixels: int = photos.DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, str, str]:
    """`decode_photo`, and the fingerprint and perceptual hash of the upright RGB pixels
    at full resolution (`duplicates`): copies under other names are found by them, also a
    JPEG and a PNG or BMP saved from its decoded pixels."""
    stored, rgb = _decode(path, size, max_pixels, full=True)
    return stored, duplicates.pixel_fingerprint(rgb), duplicates.perceptual_hash(rgb)


def decode_upright(path: str, max_pixels: int = photos.DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The whole photo as upright RGB uint8 [H, W, 3] at full resolution (no resize: the
    ViT families resize with their own rule, `data.vit_photos`); BadPhoto naming `path`."""
    return _decode(path, 0, max_pixels, full=True)[1]


def _decode(path: str, size: int, max_pixels: int, full: bool = False):
    """(the stored square, the upright RGB array at full resolution if `full` else None),
    or BadPhoto naming `path`.

    The stored square of a JPEG much larger than it is resized from libjpeg's reduced
    decode (`draft`: 1/2..1/8 scale, fast); that scale depends on the stored size, so the
    pixels that copies are compared by are a second, full decode (JPEGs so large only).
    """
    try:
        if os.path.getsize(path) == 0:
            raise photos.BadPhoto(f"{path}: empty file (0 bytes)")
        with photos.open_photo(path, max_pixels) as im:
            whole = im.size
            # JPEG only: let libjpeg decode at 1/2..1/8 scale when the photo is much larger
            # than the stored square (no effect on other formats; keeps both sides >= size).
            if size:  # size 0: the full photo alone (`decode_upright`)
                im.draft("RGB", (size, size))
            reduced = im.size != whole
            rgb = photos.upright_rgb(im, path)
        if not size:
            return None, rgb
        stored = Image.fromarray(rgb, "RGB").resize((size, size), Image.Resampling.BILINEAR)
        if full and reduced:
            with photos.open_photo(path, max_pixels) as im:
                rgb = photos.upright_rgb(im, path)
        return np.asarray(stored, np.uint8), (rgb if full else None)
    except photos.BadPhoto:
        raise
    except FileNotFoundError as e:
        raise photos.BadPhoto(f"{path}: missing file") from e
    except IsADirectoryError as e:
        raise photos.BadPhoto(f"{path}: a folder, not a photo") from e
    except PermissionError as e:
        raise photos.BadPhoto(f"{path}: cannot be read (permission denied)") from e
    except UnidentifiedImageError as e:
        raise photos.unreadable(path) from e
    except Image.DecompressionBombError as e:  # Pillow's own check inside a TIFF, GIF, WebP
        raise photos.BadPhoto(  # or MPO decoder, after ours passed (see `open_photo`)
            f"{path}: decompression bomb refused by Pillow while decoding ({e}): a "
            f"{photos.file_format(path) or 'photo'} "
            f"this large stays above Pillow's own limit (2 x PIL.Image.MAX_IMAGE_PIXELS) "
            f"whatever max_pixels={max_pixels} allows; save it as JPEG or PNG, or smaller"
        ) from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise photos.BadPhoto(f"{path}: truncated or corrupt photo ({e})") from e
