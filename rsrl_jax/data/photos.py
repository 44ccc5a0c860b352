"""One photo file opened (formats, decompression bombs) and its pixels made upright 8-bit RGB.

Photos come as cameras and the web make them: JPEG (also a camera's MPO), PNG, WebP, AVIF,
GIF, TIFF, BMP; grayscale, CMYK, palette, 16-bit, with alpha; turned by an EXIF orientation tag.
Every one becomes an upright 8-bit RGB array, its pixel values mapped from the range they
have (16-bit, 12-bit, 32-bit integers and floats in [0, 1] or [0, 255]: `gray_to_8bit`).
Anything that cannot be used (missing, empty, truncated, corrupt, not a photo, a format or
pixel range we cannot read, a decompression bomb) raises `BadPhoto` naming the file; a file
that is no image at all raises its subclass `NotAPhoto`.

The stored square and the full upright photo (`decode_photo`, `decode_upright`) are
`data.photo_decode`'s, which maps an unreadable file's errors to `BadPhoto`.
"""

import struct

import numpy as np
from absl import logging
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from rsrl_jax import errors

# Formats a photo may come in (JPEG covers a camera's MPO); anything else (EPS, ICO, ...) is
# refused before decoding. AVIF only where this Pillow build reads it.
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "AVIF", "GIF", "TIFF", "BMP")
# Pillow's own default limit (about 89 megapixels, a 1 GB RGBA image): larger is a bomb.
DEFAULT_MAX_PIXELS = 89_478_485
# Transparent parts are shown over white, as a browser shows them on a white page.
BACKGROUND = (255, 255, 255)
# One-channel modes with more than 8 bits a sample: their range is read, not clipped.
WIDE_GRAY_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")
TIFF_BITS_PER_SAMPLE, TIFF_SAMPLE_FORMAT = 258, 339
# ISO-BMFF brands of HEIC/HEIF photos (an iPhone's default), which Pillow cannot read.
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
# Leading bytes of the photo formats, to say "a TIFF Pillow cannot read" rather than "not a
# photo" when Pillow gives up on a file of a known format.
SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),  # and 4 reserved zero bytes at 6..9, checked below
)


class BadPhoto(errors.DataError):
    """A photo that cannot be used; the message names the file and the reason."""


class NotAPhoto(BadPhoto):
    """A file in no image format at all (notes.txt, .DS_Store): not a photo, not a broken one."""


def upright_rgb(im: ImageFile.ImageFile, path: str) -> np.ndarray:
    """The opened photo `im` decoded, turned upright (EXIF) and made 8-bit RGB."""
    wide_colour = im.mode not in WIDE_GRAY_MODES and _wide_samples(im)  # before load
    im.load()  # decode now, so truncation is caught here with the file's name
    samples = tiff_samples(im)  # read before the turn
    ImageOps.exif_transpose(im, in_place=True)  # no copy of a large photo's pixels
    rgb = np.asarray(to_rgb(im, path, samples))
    if wide_colour and rgb.max() < DARK_LIMIT:
        _warn_dark(path, f"16-bit {im.mode} samples", 16, int(rgb.min()), int(rgb.max()))
    return rgb


def to_rgb(im: Image.Image, path: str = "photo", samples: tuple | None = None) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB with no pixel value lost; raises BadPhoto naming `path`.

    One-channel modes wider than 8 bits (`I;16*`, `I`, `F`) are mapped by `gray_to_8bit`.
    16-bit RGB(A) and CMYK samples reach us as Pillow's 8-bit modes holding each sample's high
    byte (x >> 8: at most 1 below x / 257). Alpha, and a palette's or gray's transparent
    value, is shown over white; 1, L, P, CMYK, YCbCr, LAB and HSV take Pillow's conversions.
    `samples` is `tiff_samples` of the file's image, when `im` is a copy that lost its tags.
    """
    if im.mode in WIDE_GRAY_MODES:
        rgb = np.repeat(gray_to_8bit(im, path, samples)[..., None], 3, axis=-1)
        transparent = im.info.get("transparency")
        if im.mode != "F" and isinstance(transparent, int):  # a 16-bit PNG's tRNS gray value
            rgb[np.asarray(im) == transparent] = BACKGROUND
        return Image.fromarray(rgb, "RGB")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if im.mode == "RGB":  # no copy of a large photo's pixels
        return im
    return im.convert("RGB")  # 1, L, CMYK, YCbCr, LAB, HSV, RGBX


DARK_LIMIT = 32  # a wide photo stored below this 8-bit value everywhere gets a warning


def gray_to_8bit(im: Image.Image, path: str = "photo", samples: tuple | None = None) -> np.ndarray:
    """A wide one-channel photo (`I;16*`, `I`, `F`) as uint8 [H, W]; BadPhoto if unmappable.

    Integers: values all within 0..255 are taken as 8-bit (8-bit data in a wider file; a
    16-bit photo that dark would be black at 8 bits); else they are scaled from the file's
    range: 0..65535 for 16-bit, 0..2**b - 1 where a TIFF declares b < 16 bits (12-bit
    scans), and for 32-bit `I` the 16-bit range when the values fit it. Negative values and
    32-bit values above 65535 have no photo range and are refused.
    Floats: values within [0, 1] are scaled by 255, values within [0, 255] taken as 8-bit
    (each up to rounding: half an 8-bit step); NaN, infinity and any other range are refused.
    A photo whose values differ but would all become one 8-bit value is refused, never
    stored blank.
    """
    declared, signed = samples or tiff_samples(im)
    values = np.asarray(im)
    if im.mode == "I" and declared == 32 and not signed:  # Pillow holds uint32 as wrapping int32
        values = values.view(np.uint32)
    bits = declared or (32 if im.mode == "I" else 16)
    if values.size == 0:
        raise BadPhoto(f"{path}: the photo has no pixels ({im.size[0]}x{im.size[1]})")
    if im.mode == "F":
        out = _float_to_8bit(values, path)
    else:
        out = _int_to_8bit(values, bits, path)
    if out.min() == out.max() and values.min() != values.max():
        raise BadPhoto(
            f"{path}: its {im.mode} pixel values {values.min():g}..{values.max():g} would all "
            f"become the 8-bit value {out.min()}: the photo would be stored blank; stretch its "
            "contrast or save it as 8-bit"
        )
    if out.max() < DARK_LIMIT and values.max() > 255:
        what = f"{im.mode} pixel values {values.min():g}..{values.max():g}"
        _warn_dark(path, what, 16 if bits > 16 else bits, int(out.min()), int(out.max()))
    return out


def _warn_dark(path: str, what: str, bits: int, lo: int, hi: int) -> None:
    """A wide photo scaled by its file's bit depth yet nearly black (most likely 12- or
    10-bit data in a 16-bit file): stored as the file says, but said aloud."""
    logging.warning(
        "%s: stored very dark: its %s are read on the %d-bit scale and become 8-bit values "
        "%d..%d; if the file holds data of fewer bits (e.g. a 12-bit camera's 0..4095), "
        "stretch it or save it as 8-bit",
        path,
        what,
        bits,
        lo,
        hi,
    )


def _wide_samples(im: Image.Image) -> bool:
    """Whether a not-yet-loaded photo's samples are 16-bit (a PNG's or TIFF's raw mode says
    `;16`, or a TIFF declares more than 8 bits): Pillow hands them over as 8-bit modes."""
    for tile in getattr(im, "tile", None) or []:
        args = tile[3] if len(tile) > 3 else None
        raw = args if isinstance(args, str) else (args[0] if isinstance(args, tuple) else "")
        if isinstance(raw, str) and ";16" in raw:
            return True
    bits, _ = tiff_samples(im)
    return bool(bits and bits > 8)


def _float_to_8bit(values: np.ndarray, path: str) -> np.ndarray:
    finite = np.isfinite(values)
    if not finite.all():
        kinds = [k for k, f in (("NaN", np.isnan), ("infinite", np.isinf)) if f(values).any()]
        raise BadPhoto(
            f"{path}: {int((~finite).sum())} of {values.size} floating-point pixel values are "
            f"{' or '.join(kinds)}: no colour to show there; replace them (e.g. with 0) and save "
            "the photo again"
        )
    lo, hi = float(values.min()), float(values.max())
    half_step = 0.5 / 255  # what rounds to 0 or 255 at 8 bits is within range
    if lo >= -half_step and hi <= 1 + half_step:
        scale = 255.0
    elif lo >= -0.5 and hi <= 255.5:
        scale = 1.0
    else:
        raise BadPhoto(
            f"{path}: floating-point pixel values from {lo:g} to {hi:g}: only [0, 1] and "
            "[0, 255] are read as photo ranges; scale the values into one of them, or save "
            "the photo as 8- or 16-bit integers"
        )
    return np.clip(np.rint(values.astype(np.float64) * scale), 0, 255).astype(np.uint8)


def _int_to_8bit(values: np.ndarray, bits: int, path: str) -> np.ndarray:
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi > 65535:
        raise BadPhoto(
            f"{path}: {bits}-bit integer pixel values from {lo} to {hi}: a photo's integer "
            "samples lie within 0..65535 (8 or 16 bits); save it as 8- or 16-bit unsigned "
            "integers"
        )
    if hi <= 255:
        return values.astype(np.uint8)
    top = 2**bits - 1 if 8 < bits < 16 and hi < 2**bits else 65535
    return np.clip(np.rint(values.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)


def tiff_samples(im: Image.Image) -> tuple[int | None, bool]:
    """(bits per sample, signed) a TIFF declares (BitsPerSample, SampleFormat); (None, False)
    for other formats, whose modes say it."""
    tags = getattr(im, "tag_v2", None) or {}
    bits, fmt = _first(tags.get(TIFF_BITS_PER_SAMPLE)), _first(tags.get(TIFF_SAMPLE_FORMAT, 1))
    return (int(bits) if bits else None), fmt == 2


def _first(value):
    """A TIFF tag's value for the first sample (tags hold one value a sample, or one)."""
    return value[0] if isinstance(value, tuple) and value else value


