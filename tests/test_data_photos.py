"""decode_photo: every kind of photo becomes an upright RGB uint8 square; bad files are refused."""

import os

import numpy as np
import photo_factory as pf
import pytest
from PIL import Image, ImageCms

from rsrl_jax.data.photo_decode import decode_photo
from rsrl_jax.data.photos import BadPhoto, NotAPhoto, open_photo, to_rgb


def decode(tmp_path, writer, size=16, name="photo", **kwargs):
    path = os.path.join(tmp_path, name)
    writer(path)
    return decode_photo(path, size, **kwargs)


def assert_rgb_square(a, size=16):
    assert a.shape == (size, size, 3) and a.dtype == np.uint8


@pytest.mark.parametrize(
    "writer, name, top_left, bottom_right",
    [
        (pf.save_rgb_jpeg, "p.jpg", (90, 160, 60), (90, 160, 60)),
        (pf.save_cmyk_jpeg, "c.jpg", (255, 0, 0), (255, 0, 0)),  # red ink -> red
        (pf.save_gray_png, "g.png", (77, 77, 77), (77, 77, 77)),
        (pf.save_gray16_png, "g16.png", (156, 156, 156), (156, 156, 156)),  # 40000 / 257
        (pf.save_rgb16_png, "c16.png", (255, 128, 0), (255, 128, 0)),
        (pf.save_palette_alpha_png, "pa.png", (0, 0, 255), (255, 255, 255)),  # clear -> white
        (pf.save_rgba_png, "rgba.png", (0, 200, 0), (255, 255, 255)),
        (pf.save_webp, "w.webp", (30, 60, 200), (30, 60, 200)),
    ],
)
def test_modes_become_rgb_uint8(tmp_path, writer, name, top_left, bottom_right):
    a = decode(tmp_path, writer, name=name)
    assert_rgb_square(a)
    np.testing.assert_allclose(a[0, 0], top_left, atol=3)
    np.testing.assert_allclose(a[-1, -1], bottom_right, atol=3)


def test_exif_orientation_is_applied(tmp_path):
    a = decode(tmp_path, pf.save_exif_rotated_jpeg, size=24, name="r.jpg")
    assert_rgb_square(a, 24)
    assert pf.red_corner_is_top_left(a)
    # The file's own pixels are on their side: without the EXIF turn the check fails.
    raw = np.asarray(pf.asymmetric().transpose(pf.Image.Transpose.ROTATE_90).resize((24, 24)))
    assert not pf.red_corner_is_top_left(raw)


def test_whole_photo_is_squashed_not_cropped(tmp_path):
    a = decode(tmp_path, lambda p: pf.asymmetric(96, 32).save(p), size=30, name="wide.png")
    red = (a[..., 0] > 180) & (a[..., 1] < 80)
    # The red block is the top-left third in both directions: it stays a third after squashing.
    assert abs(red.mean() - 1 / 9) < 0.03


@pytest.mark.parametrize(
    "writer, reason",
    [
        (pf.save_truncated_jpeg, "truncated"),
        (pf.save_empty, "empty file"),
        (pf.save_not_a_photo, "not a photo"),
        (pf.save_bomb_png, "decompression bomb"),
    ],
)
def test_bad_files_are_refused_naming_the_file(tmp_path, writer, reason):
    with pytest.raises(BadPhoto, match=reason) as e:
        decode(tmp_path, writer, name="culprit.jpg")
    assert "culprit.jpg" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(BadPhoto, match="missing") as e:
        decode_photo(os.path.join(tmp_path, "nowhere.jpg"), 16)
    assert "nowhere.jpg" in str(e.value)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # refused, as checked
def test_pixel_limit_is_configurable(tmp_path):
    path = os.path.join(tmp_path, "p.jpg")
    pf.save_rgb_jpeg(path, size=(100, 50))  # 5000 pixels
    with pytest.raises(BadPhoto, match="max_pixels=4999"):
        decode_photo(path, 16, max_pixels=4999)
    assert_rgb_square(decode_photo(path, 16, max_pixels=5000))
    # Above Pillow's own default limit, when the config allows it: header-only bomb refused
    # under the default, while the explicit limit is what the message names.
    bomb = os.path.join(tmp_path, "bomb.png")
    pf.save_bomb_png(bomb, side=12_000)  # 144 megapixels
    with pytest.raises(BadPhoto, match="max_pixels=89478485"):
        decode_photo(bomb, 16)


def test_a_large_max_pixels_leaves_pillows_own_limit_alone(tmp_path):
    pillow_limit = pf.Image.MAX_IMAGE_PIXELS
    path = os.path.join(tmp_path, "p.jpg")
    pf.save_rgb_jpeg(path)
    assert_rgb_square(decode_photo(path, 16, max_pixels=10 * pillow_limit))
    assert pf.Image.MAX_IMAGE_PIXELS == pillow_limit  # a process-wide setting we do not own


def _write_100x50(kind: str, path: str) -> None:
    """A 5000-pixel photo: RGB (90, 160, 60) as JPEG or PNG, a float gray as TIFF."""
    if kind == "TIFF":
        pf.Image.fromarray(np.full((50, 100), 0.6, np.float32)).save(path)
    else:
        pf.Image.new("RGB", (100, 50), (90, 160, 60)).save(path, kind)


@pytest.mark.parametrize("kind", ["JPEG", "PNG"])
def test_a_photo_over_pillows_limit_but_within_max_pixels_decodes(tmp_path, monkeypatch, kind):
    # Pillow's limit lowered for this test only (pytest puts it back), so that a 5000-pixel
    # photo stands for one over Pillow's default (89 megapixels) without decoding one: its
    # 5000 pixels are over twice the limit, where Pillow's own open refuses a photo.
    monkeypatch.setattr(pf.Image, "MAX_IMAGE_PIXELS", 1000)
    path = os.path.join(tmp_path, f"photo.{kind.lower()}")
    _write_100x50(kind, path)
    with pytest.raises(pf.Image.DecompressionBombError):
        pf.Image.open(path)
    a = decode_photo(path, 16, max_pixels=5000)
    assert_rgb_square(a)
    np.testing.assert_allclose(a[0, 0], (90, 160, 60), atol=3)
    with pytest.raises(BadPhoto, match="5000 pixels > max_pixels=4999"):
        decode_photo(path, 16, max_pixels=4999)
    assert pf.Image.MAX_IMAGE_PIXELS == 1000


def test_a_tiff_over_twice_pillows_limit_is_refused_naming_pillows_limit(tmp_path, monkeypatch):
    # Pillow's TIFF decoder checks its own limit again while decoding: within max_pixels,
    # such a photo is refused with a message that says whose limit it is.
    monkeypatch.setattr(pf.Image, "MAX_IMAGE_PIXELS", 1000)
    path = os.path.join(tmp_path, "scan.tif")
    _write_100x50("TIFF", path)
    with pytest.raises(BadPhoto, match="refused by Pillow while decoding") as e:
        decode_photo(path, 16, max_pixels=5000)
    assert "a TIFF this large" in str(e.value) and "PIL.Image.MAX_IMAGE_PIXELS" in str(e.value)
    assert "max_pixels=5000" in str(e.value) and "scan.tif" in str(e.value)


def test_a_header_above_twice_pillows_default_limit_passes_a_larger_max_pixels(tmp_path):
    # At Pillow's real default limit; the header alone is read (a 225-megapixel PNG of a
    # few bytes), so nothing that large is decoded.
    bomb = os.path.join(tmp_path, "big.png")
    pf.save_bomb_png(bomb, side=15_000)
    assert 15_000**2 > 2 * pf.Image.MAX_IMAGE_PIXELS
    with pytest.raises(pf.Image.DecompressionBombError):
        pf.Image.open(bomb)
    with open_photo(bomb, max_pixels=300_000_000) as im:
        assert im.size == (15_000, 15_000) and im.format == "PNG"
    with pytest.raises(BadPhoto, match="225000000 pixels > max_pixels=200000000"):
        open_photo(bomb, max_pixels=200_000_000)


# Wide pixel values: each kind of file holds the columns 0, 1/4, 1/2 and 1 of its range, so
# the decoded photo must show the 8-bit gray columns below, exactly (decoded at its own
# size: no resampling).
COLUMNS = np.array([0, 64, 128, 255], np.uint8)


def columns(values, dtype):
    return np.tile(np.asarray(values, dtype), (4, 1))  # 4 rows of the 4 column values


def pillow_tiff(values, dtype, **save):
    return lambda path: pf.Image.fromarray(columns(values, dtype)).save(path, **save)


WIDE = {
    # the example: float32 in [0, 1] (64 = 0.25 * 255 rounded, 128 = 0.5 * 255)
    "float01.tif": pillow_tiff([0.0, 0.25, 0.5, 1.0], np.float32),
    "float01_deflate.tif": pillow_tiff(
        [0.0, 0.25, 0.5, 1.0], np.float32, compression="tiff_deflate"
    ),
    "float255.tif": pillow_tiff([0.0, 63.6, 128.4, 255.0], np.float32),
    # 16-bit data in a 32-bit integer file (mode I), and 8-bit data in one
    "int32_16bit.tif": pillow_tiff([0, 16448, 32896, 65535], np.int32),
    "int32_8bit.tif": pillow_tiff([0, 64, 128, 255], np.int32),
    "uint32_16bit.tif": lambda p: pf.write_tiff(p, columns([0, 16448, 32896, 65535], np.uint32), 1),
    "gray16.png": lambda p: pf.Image.fromarray(columns([0, 16448, 32896, 65535], np.uint16)).save(
        p
    ),
    "gray16_8bit_values.png": lambda p: pf.Image.fromarray(
        columns([0, 64, 128, 255], np.uint16)
    ).save(p),
    "gray16_big_endian.tif": pillow_tiff([0, 16448, 32896, 65535], ">u2"),
    "gray16_lzw.tif": pillow_tiff([0, 16448, 32896, 65535], np.uint16, compression="tiff_lzw"),
    # a 12-bit scan: 1028 / 4095 * 255 = 64.01
    "gray12.tif": lambda p: pf.write_tiff(
        p,
        columns([0, 1028, 2056, 4095], np.uint16),
        1,
        bits=12,
        raw=pf.pack_12bit(columns([0, 1028, 2056, 4095], np.uint16)),
    ),
    "signed16.tif": lambda p: pf.write_tiff(p, columns([0, 64, 128, 255], np.int16), 1),
}


@pytest.mark.parametrize("name", sorted(WIDE))
def test_wide_gray_values_map_to_their_8bit_values(tmp_path, name):
    a = decode(tmp_path, WIDE[name], size=4, name=name)
    assert_rgb_square(a, 4)
    np.testing.assert_array_equal(a, np.broadcast_to(COLUMNS[None, :, None], (4, 4, 3)))


def test_float_photo_is_not_stored_black_after_resizing(tmp_path):
    """The issue's case at a real size: equal to the same photo saved as 8-bit."""
    ramp = np.linspace(0, 1, 40 * 30, dtype=np.float32).reshape(30, 40)
    pf.Image.fromarray(ramp).save(tmp_path / "float.tif")
    pf.Image.fromarray(np.rint(ramp * 255).astype(np.uint8)).save(tmp_path / "eight.png")
    got = decode_photo(str(tmp_path / "float.tif"), 16)
    np.testing.assert_array_equal(got, decode_photo(str(tmp_path / "eight.png"), 16))
    assert got.max() > 200


@pytest.mark.parametrize("compress", [False, True])
def test_48bit_rgb_tiff_keeps_its_colours(tmp_path, compress):
    rgb = np.tile(np.array([65535, 32896, 16448], np.uint16), (4, 4, 1))
    pf.write_tiff(str(tmp_path / "rgb48.tif"), rgb, 2, compress=compress)
    a = decode_photo(str(tmp_path / "rgb48.tif"), 4)
    # Pillow keeps each sample's high byte: 32896 >> 8 = 128, 16448 >> 8 = 64
    np.testing.assert_array_equal(a, np.broadcast_to([255, 128, 64], (4, 4, 3)))


def test_transparent_value_of_a_16bit_gray_png_is_white(tmp_path):
    pf.Image.fromarray(columns([0, 16448, 32896, 65535], np.uint16)).save(
        tmp_path / "t.png", transparency=16448
    )
    a = decode_photo(str(tmp_path / "t.png"), 4)
    np.testing.assert_array_equal(a[:, :, 0][0], [0, 255, 128, 255])


def _rgb_to_lab_tiff(path):
    im = pf.Image.new("RGB", (4, 4), (200, 30, 90))
    srgb, lab = ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB")
    ImageCms.applyTransform(im, ImageCms.buildTransform(srgb, lab, "RGB", "LAB")).save(path)


@pytest.mark.parametrize(
    "name, writer, want",
    [
        ("bits.tif", lambda p: pf.Image.fromarray(columns([0, 1, 1, 0], bool)).save(p), None),
        ("cmyk.tif", lambda p: pf.Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(p), (255, 0, 0)),
        (
            "ycbcr.tif",
            lambda p: pf.Image.new("RGB", (4, 4), (200, 30, 90)).convert("YCbCr").save(p),
            (200, 30, 90),
        ),
        ("lab.tif", _rgb_to_lab_tiff, (200, 30, 90)),
        ("la.tif", lambda p: pf.Image.new("LA", (4, 4), (100, 255)).save(p), (100, 100, 100)),
        ("la_clear.png", lambda p: pf.Image.new("LA", (4, 4), (0, 0)).save(p), (255, 255, 255)),
    ],
)
def test_other_modes_map_to_their_colours(tmp_path, name, writer, want):
    a = decode(tmp_path, writer, size=4, name=name)
    if want is None:  # 1-bit: black and white columns
        np.testing.assert_array_equal(a[0, :, 0], [0, 255, 255, 0])
    else:
        np.testing.assert_allclose(a.reshape(-1, 3), np.broadcast_to(want, (16, 3)), atol=4)


def test_hsv_image_maps_to_rgb():
    hsv = pf.Image.new("RGB", (4, 4), (200, 30, 90)).convert("HSV")
    np.testing.assert_allclose(np.asarray(to_rgb(hsv))[0, 0], (200, 30, 90), atol=2)


