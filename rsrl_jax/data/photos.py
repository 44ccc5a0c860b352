"""Decoding one photo file into the upright RGB uint8 square the pipeline stores.

Photos come as cameras and the web make them: JPEG (also a camera's MPO), PNG, WebP, AVIF,
GIF, TIFF, BMP; grayscale, CMYK, palette, 16-bit, with alpha; turned by an EXIF orientation tag.
Every one becomes an upright 8-bit RGB array. Anything that cannot be used (missing, empty,
truncated, corrupt, not a photo, a decompression bomb) raises `BadPhoto` naming the file.
"""

import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from rsrl_jax import errors

# Formats a photo may come in (JPEG covers a camera's MPO); anything else (EPS, ICO, ...) is
# refused before decoding. AVIF only where this Pillow build reads it.
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "AVIF", "GIF", "TIFF", "BMP")
# Pillow's own default limit (about 89 megapixels, a 1 GB RGBA image): larger is a bomb.
DEFAULT_MAX_PIXELS = 89_478_485
# Pillow warns about photos above its limit; ours is checked on the header and refuses them.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
# Transparent parts are shown over white, as a browser shows them on a white page.
BACKGROUND = (255, 255, 255)


class BadPhoto(errors.DataError):
    """A photo that cannot be used; the message names the file and the reason."""


def decode_photo(path: str, size: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Reads `path` as an upright RGB uint8 array [size, size, 3].

    The whole photo is resized to the square (not cropped), as MATLAB's
    augmentedImageDatastore did, so the composition the rater judged stays in the frame.
    Photos of more than `max_pixels` pixels are refused before their pixels are decoded.
    """
    try:
        if os.path.getsize(path) == 0:
            raise BadPhoto(f"{path}: empty file (0 bytes)")
        _allow_pillow(max_pixels)
        Image.init()  # registers every plugin, so `formats` can name WebP, TIFF, ... (cheap)
        formats = [f for f in PHOTO_FORMATS if f in Image.OPEN]
        with Image.open(path, formats=formats) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise BadPhoto(
                    f"{path}: decompression bomb refused: {width}x{height} = {width * height} "
                    f"pixels > max_pixels={max_pixels}"
                )
            # JPEG only: let libjpeg decode at 1/2..1/8 scale when the photo is much larger
            # than the stored square (no effect on other formats; keeps both sides >= size).
            im.draft("RGB", (size, size))
            im.load()  # decode now, so truncation is caught here with the file's name
            im = ImageOps.exif_transpose(im)
            rgb = to_rgb(im)
            return np.asarray(rgb.resize((size, size), Image.Resampling.BILINEAR), np.uint8)
    except BadPhoto:
        raise
    except FileNotFoundError as e:
        raise BadPhoto(f"{path}: missing file") from e
    except UnidentifiedImageError as e:
        raise BadPhoto(f"{path}: not a photo in a known format ({', '.join(PHOTO_FORMATS)})") from e
    except Image.DecompressionBombError as e:
        raise BadPhoto(
            f"{path}: decompression bomb refused: over max_pixels={max_pixels} ({e})"
        ) from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise BadPhoto(f"{path}: truncated or corrupt photo ({e})") from e


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB: 16-bit scaled (not clipped), alpha over white."""
    if im.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N"):
        # 16-bit grayscale: Pillow's convert would clip at 255 and turn the photo white.
        a = np.clip(np.rint(np.asarray(im, np.float64) / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(a, "L").convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return im.convert("RGB")  # L, 1, CMYK, YCbCr, RGB


def _allow_pillow(max_pixels: int) -> None:
    """Raises Pillow's own bomb limit to `max_pixels` where it is lower (never lowers it).

    Pillow warns above `Image.MAX_IMAGE_PIXELS` and refuses twice that; our explicit check
    on the header's size is the limit that counts, so Pillow's must not be the tighter one.
    Only ever raised, so threads decoding at once cannot undo each other.
    """
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels
