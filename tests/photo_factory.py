"""Small photo files as cameras and the web make them, good and bad, for the data tests."""

import os
import struct
import zlib

import numpy as np
from PIL import Image

RED = (220, 20, 20)
GRAY = (128, 128, 128)


def asymmetric(width: int = 48, height: int = 32) -> Image.Image:
    """Gray landscape photo with a red block in its top-left corner (shows orientation)."""
    a = np.full((height, width, 3), GRAY, np.uint8)
    a[: height // 3, : width // 3] = RED
    return Image.fromarray(a)


def red_corner_is_top_left(photo: np.ndarray) -> bool:
    """True when a decoded square shows the red block top-left and nowhere else."""
    s = photo.shape[0]
    red = (photo[..., 0] > 180) & (photo[..., 1] < 80)
    corner = red[: s // 4, : s // 4].mean()
    others = [red[: s // 4, -s // 4 :], red[-s // 4 :, : s // 4], red[-s // 4 :, -s // 4 :]]
    return corner > 0.9 and all(o.mean() < 0.05 for o in others)


def save_rgb_jpeg(path: str, value=(90, 160, 60), size=(40, 30)) -> None:
    Image.new("RGB", size, value).save(path, quality=95)


def save_exif_rotated_jpeg(path: str) -> None:
    """The asymmetric photo stored turned on its side, with EXIF orientation 6 to undo it."""
    stored = asymmetric().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to view
    stored.save(path, quality=95, exif=exif)


def save_cmyk_jpeg(path: str) -> None:
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(path, quality=95)  # pure red ink


def save_gray_png(path: str, value: int = 77) -> None:
    Image.new("L", (30, 40), value).save(path)


def save_gray16_png(path: str, value: int = 40000) -> None:
    Image.fromarray(np.full((30, 40), value, np.uint16)).save(path)


def save_float_tiff(path: str, value: float = 0.6) -> None:
    """A float32 TIFF (mode F) with values in [0, 1], as numpy pipelines write them."""
    Image.fromarray(np.full((30, 40), value, np.float32)).save(path)


def save_nan_tiff(path: str) -> None:
    a = np.full((30, 40), 0.5, np.float32)
    a[5:10, 5:10] = np.nan
    Image.fromarray(a).save(path)


def save_rgb16_png(path: str, rgb=(65535, 32896, 0), size=(20, 10)) -> None:
    """A 16-bit-per-channel RGB PNG, written by hand (Pillow cannot write one)."""
    w, h = size
    row = b"\0" + struct.pack(">3H", *rgb) * w
    _write_png(path, w, h, bit_depth=16, color_type=2, raw=row * h)


def save_palette_alpha_png(path: str) -> None:
    """Palette photo: left half opaque blue, right half fully transparent."""
    im = Image.new("P", (40, 20), 0)
    im.putpalette([0, 0, 255, 0, 255, 0] + [0] * (256 * 3 - 6))
    im.paste(1, (20, 0, 40, 20))
    im.save(path, transparency=1)


def save_rgba_png(path: str) -> None:
    """Top half opaque green, bottom half transparent black."""
    a = np.zeros((20, 20, 4), np.uint8)
    a[:10] = (0, 200, 0, 255)
    Image.fromarray(a, "RGBA").save(path)


def save_webp(path: str, value=(30, 60, 200)) -> None:
    Image.new("RGB", (40, 30), value).save(path, "WEBP", lossless=True)


def save_truncated_jpeg(path: str) -> None:
    big = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(big).save(path, quality=95)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def save_empty(path: str) -> None:
    open(path, "wb").close()


def save_not_a_photo(path: str) -> None:
    with open(path, "w") as f:
        f.write("this is a text file with a photo's name\n")


def save_bomb_png(path: str, side: int = 100_000) -> None:
    """A tiny file claiming side x side pixels (10 gigapixels at the default side)."""
    _write_png(path, side, side, bit_depth=1, color_type=0, raw=b"\0")


def _write_png(path, w, h, bit_depth, color_type, raw: bytes) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


GOOD = {  # filename -> writer, for photos every builder must accept
    "plain.jpg": save_rgb_jpeg,
    "cmyk.jpg": save_cmyk_jpeg,
    "gray.png": save_gray_png,
    "rotated.jpg": save_exif_rotated_jpeg,
    "gray16.png": save_gray16_png,
    "rgb16.png": save_rgb16_png,
    "float.tif": save_float_tiff,
    "palette_alpha.png": save_palette_alpha_png,
    "rgba.png": save_rgba_png,
    "photo.webp": save_webp,
}
BAD = {  # filename -> (writer, words the reason must contain)
    "truncated.jpg": (save_truncated_jpeg, "truncated"),
    "empty.jpg": (save_empty, "empty"),
    "text.jpg": (save_not_a_photo, "not a photo"),
    "nan.tif": (save_nan_tiff, "NaN"),
}


def write_photos(images_dir: str, names) -> None:
    os.makedirs(images_dir, exist_ok=True)
    for name in names:
        writer = GOOD[name] if name in GOOD else BAD[name][0]
        writer(os.path.join(images_dir, name))


def write_tiff(path, a: np.ndarray, photometric: int, bits=None, raw=None, compress=False):
    """A one-strip little-endian TIFF of `a` [H,W] or [H,W,C] (Pillow cannot write 48-bit
    RGB, unsigned 32-bit or float RGB TIFFs). SampleFormat from a's dtype; `bits` and `raw`
    give packed samples (12-bit) instead of a's bytes; `compress` deflates the strip (then
    libtiff decodes it)."""
    h, w = a.shape[:2]
    channels = 1 if a.ndim == 2 else a.shape[2]
    bits = bits or a.dtype.itemsize * 8
    sample_format = {"u": 1, "i": 2, "f": 3}[a.dtype.kind]
    data = raw if raw is not None else a.astype(a.dtype.newbyteorder("<")).tobytes()
    data = zlib.compress(data) if compress else data
    tags = [  # (tag, SHORT=3 / LONG=4, values); offsets patched below
        (256, 4, [w]),
        (257, 4, [h]),
        (258, 3, [bits] * channels),
        (259, 3, [8 if compress else 1]),
        (262, 3, [photometric]),
        (273, 4, [0]),
        (277, 3, [channels]),
        (278, 4, [h]),
        (279, 4, [len(data)]),
        (339, 3, [sample_format] * channels),
    ]
    packed = [struct.pack(f"<{len(v)}{'H' if t == 3 else 'I'}", *v) for _, t, v in tags]
    extra_at = 8 + 2 + 12 * len(tags) + 4  # arrays too long for the entry follow the IFD
    data_at = extra_at + sum(len(p) for p in packed if len(p) > 4)
    ifd, extra = struct.pack("<H", len(tags)), b""
    for (tag, kind, values), p in zip(tags, packed, strict=True):
        if tag == 273:
            p = struct.pack("<I", data_at)
        if len(p) > 4:
            ifd += struct.pack("<HHII", tag, kind, len(values), extra_at + len(extra))
            extra += p
        else:
            ifd += struct.pack("<HHI", tag, kind, len(values)) + p.ljust(4, b"\0")
    with open(path, "wb") as f:
        f.write(b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + extra + data)


def pack_12bit(values: np.ndarray) -> bytes:
    """Rows of 12-bit samples packed two in three bytes, most significant bits first."""
    out = bytearray()
    for row in values:
        row = np.append(row, 0) if len(row) % 2 else row
        for a, b in row.reshape(-1, 2).astype(int):
            out += bytes([a >> 4, ((a & 0xF) << 4) | (b >> 8), b & 0xFF])
    return bytes(out)