REFUSED = {  # name -> (writer, words the reason must contain)
    "nan.tif": (pillow_tiff([0.0, np.nan, 0.5, 1.0], np.float32), "NaN"),
    "inf.tif": (pillow_tiff([0.0, np.inf, 0.5, 1.0], np.float32), "infinite"),
    "float_signed.tif": (pillow_tiff([-1.0, 0.0, 0.5, 1.0], np.float32), "from -1 to 1"),
    "float_hdr.tif": (pillow_tiff([0.0, 10.0, 300.0, 1000.0], np.float32), "from 0 to 1000"),
    "int32_wide.tif": (pillow_tiff([0, 1, 2, 100_000], np.int32), "from 0 to 100000"),
    "uint32_wide.tif": (
        lambda p: pf.write_tiff(p, columns([0, 1, 2, 4_000_000_000], np.uint32), 1),
        "from 0 to 4000000000",
    ),
    "signed_negative.tif": (
        lambda p: pf.write_tiff(p, columns([-5, 0, 64, 255], np.int16), 1),
        "from -5 to 255",
    ),
    # values that differ but are all one 8-bit value: stored blank, so refused
    "gray16_flat.png": (
        lambda p: pf.Image.fromarray(columns([300, 320, 350, 380], np.uint16)).save(p),
        "stored blank",
    ),
    "float_flat.tif": (pillow_tiff([0.0, 0.0001, 0.0002, 0.0003], np.float32), "stored blank"),
    "float_rgb.tif": (
        lambda p: pf.write_tiff(p, np.full((4, 4, 3), 0.5, np.float32), 2),
        "TIFF file Pillow cannot read",
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_unmappable_pixel_values_are_refused_naming_the_file(tmp_path, name):
    writer, reason = REFUSED[name]
    with pytest.raises(BadPhoto, match=reason) as e:
        decode(tmp_path, writer, size=4, name=name)
    assert name in str(e.value)


@pytest.mark.parametrize("dtype, value", [(np.float32, 0.5), (np.uint16, 40000), (np.int32, 0)])
def test_a_blank_file_is_a_blank_photo(tmp_path, dtype, value):
    pf.Image.fromarray(np.full((4, 4), value, dtype)).save(tmp_path / "flat.tif")
    a = decode_photo(str(tmp_path / "flat.tif"), 4)
    assert a.min() == a.max() == {0.5: 128, 40000: 156, 0: 0}[value]


def test_heic_is_refused_as_unsupported_and_text_as_not_a_photo(tmp_path):
    heic = tmp_path / "IMG_0001.HEIC"
    heic.write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(64))
    with pytest.raises(BadPhoto, match="IMG_0001.HEIC: a HEIC/HEIF photo: .*not supported") as e:
        decode_photo(str(heic), 4)
    assert not isinstance(e.value, NotAPhoto)
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n")
    with pytest.raises(NotAPhoto, match="notes.txt: not a photo"):
        decode_photo(str(notes), 4)


def test_a_photo_format_pillow_gives_up_on_is_named_not_called_text(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(BadPhoto, match="broken.jpg: a JPEG file Pillow cannot read") as e:
        decode_photo(str(broken), 4)
    assert not isinstance(e.value, NotAPhoto)
    with pytest.raises(BadPhoto, match="a folder, not a photo"):
        decode_photo(str(tmp_path), 4)


def test_a_wide_photo_stored_nearly_black_is_said_aloud(tmp_path, caplog):
    """12-bit data in a 16-bit file: scaled as 16-bit it is stored dark, with a warning that
    names the file and the value ranges (a refusal is only for a photo stored blank)."""
    values = (np.arange(64 * 64).reshape(64, 64) % 4096).astype(np.uint16)
    path = tmp_path / "twelve_bit.png"
    Image.fromarray(values).save(path)
    caplog.set_level("WARNING")
    out = decode_photo(str(path), 32)
    assert out.max() < 32
    assert f"{path}: stored very dark: its I;16 pixel values 0..4095" in caplog.text
    caplog.clear()
    bright = tmp_path / "sixteen_bit.png"
    Image.fromarray((values.astype(np.uint32) * 16).astype(np.uint16)).save(bright)
    decode_photo(str(bright), 32)
    assert "stored very dark" not in caplog.text


def test_a_16bit_colour_photo_stored_nearly_black_is_said_aloud(tmp_path, caplog):
    """Pillow hands 16-bit RGB samples over as their high bytes: 12-bit data becomes 0..15."""
    import struct
    import zlib

    values = (np.arange(32 * 32 * 3).reshape(32, 32, 3) % 4096).astype(">u2")
    rows = b"".join(b"\x00" + row.tobytes() for row in values)

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 32, 32, 16, 2, 0, 0, 0)  # 16 bits a sample, RGB
    path = tmp_path / "rgb12.png"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    caplog.set_level("WARNING")
    assert decode_photo(str(path), 16).max() < 32
    assert f"{path}: stored very dark: its 16-bit RGB samples are read on the 16-bit" in caplog.text