def unreadable(path: str) -> BadPhoto:
    """Why Pillow could not identify `path`, from its leading bytes: an unsupported photo
    format (HEIC), a photo format Pillow cannot read here (a TIFF of float RGB, AVIF without
    a decoder), or no image at all (`NotAPhoto`)."""
    supported = ", ".join(PHOTO_FORMATS)
    head = _leading_bytes(path)
    if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        return BadPhoto(
            f"{path}: a HEIC/HEIF photo: this format is not supported (supported: {supported});"
            " convert it to JPEG or PNG"
        )
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return BadPhoto(f"{path}: an AVIF photo, which this Pillow build cannot read")
    kind = _kind(head)
    if kind == "TIFF":
        return BadPhoto(
            f"{path}: a TIFF file Pillow cannot read: corrupt, or a sample layout it does not "
            "support (e.g. floating-point colour, 16-bit gray with alpha); save it as 8- or "
            "16-bit integer RGB or gray"
        )
    if kind is not None:
        return BadPhoto(f"{path}: a {kind} file Pillow cannot read: truncated or corrupt")
    return NotAPhoto(f"{path}: not a photo in a known format ({supported})")


def open_photo(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageFile.ImageFile:
    """`path` opened (header read, pixels not decoded) as one of `PHOTO_FORMATS`.

    What `PIL.Image.open` does (the first format whose `accept` takes the file's leading
    bytes builds the image, from `Image.OPEN`), less Pillow's bomb check on the header size:
    that check's limit is the process-wide `PIL.Image.MAX_IMAGE_PIXELS`, which a library
    must not change for its caller. Here the limit is the argument `max_pixels`, checked on
    the header, above or below Pillow's. JPEG, PNG and BMP decode whatever their size then;
    Pillow's TIFF, GIF, WebP and MPO decoders check again at 2 x its limit (about 179
    megapixels by default) and raise `Image.DecompressionBombError`.

    Raises BadPhoto when the photo has more than `max_pixels` pixels, UnidentifiedImageError
    when no photo format takes the file, OSError when it cannot be read.
    """
    Image.init()  # registers every plugin, so WebP, TIFF, ... are in `Image.OPEN` (cheap)
    with open(path, "rb") as f:
        prefix = f.read(16)
    for name in PHOTO_FORMATS:
        if name not in Image.OPEN:  # AVIF only where this Pillow build reads it
            continue
        factory, accept = Image.OPEN[name]
        taken = accept(prefix) if accept else True
        if not taken or isinstance(taken, str):  # a str: Pillow's "maybe", a warning
            continue
        try:
            im = factory(path)  # opens the file itself and closes it with the image
        except (SyntaxError, IndexError, TypeError, struct.error):  # as Image.open: not this one
            continue
        width, height = im.size
        if width * height > max_pixels:
            im.close()
            raise BadPhoto(
                f"{path}: decompression bomb refused: {width}x{height} = {width * height} "
                f"pixels > max_pixels={max_pixels}"
            )
        return im
    raise UnidentifiedImageError(f"cannot identify image file {path!r}")


def file_format(path: str) -> str | None:
    """The photo format whose signature `path`'s leading bytes carry, or None."""
    return _kind(_leading_bytes(path))


def _leading_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(16)
    except OSError:
        return b""


def _kind(head: bytes) -> str | None:
    """The photo format whose signature the file's leading bytes carry, or None."""
    kind = next((name for magic, name in SIGNATURES if head.startswith(magic)), None)
    if kind == "BMP" and head[6:10] != bytes(4):
        kind = None  # a text that starts with "BM"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        kind = "WebP"
    return kind
